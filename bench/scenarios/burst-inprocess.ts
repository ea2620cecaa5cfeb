// 1000 allocations at once from 10 simulated nodes (100 concurrent each, one connection per node) into one
// pool with the default config (overlapping-range reservations on), against the embedded API server with
// 2 ms latency per request (bench/support/inprocess-burst.ts; `real` runs the same burst on kube-apiserver).

import { result } from '../report.ts';
import { benchCluster, percentile } from '../support/cluster.ts';
import { checkStored, inprocessBurst } from '../support/inprocess-burst.ts';

export async function run(): Promise<void> {
  const cluster = await benchCluster();
  const burst = await inprocessBurst(cluster.kubeconfig, {
    beforeBurst: () => {
      cluster.server.faults.latencyMs = 2;
      cluster.server.resetStats();
    },
  });
  const { stats } = cluster.server;
  const { count, latencies } = burst;
  if (burst.failures.length > 0)
    throw new Error(`${burst.failures.length} allocations failed, first: ${burst.failures[0] ?? ''}`);
  const held = await checkStored(burst);
  console.log(
    `# requests by verb ${JSON.stringify(stats.byVerb)}; by status ${JSON.stringify(stats.byStatus)}; ${held.stored} entries stored`,
  );

  result('burst_inprocess_seconds', burst.seconds, 's');
  result('burst_inprocess_requests_per_alloc', stats.requests / count, 'requests');
  result('burst_inprocess_conflicts_per_alloc', stats.conflicts / count, 'conflicts');
  result('burst_inprocess_p50_ms', percentile(latencies, 50), 'ms');
  result('burst_inprocess_p99_ms', percentile(latencies, 99), 'ms');
  result('burst_inprocess_duplicates', held.duplicates + held.missing, 'addresses');
  await cluster.close();
}
