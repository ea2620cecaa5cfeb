import {
  decideLayout,
  describeRequests,
  type LayoutRequest,
  type Layout,
} from '../../../src/slices/decide.ts';

const l24by26: Layout = { range: '10.0.0.0/24', slicePrefix: 26 };
const l24by27: Layout = { range: '10.0.0.0/24', slicePrefix: 27 };
const l16by26: Layout = { range: '10.1.0.0/16', slicePrefix: 26 };
const request = (nad: string, layout: Layout): LayoutRequest<string> => ({ nad, layout, value: nad });

test('a new pool, or one already in the wanted layout, gets the wanted layout', () => {
  expect(decideLayout([request('ns/a', l24by26)], undefined, undefined)).toEqual({
    kind: 'apply',
    request: request('ns/a', l24by26),
    changed: false,
  });
  expect(decideLayout([request('ns/a', l24by26)], l24by26, undefined)).toMatchObject({
    kind: 'apply',
    changed: false,
  });
});

test('a changed layout waits while the old slice pools hold addresses or were not counted', () => {
  expect(decideLayout([request('ns/a', l24by27)], l24by26, undefined)).toEqual({
    kind: 'draining',
    request: request('ns/a', l24by27),
    existing: l24by26,
    old: undefined,
  });
  expect(decideLayout([request('ns/a', l16by26)], l24by26, { held: 3, drained: false })).toMatchObject({
    kind: 'draining',
    old: { held: 3 },
  });
  // Empty, but not yet for the drain period: still the old layout.
  expect(decideLayout([request('ns/a', l16by26)], l24by26, { held: 0, drained: false }).kind).toBe(
    'draining',
  );
});

test('a changed layout is applied once the old slice pools are drained', () => {
  expect(decideLayout([request('ns/a', l24by27)], l24by26, { held: 0, drained: true })).toEqual({
    kind: 'apply',
    request: request('ns/a', l24by27),
    changed: true,
  });
});

test('NADs claiming one pool with different layouts: a conflict, whatever the pool holds; none wins', () => {
  const requests = [request('ns1/a', l24by26), request('ns2/b', l24by27)];
  for (const existing of [undefined, l24by26, l24by27, l16by26])
    for (const old of [undefined, { held: 0, drained: true }])
      expect(decideLayout(requests, existing, old)).toEqual({ kind: 'conflict', requests, existing });
  expect(describeRequests(requests)).toBe('ns1/a (10.0.0.0/24 in /26), ns2/b (10.0.0.0/24 in /27)');
});

test('NADs claiming one pool with the same layout: no conflict, the first claim is applied', () => {
  expect(decideLayout([request('ns1/a', l24by26), request('ns2/b', l24by26)], l24by26, undefined)).toEqual({
    kind: 'apply',
    request: request('ns1/a', l24by26),
    changed: false,
  });
});

test('no layout request at all is a programming error', () => {
  expect(() => decideLayout([], undefined, undefined)).toThrow('no layout request');
});
