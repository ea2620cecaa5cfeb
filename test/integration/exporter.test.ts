// The exporter against the embedded API server and a real kube-apiserver: what it reports after real
// allocations, a pod deletion and releases; capacity as the NADs narrow it, with the pool alerts' own
// expressions evaluated on what it reports; how it carries on when lists and watches fail or the API server
// restarts, and how it behaves without one.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { runExporter, type RunningExporter } from '../../src/exporter/exporter.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { silentLogger } from '../../src/log.ts';
import { connect } from '../../src/kube-api/kube.ts';
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
import { writeNad, writeNodeSlicePool } from '../support/pools.ts';
import { evaluate, parseExposition } from '../support/promql.ts';
import { ruleGroupsOf } from '../deploy/support/promql.ts';
import { whenServed } from '../support/wait.ts';

const rules = ruleGroupsOf(
  readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'monitoring', 'prometheus-rule.yaml'), 'utf8'),
).flatMap((g) => g.rules);
/** The pools an alert's expression (as deployed) holds true for, over the exporter's metrics text. */
function firing(alert: string, metricsText: string): string[] {
  const expr = rules.find((r) => r.alert === alert)?.expr;
  if (typeof expr !== 'string') throw new Error(`no alert ${alert} in prometheus-rule.yaml`);
  return evaluate(expr, parseExposition(metricsText)).map((s) => s.labels.pool ?? '');
}

