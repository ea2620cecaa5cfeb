// The node-slice controller: for every NetworkAttachmentDefinition with `node_slice_size`, keeps a
// NodeSlicePool per range whose slices are assigned to the cluster's nodes (Whereabouts' object and names:
// the pool of the first range is named after the network — `network_name`, else the CNI name — and later
// ranges, which Whereabouts never sliced, add their range: `<name>-10.1.0.0-16`). Only the holder of the
// Lease reconciles, and every write of a NodeSlicePool is conditional on the resourceVersion it read: two
// replicas can never give one slice to two nodes, whatever they race.

import { hostname } from 'node:os';
import { whereaboutsPlugins } from '../config/check-nad.ts';
import { loadConfig } from '../config/load.ts';
import { formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import type { Logger } from '../log.ts';
import {
  decideLayout,
  describeRequests,
  type LayoutRequest,
  type Layout,
  type LayoutDecision,
  type OldPools,
  sameLayout as isSameLayout,
} from '../slices/decide.ts';
import { assignSlices, divide, offersIn, type SliceAllocation, type Usable } from '../slices/layout.ts';
import type { KubeApi, Obj, ObjectRef } from '../kube-api/api.ts';
import { send, versionedWrite } from '../store/conditional-write.ts';
import { decodePool, group, version, type PoolSnapshot } from '../codecs/ippool.ts';
import { poolName } from '../codecs/names.ts';
import { decodeNad } from '../codecs/nad.ts';
import { decodeNodeSlicePool, sliceLayoutOf } from '../codecs/nodeslicepool.ts';
import { nodeSlicePoolOf } from '../ipam/places.ts';
import { holdLease, newObservation, releaseLease } from './lease.ts';
import { readSources, slicePoolsRef, watchSources, type Sources } from './sources.ts';
import { parts } from '../lifecycle.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { keyOf, metaOf } from '../codecs/object-meta.ts';

/** One sliced range of one network: what its NodeSlicePool must describe. */
export type SlicedRange = {
  readonly pool: string;
  readonly range: Cidr;
  readonly slicePrefix: number;
  readonly sliceSize: string;
  /** Slices where the range (its range_start/range_end and exclusions) has an address to hand out. */
  readonly usable: Usable;
  /** The network's `network_name`: part of the names of the per-node IPPools. */
  readonly networkName: string;
};

/** The sliced ranges of a NAD's config; none when it is not a whereabouts config with `node_slice_size`. */
export function slicedRanges(config: string): SlicedRange[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch {
    return [];
  }
  return whereaboutsPlugins(parsed).flatMap((plugin) => {
    const ipam = plugin.ipam;
    if (ipam.node_slice_size === undefined) return [];
    // The plugin's own loader and checks; the kubeconfig it requires is no concern of the controller.
    const loaded = loadConfig({
      stdin: JSON.stringify({ ...plugin, ipam: { ...ipam, kubernetes: { kubeconfig: '-' } } }),
      cniArgs: undefined,
      flatFilePaths: [],
    });
    if (!loaded.ok) return [];
    const { config: c } = loaded.value;
    return c.ranges.flatMap((r, i) =>
      r.slicePrefix === undefined
        ? []
        : [
            {
              pool: nodeSlicePoolOf(c, i),
              range: r.range.subnet,
              slicePrefix: r.slicePrefix,
              sliceSize: `/${r.slicePrefix}`,
              usable: offersIn(r.range),
              networkName: c.networkName,
            },
          ],
    );
  });
}

/** What a Warning event is about, why, and under which fixed name (a repeat is refused as existing). */
type Warning = {
  readonly name: string;
  readonly involvedObject: Readonly<Record<string, string>>;
  readonly reason: string;
  readonly action: string;
  readonly message: string;
};

/** Records a Warning event in `where`; an error line when the API server refused it for another reason. */
async function warningEvent(api: KubeApi, where: string, w: Warning): Promise<string | undefined> {
  const now = new Date();
  const created = await api.create(
    { group: '', version: 'v1', plural: 'events', namespace: where },
    {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: w.name, namespace: where },
      involvedObject: w.involvedObject,
      reason: w.reason,
      action: w.action,
      message: w.message,
      type: 'Warning',
      eventTime: now.toISOString().replace('Z', '000Z'),
      reportingComponent: 'whereabouts-ts-controller',
      reportingInstance: hostname(),
      source: { component: 'whereabouts-ts-controller' },
      firstTimestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
      lastTimestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
      count: 1,
    },
  );
  if (created.ok || (created.error.kind === 'status' && created.error.code === 409)) return undefined;
  return `cannot record the event ${w.reason} about ${w.involvedObject.name ?? ''}: ${
    created.error.kind === 'status' ? `${created.error.code} ${created.error.message}` : created.error.code
  }`;
}

