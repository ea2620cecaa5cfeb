// Capacity from the NADs naming a pool: narrowed and excluded ranges, slices, pools shared by NADs with
// different narrowings, and the fall-back to the CIDR when no NAD names the pool. Also the evaluator the
// integration tests run the alerts with (test/support/promql.ts), on the cases the alerts rely on.

import { indexNads, nadRangesOf, noNads, poolCapacity, type PoolShape } from '../../../src/ops/capacity.ts';
import { parseIP } from '../../../src/ip/address.ts';
import { evaluate, parseExposition } from '../../support/promql.ts';

const nad = (
  namespace: string,
  name: string,
  ipam: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) => ({
  metadata: { namespace, name },
  spec: {
    config: JSON.stringify({
      cniVersion: '1.0.0',
      name: 'net',
      type: 'macvlan',
      ...extra,
      ipam: { type: 'whereabouts', ...ipam },
    }),
  },
});
const ip = (text: string): bigint => parseIP(text)?.value ?? -1n;
const pool = (name: string, range: string, addresses: string[], networkName = ''): PoolShape => ({
  name,
  range,
  networkName,
  addresses: addresses.map(ip),
});
const indexOf = (...nads: unknown[]) => indexNads(nads.flatMap(nadRangesOf));

test('range_start/range_end: a /16 narrowed to five addresses has five, and none free once they are taken', () => {
  const narrow = nad('apps', 'narrow', {
    range: '10.20.0.0/16',
    range_start: '10.20.3.1',
    range_end: '10.20.3.5',
  });
  const taken = ['10.20.3.1', '10.20.3.2', '10.20.3.3', '10.20.3.4', '10.20.3.5'];
  expect(poolCapacity(pool('10.20.0.0-16', '10.20.0.0/16', taken.slice(0, 2)), indexOf(narrow))).toEqual({
    capacity: 5n,
    free: 3n,
    follows: 'apps/narrow',
    nads: ['apps/narrow'],
  });
  expect(poolCapacity(pool('10.20.0.0-16', '10.20.0.0/16', taken), indexOf(narrow))).toMatchObject({
    capacity: 5n,
    free: 0n,
  });
  // The start-end form of `range` narrows alike.
  const dashed = nad('apps', 'dashed', { range: '10.20.3.1-10.20.3.5/16' });
  expect(poolCapacity(pool('10.20.0.0-16', '10.20.0.0/16', []), indexOf(dashed)).capacity).toBe(5n);
});

test('exclusions are not capacity; an entry in an excluded address (allocated before the exclusion) is not free either', () => {
  const excluded = nad('apps', 'ex', { range: '10.7.0.0/24', exclude: ['10.7.0.0/25', '10.7.0.200/32'] });
  // 254 usable, less 10.7.0.1–10.7.0.127 (127) and 10.7.0.200: 126.
  expect(
    poolCapacity(pool('10.7.0.0-24', '10.7.0.0/24', ['10.7.0.5', '10.7.0.130']), indexOf(excluded)),
  ).toEqual({
    capacity: 126n,
    free: 125n,
    follows: 'apps/ex',
    nads: ['apps/ex'],
  });
});

test("network_name is part of the pool name: a NAD names only its own network's pool", () => {
  const blue = nad('apps', 'blue', { range: '10.8.0.0/24', range_end: '10.8.0.10', network_name: 'blue' });
  const index = indexOf(blue);
  expect(poolCapacity(pool('blue-10.8.0.0-24', '10.8.0.0/24', [], 'blue'), index)).toMatchObject({
    capacity: 10n,
    follows: 'apps/blue',
  });
  expect(poolCapacity(pool('10.8.0.0-24', '10.8.0.0/24', []), index)).toEqual({
    capacity: 254n,
    free: 254n,
    nads: [],
  });
});

test('no NAD naming the pool (deleted, or its config does not load): the CIDR, and no NAD followed', () => {
  expect(poolCapacity(pool('10.9.0.0-28', '10.9.0.0/28', ['10.9.0.1']), noNads)).toEqual({
    capacity: 14n,
    free: 13n,
    nads: [],
  });
  const broken = { metadata: { namespace: 'apps', name: 'broken' }, spec: { config: '{"ipam": ' } };
  const invalid = nad('apps', 'invalid', { range: '10.9.0.0/28', range_start: '10.10.0.1' });
  expect(nadRangesOf(broken)).toEqual([]);
  expect(nadRangesOf(invalid)).toEqual([]);
  // A flat file named by the NAD is the node's, not the reader's: never read.
  expect(
    nadRangesOf(nad('apps', 'flat', { range: '10.9.0.0/28', configuration_path: '/etc/passwd' })),
  ).toHaveLength(1);
});

test('several NADs on one pool: the figures follow the one with the fewest free addresses', () => {
  // Same network and range in two namespaces: one pool. `wide` hands out 10.30.0.1–254, `narrow` .1–.5.
  const wide = nad('team-a', 'wide', { range: '10.30.0.0/24' });
  const narrow = nad('team-b', 'narrow', { range: '10.30.0.0/24', range_end: '10.30.0.5' });
  const index = indexOf(wide, narrow);
  const name = '10.30.0.0-24';
  // Nothing taken in .1–.5, much elsewhere: narrow still has 5 free, wide 244 — narrow runs out first.
  const elsewhere = Array.from({ length: 10 }, (_, i) => `10.30.0.${100 + i}`);
  expect(poolCapacity(pool(name, '10.30.0.0/24', elsewhere), index)).toEqual({
    capacity: 5n,
    free: 5n,
    follows: 'team-b/narrow',
    nads: ['team-a/wide', 'team-b/narrow'],
  });
  // .1–.5 all taken: narrow's pods fail although the pool has room.
  const full = ['10.30.0.1', '10.30.0.2', '10.30.0.3', '10.30.0.4', '10.30.0.5'];
  expect(poolCapacity(pool(name, '10.30.0.0/24', full), index)).toMatchObject({
    free: 0n,
    follows: 'team-b/narrow',
  });
  // Two NADs with the same narrowing: the figure is the same whichever; the name decides.
  const twin = nad('team-c', 'twin', { range: '10.30.0.0/24', range_end: '10.30.0.5' });
  expect(poolCapacity(pool(name, '10.30.0.0/24', []), indexOf(twin, narrow)).follows).toBe('team-b/narrow');
});

