import { decideLayout, describeClaims, type Claim, type Layout } from '../../../src/slices/decide.ts';

const l24by26: Layout = { range: '10.0.0.0/24', slicePrefix: 26 };
const l24by27: Layout = { range: '10.0.0.0/24', slicePrefix: 27 };
const l16by26: Layout = { range: '10.1.0.0/16', slicePrefix: 26 };
const claim = (nad: string, layout: Layout): Claim<string> => ({ nad, layout, value: nad });

test('a new pool, or one already in the wanted layout, gets the wanted layout', () => {
  expect(decideLayout([claim('ns/a', l24by26)], undefined, undefined)).toEqual({
    kind: 'apply',
    claim: claim('ns/a', l24by26),
    changed: false,
  });
  expect(decideLayout([claim('ns/a', l24by26)], l24by26, undefined)).toMatchObject({
    kind: 'apply',
    changed: false,
  });
});

test('a changed layout waits while the old slice pools hold addresses or were not counted', () => {
  expect(decideLayout([claim('ns/a', l24by27)], l24by26, undefined)).toEqual({
    kind: 'draining',
    claim: claim('ns/a', l24by27),
    existing: l24by26,
    old: undefined,
  });
  expect(decideLayout([claim('ns/a', l16by26)], l24by26, { held: 3, drained: false })).toMatchObject({
    kind: 'draining',
    old: { held: 3 },
  });
  // Empty, but not yet for the drain period: still the old layout.
  expect(decideLayout([claim('ns/a', l16by26)], l24by26, { held: 0, drained: false }).kind).toBe('draining');
});

test('a changed layout is applied once the old slice pools are drained', () => {
  expect(decideLayout([claim('ns/a', l24by27)], l24by26, { held: 0, drained: true })).toEqual({
    kind: 'apply',
    claim: claim('ns/a', l24by27),
    changed: true,
  });
});

test('NADs claiming one pool with different layouts: a conflict, whatever the pool holds; none wins', () => {
  const claims = [claim('ns1/a', l24by26), claim('ns2/b', l24by27)];
  for (const existing of [undefined, l24by26, l24by27, l16by26])
    for (const old of [undefined, { held: 0, drained: true }])
      expect(decideLayout(claims, existing, old)).toEqual({ kind: 'conflict', claims, existing });
  expect(describeClaims(claims)).toBe('ns1/a (10.0.0.0/24 in /26), ns2/b (10.0.0.0/24 in /27)');
});

test('NADs claiming one pool with the same layout: no conflict, the first claim is applied', () => {
  expect(decideLayout([claim('ns1/a', l24by26), claim('ns2/b', l24by26)], l24by26, undefined)).toEqual({
    kind: 'apply',
    claim: claim('ns1/a', l24by26),
    changed: false,
  });
});

test('no claim at all is a programming error', () => {
  expect(() => decideLayout([], undefined, undefined)).toThrow('no claim');
});
