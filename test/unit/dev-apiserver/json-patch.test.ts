import { applyJsonPatch, applyMergePatch } from '../../../src/dev-apiserver/json-patch.ts';

const doc = () => ({
  spec: { range: '10.0.0.0/24', allocations: { '1': { id: 'a', podref: 'ns/a' } } },
  list: [1, 2],
});

describe('JSON patch with the API server semantics', () => {
  test('a missing key tests as null; the add then applies', () => {
    const result = applyJsonPatch(
      doc(),
      [
        { op: 'test', path: '/spec/allocations/2', value: null },
        { op: 'add', path: '/spec/allocations/2', value: { id: 'b', podref: 'ns/b' } },
      ],
      10,
    );
    expect(result.kind).toBe('applied');
    if (result.kind === 'applied')
      expect(Object.keys((result.document as ReturnType<typeof doc>).spec.allocations)).toEqual(['1', '2']);
  });

  test.each([
    ['test of a present key against null', [{ op: 'test', path: '/spec/allocations/1', value: null }]],
    ['remove of a missing key', [{ op: 'remove', path: '/spec/allocations/9' }]],
    ['replace of a missing key', [{ op: 'replace', path: '/spec/allocations/9', value: 1 }]],
    ['a path through a missing parent', [{ op: 'add', path: '/status/x', value: 1 }]],
    ['an array index out of bounds', [{ op: 'add', path: '/list/5', value: 1 }]],
    ['an unknown op', [{ op: 'merge', path: '/a' }]],
    ['an add without value', [{ op: 'add', path: '/a' }]],
  ])('%s fails (the server answers 422)', (_, patch) => {
    expect(applyJsonPatch(doc(), patch, 10).kind).toBe('failed');
  });

  test('a body that is not a list of operations is malformed (400)', () => {
    expect(applyJsonPatch(doc(), { op: 'add' }, 10).kind).toBe('malformed');
  });

  test('more operations than allowed is too large (413)', () => {
    expect(
      applyJsonPatch(
        doc(),
        Array.from({ length: 11 }, () => ({ op: 'test', path: '/list', value: [1, 2] })),
        10,
      ).kind,
    ).toBe('tooLarge');
  });

  test('the stored document is never changed, even by a patch that fails half way', () => {
    const original = doc();
    const before = JSON.stringify(original);
    applyJsonPatch(
      original,
      [
        { op: 'remove', path: '/spec/allocations/1' },
        { op: 'test', path: '/list/0', value: 5 },
      ],
      10,
    );
    applyJsonPatch(
      original,
      [
        { op: 'add', path: '/list/-', value: 3 },
        { op: 'move', from: '/spec/range', path: '/range' },
      ],
      10,
    );
    expect(JSON.stringify(original)).toBe(before);
  });

  test('move, copy, ~0 and ~1 escapes', () => {
    const result = applyJsonPatch(
      { 'a/b': 1, 'c~d': 2 },
      [
        { op: 'copy', from: '/a~1b', path: '/x' },
        { op: 'move', from: '/c~0d', path: '/y' },
      ],
      10,
    );
    expect(result).toEqual({ kind: 'applied', document: { 'a/b': 1, x: 1, y: 2 } });
  });
});

test('merge patch sets, replaces and deletes keys, copying only what it changes', () => {
  const original = doc();
  const merged = applyMergePatch(original, {
    spec: { allocations: { '1': null, '3': { id: 'c' } } },
    list: [9],
  }) as ReturnType<typeof doc>;
  expect(merged.spec.allocations).toEqual({ '3': { id: 'c' } });
  expect(merged.list).toEqual([9]);
  expect(original.spec.allocations).toEqual({ '1': { id: 'a', podref: 'ns/a' } });
});