test("a node's slice pool: the range's part inside the slice, its narrowing and exclusions applied", () => {
  const sliced = nad('apps', 'fast', {
    range: '10.40.0.0/24',
    range_start: '10.40.0.10',
    exclude: ['10.40.0.70/31'],
    node_slice_size: '/26',
    network_name: 'fast',
  });
  const index = indexOf(sliced);
  // Inside the range a slice's own first and last addresses are ordinary ones (src/slices/layout.ts):
  // slice .0/26 gives .10–.63 (54), .64/26 .64–.127 less .70–.71 (62), .192/26 .192–.254 (63).
  expect(
    poolCapacity(pool('fast-node-a-10.40.0.0-26', '10.40.0.0/26', ['10.40.0.10'], 'fast'), index),
  ).toEqual({
    capacity: 54n,
    free: 53n,
    follows: 'apps/fast',
    nads: ['apps/fast'],
  });
  expect(poolCapacity(pool('fast-node-b-10.40.0.64-26', '10.40.0.64/26', [], 'fast'), index).capacity).toBe(
    62n,
  );
  expect(poolCapacity(pool('fast-node-c-10.40.0.192-26', '10.40.0.192/26', [], 'fast'), index).capacity).toBe(
    63n,
  );
  // A pool of another network with that slice's range is not this range's slice pool.
  expect(
    poolCapacity(pool('other-10.40.0.0-26', '10.40.0.0/26', [], 'other'), index).follows,
  ).toBeUndefined();
});

test('pick_addresses: a /16 with a pick list can hand out the listed addresses, less exclusions and the gateway', () => {
  const picked = nad('apps', 'picked', {
    range: '10.50.0.0/16',
    gateway: '10.50.0.1',
    exclude_gateway: true,
    exclude: ['10.50.0.9'],
    // The gateway, one excluded address, a /30 and an address named twice: 4 + 1 addresses to hand out.
    pick_addresses: ['10.50.0.1', '10.50.0.9', '10.50.1.0/30', '10.50.2.7', '10.50.1.2'],
  });
  expect(
    poolCapacity(
      pool('10.50.0.0-16', '10.50.0.0/16', ['10.50.1.1', '10.50.2.7', '10.50.3.3']),
      indexOf(picked),
    ),
  ).toEqual({ capacity: 5n, free: 3n, follows: 'apps/picked', nads: ['apps/picked'] });
  // Per range in ipRanges alike, and with node slices: each slice pool counts the entries inside it.
  const sliced = nad('apps', 'sliced', {
    ipRanges: [{ range: '10.51.0.0/24', pick_addresses: ['10.51.0.70', '10.51.0.5', '10.51.0.66'] }],
    node_slice_size: '/26',
  });
  const index = indexOf(sliced);
  expect(poolCapacity(pool('node-a-10.51.0.64-26', '10.51.0.64/26', ['10.51.0.66']), index)).toMatchObject({
    capacity: 2n,
    free: 1n,
  });
  expect(poolCapacity(pool('node-b-10.51.0.0-26', '10.51.0.0/26', []), index).capacity).toBe(1n);
  expect(poolCapacity(pool('node-c-10.51.0.128-26', '10.51.0.128/26', []), index).capacity).toBe(0n);
});

describe('the PromQL evaluator', () => {
  const samples = parseExposition(
    [
      '# HELP x help',
      'free{pool="a",namespace="n",node_slice_pool=""} 0',
      'free{pool="b",namespace="n",node_slice_pool=""} 3',
      'free{pool="c",namespace="n",node_slice_pool="s"} 0',
      'ratio{pool="a",namespace="n"} 1',
      'ratio{pool="b",namespace="n"} 0.95',
      'cap{pool="a",namespace="n"} 5',
      'cap{pool="b",namespace="n"} 20',
    ].join('\n'),
  );
  const pools = (expr: string) => evaluate(expr, samples).map((s) => [s.labels.pool, s.value]);

  test('selectors, aggregation by labels, and comparisons that filter', () => {
    expect(pools('min by (namespace, pool) (free{node_slice_pool=""}) == 0')).toEqual([['a', 0]]);
    expect(pools('max by (pool) (ratio) >= 0.9 < 1')).toEqual([['b', 0.95]]);
    expect(pools('sum by (namespace) (free{node_slice_pool!~"s"})')).toEqual([[undefined, 3]]);
  });

  test('vector against vector, matched on labels', () => {
    expect(pools('cap - on (pool) free')).toEqual([
      ['a', 5],
      ['b', 17],
    ]);
    expect(pools('ratio > bool 0.99')).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
    expect(pools('cap unless on (pool) free > 0')).toEqual([['a', 5]]);
  });

  test('refuses what it cannot evaluate rather than guessing', () => {
    expect(() => evaluate('rate(free[5m])', samples)).toThrow(/not supported/);
  });
});
