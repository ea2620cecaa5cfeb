// Allocation from node slices (`node_slice_size`) over real HTTP against the embedded API server: the
// node's slice pools in Whereabouts' names, extension when a node's slices are full, exhaustion, re-ADD
// and DEL across a node's slices, and many nodes allocating concurrently.

import type { Owner } from '../../src/allocator/allocation.ts';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { reconcile } from '../../src/controller/controller.ts';
import { formatIP, ipOf, parseIP, type IP } from '../../src/ip/address.ts';
import { cidrContains, formatCidr, parseCidr, type Cidr } from '../../src/ip/cidr.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release, type TransactionContext } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { divide, type SliceAllocation } from '../../src/slices/layout.ts';
import { openKubeApi } from '../../src/kube-api/open.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { poolsOf, reservationsOf, writeNad, writeNodeSlicePool, writePool } from '../support/pools.ts';

let cluster: TestCluster;
beforeEach(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  await cluster.close();
});

const context = (node: string, ms = 20_000): TransactionContext => ({
  store: cluster.store(),
  log: silentLogger,
  deadline: deadlineIn(ms),
  node,
  random: () => 0, // the lowest free address, so that tests can name it
});

async function add(config: IpamConfig, o: Owner, node: string): Promise<string[]> {
  const result = await allocate(config, o, context(node));
  if (!result.ok) throw new Error(`allocate failed: ${result.error.details}`);
  return result.value.map((a) => formatIP(ipOf(a.range.range.subnet.family, a.address)));
}

const del = async (config: IpamConfig, o: Owner, node: string): Promise<string[]> => {
  const result = await release(config, o, context(node));
  if (!result.ok) throw new Error(`release failed: ${result.error.details}`);
  return result.value.map((r) => formatIP(ipOf(r.family, r.address)));
};

const slices = (name: string): SliceAllocation[] =>
  (
    cluster.server.objects('nodeslicepools', 'whereabouts.cni.cncf.io').get(`kube-system/${name}`) as
      { status: { allocations: SliceAllocation[] } } | undefined
  )?.status.allocations ?? [];
const slicesOfNode = (name: string, node: string) =>
  slices(name)
    .filter((a) => a.nodeName === node)
    .map((a) => a.sliceRange);

/** A NodeSlicePool as Whereabouts' controller writes one — every slice listed — with these slices assigned. */
async function slicePool(name: string, range: string, size: string, assigned: Record<string, string> = {}) {
  const layout = divide(parseCidr(range) as Cidr, Number(size.slice(1)));
  if (!layout.ok) throw new Error(layout.error);
  await writeNodeSlicePool(
    cluster.connection(),
    name,
    { range, sliceSize: size },
    layout.value.map((c) => ({ nodeName: assigned[formatCidr(c)] ?? '', sliceRange: formatCidr(c) })),
  );
}

/** Every allocation in every pool, with its address: duplicates show up as repeats. */
function held(): { pool: string; address: string; podref: string }[] {
  return [...poolsOf(cluster.server)].flatMap(([pool, { range, allocations }]) => {
    const base = parseCidr(range) as Cidr;
    return Object.entries(allocations).map(([offset, e]) => ({
      pool,
      address: formatIP(ipOf(base.family, base.address + BigInt(offset))),
      podref: e.podref,
    }));
  });
}

const failure = async (config: IpamConfig, o: Owner, node: string) => {
  const result = await allocate(config, o, context(node));
  if (result.ok)
    throw new Error(`allocate succeeded: ${JSON.stringify(result.value.map((a) => String(a.address)))}`);
  return result.error;
};

