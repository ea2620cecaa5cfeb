// The node-slice controller against the embedded API server: NodeSlicePools as Whereabouts writes them,
// nodes joining and leaving, slices running out, and two replicas that never give one slice to two nodes.

import { reconcile, runController, slicedRanges } from '../../src/controller/controller.ts';
import { holdLease } from '../../src/controller/lease.ts';
import { silentLogger } from '../../src/log.ts';
import { openKubeApi } from '../../src/store/open.ts';
import type { SliceAllocation } from '../../src/slices/layout.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { writeNad, writeNodeSlicePool, writePool } from '../support/pools.ts';

let cluster: TestCluster;
beforeEach(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  await cluster.close();
});

const sliced = (range: string, size: string, extra: object = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'fast',
    type: 'macvlan',
    ipam: { type: 'whereabouts', range, node_slice_size: size, ...extra },
  });

const nad = (name: string, config: string) => writeNad(cluster.connection(), name, config);
const node = (name: string) => cluster.connection().core.createNode({ body: { metadata: { name } } });
const dropNode = (name: string) => cluster.connection().core.deleteNode({ name });
const slicePool = (name: string) =>
  cluster.server.objects('nodeslicepools', 'whereabouts.cni.cncf.io').get(`kube-system/${name}`) as
    { spec: { range: string; sliceSize: string }; status: { allocations: SliceAllocation[] } } | undefined;
const owners = (name: string) => slicePool(name)?.status.allocations.map((a) => a.nodeName) ?? [];
const api = () => cluster.connection();

test('slicedRanges: every ipRanges entry, IPv4 and IPv6; named after network_name, else the CNI name', () => {
  expect(
    slicedRanges(sliced('10.0.0.0/24', '/26', { ipRanges: [{ range: '2001:db8::/64' }] })).map((s) => [
      s.pool,
      s.sliceSize,
    ]),
  ).toEqual([
    ['fast', '/26'],
    ['fast-2001-db8---64', '/66'],
  ]);
  expect(slicedRanges(sliced('10.0.0.0/24', '/26', { network_name: 'blue' }))[0]?.pool).toBe('blue');
  expect(slicedRanges(JSON.stringify({ name: 'x', type: 'macvlan', ipam: { type: 'host-local' } }))).toEqual(
    [],
  );
});

test('assigns a slice to every node, in Whereabouts format; joins take a free slice, leaves free theirs', async () => {
  await nad('fast', sliced('10.0.0.0/24', '/26'));
  for (const n of ['node-a', 'node-b']) await node(n);
  expect((await reconcile(api(), 'kube-system', silentLogger)).errors).toEqual([]);
  expect(slicePool('fast')).toMatchObject({
    spec: { range: '10.0.0.0/24', sliceSize: '/26' },
    status: {
      allocations: [
        { nodeName: 'node-a', sliceRange: '10.0.0.0/26' },
        { nodeName: 'node-b', sliceRange: '10.0.0.64/26' },
        { nodeName: '', sliceRange: '10.0.0.128/26' },
        { nodeName: '', sliceRange: '10.0.0.192/26' },
      ],
    },
  });
  await dropNode('node-a');
  await node('node-c');
  await reconcile(api(), 'kube-system', silentLogger);
  expect(owners('fast')).toEqual(['node-c', 'node-b', '', '']);
});

test("a NodeSlicePool Whereabouts' controller wrote is taken over as it is: no node loses its slice", async () => {
  await nad('fast', sliced('10.0.0.0/24', '26'));
  for (const n of ['node-a', 'node-b']) await node(n);
  await writeNodeSlicePool(api(), 'fast', { range: '10.0.0.0/24', sliceSize: '26' }, [
    { nodeName: '', sliceRange: '10.0.0.0/26' },
    { nodeName: 'node-b', sliceRange: '10.0.0.64/26' },
    { nodeName: 'gone', sliceRange: '10.0.0.128/26' },
    { nodeName: '', sliceRange: '10.0.0.192/26' },
  ]);
  expect((await reconcile(api(), 'kube-system', silentLogger)).errors).toEqual([]);
  expect(slicePool('fast')?.spec.sliceSize).toBe('26');
  expect(owners('fast')).toEqual(['node-a', 'node-b', '', '']);
});

test('when slices run out, the node without one is reported and gets a Warning event, nothing crashes', async () => {
  await nad('fast', sliced('10.0.0.0/24', '/25'));
  for (const n of ['node-a', 'node-b', 'node-c']) await node(n);
  const report = await reconcile(api(), 'kube-system', silentLogger);
  expect(report.unassigned).toEqual(['fast: node-c']);
  expect(owners('fast')).toEqual(['node-a', 'node-b']);
  const events = [...cluster.server.objects('events').values()] as {
    reason: string;
    involvedObject: { name: string };
  }[];
  expect(events.map((e) => [e.reason, e.involvedObject.name])).toEqual([['NoFreeNodeSlice', 'node-c']]);
  await dropNode('node-a');
  await reconcile(api(), 'kube-system', silentLogger);
  expect(owners('fast')).toEqual(['node-c', 'node-b']);
});

