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
  describeClaims,
  type Claim,
  type Layout,
  type LayoutDecision,
  type OldPools,
  sameLayout as isSameLayout,
} from '../slices/decide.ts';
import { assign, divide, offersIn, type SliceAllocation, type Usable } from '../slices/layout.ts';
import type { KubeApi, Obj, ObjectRef } from '../store/api.ts';
import { send, versionedWrite } from '../store/conditional-write.ts';
import { group, version } from '../store/ippool.ts';
import { poolName } from '../store/names.ts';
import { sliceAllocationsOf } from '../store/nodeslicepool.ts';
import { listEvery } from '../store/paging.ts';
import { slicePoolOf } from '../ipam/places.ts';
import { holdLease, newObservation, releaseLease } from './lease.ts';
import { keyOf, metaOf } from '../store/object-meta.ts';

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

const nads: ObjectRef = { group: 'k8s.cni.cncf.io', version: 'v1', plural: 'network-attachment-definitions' };
const nodes: ObjectRef = { group: '', version: 'v1', plural: 'nodes' };
const slicePools = (namespace: string): ObjectRef => ({
  group,
  version,
  plural: 'nodeslicepools',
  namespace,
});

/** The sliced ranges of a NAD's config; none when it is not a whereabouts config with `node_slice_size`. */
export function slicedRanges(config: string): SlicedRange[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch {
    return [];
  }
  return whereaboutsPlugins(parsed).flatMap((plugin) => {
    const ipam = plugin.ipam as Obj;
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
              pool: slicePoolOf(c, i),
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
    const held = read.ok
      ? Object.keys(((read.value.spec ?? {}) as { allocations?: object }).allocations ?? {}).length
      : 0;
    const now = (drain.now ?? Date.now)();
    if (held === 0 && (read.ok || gone)) {
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
  const spec = (pool.spec ?? {}) as { range?: unknown; sliceSize?: unknown };
  const range = typeof spec.range === 'string' ? parseCidr(spec.range) : undefined;
  const size = typeof spec.sliceSize === 'string' ? Number(spec.sliceSize.replace(/^\//, '')) : NaN;
  return range === undefined || !Number.isInteger(size)
    ? undefined
    : { range: formatCidr(normalise(range)), slicePrefix: size };
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
  for (const a of sliceAllocationsOf(existing) ?? []) {
    const slice = parseCidr(a.sliceRange);
    if (a.nodeName === '' || slice === undefined) continue;
    const read = await api.get({ ...ippools(namespace), name: poolName(slice, networkName, a.nodeName) });
    if (!read.ok && !(read.error.kind === 'status' && read.error.code === 404)) return undefined;
    if (read.ok)
      held += Object.keys(((read.value.spec ?? {}) as { allocations?: object }).allocations ?? {}).length;
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

/** The NADs' claims on NodeSlicePools, by pool name, each pool's in the order of the NADs' names. */
function claimsOf(nadList: readonly Obj[]): Map<string, Claim<SlicedRange>[]> {
  const claims = new Map<string, Claim<SlicedRange>[]>();
  for (const nad of nadList) {
    const id = keyOf(nad);
    for (const s of slicedRanges(((nad.spec ?? {}) as { config?: string }).config ?? ''))
      claims.set(s.pool, [
        ...(claims.get(s.pool) ?? []),
        { nad: id, layout: { range: formatCidr(s.range), slicePrefix: s.slicePrefix }, value: s },
      ]);
  }
  for (const list of claims.values()) list.sort((a, b) => (a.nad < b.nad ? -1 : a.nad > b.nad ? 1 : 0));
  return claims;
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
    const message = `NADs claim this network with different layouts, none is applied: ${describeClaims(d.claims)}`;
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
  const change = `layout change from ${describeLayout(d.existing)} to ${describeLayout(d.claim.layout)} pending`;
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
      message: `${change} (${d.claim.nad}): the slices stay as they are until the pools of the current slices are empty — drain the network's pods; then the new slices are assigned`,
    },
    'layout-change-pending',
  );
  if (failed !== undefined) report.errors.push(failed);
}

/**
 * One pass over every sliced network: create or update its NodeSlicePools. Without a `drain`, the slices
 * of nodes that are gone are freed as soon as their pools are empty.
 */
export async function reconcile(
  api: KubeApi,
  namespace: string,
  log: Logger,
  drain: Drain = { periodMs: 0, emptySince: new Map() },
): Promise<ReconcileReport> {
  const report: ReconcileReport = { written: [], unassigned: [], retained: [], pending: [], errors: [] };
  const [nadList, nodeList] = [
    await listEvery(api, nads, `list ${nads.plural}`),
    await listEvery(api, nodes, `list ${nodes.plural}`),
  ];
  if (!nadList.ok) report.errors.push(nadList.error.message);
  if (!nodeList.ok) report.errors.push(nodeList.error.message);
  if (!nadList.ok || !nodeList.ok) return report;
  const nodeNames = nodeList.value.map((o) => metaOf(o).name).sort();

  for (const [pool, claims] of claimsOf(nadList.value)) {
    const ref = { ...slicePools(namespace), name: pool };
    const read = await api.get(ref);
    const existing = read.ok ? read.value : undefined;
    if (!read.ok && !(read.error.kind === 'status' && read.error.code === 404)) {
      report.errors.push(`${pool}: cannot read the NodeSlicePool`);
      continue;
    }
    // Which layout: the NADs' (when they agree), but a changed one only once the old slices are drained.
    const existingLayout = existing === undefined ? undefined : layoutOf(existing);
    let decision = decideLayout(claims, existingLayout, undefined);
    if (decision.kind === 'draining' && existing !== undefined) {
      const old = await oldPools(api, namespace, pool, existing, decision.claim.value.networkName, drain);
      decision = decideLayout(claims, existingLayout, old);
    }
    if (decision.kind !== 'apply') {
      await reportHeld(api, namespace, pool, decision, report);
      continue;
    }
    drain.emptySince.delete(`nodeslicepool/${pool}`);
    const s = decision.claim.value;
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
      isSameLayout(existingLayout, decision.claim.layout);
    const current = sameLayout ? (sliceAllocationsOf(existing) ?? []) : [];
    const live = new Set(nodeNames);
    const retained = await retainedSlices(api, namespace, s, current, live, drain, report);
    const next = assign(layout.value, current, nodeNames, s.usable, (a) => retained.has(a.sliceRange));
    for (const node of next.unassigned) {
      report.unassigned.push(`${s.pool}: ${node}`);
      log.error('no free slice for a node: pods of this network cannot start there', { pool: s.pool, node });
      const unrecorded = await noSliceEvent(api, namespace, s, node);
      if (unrecorded !== undefined) report.errors.push(unrecorded);
    }
    const status = { allocations: next.allocations };
    if (existing === undefined) {
      const created = await api.create(slicePools(namespace), {
        apiVersion: `${group}/${version}`,
        kind: 'NodeSlicePool',
        metadata: { name: s.pool, namespace },
        spec,
        status,
      });
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
    if (patched.ok && patched.value === 'done') report.written.push(s.pool);
    else report.errors.push(`${s.pool}: changed meanwhile, again next pass`);
  }
  return report;
}

export type ControllerOptions = {
  readonly api: KubeApi;
  readonly namespace: string;
  readonly identity: string;
  readonly log: Logger;
  /** How often the lease is renewed and the networks reconciled. */
  readonly intervalMs: number;
  /** How long the IPPool of a slice of a node that is gone must stay empty before the slice is freed. */
  readonly drainMs: number;
  readonly leaseSeconds: number;
};

export type RunningController = {
  isLeader(): boolean;
  /** Why this replica is not ready (its /readyz): until its first pass has asked for the lease. */
  notReady(): string | undefined;
  stop(): Promise<void>;
};

export function runController(options: ControllerOptions): RunningController {
  const { api, log } = options;
  const lease = {
    namespace: options.namespace,
    name: 'whereabouts-ts-controller',
    identity: options.identity,
    leaseSeconds: options.leaseSeconds,
    observed: newObservation(),
  };
  let leader = false;
  let stopped = false;
  let passed = false;
  let pass: Promise<void> = Promise.resolve();
  const drain: Drain = { periodMs: options.drainMs, emptySince: new Map() };
  const tick = async () => {
    const held = await holdLease(api, lease);
    passed = true;
    if (held !== leader)
      log.verbose(held ? 'became the leader' : 'lost the lease', { identity: lease.identity });
    leader = held;
    if (!leader || stopped) return;
    const report = await reconcile(api, options.namespace, log, drain);
    for (const e of report.errors) log.error('reconcile', { error: e });
    for (const r of report.retained) log.verbose('slice kept for a node that is gone', { slice: r });
    for (const p of report.pending) log.error('slice layout change pending', { pool: p });
  };
  const timer = setInterval(() => {
    pass = pass.then(tick).catch((e: unknown) => {
      log.error('controller pass failed', { error: e instanceof Error ? e.message : String(e) });
    });
  }, options.intervalMs);
  return {
    isLeader: () => leader,
    notReady: () => (passed ? undefined : 'no pass has asked for the lease yet'),
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await pass;
      if (leader) await releaseLease(api, lease);
      leader = false;
    },
  };
}