/**
 * A Warning event on the Node, once per node and pool (a fixed name: a repeat is refused as existing, which
 * is fine) — what `kubectl describe node` shows an operator whose pods cannot start. kube-apiserver takes an
 * event about a cluster-scoped object in `default`, and in `kube-system` only in the new form (eventTime,
 * reportingComponent/Instance, action); anywhere else it is refused with 422 ("involvedObject.namespace:
 * does not match event.namespace"). So the event goes to the controller's namespace when that is
 * kube-system, else to `default`, where client-go's recorder puts events about cluster-scoped objects (an
 * install outside kube-system needs a grant to create events there: docs/install.md).
 */
async function noSliceEvent(
  api: KubeApi,
  namespace: string,
  s: SlicedRange,
  node: string,
): Promise<string | undefined> {
  const failed = await warningEvent(api, namespace === 'kube-system' ? namespace : 'default', {
    name: `${node}.${s.pool}.no-free-slice`,
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: node },
    reason: 'NoFreeNodeSlice',
    action: 'AssignNodeSlice',
    message: `every /${s.slicePrefix} slice of ${formatCidr(s.range)} (NodeSlicePool ${namespace}/${s.pool}) is assigned to another node: pods of this network cannot get an address on this node until a slice is freed or the range is widened`,
  });
  return failed === undefined ? undefined : `${s.pool}: ${failed}`;
}

/** A Warning event on a NodeSlicePool (in its own namespace, the controller's), once per pool and reason. */
async function poolEvent(
  api: KubeApi,
  namespace: string,
  pool: string,
  w: Omit<Warning, 'name' | 'involvedObject'>,
  suffix: string,
): Promise<string | undefined> {
  const failed = await warningEvent(api, namespace, {
    ...w,
    name: `${pool}.${suffix}`,
    involvedObject: { apiVersion: `${group}/${version}`, kind: 'NodeSlicePool', name: pool, namespace },
  });
  return failed === undefined ? undefined : `${pool}: ${failed}`;
}

export type ReconcileReport = {
  readonly written: string[];
  /** `pool: node` for every node left without a slice. */
  readonly unassigned: string[];
  /** `pool: slice (node)` for every slice kept for a node that is gone, because its IPPool is not drained. */
  readonly retained: string[];
  /**
   * `pool: …` for every NodeSlicePool whose NADs now want another range or slice size while the slice pools
   * of its current layout still hold addresses: it keeps its layout until they are drained.
   */
  readonly pending: string[];
  readonly errors: string[];
};

/**
 * When the IPPools of slices of nodes that are gone were first seen empty, by IPPool name. Such a slice
 * returns to the range only once its pool has held nothing for `periodMs`: a pod of a node deleted while
 * still running keeps its address, and a plugin that read the slice assignment before the node went has
 * finished (or failed) its write by then — the period is longer than any transaction's deadline.
 */
export type Drain = {
  readonly periodMs: number;
  readonly emptySince: Map<string, number>;
  readonly now?: () => number;
};

const ippools = (namespace: string): ObjectRef => ({ group, version, plural: 'ippools', namespace });

