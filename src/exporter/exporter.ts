// The exporter: pool metrics for Prometheus. Watches IPPools and OverlappingRangeIPReservations in every
// namespace, so capacity, use and reservation counts follow every change; and every scan interval runs the
// GC's own collect and plan as a dry run, so "leak candidates" are exactly what a GC run would release now
// (pod gone or finished, address changed), and "orphaned" exactly the reservations it would delete. It also
// watches NodeSlicePools, for how many slices of each sliced range are assigned and free, and the
// NetworkAttachmentDefinitions, whose configs say how many addresses each pool can really hand out
// (range_start/range_end and exclusions applied; per slice for a node's slice pool: src/ops/capacity.ts).
// Its parts: what it knows (watched.ts), its watches (watches.ts), its scan (scan.ts), its metrics
// (gauges.ts), started in turn and stopped in reverse (src/lifecycle.ts).

import type { Logger } from '../log.ts';
import { startMetricsServer } from '../metrics-server.ts';
import { parts } from '../lifecycle.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { exporterMetrics } from './gauges.ts';
import { scanner } from './scan.ts';
import { startWatches } from './watches.ts';
import { watchedState } from './watched.ts';

export type ExporterOptions = {
  readonly connection: KubeConnection;
  readonly log: Logger;
  /** Port of /metrics, /healthz and /readyz (0: any free port). */
  readonly metricsPort: number;
  /** How often leak candidates and orphaned reservations are computed. */
  readonly scanIntervalMs: number;
  /** The GC's grace period: younger pods' allocations are not leak candidates. */
  readonly graceMs: number;
  /** First and longest pause between failed lists and watches (default 250 ms to 30 s). */
  readonly watchBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
};

export type RunningExporter = { readonly url: string; stop(): Promise<void> };

export async function runExporter(options: ExporterOptions): Promise<RunningExporter> {
  const { connection, log } = options;
  const running = parts();
  const state = { synced: false, scanned: () => false };
  const ready = () => state.synced && state.scanned();
  const watched = watchedState();
  const metrics = exporterMetrics(watched, ready);
  const server = await startMetricsServer(metrics.registry, options.metricsPort, () =>
    ready() ? undefined : 'watches not synced or first scan not done',
  );
  running.started('metrics endpoint', () => server.close());
  const scans = scanner(connection, watched, metrics, { graceMs: options.graceMs, log });
  state.scanned = () => scans.scanned();
  running.started('scans under way', () => scans.settled());
  const watches = startWatches(connection, watched, metrics, { log, backoff: options.watchBackoff });
  running.started('watches', () => {
    watches.stop();
  });
  void watches.synced.then(() => {
    state.synced = true;
    scans.scanNow();
  });
  const timer = setInterval(() => {
    scans.scanNow();
  }, options.scanIntervalMs);
  running.started('scan interval', () => {
    clearInterval(timer);
  });
  return { url: server.url, stop: () => running.stop() };
}
