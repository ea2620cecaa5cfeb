// The exporter's metrics, read from what it knows (src/exporter/watched.ts) when Prometheus scrapes: per
// pool capacity, use and where its capacity comes from, leak candidates and retained addresses; per
// namespace the reservations and the orphaned ones; per NodeSlicePool its slices; and the exporter's own
// state — its last scan, failed lists and watches, and whether it is synced.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { utilisation, type PoolUsage } from '../ops/inventory.ts';
import { poolLabels, type Watched } from './watched.ts';

export type ExporterMetrics = ReturnType<typeof exporterMetrics>;

/** Per-pool gauges, one figure of each pool's usage each. */
function poolGauges(registry: Registry, watched: Watched): void {
  const perPool = (name: string, help: string, value: (u: PoolUsage) => number) =>
    new Gauge({
      name,
      help,
      labelNames: poolLabels,
      registers: [registry],
      collect() {
        this.reset();
        for (const { usage, labels } of watched.figures()) this.set(labels, value(usage));
      },
    });
  perPool(
    'whereabouts_pool_capacity_addresses',
    'Addresses the pool can hand out: range_start/range_end and exclude of the NAD it follows applied (whereabouts_pool_capacity_info), else its CIDR less network and broadcast',
    (u) => Number(u.capacity),
  );
  perPool('whereabouts_pool_allocated_addresses', 'Addresses allocated in the pool', (u) => u.allocated);
  perPool(
    'whereabouts_pool_free_addresses',
    'Addresses of the capacity not allocated: 0 and pods of the NAD it follows fail to get one',
    (u) => Number(u.free),
  );
  perPool('whereabouts_pool_utilization_ratio', 'Share of the capacity allocated, 0 to 1', utilisation);
  perPool(
    'whereabouts_pool_nads',
    'NetworkAttachmentDefinitions whose config names the pool',
    (u) => u.nads.length,
  );
  new Gauge({
    name: 'whereabouts_pool_capacity_info',
    help: 'Where the capacity of a pool comes from: source="nad" and the NAD it follows (of those naming the pool, the one with the fewest free addresses), or source="cidr" when no NAD names it',
    labelNames: [...poolLabels, 'source', 'nad'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { usage, labels } of watched.figures())
        this.set(
          { ...labels, source: usage.follows === undefined ? 'cidr' : 'nad', nad: usage.follows ?? '' },
          1,
        );
    },
  });
  perPool(
    'whereabouts_pool_leak_candidates',
    'Allocations a GC run would release now: pod gone or finished, or its network-status shows another address',
    (u) => watched.scanned.leaks.get(`${u.namespace}/${u.pool}`) ?? 0,
  );
  perPool(
    'whereabouts_pool_retained_addresses',
    'Allocated addresses kept for a StatefulSet member between its pods (sticky_ips; docs/persistent.md)',
    (u) => watched.retainedIn(`${u.namespace}/${u.pool}`),
  );
}

/** Per-namespace reservation gauges, and the slices of each NodeSlicePool. */
function clusterGauges(registry: Registry, watched: Watched): void {
  const perNamespace = (name: string, help: string, counts: () => Map<string, number>) =>
    new Gauge({
      name,
      help,
      labelNames: ['namespace'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [namespace, n] of counts()) this.set({ namespace }, n);
      },
    });
  perNamespace('whereabouts_overlapping_reservations', 'OverlappingRangeIPReservation objects', () =>
    watched.reservationCounts(),
  );
  perNamespace(
    'whereabouts_overlapping_reservations_orphaned',
    'Reservations no pool entry stands behind (a GC run would delete them once past the grace period)',
    () => watched.scanned.orphaned,
  );
  new Gauge({
    name: 'whereabouts_node_slices',
    help: 'Slices of a NodeSlicePool (node_slice_size), by state: assigned to a node, or free',
    labelNames: ['pool', 'namespace', 'range', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of watched.layouts()) {
        const labels = { pool: l.name, namespace: l.namespace, range: l.range };
        const assigned = l.allocations.filter((a) => a.nodeName !== '').length;
        this.set({ ...labels, state: 'assigned' }, assigned);
        this.set({ ...labels, state: 'free' }, l.allocations.length - assigned);
      }
    },
  });
}

/** Every metric of the exporter, on a registry of its own with the process metrics. */
export function exporterMetrics(watched: Watched, ready: () => boolean) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  poolGauges(registry, watched);
  clusterGauges(registry, watched);
  const lastSync = new Gauge({
    name: 'whereabouts_exporter_last_sync_timestamp_seconds',
    help: 'When the last scan for leak candidates and orphaned reservations completed',
    registers: [registry],
  });
  const watchErrors = new Counter({
    name: 'whereabouts_exporter_watch_errors_total',
    help: 'Failed lists and watches, by resource (each is retried)',
    labelNames: ['resource'],
    registers: [registry],
  });
  new Gauge({
    name: 'whereabouts_exporter_synced',
    help: '1 once both watches have listed and the first scan has completed',
    registers: [registry],
    collect() {
      this.set(ready() ? 1 : 0);
    },
  });
  return { registry, lastSync, watchErrors };
}
