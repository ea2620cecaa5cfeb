import fc from 'fast-check';
import { parseCidr, formatCidr, type Cidr } from '../../../src/ip/cidr.ts';
import { makeRange, rangeOffers } from '../../../src/ip/range.ts';
import { parseIP } from '../../../src/ip/address.ts';
import {
  assignSlices,
  divide,
  lowestFreeSlice,
  maxSlices,
  slicesOf,
  withinSlice,
  type SliceAllocation,
} from '../../../src/slices/layout.ts';

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(text);
  return c;
};
const ip = (text: string): bigint => parseIP(text)?.value ?? -1n;
/** What a node whose slices are full writes (src/ipam/places.ts `takeSlice`): the lowest free slice becomes its own. */
const extend = (current: readonly SliceAllocation[], node: string): SliceAllocation[] | undefined => {
  const i = lowestFreeSlice(current);
  return i === undefined ? undefined : current.map((a, j) => (j === i ? { ...a, nodeName: node } : a));
};
const layout = (range: string, prefix: number) => {
  const d = divide(cidr(range), prefix);
  if (!d.ok) throw new Error(d.error);
  return d.value;
};

describe('divide', () => {
  test('IPv4 and IPv6 ranges into equal, consecutive slices', () => {
    expect(layout('10.0.0.0/24', 26).map(formatCidr)).toEqual([
      '10.0.0.0/26',
      '10.0.0.64/26',
      '10.0.0.128/26',
      '10.0.0.192/26',
    ]);
    expect(layout('2001:db8::/64', 66).map(formatCidr)).toEqual([
      '2001:db8::/66',
      '2001:db8:0:0:4000::/66',
      '2001:db8:0:0:8000::/66',
      '2001:db8:0:0:c000::/66',
    ]);
    expect(layout('10.0.0.0/24', 24).map(formatCidr)).toEqual(['10.0.0.0/24']);
  });

  test('too many slices, or a slice larger than the range, is a clear error', () => {
    expect(divide(cidr('2001:db8::/64'), 120)).toEqual({
      ok: false,
      error: expect.stringContaining(`at most ${maxSlices} are supported`) as string,
    });
    expect(divide(cidr('10.0.0.0/24'), 22)).toEqual({
      ok: false,
      error: 'slice size /22 is larger than the range 10.0.0.0/24',
    });
  });
});

describe('assignSlices', () => {
  const slices = layout('10.0.0.0/24', 26);

  test('each node gets the lowest free slice; nodes beyond the slices are left unassigned', () => {
    const a = assignSlices(slices, [], ['n1', 'n2', 'n3', 'n4', 'n5']);
    expect(a.allocations.map((x) => x.nodeName)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(a.unassigned).toEqual(['n5']);
  });

  test('a node that leaves frees its slice; a node that stays keeps its slices; a joining node takes a free one', () => {
    const first = assignSlices(slices, [], ['n1', 'n2']).allocations;
    const extended = extend(first, 'n1') ?? [];
    expect(slicesOf(extended, 'n1')).toEqual(['10.0.0.0/26', '10.0.0.128/26']);
    const after = assignSlices(slices, extended, ['n1', 'n3']);
    expect(after.allocations).toEqual([
      { nodeName: 'n1', sliceRange: '10.0.0.0/26' },
      { nodeName: 'n3', sliceRange: '10.0.0.64/26' },
      { nodeName: 'n1', sliceRange: '10.0.0.128/26' },
      { nodeName: '', sliceRange: '10.0.0.192/26' },
    ]);
  });

  test('a slice of a departed node that is retained stays with it and is given to no one else', () => {
    const first = assignSlices(slices, [], ['n1', 'n2']).allocations;
    const after = assignSlices(slices, first, ['n2', 'n3'], undefined, (a) => a.nodeName === 'n1');
    expect(after.allocations.map((a) => a.nodeName)).toEqual(['n1', 'n2', 'n3', '']);
    expect(assignSlices(slices, after.allocations, ['n2', 'n3']).allocations[0]?.nodeName).toBe('');
  });

  test('lowestFreeSlice finds nothing when every slice is taken', () => {
    const full = assignSlices(slices, [], ['a', 'b', 'c', 'd']).allocations;
    expect(lowestFreeSlice(full)).toBeUndefined();
    expect(extend(full, 'a')).toBeUndefined();
  });

  test('over any sequence of joins, leaves and extensions no slice ever has two nodes and no live node is without one while one is free', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('join' as const), node: fc.integer({ min: 0, max: 9 }) }),
      fc.record({ kind: fc.constant('leave' as const), node: fc.integer({ min: 0, max: 9 }) }),
      fc.record({ kind: fc.constant('extend' as const), node: fc.integer({ min: 0, max: 9 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let nodes: string[] = [];
        let current = assignSlices(slices, [], nodes).allocations;
        for (const o of ops) {
          const node = `n${o.node}`;
          if (o.kind === 'join' && !nodes.includes(node)) nodes = [...nodes, node];
          if (o.kind === 'leave') nodes = nodes.filter((n) => n !== node);
          if (o.kind === 'extend' && nodes.includes(node)) current = extend(current, node) ?? current;
          const next = assignSlices(slices, current, nodes);
          // Every live node's slices are kept.
          for (const n of nodes)
            for (const s of slicesOf(current, n)) expect(slicesOf(next.allocations, n)).toContain(s);
          current = next.allocations;
          expect(current.map((a) => a.sliceRange)).toEqual(slices.map(formatCidr));
          expect(current.every((a) => a.nodeName === '' || nodes.includes(a.nodeName))).toBe(true);
          const free = current.filter((a) => a.nodeName === '').length;
          const without = nodes.filter((n) => slicesOf(current, n).length === 0);
          expect(free > 0 && without.length > 0).toBe(false);
          expect(next.unassigned).toEqual(without);
        }
      }),
    );
  });
});

describe('withinSlice', () => {
  test('range_start, range_end and exclusions still apply inside a slice', () => {
    const range = makeRange(
      cidr('10.0.0.0/24'),
      [cidr('10.0.0.70/31'), cidr('10.0.0.200/29')],
      ip('10.0.0.10'),
      ip('10.0.0.210'),
    );
    const [s0, s1, , s3] = layout('10.0.0.0/24', 26);
    const first = withinSlice(range, s0 as Cidr);
    expect([first?.first, first?.last]).toEqual([ip('10.0.0.10'), ip('10.0.0.63')]);
    const second = withinSlice(range, s1 as Cidr);
    expect(second !== undefined && rangeOffers(second, ip('10.0.0.70'))).toBe(false);
    expect(second !== undefined && rangeOffers(second, ip('10.0.0.72'))).toBe(true);
    const last = withinSlice(range, s3 as Cidr);
    expect([last?.first, last?.last]).toEqual([ip('10.0.0.192'), ip('10.0.0.210')]);
    expect(last !== undefined && rangeOffers(last, ip('10.0.0.203'))).toBe(false);
    // Slices share the range's subnet: results keep the whole range's prefix, as Whereabouts' do.
    expect(last?.subnet).toEqual(cidr('10.0.0.0/24'));
  });

  test('a slice the range does not reach offers nothing', () => {
    const range = makeRange(cidr('10.0.0.0/24'), [], ip('10.0.0.10'), ip('10.0.0.20'));
    expect(withinSlice(range, layout('10.0.0.0/24', 26)[2] as Cidr)).toBeUndefined();
  });
});