/** The entries an IPPool holds, readable or not: any entry keeps its slice. */
const entriesOf = (pool: PoolSnapshot): number => pool.allocations.length + pool.unreadableKeys.length;

/** The slices of nodes that are gone which stay with them for now; an error leaves a slice retained. */
async function retainedSlices(
  api: KubeApi,
  namespace: string,
  s: SlicedRange,
  current: readonly SliceAllocation[],
  live: ReadonlySet<string>,
  drain: Drain,
  report: ReconcileReport,
): Promise<Set<string>> {
  const retained = new Set<string>();
  for (const a of current) {
    const slice = parseCidr(a.sliceRange);
    if (a.nodeName === '' || live.has(a.nodeName) || slice === undefined) continue;
    const name = poolName(slice, s.networkName, a.nodeName);
    const read = await api.get({ ...ippools(namespace), name });
    const gone = !read.ok && read.error.kind === 'status' && read.error.code === 404;
    if (!read.ok && !gone) report.errors.push(`${s.pool}: cannot read IPPool ${name}; its slice stays`);
    const pool = read.ok ? decodePool(read.value) : undefined;
    if (pool?.ok === false) report.errors.push(`${s.pool}: ${pool.error}; its slice stays`);
    const held = pool?.ok === true ? entriesOf(pool.value) : 0;
    const now = (drain.now ?? Date.now)();
    if (held === 0 && (pool?.ok === true || gone)) {
      const since = drain.emptySince.get(name) ?? now;
      drain.emptySince.set(name, since);
      if (now - since >= drain.periodMs) {
        drain.emptySince.delete(name);
        continue;
      }
    } else drain.emptySince.delete(name);
    retained.add(a.sliceRange);
    report.retained.push(`${s.pool}: ${a.sliceRange} (${a.nodeName}, ${held} addresses in ${name})`);
  }
  return retained;
}

const layoutOf = (pool: Obj): Layout | undefined => {
  const layout = sliceLayoutOf(pool);
  return layout.ok
    ? { range: formatCidr(normalise(layout.value.range)), slicePrefix: layout.value.slicePrefix }
    : undefined;
};

const describeLayout = (l: Layout) => `${l.range} in /${l.slicePrefix}`;

/**
 * What the slice pools of a NodeSlicePool's current layout hold, and whether they have been empty (or
 * absent) for the drain period — the same period a departed node's slice waits, so a plugin that read the
 * old assignment has finished its write before the layout changes. Undefined when a pool cannot be read.
 */
async function oldPools(
  api: KubeApi,
  namespace: string,
  pool: string,
  existing: Obj,
  networkName: string,
  drain: Drain,
): Promise<OldPools | undefined> {
  let held = 0;
  const decoded = decodeNodeSlicePool(existing);
  for (const a of decoded.ok ? decoded.value.allocations : []) {
    const slice = parseCidr(a.sliceRange);
    if (a.nodeName === '' || slice === undefined) continue;
    const read = await api.get({ ...ippools(namespace), name: poolName(slice, networkName, a.nodeName) });
    if (!read.ok && !(read.error.kind === 'status' && read.error.code === 404)) return undefined;
    const ippool = read.ok ? decodePool(read.value) : undefined;
    if (ippool?.ok === false) return undefined; // a damaged pool is one that cannot be read
    if (ippool !== undefined) held += entriesOf(ippool.value);
  }
  const key = `nodeslicepool/${pool}`;
  if (held > 0) {
    drain.emptySince.delete(key);
    return { held, drained: false };
  }
  const now = (drain.now ?? Date.now)();
  const since = drain.emptySince.get(key) ?? now;
  drain.emptySince.set(key, since);
  return { held, drained: now - since >= drain.periodMs };
}

