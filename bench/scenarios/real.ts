// Figures from a real kube-apiserver with etcd (kube/control-plane.ts; `npm run kube:build` first):
//
// - burst: the `burst-inprocess` burst (bench/support/inprocess-burst.ts) against kube-apiserver, its
//   writers a ServiceAccount as the plugin's are (so API Priority and Fairness applies; the admin is exempt)
//   and each allocation given the plugin's ADD deadline. Requests are counted from the server's own
//   /metrics (`apiserver_request_total` of every whereabouts resource — pools and reservations here — every
//   answer code included, read as the admin before and after); duplicates are checked on the pool as the
//   server stores it.
// - pool-max: the most allocations one IPPool holds before the server refuses a write, for a v4 /16 and a
//   v6 /64 with realistic owners (64-hex container IDs, `namespace/deployment-hash-xxxxx` pod refs, net1)
//   and managedFields as our writes leave them (bench/support/pool-max.ts).
// - embedded: the same pool-max measurement on the embedded API server, for comparison.
//
// `npm run bench -- real [burst] [pool-max] [embedded]`: all three when none is named. Bounded: the
// scenario stops itself after 9.5 minutes.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinaries } from '../../kube/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../kube/control-plane.ts';
import { deadlines } from '../../src/cni/verbs.ts';
import { group } from '../../src/codecs/ippool.ts';
import { result } from '../report.ts';
import { benchCluster, percentile } from '../support/cluster.ts';
import { checkStored, inprocessBurst } from '../support/inprocess-burst.ts';
import { poolMax, printPoolMax } from '../support/pool-max.ts';
import { difference, requestCounts, sum, writeVerbs, writerKubeconfig } from '../support/real-cluster.ts';

const phases = ['burst', 'pool-max', 'embedded'] as const;
type Phase = (typeof phases)[number];

/** The whole scenario's bound. */
const scenarioLimitMs = 570_000;
/** Each allocation of the burst gets the plugin's ADD deadline. */
const burstDeadlineMs = deadlines.ADD;

async function burst(plane: ControlPlane, dir: string): Promise<void> {
  const namespace = await plane.namespace('burst');
  const kubeconfig = join(dir, 'burst.kubeconfig');
  writeFileSync(kubeconfig, await writerKubeconfig(plane, namespace), { mode: 0o600 });
  let before = new Map<string, number>();
  const run = await inprocessBurst(kubeconfig, {
    deadlineMs: burstDeadlineMs,
    beforeBurst: async () => {
      before = await requestCounts(plane);
    },
  });
  const requests = difference(await requestCounts(plane), before);
  const held = await checkStored(run);
  // Reservations: one per address held, plus what failed allocations could not drop in time (GC's work).
  const listed = await plane.request(
    'GET',
    `/apis/${group}/v1alpha1/namespaces/${namespace}/overlappingrangeipreservations`,
  );
  const reservations = ((listed.body as { items?: { spec?: { podref?: string } }[] }).items ?? []).map(
    (r) => r.spec?.podref ?? '',
  );
  const holders = new Set([...run.handedOut.keys()].map((o) => o.podRef));
  const orphans = reservations.filter((podref) => !holders.has(podref) && podref !== 'bench/warm').length;
  // Failures grouped by kind (numbers and names made of them do not split a group), one example each.
  const failures = new Map<string, { n: number; example: string }>();
  for (const f of run.failures) {
    const kind = f.replace(/[\w.-]*\d[\w.-]*/g, 'N');
    const seen = failures.get(kind) ?? { n: 0, example: f };
    failures.set(kind, { ...seen, n: seen.n + 1 });
  }
  console.log(
    `# burst: ${run.handedOut.size} of ${run.count} allocated in ${run.seconds.toFixed(1)} s, ${held.stored} entries stored (warm-up included), ${held.missing} handed out but not stored`,
  );
  console.log(
    `# reservations: ${reservations.length} stored, ${orphans} of them of attachments that got no address (left for GC)`,
  );
  for (const { n, example } of failures.values()) console.log(`#   ${n} × like ${example.slice(0, 300)}`);
  console.log(
    `# requests of whereabouts resources (apiserver_request_total, verb resource code): ${[...requests].map(([k, n]) => `${k}: ${n}`).join(', ')}`,
  );
  const writes = sum(requests, (key) => writeVerbs.has(key.split(' ')[0] ?? ''));
  const refused = sum(requests, (key) => / (409|422)$/.test(key));
  result('real_burst_seconds', run.seconds, 's');
  result('real_burst_requests_per_alloc', sum(requests) / run.count, 'requests');
  result('real_burst_writes_per_alloc', writes / run.count, 'writes');
  result('real_burst_conflicts_per_alloc', refused / run.count, 'conflicts');
  result('real_burst_p50_ms', percentile(run.latencies, 50), 'ms');
  result('real_burst_p99_ms', percentile(run.latencies, 99), 'ms');
  result('real_burst_failures', run.failures.length, 'allocations');
  result('real_burst_duplicates', held.duplicates, 'addresses');
}

export async function run(): Promise<void> {
  const asked = process.argv.slice(3);
  const unknown = asked.filter((a) => !(phases as readonly string[]).includes(a));
  if (unknown.length > 0)
    throw new Error(`real: unknown phase ${unknown.join(', ')}; phases: ${phases.join(', ')}`);
  const runs = (phase: Phase) => asked.length === 0 || asked.includes(phase);
  const watchdog = setTimeout(() => {
    console.error(`real: still running after ${scenarioLimitMs / 1000} s; stopped`);
    process.exit(1); // the control plane's exit hook kills etcd and kube-apiserver
  }, scenarioLimitMs);
  watchdog.unref();

  if (runs('burst') || runs('pool-max')) {
    const found = findBinaries();
    if (!found.ok) throw new Error(`real: ${found.why}`);
    const started = performance.now();
    const plane = await startControlPlane();
    const dir = mkdtempSync(join(tmpdir(), 'wb-bench-real-'));
    console.log(
      `# kube-apiserver ${found.binaries.kubernetesVersion} with etcd on loopback, ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    try {
      if (runs('burst')) await burst(plane, dir);
      if (runs('pool-max')) {
        for (const family of [4, 6] as const) {
          const namespace = await plane.namespace('pool-max');
          const kubeconfig = join(dir, `pool-max-${family}.kubeconfig`);
          writeFileSync(kubeconfig, plane.kubeconfig({ namespace }), { mode: 0o600 });
          printPoolMax(`real_pool_max_allocations_v${family}`, await poolMax(kubeconfig, family));
        }
      }
    } finally {
      await plane.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (runs('embedded')) {
    const cluster = await benchCluster();
    try {
      printPoolMax('embedded_pool_max_allocations_v4', await poolMax(cluster.kubeconfig, 4));
    } finally {
      await cluster.close();
    }
  }
  clearTimeout(watchdog);
}
