// GC's metrics, pushed to a Prometheus Pushgateway at the end of a run (a CronJob is gone before anyone
// could scrape it).

import { Counter, Gauge, Pushgateway, Registry } from 'prom-client';
import type { Applied } from './apply.ts';

export type GcMetrics = {
  readonly registry: Registry;
  record(applied: Applied, durationSeconds: number, failed: boolean): void;
};

export function gcMetrics(): GcMetrics {
  const registry = new Registry();
  const released = new Counter({
    name: 'whereabouts_gc_released_total',
    help: 'Allocations released by GC, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const deleted = new Counter({
    name: 'whereabouts_gc_reservations_deleted_total',
    help: 'Orphaned overlapping-range reservations deleted by GC',
    registers: [registry],
  });
  const errors = new Counter({
    name: 'whereabouts_gc_errors_total',
    help: 'Writes GC could not make',
    registers: [registry],
  });
  const duration = new Gauge({
    name: 'whereabouts_gc_duration_seconds',
    help: 'Duration of the last GC run',
    registers: [registry],
  });
  return {
    registry,
    record(applied, durationSeconds, failed) {
      for (const r of applied.released) released.inc({ reason: r.reason });
      deleted.inc(applied.deleted.length);
      errors.inc(applied.errors.length);
      duration.set(durationSeconds);
      // Only a successful run reports it, so a failed run leaves the Pushgateway's last success standing.
      if (!failed) {
        new Gauge({
          name: 'whereabouts_gc_last_success_timestamp_seconds',
          help: 'When GC last finished without errors (Unix time)',
          registers: [registry],
        }).set(Date.now() / 1000);
      }
    },
  };
}

export async function push(metrics: GcMetrics, url: string): Promise<void> {
  await new Pushgateway(url, {}, metrics.registry).pushAdd({ jobName: 'whereabouts-gc' });
}