describe('allocation from the node slices', () => {
  const fast = { name: 'fast' };

  test('the address comes from the slice the controller assigned, in the per-node pool Whereabouts names', async () => {
    const config = ipamConfig({ range: '10.8.0.0/16', node_slice_size: '/24' }, fast);
    await writeNad(
      cluster.connection(),
      'fast',
      JSON.stringify({
        name: 'fast',
        type: 'macvlan',
        ipam: { type: 'whereabouts', range: '10.8.0.0/16', node_slice_size: '/24' },
      }),
    );
    for (const name of ['node-a', 'node-b'])
      await cluster.connection().core.createNode({ body: { metadata: { name } } });
    const api = openKubeApi(cluster.kubeconfig, {});
    if (!api.ok) throw new Error(api.error.details);
    expect((await reconcile(api.value, 'kube-system', silentLogger)).errors).toEqual([]);

    const result = await allocate(config, owner('a'), context('node-a'));
    expect(
      result.ok && result.value.map((a) => [formatIP(ipOf(4, a.address)), a.range.range.subnet.prefix]),
    ).toEqual([
      ['10.8.0.1', 16], // the result keeps the range's mask
    ]);
    expect(await add(config, owner('b'), 'node-b')).toEqual(['10.8.1.0']);
    const pools = poolsOf(cluster.server);
    expect(pools.get('node-a-10.8.0.0-24')).toEqual({
      range: '10.8.0.0/24',
      allocations: { '1': { id: 'sandbox-a', podref: 'default/a', ifname: 'net1' } },
    });
    // Offsets count from the slice; 10.8.1.0 is an ordinary address of the /16.
    expect(pools.get('node-b-10.8.1.0-24')).toEqual({
      range: '10.8.1.0/24',
      allocations: { '0': { id: 'sandbox-b', podref: 'default/b', ifname: 'net1' } },
    });
    expect([...pools.keys()].sort()).toEqual(['node-a-10.8.0.0-24', 'node-b-10.8.1.0-24']);
    expect([...reservationsOf(cluster.server).keys()].sort()).toEqual(['10.8.0.1', '10.8.1.0']);

    expect(await del(config, owner('a'), 'node-a')).toEqual(['10.8.0.1']);
    expect(poolsOf(cluster.server).get('node-a-10.8.0.0-24')?.allocations).toEqual({});
    expect([...reservationsOf(cluster.server).keys()]).toEqual(['10.8.1.0']);
  });

  test('network_name names the NodeSlicePool and prefixes the per-node pools; range_start and exclude apply inside slices', async () => {
    const config = ipamConfig({
      range: '10.9.0.0/24',
      range_start: '10.9.0.5',
      exclude: ['10.9.0.6/31', '10.9.0.16/32'],
      node_slice_size: '/28',
      network_name: 'blue',
    });
    await slicePool('blue', '10.9.0.0/24', '/28', { '10.9.0.0/28': 'n1', '10.9.0.16/28': 'n2' });
    // n1's slice offers 10.9.0.5 and .8–.15: nine addresses.
    const offered = ['5', '8', '9', '10', '11', '12', '13', '14', '15'].map((n) => `10.9.0.${n}`);
    const got = await Promise.all(offered.map((_, i) => add(config, owner(`p${i}`), 'n1')));
    expect(got.flat().sort()).toEqual([...offered].sort());
    expect(await add(config, owner('d'), 'n2')).toEqual(['10.9.0.17']); // .16 is excluded
    // n1 is full: it takes the lowest free slice itself.
    expect(await add(config, owner('e'), 'n1')).toEqual(['10.9.0.32']);
    expect(slicesOfNode('blue', 'n1')).toEqual(['10.9.0.0/28', '10.9.0.32/28']);
    expect([...poolsOf(cluster.server).keys()].sort()).toEqual([
      'blue-n1-10.9.0.0-28',
      'blue-n1-10.9.0.32-28',
      'blue-n2-10.9.0.16-28',
    ]);
    expect([...reservationsOf(cluster.server).keys()]).toContain('blue-10.9.0.32');
  });

  test('a node without a slice takes the lowest free one; without a NodeSlicePool ADD fails with code 11 and writes nothing', async () => {
    const config = ipamConfig({ range: '10.10.0.0/24', node_slice_size: '/26' }, fast);
    const missing = await failure(config, owner('a'), 'n1');
    expect(missing.code).toBe(11);
    expect(missing.details).toMatch(
      /NodeSlicePool kube-system\/fast does not exist.*controller.*is it running/,
    );
    expect(cluster.server.stats.writes).toBe(0);
    expect(await del(config, owner('a'), 'n1')).toEqual([]); // DEL: nothing held, nothing written
    expect(cluster.server.stats.writes).toBe(0);

    await slicePool('fast', '10.10.0.0/24', '/26', { '10.10.0.0/26': 'n0' });
    expect(await add(config, owner('a'), 'n1')).toEqual(['10.10.0.64']);
    expect(slicesOfNode('fast', 'n1')).toEqual(['10.10.0.64/26']);
  });
});

