// The exporter's scan: the GC's own collect and plan (src/gc/), run as a dry run, so that "leak
// candidates" are exactly what a GC run would release now (pod gone or finished, address changed), and
// "orphaned" exactly the reservations it would delete. Scans run one at a time, on the interval and once the
// watches have listed.

import { collect } from '../gc/collect.ts';
import { planCollection } from '../gc/plan.ts';
import type { Logger } from '../log.ts';
import type { KubeApi } from '../kube-api/api.ts';
import type { ExporterMetrics } from './gauges.ts';
import type { Watched } from './watched.ts';

export type Scanner = {
  /** Queues a scan after the one under way, if any. */
  scanNow(): void;
  /** Whether a scan has completed. */
  scanned(): boolean;
  /** Resolves once the scans queued so far have finished. */
  settled(): Promise<void>;
};

export function scanner(
  api: KubeApi,
  watched: Watched,
  metrics: ExporterMetrics,
  options: { readonly graceMs: number; readonly log: Logger },
): Scanner {
  let done = false;
  async function scan(): Promise<void> {
    const collected = await collect(api);
    if (!collected.ok) {
      metrics.watchErrors.inc({ resource: 'scan' });
      options.log.error('scan failed', { error: collected.error.message });
      return;
    }
    const plan = planCollection({ ...collected.value, now: Date.now(), graceMs: options.graceMs });
    const leaks = new Map<string, number>();
    for (const r of plan.releases)
      leaks.set(`${r.namespace}/${r.pool}`, (leaks.get(`${r.namespace}/${r.pool}`) ?? 0) + 1);
    const orphaned = new Map<string, number>();
    for (const d of plan.deletions) orphaned.set(d.namespace, (orphaned.get(d.namespace) ?? 0) + 1);
    watched.scanned.leaks = leaks;
    watched.scanned.orphaned = orphaned;
    done = true;
    metrics.lastSync.setToCurrentTime();
  }
  let scanning: Promise<void> = Promise.resolve();
  return {
    scanNow: () => {
      // A scan that throws is logged: it must not stop the scans after it, nor make the stop fail.
      scanning = scanning.then(scan).catch((e: unknown) => {
        metrics.watchErrors.inc({ resource: 'scan' });
        options.log.error('scan failed', { error: e instanceof Error ? e.message : String(e) });
      });
    },
    scanned: () => done,
    settled: () => scanning,
  };
}