/** The NADs' layout requests for NodeSlicePools, by pool name, each pool's in the order of the NADs' names. */
function requestsOf(nadList: readonly Obj[]): Map<string, LayoutRequest<SlicedRange>[]> {
  const requests = new Map<string, LayoutRequest<SlicedRange>[]>();
  for (const nad of nadList) {
    const id = keyOf(nad);
    // A config that is not a string names no network (as the CNI plugin would refuse it).
    const decoded = decodeNad(nad);
    for (const s of decoded.ok ? slicedRanges(decoded.value.config) : [])
      requests.set(s.pool, [
        ...(requests.get(s.pool) ?? []),
        { nad: id, layout: { range: formatCidr(s.range), slicePrefix: s.slicePrefix }, value: s },
      ]);
  }
  for (const list of requests.values()) list.sort((a, b) => (a.nad < b.nad ? -1 : a.nad > b.nad ? 1 : 0));
  return requests;
}

/** Reports (and records as a Warning event) a layout that is not applied: a conflict or a pending change. */
async function reportHeld(
  api: KubeApi,
  namespace: string,
  pool: string,
  d: Exclude<LayoutDecision<SlicedRange>, { kind: 'apply' }>,
  report: ReconcileReport,
): Promise<void> {
  if (d.kind === 'conflict') {
    const message = `NADs claim this network with different layouts, none is applied: ${describeRequests(d.requests)}`;
    report.errors.push(`${pool}: ${message}`);
    const failed = await poolEvent(
      api,
      namespace,
      pool,
      {
        reason: 'NodeSliceLayoutConflict',
        action: 'ChooseNodeSliceLayout',
        message: `${message}; the NodeSlicePool keeps ${d.existing === undefined ? 'no layout (it is not created)' : `its layout ${describeLayout(d.existing)}`} until they agree`,
      },
      'layout-conflict',
    );
    if (failed !== undefined) report.errors.push(failed);
    return;
  }
  const change = `layout change from ${describeLayout(d.existing)} to ${describeLayout(d.request.layout)} pending`;
  const why =
    d.old === undefined
      ? 'the old slice pools could not be read'
      : d.old.held > 0
        ? `the old slice pools hold ${d.old.held} addresses`
        : 'the old slice pools are empty, waiting for the drain period';
  report.pending.push(`${pool}: ${change}: ${why}`);
  const failed = await poolEvent(
    api,
    namespace,
    pool,
    {
      reason: 'NodeSliceLayoutChangePending',
      action: 'ChangeNodeSliceLayout',
      message: `${change} (${d.request.nad}): the slices stay as they are until the pools of the current slices are empty — drain the network's pods; then the new slices are assigned`,
    },
    'layout-change-pending',
  );
  if (failed !== undefined) report.errors.push(failed);
}

/**
 * One pass over every sliced network: create or update its NodeSlicePools. Without a `drain`, the slices
 * of nodes that are gone are freed as soon as their pools are empty. The NADs, nodes and NodeSlicePools come
 * from `sources`: by default read from the API server now; a running controller's informers' caches
 * (src/controller/sources.ts).
 */