describe('extension and exhaustion', () => {
  // 10.12.0.0/28 in /30 slices: .1–.3, .4–.7, .8–.11, .12–.14.
  const config = ipamConfig({ range: '10.12.0.0/28', node_slice_size: '/30' }, { name: 'tiny' });
  beforeEach(async () => {
    await slicePool('tiny', '10.12.0.0/28', '/30', { '10.12.0.0/30': 'n1', '10.12.0.8/30': 'n2' });
  });

  test('a full node takes the next free slice; when none is free, code 11 names the range and nothing is written', async () => {
    for (let i = 0; i < 3; i++) await add(config, owner(`a${i}`), 'n1');
    expect(await add(config, owner('a3'), 'n1')).toEqual(['10.12.0.4']);
    expect(slicesOfNode('tiny', 'n1')).toEqual(['10.12.0.0/30', '10.12.0.4/30']);
    for (let i = 4; i < 7; i++) await add(config, owner(`a${i}`), 'n1');
    expect(await add(config, owner('b0'), 'n2')).toEqual(['10.12.0.8']);
    // n2 is not full, but n3 takes the last slice; then n1 finds none.
    expect(await add(config, owner('c0'), 'n3')).toEqual(['10.12.0.12']);
    const writes = cluster.server.stats.writes;
    const full = await failure(config, owner('a7'), 'n1');
    expect(full.code).toBe(11);
    expect(full.details).toMatch(
      /no free address for node n1 in 10\.12\.0\.0\/28: its slices \(10\.12\.0\.0\/30, 10\.12\.0\.4\/30\) are full and every slice of NodeSlicePool kube-system\/tiny is assigned/,
    );
    expect(cluster.server.stats.writes).toBe(writes);
    expect(held()).toHaveLength(9);
    expect(reservationsOf(cluster.server).size).toBe(9);
    // A freed address is found again in the first slice.
    expect(await del(config, owner('a1'), 'n1')).toEqual(['10.12.0.2']);
    expect(await add(config, owner('a7'), 'n1')).toEqual(['10.12.0.2']);
  });

  test('re-ADD gets the address held in the second slice, not a new one in the first; DEL finds it there', async () => {
    for (let i = 0; i < 3; i++) await add(config, owner(`a${i}`), 'n1');
    expect(await add(config, owner('x'), 'n1')).toEqual(['10.12.0.4']);
    await del(config, owner('a0'), 'n1'); // room in the first slice again
    expect(await add(config, owner('x', 'net1', 'new-sandbox'), 'n1')).toEqual(['10.12.0.4']);
    expect(held().filter((h) => h.podref === 'default/x')).toEqual([
      { pool: 'n1-10.12.0.4-30', address: '10.12.0.4', podref: 'default/x' },
    ]);
    expect(await del(config, owner('x', 'net1', 'new-sandbox'), 'n1')).toEqual(['10.12.0.4']);
    expect(
      held()
        .map((h) => h.podref)
        .sort(),
    ).toEqual(['default/a1', 'default/a2']);
    expect([...reservationsOf(cluster.server).keys()].sort()).toEqual(['10.12.0.2', '10.12.0.3']);
  });

  test('a requested address is claimed in the node slice holding it, and refused outside the node slices', async () => {
    const asking = (ip: string) =>
      ipamConfig(
        { range: '10.12.0.0/28', node_slice_size: '/30' },
        { name: 'tiny', runtimeConfig: { ips: [`${ip}/28`] } },
      );
    expect(await add(asking('10.12.0.3'), owner('r'), 'n1')).toEqual(['10.12.0.3']);
    const elsewhere = await failure(asking('10.12.0.9'), owner('s'), 'n1');
    expect(elsewhere.code).toBe(7);
    expect(elsewhere.details).toContain(
      'requested address 10.12.0.9 is not in a slice of node n1 (n1-10.12.0.0-30)',
    );
  });
});

test('dual-stack: each range has its own NodeSlicePool and the node gets an address from a slice of each', async () => {
  await writeNad(
    cluster.connection(),
    'dual',
    JSON.stringify({
      name: 'dual',
      type: 'macvlan',
      ipam: {
        type: 'whereabouts',
        ipRanges: [{ range: '10.13.0.0/24' }, { range: '2001:db8::/120' }],
        node_slice_size: '/26',
      },
    }),
  );
  await cluster.connection().core.createNode({ body: { metadata: { name: 'n1' } } });
  const api = openKubeApi(cluster.kubeconfig, {});
  if (!api.ok) throw new Error(api.error.details);
  expect((await reconcile(api.value, 'kube-system', silentLogger)).errors).toEqual([]);
  const config = ipamConfig(
    { ipRanges: [{ range: '10.13.0.0/24' }, { range: '2001:db8::/120' }], node_slice_size: '/26' },
    { name: 'dual' },
  );
  expect(await add(config, owner('a'), 'n1')).toEqual(['10.13.0.1', '2001:db8::1']);
  expect([...poolsOf(cluster.server).keys()].sort()).toEqual(['n1-10.13.0.0-26', 'n1-2001-db8---122']);
  expect(slicesOfNode('dual-2001-db8---120', 'n1')).toEqual(['2001:db8::/122']);
  expect(await del(config, owner('a'), 'n1')).toEqual(['10.13.0.1', '2001:db8::1']);
});

