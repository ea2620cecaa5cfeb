// The exporter: pool metrics for Prometheus. Watches IPPools and OverlappingRangeIPReservations in every
// namespace, so capacity, use and reservation counts follow every change; and every scan interval runs the
// GC's own collect and plan as a dry run, so "leak candidates" are exactly what a GC run would release now
// (pod gone or finished, address changed), and "orphaned" exactly the reservations it would delete. It also
// watches NodeSlicePools, for how many slices of each sliced range are assigned and free, and the
// NetworkAttachmentDefinitions, whose configs say how many addresses each pool can really hand out
// (range_start/range_end and exclusions applied; per slice for a node's slice pool: src/ops/capacity.ts).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { retainedId } from '../allocator/keeper.ts';
import { collect } from '../gc/collect.ts';
import { indexNads, nadRangesOf, type NadIndex, type NadRange } from '../ops/capacity.ts';
import { networkNameOf, slicePoolOf, type SliceLayout } from '../store/names.ts';
import { sliceAllocationsOf } from '../store/nodeslicepool.ts';
import { planCollection } from '../gc/plan.ts';
import type { Logger } from '../log.ts';
import { startMetricsServer } from '../metrics-server.ts';
import { addressesOf, usageOf, utilisation, type PoolUsage } from '../ops/inventory.ts';
import { group, rawPool, version } from '../store/ippool.ts';
import { startInformer, type Informer, type InformerFailure, type ListAnswer } from '../store/informer.ts';
import type { KubeConnection } from '../store/kube.ts';
import { keyOf, metaOf } from '../store/object-meta.ts';

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

type Obj = Record<string, unknown>;
type Resource = { readonly group: string; readonly version: string; readonly plural: string };
const whereabouts = (plural: string): Resource => ({ group, version, plural });
const nadResource: Resource = {
  group: 'k8s.cni.cncf.io',
  version: 'v1',
  plural: 'network-attachment-definitions',
};

/** A cluster-wide informer of one custom resource (src/store/informer.ts: resumes, relists, backs off). */
function watchAll(
  connection: KubeConnection,
  { group, version, plural }: Resource,
  onChange: (type: 'set' | 'delete', o: Obj) => void,
  onFailure: (failure: InformerFailure) => void,
  backoff: ExporterOptions['watchBackoff'],
): Informer {
  return startInformer({
    kubeConfig: connection.kubeConfig,
    path: `/apis/${group}/${version}/${plural}`,
    list: async (page) =>
      (await connection.custom.listClusterCustomObject({ group, version, plural, ...page })) as ListAnswer,
    // IPPools are large (up to the object size limit each): a few per page.
    pageSize: plural === 'ippools' ? 20 : 500,
    ...(backoff === undefined ? {} : { backoff }),
    onChange: (change, o) => {
      onChange(change === 'deleted' ? 'delete' : 'set', o);
    },
    onFailure,
  });
}