export async function reconcile(
  api: KubeApi,
  namespace: string,
  log: Logger,
  drain: Drain = { periodMs: 0, emptySince: new Map() },
  sources: Sources = readSources(api, namespace),
): Promise<ReconcileReport> {
  const report: ReconcileReport = { written: [], unassigned: [], retained: [], pending: [], errors: [] };
  const [nadList, nodeList] = [await sources.nads(), await sources.nodes()];
  if (!nadList.ok) report.errors.push(nadList.error);
  if (!nodeList.ok) report.errors.push(nodeList.error);
  if (!nadList.ok || !nodeList.ok) return report;
  const nodeNames = nodeList.value.map((o) => metaOf(o).name).sort();

  for (const [pool, requests] of requestsOf(nadList.value)) {
    const ref = { ...slicePoolsRef(namespace), name: pool };
    const read = await sources.slicePool(pool);
    if (!read.ok) {
      report.errors.push(read.error);
      continue;
    }
    // Its state since this controller's last write has not arrived yet: the pass its arrival starts decides.
    if (read.value === 'pending') continue;
    const existing = read.value;
    // Which layout: the NADs' (when they agree), but a changed one only once the old slices are drained.
    const existingLayout = existing === undefined ? undefined : layoutOf(existing);
    let decision = decideLayout(requests, existingLayout, undefined);
    if (decision.kind === 'draining' && existing !== undefined) {
      const old = await oldPools(api, namespace, pool, existing, decision.request.value.networkName, drain);
      decision = decideLayout(requests, existingLayout, old);
    }
    if (decision.kind !== 'apply') {
      await reportHeld(api, namespace, pool, decision, report);
      continue;
    }
    drain.emptySince.delete(`nodeslicepool/${pool}`);
    const s = decision.request.value;
    const layout = divide(s.range, s.slicePrefix);
    if (!layout.ok) {
      report.errors.push(`${s.pool}: ${layout.error}`);
      continue;
    }
    const spec = { range: formatCidr(s.range), sliceSize: s.sliceSize };
    // Compared by meaning (Whereabouts writes `sliceSize` as the NAD gives it, "26" or "/26"): only a real
    // change of range or size, once drained, re-slices a pool.
    const sameLayout =
      existing !== undefined &&
      existingLayout !== undefined &&
      isSameLayout(existingLayout, decision.request.layout);
    const listed = sameLayout ? decodeNodeSlicePool(existing) : undefined;
    const current = listed?.ok === true ? listed.value.allocations : [];
    const live = new Set(nodeNames);
    const retained = await retainedSlices(api, namespace, s, current, live, drain, report);
    const next = assignSlices(layout.value, current, nodeNames, s.usable, (a) => retained.has(a.sliceRange));
    for (const node of next.unassigned) {
      report.unassigned.push(`${s.pool}: ${node}`);
      log.error('no free slice for a node: pods of this network cannot start there', { pool: s.pool, node });
      const unrecorded = await noSliceEvent(api, namespace, s, node);
      if (unrecorded !== undefined) report.errors.push(unrecorded);
    }
    const status = { allocations: next.allocations };
    if (existing === undefined) {
      const created = await api.create(slicePoolsRef(namespace), {
        apiVersion: `${group}/${version}`,
        kind: 'NodeSlicePool',
        metadata: { name: s.pool, namespace },
        spec,
        status,
      });
      if (created.ok || (created.error.kind === 'status' && created.error.code === 409))
        sources.moved(s.pool, '');
      if (created.ok) report.written.push(s.pool);
      else report.errors.push(`${s.pool}: create refused (another writer?)`);
      continue;
    }
    if (sameLayout && JSON.stringify(current) === JSON.stringify(next.allocations)) continue;
    const rv = metaOf(existing).resourceVersion;
    const patched = await send(
      api,
      versionedWrite(
        ref,
        rv,
        [
          ...(sameLayout ? [] : [{ op: 'replace', path: '/spec', value: spec } as const]),
          { op: existing.status === undefined ? 'add' : 'replace', path: '/status', value: status },
        ],
        `write NodeSlicePool ${namespace}/${s.pool}`,
      ),
    );
    if (patched.ok && patched.value !== 'gone') sources.moved(s.pool, rv);
    if (patched.ok && patched.value === 'done') report.written.push(s.pool);
    else report.errors.push(`${s.pool}: changed meanwhile, again next pass`);
  }
  return report;
}

export type ControllerOptions = {
  /** The connection: its KubeApi for reads and writes, its watch for the informers. */
  readonly connection: KubeConnection;
  readonly namespace: string;
  readonly identity: string;
  readonly log: Logger;
  /** How often the lease is renewed and the networks reconciled (they are also on every change). */
  readonly intervalMs: number;
  /** How long the IPPool of a slice of a node that is gone must stay empty before the slice is freed. */
  readonly drainMs: number;
  readonly leaseSeconds: number;
  /** First and longest pause between failed lists and watches (default 250 ms to 30 s). */
  readonly watchBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
};