test("Whereabouts' own per-node pool is respected: its entries are skipped, a re-ADD of its pod returns its address", async () => {
  await slicePool('fast', '10.14.0.0/16', '/24', { '10.14.0.0/24': 'n1' });
  await writePool(cluster.connection(), 'n1-10.14.0.0-24', '10.14.0.0/24', {
    '1': { id: 'c1', podref: 'ns/old-1', ifname: 'net1' },
    '2': { id: 'c2', podref: 'ns/old-2', ifname: 'net1' },
  });
  const config = ipamConfig({ range: '10.14.0.0/16', node_slice_size: '24' }, { name: 'fast' });
  expect(await add(config, owner('new'), 'n1')).toEqual(['10.14.0.3']);
  expect(await add(config, { containerId: 'c9', podRef: 'ns/old-2', ifName: 'net1' }, 'n1')).toEqual([
    '10.14.0.2',
  ]);
});

test.each([1, 2, 3])(
  'round %i: 6 nodes × 12 pods race for /29 slices while the controller reconciles: no duplicate, every address in a slice of its node, all released',
  async () => {
    const range = '10.20.0.0/24';
    const nodes = Array.from({ length: 6 }, (_, i) => `node-${i}`);
    await writeNad(
      cluster.connection(),
      'race',
      JSON.stringify({
        name: 'race',
        type: 'macvlan',
        ipam: { type: 'whereabouts', range, node_slice_size: '/29' },
      }),
    );
    // Half the nodes exist (and get a slice) before the burst; the others join during it, so the controller
    // assigns them slices while their pods take slices themselves.
    const createNode = (name: string) =>
      cluster.connection().core.createNode({ body: { metadata: { name } } });
    for (const name of nodes.slice(0, 3)) await createNode(name);
    const api = openKubeApi(cluster.kubeconfig, {});
    if (!api.ok) throw new Error(api.error.details);
    await reconcile(api.value, 'kube-system', silentLogger);
    const config = ipamConfig({ range, node_slice_size: '/29' }, { name: 'race' });
    const spread: TransactionContext = { ...context(''), random: Math.random };
    const race = { on: true };
    const controller = (async () => {
      for (const name of nodes.slice(3)) await createNode(name);
      while (race.on) await reconcile(api.value, 'kube-system', silentLogger);
    })();
    const jobs = nodes.flatMap((node) =>
      Array.from({ length: 12 }, (_, i) => ({ node, pod: owner(`${node}-${i}`) })),
    );
    const results = await Promise.all(jobs.map((j) => allocate(config, j.pod, { ...spread, node: j.node })));
    race.on = false;
    await controller;
    expect(results.filter((r) => !r.ok)).toEqual([]);

    const all = held();
    expect(all).toHaveLength(72);
    expect(new Set(all.map((h) => h.address)).size).toBe(72);
    const assigned = slices('race');
    expect(new Set(assigned.map((a) => a.sliceRange)).size).toBe(assigned.length); // one entry per slice
    for (const h of all) {
      const node = nodes.find((n) => h.pool.startsWith(`${n}-`)) as string;
      expect(h.podref.startsWith(`default/${node}-`)).toBe(true);
      const slice = assigned.find(
        (a) => h.pool === `${node}-${a.sliceRange.replace(/[./]/g, (c) => (c === '/' ? '-' : c))}`,
      );
      expect(slice?.nodeName).toBe(node);
      expect(cidrContains(parseCidr(slice?.sliceRange ?? '') as Cidr, parseIP(h.address) as IP)).toBe(true);
    }
    expect(new Set(reservationsOf(cluster.server).keys())).toEqual(new Set(all.map((h) => h.address)));

    const released = await Promise.all(jobs.map((j) => release(config, j.pod, { ...spread, node: j.node })));
    expect(released.filter((r) => !r.ok)).toEqual([]);
    expect(held()).toEqual([]);
    expect(reservationsOf(cluster.server).size).toBe(0);
  },
);
