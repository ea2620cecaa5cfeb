// The exporter against the embedded API server: what it reports after real allocations, a pod deletion and
// releases, and how it behaves without an API server.

import { runExporter, type RunningExporter } from '../../src/exporter/exporter.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { silentLogger } from '../../src/log.ts';
import { connect } from '../../src/store/kube.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { writeNodeSlicePool } from '../support/pools.ts';

let cluster: TestCluster;
let exporter: RunningExporter | undefined;
beforeEach(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  await exporter?.stop();
  exporter = undefined;
  await cluster.close();
});

const start = () =>
  runExporter({
    connection: cluster.connection(),
    log: silentLogger,
    metricsPort: 0,
    scanIntervalMs: 200,
    graceMs: 0,
  });
const metrics = async () => (await fetch(`${exporter?.url ?? ''}/metrics`)).text();
/** Waits until the metrics text matches, or fails with what it was. */
async function until(pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 5_000;
  let text = await metrics();
  while (!pattern.test(text) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    text = await metrics();
  }
  expect(text).toMatch(pattern);
  return text;
}
const ctx = () => ({ store: cluster.store(), log: silentLogger, deadline: deadlineIn(10_000) });
const config = ipamConfig({ range: '10.6.0.0/28' }); // 14 assignable addresses
const labels = 'pool="10.6.0.0-28",namespace="kube-system",range="10.6.0.0/28",node_slice_pool=""';

test('capacity, use and utilisation follow allocations and releases; deleted pods become leak candidates', async () => {
  const { core } = cluster.connection();
  for (const name of ['a', 'b', 'c', 'd'])
    await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name }, spec: { containers: [] } },
    });
  exporter = await start();
  for (const name of ['a', 'b', 'c', 'd']) expect((await allocate(config, owner(name), ctx())).ok).toBe(true);

  const text = await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels}\\} 4`));
  expect(text).toContain(`whereabouts_pool_capacity_addresses{${labels}} 14`);
  expect(text).toContain(`whereabouts_pool_utilization_ratio{${labels}} ${4 / 14}`);
  expect(text).toContain(`whereabouts_pool_leak_candidates{${labels}} 0`);
  expect(text).toContain('whereabouts_overlapping_reservations{namespace="kube-system"} 4');
  expect(text).toContain('whereabouts_exporter_synced 1');
  expect((await fetch(`${exporter.url}/readyz`)).status).toBe(200);

  await core.deleteNamespacedPod({ namespace: 'default', name: 'b' });
  await until(new RegExp(`whereabouts_pool_leak_candidates\\{${labels}\\} 1`));

  expect((await release(config, owner('b'), ctx())).ok).toBe(true);
  expect((await release(config, owner('c'), ctx())).ok).toBe(true);
  const after = await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${labels}\\} 2`));
  expect(after).toContain('whereabouts_overlapping_reservations{namespace="kube-system"} 2');
  await until(new RegExp(`whereabouts_pool_leak_candidates\\{${labels}\\} 0`));
});

test('a reservation with no pool entry behind it is counted as orphaned', async () => {
  exporter = await start();
  const made = await allocate(config, owner('x'), ctx());
  expect(made.ok).toBe(true);
  // Remove the pool entry behind the reservation, as a crash between the two writes would leave it.
  const address = made.ok ? formatIP(ipOf(4, made.value[0]?.address ?? 0n)) : '';
  await cluster.store().release('10.6.0.0-28', String(Number(address.split('.')[3])), {
    id: 'sandbox-x',
    podref: 'default/x',
    ifname: 'net1',
  });
  await until(/whereabouts_overlapping_reservations_orphaned\{namespace="kube-system"\} 1/);
});

test('slices of NodeSlicePools, assigned and free', async () => {
  await writeNodeSlicePool(cluster.connection(), 'fast', { range: '10.9.0.0/24', sliceSize: '/26' }, [
    { nodeName: 'node-a', sliceRange: '10.9.0.0/26' },
    { nodeName: '', sliceRange: '10.9.0.64/26' },
    { nodeName: 'node-b', sliceRange: '10.9.0.128/26' },
    { nodeName: '', sliceRange: '10.9.0.192/26' },
  ]);
  exporter = await start();
  const slices = 'pool="fast",namespace="kube-system",range="10.9.0.0/24"';
  const text = await until(new RegExp(`whereabouts_node_slices\\{${slices},state="assigned"\\} 2`));
  expect(text).toContain(`whereabouts_node_slices{${slices},state="free"} 2`);
  // A node's slice pool is labelled with its NodeSlicePool, so alerts on full pools can leave it out.
  const sliced = ipamConfig({ range: '10.9.0.0/24', node_slice_size: '/26' }, { name: 'fast' });
  expect((await allocate(sliced, owner('s'), { ...ctx(), node: 'node-b' })).ok).toBe(true);
  const slicePool =
    'pool="node-b-10.9.0.128-26",namespace="kube-system",range="10.9.0.128/26",node_slice_pool="fast"';
  await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${slicePool}\\} 1`));
});

test('without an API server: alive, not ready, and the failed lists counted', async () => {
  const kubeconfig = cluster.kubeconfig;
  await cluster.server.close();
  const unreachable = connect({ kubeconfig, requestTimeoutMs: 1_000 });
  if (!unreachable.ok) throw new Error(unreachable.error.details);
  exporter = await runExporter({
    connection: unreachable.value,
    log: silentLogger,
    metricsPort: 0,
    scanIntervalMs: 200,
    graceMs: 0,
  });
  expect((await fetch(`${exporter.url}/healthz`)).status).toBe(200);
  expect((await fetch(`${exporter.url}/readyz`)).status).toBe(503);
  await until(/whereabouts_exporter_watch_errors_total\{resource="ippools"\} [1-9]/);
  expect(await metrics()).toContain('whereabouts_exporter_synced 0');
  cluster = await startCluster(); // for afterEach
});