export type RunningController = {
  isLeader(): boolean;
  /**
   * Why this replica is not ready (its /readyz): until its first pass has asked for the lease, and while its
   * informers have not listed or a watch is failing.
   */
  notReady(): string | undefined;
  stop(): Promise<void>;
};

/** How long after a change its pass starts, at most: the changes of that while are taken together. */
const changeDelayMs = 200;

/** Logs what a pass reports. */
function logReport(log: Logger, report: ReconcileReport): void {
  for (const e of report.errors) log.error('reconcile', { error: e });
  for (const r of report.retained) log.verbose('slice kept for a node that is gone', { slice: r });
  for (const p of report.pending) log.error('slice layout change pending', { pool: p });
}

/**
 * The controller, running: informers of the NADs, nodes and NodeSlicePools from the start (a replica that
 * takes the lease over decides at once); every interval the lease is asked for, and the leader reconciles
 * from the caches — then, and whenever a NAD, a node or a NodeSlicePool changes. One pass at a time;
 * changes during a pass make one more.
 */
export function runController(options: ControllerOptions): RunningController {
  const { connection: api, log } = options;
  const lease = {
    namespace: options.namespace,
    name: 'whereabouts-ts-controller',
    identity: options.identity,
    leaseSeconds: options.leaseSeconds,
    observed: newObservation(),
  };
  const running = parts();
  let leader = false;
  let passed = false;
  let pass: Promise<void> = Promise.resolve();
  /** A pass for changes is scheduled or queued, not yet started. */
  let waiting = false;
  let changeTimer: NodeJS.Timeout | undefined;
  const drain: Drain = { periodMs: options.drainMs, emptySince: new Map() };

  /** Runs `work` after the passes queued before it; a failure is logged. */
  const queue = (work: () => Promise<void>) => {
    pass = pass.then(work).catch((e: unknown) => {
      log.error('controller pass failed', { error: e instanceof Error ? e.message : String(e) });
    });
  };
  const reconcileCached = async () => {
    if (!leader || running.stopping() || !watched.isSynced()) return;
    logReport(log, await reconcile(api, options.namespace, log, drain, watched.sources));
  };
  /**
   * Something changed: one pass shortly (changes meanwhile are taken by it), after those queued — at most one
   * waiting, so that a stream of changes (nodes' status on a large cluster) costs a pass per delay at most.
   */
  const onChange = () => {
    if (waiting || !watched.isSynced() || running.stopping()) return;
    waiting = true;
    changeTimer = setTimeout(
      () => {
        queue(async () => {
          waiting = false;
          await reconcileCached();
        });
      },
      Math.min(changeDelayMs, options.intervalMs),
    );
  };
  const watched = watchSources(api, options.namespace, {
    ...(options.watchBackoff === undefined ? {} : { backoff: options.watchBackoff }),
    onChange,
    onFailure: (resource, failure) => {
      log.error(`the watch of ${resource} failed; retrying`, {
        stage: failure.stage,
        error: failure.message,
        retryInMs: Math.round(failure.retryInMs),
      });
    },
  });
  running.started('informers', () => {
    watched.stop();
  });
  void watched.synced.then(onChange);

  running.started('lease', async () => {
    if (leader) await releaseLease(api, lease);
    leader = false;
  });
  const tick = async () => {
    const held = await holdLease(api, lease);
    passed = true;
    if (held !== leader)
      log.verbose(held ? 'became the leader' : 'lost the lease', { identity: lease.identity });
    leader = held;
    await reconcileCached();
  };
  const timer = setInterval(() => {
    queue(tick);
  }, options.intervalMs);
  running.started('passes', async () => {
    clearInterval(timer);
    clearTimeout(changeTimer);
    await pass;
  });
  return {
    isLeader: () => leader,
    notReady: () => (passed ? watched.notReady() : 'no pass has asked for the lease yet'),
    stop: () => running.stop(),
  };
}
