// The exporter against the embedded API server and a real kube-apiserver: what it reports after real
// allocations, a pod deletion and releases; how it carries on when lists and watches fail or the API server
// restarts, and how it behaves without one.

import { runExporter, type RunningExporter } from '../../src/exporter/exporter.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { silentLogger } from '../../src/log.ts';
import { connect } from '../../src/store/kube.ts';
import type { ControlPlane } from '../../kube/control-plane.ts';
import {
  emptyNamespace,
  onRealServer,
  realCluster,
  startCluster,
  type Cluster,
  type TestCluster,
} from '../support/cluster.ts';
import { ipamConfig, owner as ownerIn } from '../support/config.ts';
import { writeNodeSlicePool } from '../support/pools.ts';
import { whenServed } from '../support/wait.ts';

function suite(start: () => Promise<Cluster>, kind: Cluster['kind'], plane?: () => ControlPlane): void {
  let cluster: Cluster;
  let exporter: RunningExporter | undefined;
  beforeEach(async () => {
    cluster = await start();
  });
  afterEach(async () => {
    await exporter?.stop();
    exporter = undefined;
    await emptyNamespace(cluster);
    await cluster.close();
  });

  const run = (connection = cluster.connection()) =>
    runExporter({
      connection,
      log: silentLogger,
      metricsPort: 0,
      scanIntervalMs: 200,
      graceMs: 0,
      watchBackoff: { initialMs: 100, maxMs: 1_000 },
    });
  const metrics = async () => (await fetch(`${exporter?.url ?? ''}/metrics`)).text();
  /** Waits until the metrics text matches, or fails with what it was. */
  async function until(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = await metrics();
    while (!pattern.test(text) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      text = await metrics();
    }
    expect(text).toMatch(pattern);
    return text;
  }
  const ctx = () => ({ store: cluster.store(), log: silentLogger, deadline: deadlineIn(10_000) });
  const owner = (pod: string) => ({ ...ownerIn(pod), podRef: `${cluster.namespace}/${pod}` });
  const config = ipamConfig({ range: '10.6.0.0/28' }); // 14 assignable addresses
  const labels = () =>
    `pool="10.6.0.0-28",namespace="${cluster.namespace}",range="10.6.0.0/28",node_slice_pool=""`;
  /** A pod no node runs yet: deleted, it goes at once. */
  const createPod = (name: string) =>
    cluster.connection().core.createNamespacedPod({
      namespace: cluster.namespace,
      body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } },
    });

  test('capacity, use and utilisation follow allocations and releases; deleted pods become leak candidates', async () => {
    for (const name of ['a', 'b', 'c', 'd']) await createPod(name);
    exporter = await run();
    for (const name of ['a', 'b', 'c', 'd'])
      expect((await allocate(config, owner(name), ctx())).ok).toBe(true);

    const text = await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 4`));
    expect(text).toContain(`whereabouts_pool_capacity_addresses{${labels()}} 14`);
    expect(text).toContain(`whereabouts_pool_utilization_ratio{${labels()}} ${4 / 14}`);
    expect(text).toContain(`whereabouts_pool_leak_candidates{${labels()}} 0`);
    expect(text).toContain(`whereabouts_overlapping_reservations{namespace="${cluster.namespace}"} 4`);
    expect(text).toContain('whereabouts_exporter_synced 1');
    expect((await fetch(`${exporter.url}/readyz`)).status).toBe(200);

    await cluster.connection().core.deleteNamespacedPod({ namespace: cluster.namespace, name: 'b' });
    await until(new RegExp(`whereabouts_pool_leak_candidates\\{${labels()}\\} 1`));

    expect((await release(config, owner('b'), ctx())).ok).toBe(true);
    expect((await release(config, owner('c'), ctx())).ok).toBe(true);
    const after = await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 2`));
    expect(after).toContain(`whereabouts_overlapping_reservations{namespace="${cluster.namespace}"} 2`);
    await until(new RegExp(`whereabouts_pool_leak_candidates\\{${labels()}\\} 0`));
  });

  test('a reservation with no pool entry behind it is counted as orphaned', async () => {
    exporter = await run();
    const made = await allocate(config, owner('x'), ctx());
    expect(made.ok).toBe(true);
    // Remove the pool entry behind the reservation, as a crash between the two writes would leave it.
    const address = made.ok ? formatIP(ipOf(4, made.value[0]?.address ?? 0n)) : '';
    await cluster.store().release('10.6.0.0-28', String(Number(address.split('.')[3])), {
      id: 'sandbox-x',
      podref: owner('x').podRef,
      ifname: 'net1',
    });
    await until(
      new RegExp(`whereabouts_overlapping_reservations_orphaned\\{namespace="${cluster.namespace}"\\} 1`),
    );
  });

  test('slices of NodeSlicePools, assigned and free', async () => {
    await writeNodeSlicePool(
      cluster.connection(),
      'fast',
      { range: '10.9.0.0/24', sliceSize: '/26' },
      [
        { nodeName: 'node-a', sliceRange: '10.9.0.0/26' },
        { nodeName: '', sliceRange: '10.9.0.64/26' },
        { nodeName: 'node-b', sliceRange: '10.9.0.128/26' },
        { nodeName: '', sliceRange: '10.9.0.192/26' },
      ],
      cluster.namespace,
    );
    exporter = await run();
    const slices = `pool="fast",namespace="${cluster.namespace}",range="10.9.0.0/24"`;
    const text = await until(new RegExp(`whereabouts_node_slices\\{${slices},state="assigned"\\} 2`));
    expect(text).toContain(`whereabouts_node_slices{${slices},state="free"} 2`);
    // A node's slice pool is labelled with its NodeSlicePool, so alerts on full pools can leave it out.
    const sliced = ipamConfig({ range: '10.9.0.0/24', node_slice_size: '/26' }, { name: 'fast' });
    expect((await allocate(sliced, owner('s'), { ...ctx(), node: 'node-b' })).ok).toBe(true);
    const slicePool = `pool="node-b-10.9.0.128-26",namespace="${cluster.namespace}",range="10.9.0.128/26",node_slice_pool="fast"`;
    await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${slicePool}\\} 1`));
  });

  if (kind === 'embedded')
    test('without an API server: alive, not ready, and the failed lists counted', async () => {
      const kubeconfig = cluster.kubeconfig;
      await (cluster as TestCluster).server.close();
      const unreachable = connect({ kubeconfig, requestTimeoutMs: 1_000 });
      if (!unreachable.ok) throw new Error(unreachable.error.details);
      exporter = await run(unreachable.value);
      expect((await fetch(`${exporter.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${exporter.url}/readyz`)).status).toBe(503);
      await until(/whereabouts_exporter_watch_errors_total\{resource="ippools"\} [1-9]/);
      expect(await metrics()).toContain('whereabouts_exporter_synced 0');
      cluster = await startCluster(); // for afterEach
    });

  if (kind === 'embedded')
    test('lists and watches that fail for a while (500) are retried: the figures follow again', async () => {
      exporter = await run();
      await until(/whereabouts_exporter_synced 1/);
      const { server } = cluster as TestCluster;
      server.faults.errorRates = { 500: 1 };
      server.faults.retryAfterSeconds = 1;
      server.faults.appliesTo = (r) => r.verb === 'watch' || r.verb === 'list';
      await until(/whereabouts_exporter_watch_errors_total\{resource="ippools"\} [1-9]/);
      expect((await allocate(config, owner('later'), ctx())).ok).toBe(true);
      server.faults.errorRates = {};
      await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 1`));
    });

  if (plane !== undefined)
    test('after kube-apiserver restarted, the figures follow again', async () => {
      exporter = await run();
      expect((await allocate(config, owner('before'), ctx())).ok).toBe(true);
      await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 1`));
      await plane().restartApiServer(); // every watch ends; lists answer 429 for a moment
      await whenServed(async () => {
        const made = await allocate(config, owner('after'), ctx());
        if (!made.ok) throw new Error(made.error.details);
      });
      await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 2`), 30_000);
      // The reservations have a watch of their own, resumed on its own schedule.
      await until(
        new RegExp(`whereabouts_overlapping_reservations\\{namespace="${cluster.namespace}"\\} 2`),
        30_000,
      );
    }, 120_000);
}

describe('embedded API server', () => {
  suite(() => startCluster({ watchTimeoutSeconds: 2 }), 'embedded');
});
onRealServer((plane) => {
  suite(() => realCluster(plane()), 'real', plane);
});