/** A NAD's CNI config with these `ipam` keys. */
const nadConfig = (ipam: Record<string, unknown>) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'net',
    type: 'macvlan',
    ipam: { type: 'whereabouts', ...ipam },
  });

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
  /**
   * Waits until one scrape matches every pattern, or fails with what it was. Pools and reservations
   * come from two watches, so a value about each is awaited together, never one after the other.
   */
  async function until(pattern: RegExp | RegExp[], timeoutMs = 10_000): Promise<string> {
    const patterns = Array.isArray(pattern) ? pattern : [pattern];
    const deadline = Date.now() + timeoutMs;
    let text = await metrics();
    while (!patterns.every((p) => p.test(text)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      text = await metrics();
    }
    for (const p of patterns) expect(text).toMatch(p);
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

    const text = await until([
      new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 4`),
      new RegExp(`whereabouts_overlapping_reservations\\{namespace="${cluster.namespace}"\\} 4`),
    ]);
    expect(text).toContain(`whereabouts_pool_capacity_addresses{${labels()}} 14`);
    expect(text).toContain(`whereabouts_pool_utilization_ratio{${labels()}} ${4 / 14}`);
    expect(text).toContain(`whereabouts_pool_leak_candidates{${labels()}} 0`);
    expect(text).toContain('whereabouts_exporter_synced 1');
    expect((await fetch(`${exporter.url}/readyz`)).status).toBe(200);

    await cluster.connection().core.deleteNamespacedPod({ namespace: cluster.namespace, name: 'b' });
    await until(new RegExp(`whereabouts_pool_leak_candidates\\{${labels()}\\} 1`));

    expect((await release(config, owner('b'), ctx())).ok).toBe(true);
    expect((await release(config, owner('c'), ctx())).ok).toBe(true);
    await until([
      new RegExp(`whereabouts_pool_allocated_addresses\\{${labels()}\\} 2`),
      new RegExp(`whereabouts_overlapping_reservations\\{namespace="${cluster.namespace}"\\} 2`),
    ]);
    await until(new RegExp(`whereabouts_pool_leak_candidates\\{${labels()}\\} 0`));
  });

  test('a /16 narrowed to five addresses: capacity 5, and once they are taken the exhaustion alert is true', async () => {
    const narrowed = { range: '10.216.0.0/16', range_start: '10.216.3.1', range_end: '10.216.3.5' };
    await writeNad(cluster.connection(), 'narrow', nadConfig(narrowed), cluster.namespace);
    exporter = await run();
    const narrow = ipamConfig(narrowed);
    const pool = `pool="10.216.0.0-16",namespace="${cluster.namespace}",range="10.216.0.0/16",node_slice_pool=""`;
    for (const name of ['a', 'b', 'c']) expect((await allocate(narrow, owner(name), ctx())).ok).toBe(true);

    const text = await until(
      new RegExp(
        `whereabouts_pool_allocated_addresses\\{${pool}\\} 3[^]*whereabouts_pool_free_addresses\\{${pool}\\} 2`,
      ),
    );
    expect(text).toContain(`whereabouts_pool_capacity_addresses{${pool}} 5\n`);
    expect(text).toContain(`whereabouts_pool_utilization_ratio{${pool}} 0.6\n`);
    expect(text).toContain(`whereabouts_pool_nads{${pool}} 1\n`);
    expect(text).toContain(
      `whereabouts_pool_capacity_info{${pool},source="nad",nad="${cluster.namespace}/narrow"} 1`,
    );
    expect(firing('WhereaboutsPoolExhausted', text)).not.toContain('10.216.0.0-16');
    expect(firing('WhereaboutsPoolNearlyFull', text)).not.toContain('10.216.0.0-16');

    for (const name of ['d', 'e']) expect((await allocate(narrow, owner(name), ctx())).ok).toBe(true);
    const full = await until(new RegExp(`whereabouts_pool_free_addresses\\{${pool}\\} 0\n`));
    expect(full).toContain(`whereabouts_pool_utilization_ratio{${pool}} 1\n`);
    expect(firing('WhereaboutsPoolExhausted', full)).toEqual(['10.216.0.0-16']);
    // The 90% alert stops where the exhausted one starts.
    expect(firing('WhereaboutsPoolNearlyFull', full)).not.toContain('10.216.0.0-16');
    // And the plugin agrees: the sixth pod gets nothing.
    expect((await allocate(narrow, owner('f'), ctx())).ok).toBe(false);
  });

  test('exclusions are not capacity; with the NAD gone the pool falls back to its CIDR and says so', async () => {
    // 10.217.0.1–14, less .1–.3 and .9: ten addresses.
    const excluding = { range: '10.217.0.0/28', exclude: ['10.217.0.0/30', '10.217.0.9'] };
    await writeNad(cluster.connection(), 'excluding', nadConfig(excluding), cluster.namespace);
    exporter = await run();
    for (const name of ['a', 'b'])
      expect((await allocate(ipamConfig(excluding), owner(name), ctx())).ok).toBe(true);
    const pool = `pool="10.217.0.0-28",namespace="${cluster.namespace}",range="10.217.0.0/28",node_slice_pool=""`;
    const text = await until(new RegExp(`whereabouts_pool_free_addresses\\{${pool}\\} 8\n`));
    expect(text).toContain(`whereabouts_pool_capacity_addresses{${pool}} 10\n`);
    expect(text).toContain(`whereabouts_pool_utilization_ratio{${pool}} 0.2\n`);

    await cluster.connection().custom.deleteNamespacedCustomObject({
      group: 'k8s.cni.cncf.io',
      version: 'v1',
      namespace: cluster.namespace,
      plural: 'network-attachment-definitions',
      name: 'excluding',
    });
    const cidr = await until(
      new RegExp(`whereabouts_pool_capacity_info\\{${pool},source="cidr",nad=""\\} 1`),
    );
    expect(cidr).toContain(`whereabouts_pool_capacity_addresses{${pool}} 14\n`);
    expect(cidr).toContain(`whereabouts_pool_free_addresses{${pool}} 12\n`);
    expect(cidr).toContain(`whereabouts_pool_nads{${pool}} 0\n`);
  });

  test('addresses kept for a StatefulSet member (sticky_ips) are counted as retained, and allocated', async () => {
    exporter = await run();
    for (const name of ['web-0', 'web-1']) expect((await allocate(config, owner(name), ctx())).ok).toBe(true);
    await until(new RegExp(`whereabouts_pool_retained_addresses\\{${labels()}\\} 0`));
    expect((await release(config, owner('web-1'), ctx(), 'retain')).ok).toBe(true);
    const text = await until(new RegExp(`whereabouts_pool_retained_addresses\\{${labels()}\\} 1`));
    expect(text).toContain(`whereabouts_pool_allocated_addresses{${labels()}} 2`);
    // The member's next pod takes it over: no longer retained.
    expect((await allocate(config, { ...owner('web-1'), containerId: 'sandbox-web-1b' }, ctx())).ok).toBe(
      true,
    );
    await until(new RegExp(`whereabouts_pool_retained_addresses\\{${labels()}\\} 0`));
  });

  test('a reservation with no pool entry behind it is counted as orphaned', async () => {
    exporter = await run();
    const made = await allocate(config, owner('x'), ctx());
    expect(made.ok).toBe(true);
    // Remove the pool entry behind the reservation, as a crash between the two writes would leave it.
    const address = made.ok ? formatIP(ipOf(4, made.value[0]?.address ?? 0n)) : '';
    await cluster.store().releaseOffset('10.6.0.0-28', String(Number(address.split('.')[3])), {
      id: 'sandbox-x',
      podref: owner('x').podRef,
      ifname: 'net1',
    });
    await until(
      new RegExp(`whereabouts_overlapping_reservations_orphaned\\{namespace="${cluster.namespace}"\\} 1`),
    );
  });

  test("slices of NodeSlicePools, assigned and free; a slice pool's capacity is its part of the range", async () => {
    // .128–.131 excluded: node-b's slice 10.9.0.128/26 can hand out .132–.191, 60 addresses.
    const fast = { range: '10.9.0.0/24', node_slice_size: '/26', exclude: ['10.9.0.128/30'] };
    await writeNad(
      cluster.connection(),
      'fast',
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'fast',
        type: 'macvlan',
        ipam: { type: 'whereabouts', ...fast },
      }),
      cluster.namespace,
    );
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
    const sliced = ipamConfig(fast, { name: 'fast' });
    expect((await allocate(sliced, owner('s'), { ...ctx(), node: 'node-b' })).ok).toBe(true);
    const slicePool = `pool="node-b-10.9.0.128-26",namespace="${cluster.namespace}",range="10.9.0.128/26",node_slice_pool="fast"`;
    const after = await until(new RegExp(`whereabouts_pool_allocated_addresses\\{${slicePool}\\} 1`));
    expect(after).toContain(`whereabouts_pool_capacity_addresses{${slicePool}} 60\n`);
    expect(after).toContain(`whereabouts_pool_free_addresses{${slicePool}} 59\n`);
    expect(after).toContain(
      `whereabouts_pool_capacity_info{${slicePool},source="nad",nad="${cluster.namespace}/fast"} 1`,
    );
  });

  if (kind === 'embedded')
    test('without permission to read NADs (an old ClusterRole): ready all the same, on the CIDRs, the refusals counted', async () => {
      await cluster.close();
      cluster = await startCluster({ authorize: (r) => r.def.plural !== 'network-attachment-definitions' });
      exporter = await run();
      expect((await allocate(config, owner('a'), ctx())).ok).toBe(true);
      const text = await until(/whereabouts_exporter_synced 1/);
      expect(text).toMatch(
        /whereabouts_exporter_watch_errors_total\{resource="network-attachment-definitions"\} [1-9]/,
      );
      await until(new RegExp(`whereabouts_pool_capacity_info\\{${labels()},source="cidr",nad=""\\} 1`));
      expect(await metrics()).toContain(`whereabouts_pool_capacity_addresses{${labels()}} 14\n`);
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
