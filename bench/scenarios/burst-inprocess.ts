// 1000 allocations at once from 10 simulated nodes (100 concurrent each, one connection per node) into one
// pool with the default config (overlapping-range reservations on), against the embedded API server with
// 2 ms latency per request. A first allocation creates the pool and is not counted: pools are created once
// per network, not per burst.

import type { Owner } from '../../src/allocator/allocation.ts';
import { loadConfig } from '../../src/config/load.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { connect } from '../../src/store/kube.ts';
import { kubeStore, type IpamStore } from '../../src/store/store.ts';
import { result } from '../report.ts';
import { benchCluster, percentile } from '../support/cluster.ts';

const nodes = 10;
const perNode = 100;

export async function run(): Promise<void> {
  const cluster = await benchCluster();
  const loaded = loadConfig({
    stdin: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'bench',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range: '10.128.0.0/16' },
    }),
    cniArgs: 'IgnoreUnknown=1',
    flatFilePaths: [],
  });
  if (!loaded.ok) throw new Error(loaded.error.details);
  const config = loaded.value.config;
  const stores: IpamStore[] = Array.from({ length: nodes }, () => {
    const c = connect({ kubeconfig: cluster.kubeconfig });
    if (!c.ok) throw new Error(c.error.details);
    return kubeStore(c.value);
  });
  const context = (store: IpamStore) => ({ store, log: silentLogger, deadline: deadlineIn(120_000) });

  const warmUp = await allocate(
    config,
    { containerId: 'warm', podRef: 'bench/warm', ifName: 'net1' },
    context(stores[0] as IpamStore),
  );
  if (!warmUp.ok) throw new Error(warmUp.error.details);
  cluster.server.faults.latencyMs = 2;
  cluster.server.resetStats();

  const latencies: number[] = [];
  const addresses: bigint[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: nodes * perNode }, async (_, i) => {
      const owner: Owner = { containerId: `c${i}`, podRef: `bench/pod-${i}`, ifName: 'net1' };
      const t0 = performance.now();
      const allocated = await allocate(config, owner, context(stores[i % nodes] as IpamStore));
      latencies.push(performance.now() - t0);
      if (!allocated.ok) throw new Error(`allocation ${i} failed: ${allocated.error.details}`);
      addresses.push(...allocated.value.map((a) => a.address));
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const { stats } = cluster.server;
  const count = nodes * perNode;
  const stored = Object.keys(
    (
      cluster.server.objects('ippools', 'whereabouts.cni.cncf.io').get('kube-system/10.128.0.0-16') as {
        spec: { allocations: object };
      }
    ).spec.allocations,
  ).length;
  latencies.sort((a, b) => a - b);
  console.log(
    `# requests by verb ${JSON.stringify(stats.byVerb)}; by status ${JSON.stringify(stats.byStatus)}`,
  );

  result('burst_inprocess_seconds', seconds, 's');
  result('burst_inprocess_requests_per_alloc', stats.requests / count, 'requests');
  result('burst_inprocess_conflicts_per_alloc', stats.conflicts / count, 'conflicts');
  result('burst_inprocess_p50_ms', percentile(latencies, 50), 'ms');
  result('burst_inprocess_p99_ms', percentile(latencies, 99), 'ms');
  result(
    'burst_inprocess_duplicates',
    addresses.length - new Set(addresses).size + (count + 1 - stored),
    'addresses',
  );
  await cluster.close();
}
