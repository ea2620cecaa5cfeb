// The node-slice controller against the embedded API server and a real kube-apiserver: NodeSlicePools as
// Whereabouts writes them, nodes joining and leaving, slices running out, two replicas that never give one
// slice to two nodes, and the Lease holder carrying on after the API server restarted.

import { reconcile, runController, slicedRanges } from '../../src/controller/controller.ts';
import { holdLease, newObservation, type LeaseObservation } from '../../src/controller/lease.ts';
import { silentLogger } from '../../src/log.ts';
import { httpConnection } from '../../src/kube-api/http-api.ts';
import { loadCredentials } from '../../src/kube-api/kubeconfig.ts';
import type { SliceAllocation } from '../../src/slices/layout.ts';
import type { ControlPlane } from '../../kube/control-plane.ts';
import { emptyNamespace, onRealServer, realCluster, startCluster, type Cluster } from '../support/cluster.ts';
import { writeNad, writeNodeSlicePool, writePool } from '../support/pools.ts';
import { until, whenServed } from '../support/wait.ts';

const sliced = (range: string, size: string, extra: object = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'fast',
    type: 'macvlan',
    ipam: { type: 'whereabouts', range, node_slice_size: size, ...extra },
  });

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

function suite(start: () => Promise<Cluster>, kind: Cluster['kind'], plane?: () => ControlPlane): void {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await start();
  });
  afterEach(async () => {
    await emptyNamespace(cluster);
    // Nodes are cluster-scoped: the real control plane's outlive the test unless removed.
    if (kind === 'real') await cluster.connection().core.deleteCollectionNode();
    await cluster.close();
  });

  const namespace = () => cluster.namespace;
  const nad = (name: string, config: string) => writeNad(cluster.connection(), name, config, namespace());
  const node = (name: string) => cluster.connection().core.createNode({ body: { metadata: { name } } });
  const dropNode = (name: string) => cluster.connection().core.deleteNode({ name });
  const slicePool = async (name: string) =>
    (await cluster.objects('nodeslicepools', 'whereabouts.cni.cncf.io')).get(name) as
      { spec: { range: string; sliceSize: string }; status: { allocations: SliceAllocation[] } } | undefined;
  const owners = async (name: string) =>
    (await slicePool(name))?.status.allocations.map((a) => a.nodeName) ?? [];
  const api = () => cluster.connection();
  /** The lean connection the command runs on (src/cli/main.ts), client-node's only for what it lacks. */
  const leanConnection = () => {
    const credentials = loadCredentials(cluster.kubeconfig, {});
    if (!credentials.ok) throw new Error(credentials.error.details);
    return {
      ok: true as const,
      value: httpConnection(credentials.value, { full: () => Promise.resolve(api()) }),
    };
  };

  test('assigns a slice to every node, in Whereabouts format; joins take a free slice, leaves free theirs', async () => {
    await nad('fast', sliced('10.0.0.0/24', '/26'));
    for (const n of ['node-a', 'node-b']) await node(n);
    expect((await reconcile(api(), namespace(), silentLogger)).errors).toEqual([]);
    expect(await slicePool('fast')).toMatchObject({
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
    await reconcile(api(), namespace(), silentLogger);
    expect(await owners('fast')).toEqual(['node-c', 'node-b', '', '']);
  });

  test("a NodeSlicePool Whereabouts' controller wrote is taken over as it is: no node loses its slice", async () => {
    await nad('fast', sliced('10.0.0.0/24', '26'));
    for (const n of ['node-a', 'node-b']) await node(n);
    await writeNodeSlicePool(
      api(),
      'fast',
      { range: '10.0.0.0/24', sliceSize: '26' },
      [
        { nodeName: '', sliceRange: '10.0.0.0/26' },
        { nodeName: 'node-b', sliceRange: '10.0.0.64/26' },
        { nodeName: 'gone', sliceRange: '10.0.0.128/26' },
        { nodeName: '', sliceRange: '10.0.0.192/26' },
      ],
      namespace(),
    );
    expect((await reconcile(api(), namespace(), silentLogger)).errors).toEqual([]);
    expect((await slicePool('fast'))?.spec.sliceSize).toBe('26');
    expect(await owners('fast')).toEqual(['node-a', 'node-b', '', '']);
  });

  test('when slices run out, the node without one is reported and gets a Warning event, nothing crashes', async () => {
    await nad('fast', sliced('10.0.0.0/24', '/25'));
    for (const n of ['node-a', 'node-b', 'node-c']) await node(n);
    const report = await reconcile(api(), namespace(), silentLogger);
    expect(report.errors).toEqual([]);
    expect(report.unassigned).toEqual(['fast: node-c']);
    expect(await owners('fast')).toEqual(['node-a', 'node-b']);
    // Events about a Node live in kube-system or default only (kube-apiserver refuses them elsewhere).
    const events = (
      await api().core.listNamespacedEvent({
        namespace: namespace() === 'kube-system' ? 'kube-system' : 'default',
      })
    ).items.filter((e) => e.involvedObject.kind === 'Node');
    expect(events.map((e) => [e.reason, e.involvedObject.name])).toEqual([['NoFreeNodeSlice', 'node-c']]);
    await dropNode('node-a');
    await reconcile(api(), namespace(), silentLogger);
    expect(await owners('fast')).toEqual(['node-c', 'node-b']);
  });

  test("a departed node's slice stays while its IPPool holds addresses, and is freed once it has been empty for the drain period", async () => {
    await nad('fast', sliced('10.0.0.0/24', '/26'));
    for (const n of ['node-a', 'node-b']) await node(n);
    let t = Date.now();
    const drain = { periodMs: 60_000, emptySince: new Map<string, number>(), now: () => t };
    await reconcile(api(), namespace(), silentLogger, drain);
    // A pod of node-a still holds an address of its slice when the Node object goes.
    await writePool(
      api(),
      'node-a-10.0.0.0-26',
      '10.0.0.0/26',
      { '5': { id: 'c1', podref: 'default/p1', ifname: 'net1' } },
      namespace(),
    );
    await dropNode('node-a');
    await node('node-c');
    const report = await reconcile(api(), namespace(), silentLogger, drain);
    expect(report.retained).toEqual(['fast: 10.0.0.0/26 (node-a, 1 addresses in node-a-10.0.0.0-26)']);
    expect(await owners('fast')).toEqual(['node-a', 'node-b', 'node-c', '']);
    t += 3_600_000;
    await reconcile(api(), namespace(), silentLogger, drain);
    expect((await owners('fast'))[0]).toBe('node-a');
    // Released (here: the pool removed): kept for the drain period after it is first seen empty, then freed.
    await api().custom.deleteNamespacedCustomObject({
      group: 'whereabouts.cni.cncf.io',
      version: 'v1alpha1',
      namespace: namespace(),
      plural: 'ippools',
      name: 'node-a-10.0.0.0-26',
    });
    await reconcile(api(), namespace(), silentLogger, drain);
    t += 59_000;
    await reconcile(api(), namespace(), silentLogger, drain);
    expect((await owners('fast'))[0]).toBe('node-a');
    t += 2_000;
    expect((await reconcile(api(), namespace(), silentLogger, drain)).retained).toEqual([]);
    expect(await owners('fast')).toEqual(['', 'node-b', 'node-c', '']);
  });

  const replaceNad = async (name: string, config: string) => {
    await api().custom.deleteNamespacedCustomObject({
      group: 'k8s.cni.cncf.io',
      version: 'v1',
      namespace: namespace(),
      plural: 'network-attachment-definitions',
      name,
    });
    await nad(name, config);
  };
  const poolEvents = async () =>
    (await api().core.listNamespacedEvent({ namespace: namespace() })).items
      .filter((e) => e.involvedObject.kind === 'NodeSlicePool')
      .map((e) => ({
        reason: e.reason,
        type: e.type,
        pool: e.involvedObject.name,
        message: e.message ?? '',
      }));

  test('a changed range or slice size is a migration: the old layout stays until its slice pools are drained, then the new one is assigned', async () => {
    await nad('fast', sliced('10.0.0.0/24', '/26'));
    for (const n of ['node-a', 'node-b']) await node(n);
    let t = Date.now();
    const drain = { periodMs: 60_000, emptySince: new Map<string, number>(), now: () => t };
    await reconcile(api(), namespace(), silentLogger, drain);
    // A pod of node-a holds an address of its old slice when the slice size changes.
    await writePool(
      api(),
      'node-a-10.0.0.0-26',
      '10.0.0.0/26',
      { '5': { id: 'c1', podref: 'default/p1', ifname: 'net1' } },
      namespace(),
    );
    await replaceNad('fast', sliced('10.0.0.0/24', '/27'));
    const report = await reconcile(api(), namespace(), silentLogger, drain);
    expect(report.errors).toEqual([]);
    expect(report.pending).toEqual([
      'fast: layout change from 10.0.0.0/24 in /26 to 10.0.0.0/24 in /27 pending: the old slice pools hold 1 addresses',
    ]);
    expect(await slicePool('fast')).toMatchObject({
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
    expect(await poolEvents()).toEqual([
      expect.objectContaining({ reason: 'NodeSliceLayoutChangePending', type: 'Warning', pool: 'fast' }),
    ]);
    // Released: the old layout is kept for the drain period after its pools are first seen empty.
    await api().custom.deleteNamespacedCustomObject({
      group: 'whereabouts.cni.cncf.io',
      version: 'v1alpha1',
      namespace: namespace(),
      plural: 'ippools',
      name: 'node-a-10.0.0.0-26',
    });
    await reconcile(api(), namespace(), silentLogger, drain);
    t += 59_000;
    await reconcile(api(), namespace(), silentLogger, drain);
    expect((await slicePool('fast'))?.spec.sliceSize).toBe('/26');
    t += 2_000;
    expect((await reconcile(api(), namespace(), silentLogger, drain)).errors).toEqual([]);
    const switched = await slicePool('fast');
    expect(switched?.spec).toEqual({ range: '10.0.0.0/24', sliceSize: '/27' });
    expect(switched?.status.allocations[0]).toEqual({ nodeName: 'node-a', sliceRange: '10.0.0.0/27' });
    expect(await owners('fast')).toEqual(['node-a', 'node-b', '', '', '', '', '', '']);
  });

  test('NADs claiming one network name with different layouts: neither wins, the existing layout stays, a Warning names both', async () => {
    const shared = (range: string, size: string) => sliced(range, size, { network_name: 'shared' });
    await nad('a', shared('10.0.0.0/24', '/26'));
    // The same layout under another NAD is no conflict.
    await nad('c', shared('10.0.0.0/24', '26'));
    await node('node-a');
    expect((await reconcile(api(), namespace(), silentLogger)).errors).toEqual([]);
    expect(await owners('shared')).toEqual(['node-a', '', '', '']);
    await nad('b', shared('10.0.0.0/24', '/27'));
    const report = await reconcile(api(), namespace(), silentLogger);
    const ns = namespace();
    expect(report.errors).toEqual([
      `shared: NADs claim this network with different layouts, none is applied: ${ns}/a (10.0.0.0/24 in /26), ${ns}/b (10.0.0.0/24 in /27), ${ns}/c (10.0.0.0/24 in /26)`,
    ]);
    expect(await slicePool('shared')).toMatchObject({ spec: { range: '10.0.0.0/24', sliceSize: '/26' } });
    expect(await owners('shared')).toEqual(['node-a', '', '', '']);
    const events = await poolEvents();
    expect(events).toEqual([
      expect.objectContaining({ reason: 'NodeSliceLayoutConflict', type: 'Warning', pool: 'shared' }),
    ]);
    expect(events[0]?.message).toContain(`${ns}/a`);
    expect(events[0]?.message).toContain(`${ns}/b`);
    // A conflict over a network that has no NodeSlicePool yet creates none.
    await nad('x', sliced('10.9.0.0/24', '/26', { network_name: 'other' }));
    await nad('y', sliced('10.8.0.0/24', '/26', { network_name: 'other' }));
    await reconcile(api(), namespace(), silentLogger);
    expect(await slicePool('other')).toBeUndefined();
  });

  test('one lease holder at a time; the other takes over when the holder stops renewing', async () => {
    const seen = new Map<string, LeaseObservation>();
    const options = (identity: string, now: () => number) => {
      if (!seen.has(identity)) seen.set(identity, newObservation());
      return {
        namespace: namespace(),
        name: 'whereabouts-ts-controller',
        identity,
        leaseSeconds: 10,
        observed: seen.get(identity)!,
        now,
      };
    };
    let t = Date.now();
    const clock = () => t;
    expect(await holdLease(api(), options('a', clock))).toBe(true);
    expect(await holdLease(api(), options('b', clock))).toBe(false);
    t += 5_000;
    expect(await holdLease(api(), options('a', clock))).toBe(true); // renewed
    t += 9_000;
    expect(await holdLease(api(), options('b', clock))).toBe(false); // b first sees this renewal now
    t += 9_000;
    expect(await holdLease(api(), options('b', clock))).toBe(false); // unchanged for 9 s
    t += 2_000;
    expect(await holdLease(api(), options('b', clock))).toBe(true); // unchanged for 11 s: expired
    expect(await holdLease(api(), options('a', clock))).toBe(false);
    // Racing for a lease b stopped renewing: each newcomer first watches it unchanged for the lease
    // duration, then exactly one wins.
    for (const id of ['c', 'd', 'e']) expect(await holdLease(api(), options(id, clock))).toBe(false);
    t += 11_000;
    const race = await Promise.all(['c', 'd', 'e'].map((id) => holdLease(api(), options(id, clock))));
    expect(race.filter(Boolean)).toHaveLength(1);
  });

  test('a holder whose clock is an hour behind keeps the lease: nobody compares its renewTime with their clock', async () => {
    const behind = { observed: newObservation(), now: () => Date.now() - 3_600_000 };
    const onTime = { observed: newObservation(), now: () => Date.now() };
    const lease = (identity: string, o: typeof behind) => ({
      namespace: namespace(),
      name: 'whereabouts-ts-skew',
      identity,
      leaseSeconds: 10,
      ...o,
    });
    expect(await holdLease(api(), lease('slow', behind))).toBe(true);
    // Its renewTime is an hour old by the other replica's clock, yet it was just written: not expired.
    expect(await holdLease(api(), lease('fast', onTime))).toBe(false);
    expect(await holdLease(api(), lease('slow', behind))).toBe(true);
    expect(await holdLease(api(), lease('fast', onTime))).toBe(false);
  });

  test('two replicas, even both reconciling at once, never assign one slice to two nodes or lose a live node its slice', async () => {
    await nad('fast', sliced('10.0.0.0/22', '/26')); // 16 slices
    // One replica on the lean HTTP client (what the command uses), one on client-node (exec kubeconfigs).
    const lean = leanConnection();
    const replicas = [lean.value, api()].map((client, i) =>
      runController({
        connection: client,
        namespace: namespace(),
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
          reconcile(api(), namespace(), silentLogger),
          reconcile(api(), namespace(), silentLogger),
        ]);
        const allocations = (await slicePool('fast'))?.status.allocations ?? [];
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

  if (plane !== undefined)
    test('the Lease holder carries on after kube-apiserver restarted: it keeps its Lease and assigns a new node a slice', async () => {
      await nad('fast', sliced('10.0.0.0/24', '/26'));
      await node('node-a');
      const lean = leanConnection();
      const controller = runController({
        connection: lean.value,
        namespace: namespace(),
        identity: 'r0',
        log: silentLogger,
        intervalMs: 100,
        drainMs: 0,
        leaseSeconds: 15,
      });
      try {
        await until(
          'it leads and node-a has a slice',
          async () => controller.isLeader() && (await owners('fast')).includes('node-a'),
        );
        await plane().restartApiServer();
        await whenServed(() => node('node-b'));
        await until('node-b has a slice', async () =>
          (await whenServed(() => owners('fast'))).includes('node-b'),
        );
        await until('it leads', () => controller.isLeader());
        const lease = (await api().custom.getNamespacedCustomObject({
          group: 'coordination.k8s.io',
          version: 'v1',
          namespace: namespace(),
          plural: 'leases',
          name: 'whereabouts-ts-controller',
        })) as { spec: object };
        expect(lease.spec).toMatchObject({ holderIdentity: 'r0', leaseTransitions: 0 });
      } finally {
        await controller.stop();
      }
    });
}

describe('embedded API server', () => {
  suite(() => startCluster(), 'embedded');
});
onRealServer((plane) => {
  suite(() => realCluster(plane()), 'real', plane);
});