export async function runExporter(options: ExporterOptions): Promise<RunningExporter> {
  const { connection, log } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  /** Per pool only what capacity and use need: its range and the addresses it holds (not the entries). */
  const shapes = new Map<
    string,
    { namespace: string; name: string; range: string; addresses: bigint[]; retained: number }
  >();
  /** The ranges of each NAD's Whereabouts configs, by NAD key. */
  const nadRanges = new Map<string, NadRange[]>();
  const reservations = new Map<string, string>(); // key → namespace
  let leaks = new Map<string, number>(); // pool key → leak candidates
  let orphaned = new Map<string, number>(); // namespace → orphaned reservations
  const state = { synced: false, scanned: false };

  /** NodeSlicePools by key: their slices, for `whereabouts_node_slices` and the `node_slice_pool` label. */
  const layouts = new Map<string, { namespace: string; range: string } & SliceLayout>();
  // `node_slice_pool`: the NodeSlicePool whose slice a node's slice pool is, "" for a whole-range pool. A full
  // slice is routine (the node takes another); alerts on full pools leave slice pools out.
  const poolLabels = ['pool', 'namespace', 'range', 'node_slice_pool'] as const;
  type Labelled = { readonly usage: PoolUsage; readonly labels: Record<(typeof poolLabels)[number], string> };
  // Every pool's figures, computed once per change of pools, NADs or NodeSlicePools (not per gauge).
  let figures: Labelled[] | undefined;
  const changed = () => {
    figures = undefined;
  };
  const current = (): Labelled[] => {
    if (figures !== undefined) return figures;
    const nads: NadIndex = indexNads([...nadRanges.values()].flat());
    figures = [...shapes.values()].map((p) => {
      const inNamespace = [...layouts.values()].filter((l) => l.namespace === p.namespace);
      const networkName = networkNameOf(p.name, p.range, inNamespace);
      const usage = usageOf(p.namespace, { ...p, networkName }, nads);
      const slice = slicePoolOf(p.name, p.range, inNamespace);
      const labels = {
        pool: p.name,
        namespace: p.namespace,
        range: p.range,
        node_slice_pool: slice?.slicePool ?? '',
      };
      return { usage, labels };
    });
    return figures;
  };
  const perPool = (name: string, help: string, value: (u: PoolUsage) => number) =>
    new Gauge({
      name,
      help,
      labelNames: poolLabels,
      registers: [registry],
      collect() {
        this.reset();
        for (const { usage, labels } of current()) this.set(labels, value(usage));
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
      for (const { usage, labels } of current())
        this.set(
          { ...labels, source: usage.follows === undefined ? 'cidr' : 'nad', nad: usage.follows ?? '' },
          1,
        );
    },
  });
  perPool(
    'whereabouts_pool_leak_candidates',
    'Allocations a GC run would release now: pod gone or finished, or its network-status shows another address',
    (u) => leaks.get(`${u.namespace}/${u.pool}`) ?? 0,
  );
  perPool(
    'whereabouts_pool_retained_addresses',
    'Allocated addresses kept for a StatefulSet member between its pods (sticky_ips; docs/persistent.md)',
    (u) => shapes.get(`${u.namespace}/${u.pool}`)?.retained ?? 0,
  );
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
  perNamespace('whereabouts_overlapping_reservations', 'OverlappingRangeIPReservation objects', () => {
    const counts = new Map<string, number>();
    for (const namespace of reservations.values()) counts.set(namespace, (counts.get(namespace) ?? 0) + 1);
    return counts;
  });
  perNamespace(
    'whereabouts_overlapping_reservations_orphaned',
    'Reservations no pool entry stands behind (a GC run would delete them once past the grace period)',
    () => orphaned,
  );
  new Gauge({
    name: 'whereabouts_node_slices',
    help: 'Slices of a NodeSlicePool (node_slice_size), by state: assigned to a node, or free',
    labelNames: ['pool', 'namespace', 'range', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of layouts.values()) {
        const labels = { pool: l.name, namespace: l.namespace, range: l.range };
        const assigned = l.allocations.filter((a) => a.nodeName !== '').length;
        this.set({ ...labels, state: 'assigned' }, assigned);
        this.set({ ...labels, state: 'free' }, l.allocations.length - assigned);
      }
    },
  });
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
      this.set(state.synced && state.scanned ? 1 : 0);
    },
  });

  const failed = (resource: string) => (failure: InformerFailure) => {
    watchErrors.inc({ resource });
    log.error(`${resource} ${failure.stage} failed; again in ${(failure.retryInMs / 1000).toFixed(1)} s`, {
      error: failure.message,
    });
  };
  const pools = watchAll(
    connection,
    whereabouts('ippools'),
    (type, o) => {
      changed();
      const key = keyOf(o);
      const pool = type === 'set' ? rawPool(o) : undefined;
      if (pool === undefined) {
        shapes.delete(key);
        return;
      }
      const { name, namespace } = metaOf(o);
      const range = ((o.spec ?? {}) as { range?: string }).range ?? '';
      // Retained entries (sticky_ips) are counted apart too: held for a StatefulSet member with no pod now.
      const retained = Object.values(pool.entries).filter(
        (e) => (e as { id?: unknown } | null)?.id === retainedId,
      ).length;
      shapes.set(key, { namespace, name, range, addresses: addressesOf(pool), retained });
    },
    failed('ippools'),
    options.watchBackoff,
  );
  const reserved = watchAll(
    connection,
    whereabouts('overlappingrangeipreservations'),
    (type, o) => {
      if (type === 'set') reservations.set(keyOf(o), metaOf(o).namespace);
      else reservations.delete(keyOf(o));
    },
    failed('overlappingrangeipreservations'),
    options.watchBackoff,
  );

  const slicePools = watchAll(
    connection,
    whereabouts('nodeslicepools'),
    (type, o) => {
      changed();
      if (type === 'delete') layouts.delete(keyOf(o));
      else
        layouts.set(keyOf(o), {
          namespace: metaOf(o).namespace,
          name: metaOf(o).name,
          range: ((o.spec ?? {}) as { range?: string }).range ?? '',
          allocations: sliceAllocationsOf(o) ?? [],
        });
    },
    failed('nodeslicepools'),
    options.watchBackoff,
  );

  // Without the NAD CRD, or without permission to read NADs (an upgrade that kept the old ClusterRole), the
  // figures fall back to the pools' CIDRs rather than the exporter never becoming ready; the failures are
  // counted under resource="network-attachment-definitions".
  let nadsUnreadable = () => {};
  const unreadable = new Promise<void>((resolve) => (nadsUnreadable = resolve));
  const nads = watchAll(
    connection,
    nadResource,
    (type, o) => {
      changed();
      if (type === 'delete') nadRanges.delete(keyOf(o));
      else nadRanges.set(keyOf(o), nadRangesOf(o));
    },
    (failure) => {
      failed('network-attachment-definitions')(failure);
      if (failure.code === 403 || failure.code === 404) nadsUnreadable();
    },
    options.watchBackoff,
  );

  async function scan(): Promise<void> {
    const collected = await collect(connection);
    if (!collected.ok) {
      watchErrors.inc({ resource: 'scan' });
      log.error('scan failed', { error: collected.error.message });
      return;
    }
    const plan = planCollection({ ...collected.value, now: Date.now(), graceMs: options.graceMs });
    const nextLeaks = new Map<string, number>();
    for (const r of plan.releases)
      nextLeaks.set(`${r.namespace}/${r.pool}`, (nextLeaks.get(`${r.namespace}/${r.pool}`) ?? 0) + 1);
    const nextOrphaned = new Map<string, number>();
    for (const d of plan.deletions) nextOrphaned.set(d.namespace, (nextOrphaned.get(d.namespace) ?? 0) + 1);
    leaks = nextLeaks;
    orphaned = nextOrphaned;
    state.scanned = true;
    lastSync.setToCurrentTime();
  }
  let scanning: Promise<void> = Promise.resolve();
  const scanNow = () => {
    scanning = scanning.then(scan);
  };
  void Promise.all([
    pools.synced,
    reserved.synced,
    slicePools.synced,
    Promise.race([nads.synced, unreadable]),
  ]).then(() => {
    state.synced = true;
    scanNow();
  });
  const timer = setInterval(scanNow, options.scanIntervalMs);

  const server = await startMetricsServer(registry, options.metricsPort, () =>
    state.synced && state.scanned ? undefined : 'watches not synced or first scan not done',
  );

  return {
    url: server.url,
    stop: async () => {
      clearInterval(timer);
      pools.stop();
      reserved.stop();
      slicePools.stop();
      nads.stop();
      await scanning;
      await server.close();
    },
  };
}