test("a departed node's slice stays while its IPPool holds addresses, and is freed once it has been empty for the drain period", async () => {
  await nad('fast', sliced('10.0.0.0/24', '/26'));
  for (const n of ['node-a', 'node-b']) await node(n);
  let t = Date.now();
  const drain = { periodMs: 60_000, emptySince: new Map<string, number>(), now: () => t };
  await reconcile(api(), 'kube-system', silentLogger, drain);
  // A pod of node-a still holds an address of its slice when the Node object goes.
  await writePool(api(), 'node-a-10.0.0.0-26', '10.0.0.0/26', {
    '5': { id: 'c1', podref: 'default/p1', ifname: 'net1' },
  });
  await dropNode('node-a');
  await node('node-c');
  const report = await reconcile(api(), 'kube-system', silentLogger, drain);
  expect(report.retained).toEqual(['fast: 10.0.0.0/26 (node-a, 1 addresses in node-a-10.0.0.0-26)']);
  expect(owners('fast')).toEqual(['node-a', 'node-b', 'node-c', '']);
  t += 3_600_000;
  await reconcile(api(), 'kube-system', silentLogger, drain);
  expect(owners('fast')[0]).toBe('node-a');
  // Released (here: the pool removed): kept for the drain period after it is first seen empty, then freed.
  await api().custom.deleteNamespacedCustomObject({
    group: 'whereabouts.cni.cncf.io',
    version: 'v1alpha1',
    namespace: 'kube-system',
    plural: 'ippools',
    name: 'node-a-10.0.0.0-26',
  });
  await reconcile(api(), 'kube-system', silentLogger, drain);
  t += 59_000;
  await reconcile(api(), 'kube-system', silentLogger, drain);
  expect(owners('fast')[0]).toBe('node-a');
  t += 2_000;
  expect((await reconcile(api(), 'kube-system', silentLogger, drain)).retained).toEqual([]);
  expect(owners('fast')).toEqual(['', 'node-b', 'node-c', '']);
});

test('one lease holder at a time; the other takes over when the holder stops renewing', async () => {
  const options = (identity: string, now: () => number) => ({
    namespace: 'kube-system',
    name: 'whereabouts-ts-controller',
    identity,
    leaseSeconds: 10,
    now,
  });
  let t = Date.now();
  const clock = () => t;
  expect(await holdLease(api(), options('a', clock))).toBe(true);
  expect(await holdLease(api(), options('b', clock))).toBe(false);
  t += 5_000;
  expect(await holdLease(api(), options('a', clock))).toBe(true); // renewed
  t += 9_000;
  expect(await holdLease(api(), options('b', clock))).toBe(false); // a renewed 9 s ago
  t += 2_000;
  expect(await holdLease(api(), options('b', clock))).toBe(true); // 11 s: expired
  expect(await holdLease(api(), options('a', clock))).toBe(false);
  // Racing for a free lease: exactly one wins.
  t += 20_000;
  const race = await Promise.all(['c', 'd', 'e'].map((id) => holdLease(api(), options(id, clock))));
  expect(race.filter(Boolean)).toHaveLength(1);
});

test('two replicas, even both reconciling at once, never assign one slice to two nodes or lose a live node its slice', async () => {
  await nad('fast', sliced('10.0.0.0/22', '/26')); // 16 slices
  // One replica on the lean HTTP client (what the command uses), one on client-node (exec kubeconfigs).
  const lean = openKubeApi(cluster.kubeconfig, {});
  if (!lean.ok) throw new Error(lean.error.details);
  const replicas = [lean.value, api()].map((client, i) =>
    runController({
      api: client,
      namespace: 'kube-system',
      identity: `r${i}`,
      log: silentLogger,
      intervalMs: 20,
      drainMs: 0,
      leaseSeconds: 1,
    }),
  );
  try {
    const live = new Set<string>();
    const seen = new Map<string, string>(); // node → its first slice while it lives
    for (let round = 0; round < 30; round++) {
      const name = `node-${round % 12}`;
      if (live.has(name) && round % 3 === 0) {
        await dropNode(name);
        live.delete(name);
        seen.delete(name);
      } else if (!live.has(name)) {
        await node(name);
        live.add(name);
      }
      // Besides the leader's passes, both replicas reconcile at once, as two leaders would after a split.
      await Promise.all([
        reconcile(api(), 'kube-system', silentLogger),
        reconcile(api(), 'kube-system', silentLogger),
      ]);
      const allocations = slicePool('fast')?.status.allocations ?? [];
      expect(new Set(allocations.map((a) => a.sliceRange)).size).toBe(16);
      for (const a of allocations) if (a.nodeName !== '') expect(live.has(a.nodeName)).toBe(true);
      for (const [n, slice] of seen)
        expect(allocations.find((a) => a.sliceRange === slice)?.nodeName).toBe(n);
      for (const n of live) {
        const mine = allocations.filter((a) => a.nodeName === n);
        expect(mine.length).toBeGreaterThanOrEqual(1);
        if (!seen.has(n)) seen.set(n, mine[0]?.sliceRange ?? '');
      }
    }
    expect(replicas.filter((r) => r.isLeader()).length).toBeLessThanOrEqual(1);
    // The leader stops: the other takes over within the lease.
    const leader = replicas.find((r) => r.isLeader());
    await leader?.stop();
    const other = replicas.find((r) => r !== leader);
    const deadline = Date.now() + 3_000;
    while (other?.isLeader() !== true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(other?.isLeader()).toBe(true);
  } finally {
    // Stopped whatever happened: their timers would keep the test process alive.
    await Promise.all(replicas.map((r) => r.stop()));
  }
});
