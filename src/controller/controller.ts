// The node-slice controller: for every NetworkAttachmentDefinition with `node_slice_size`, keeps a
// NodeSlicePool per range whose slices are assigned to the cluster's nodes (Whereabouts' object and names:
// the pool of the first range is named after the network — `network_name`, else the CNI name — and later
// ranges, which Whereabouts never sliced, add their range: `<name>-10.1.0.0-16`). Only the holder of the
// Lease reconciles, and every write of a NodeSlicePool is conditional on the resourceVersion it read: two
// replicas can never give one slice to two nodes, whatever they race.

import { whereaboutsPlugins } from '../config/check-nad.ts';
import { loadConfig } from '../config/load.ts';
import { formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import type { Logger } from '../log.ts';
import { assign, divide, offersIn, type Usable } from '../slices/layout.ts';
import { fail, ok, type Result } from '../errors.ts';
import type { KubeApi, Obj, ObjectRef } from '../store/api.ts';
import { classify } from '../store/errors.ts';
import { group, version } from '../store/ippool.ts';
import { sliceAllocationsOf } from '../store/nodeslicepool.ts';
import { slicePoolOf } from '../ipam/places.ts';
import { holdLease, releaseLease } from './lease.ts';

/** One sliced range of one network: what its NodeSlicePool must describe. */
export type SlicedRange = {
  readonly pool: string;
  readonly range: Cidr;
  readonly slicePrefix: number;
  readonly sliceSize: string;
  /** Slices where the range (its range_start/range_end and exclusions) has an address to hand out. */
  readonly usable: Usable;
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
            },
          ],
    );
  });
}

async function listAll(api: KubeApi, ref: ObjectRef): Promise<Result<Obj[], string>> {
  const items: Obj[] = [];
  let token: string | undefined;
  do {
    const page = await api.list(ref, { limit: 500, ...(token === undefined ? {} : { continue: token }) });
    if (!page.ok) return fail(classify(page.failure, `list ${ref.plural}`, api.server).message);
    items.push(...page.value.items);
    token = page.value.continue;
  } while (token !== undefined);
  return ok(items);
}

/**
 * Whether a NodeSlicePool already describes this range and slice size — compared by meaning, since
 * Whereabouts writes `sliceSize` as the NAD gives it ("26" or "/26"). Only a real change of the range or the
 * size re-slices (and re-assigns) a pool.
 */
function describesLayout(pool: Obj, s: SlicedRange): boolean {
  const spec = (pool.spec ?? {}) as { range?: unknown; sliceSize?: unknown };
  const range = typeof spec.range === 'string' ? parseCidr(spec.range) : undefined;
  const size = typeof spec.sliceSize === 'string' ? Number(spec.sliceSize.replace(/^\//, '')) : NaN;
  return (
    range !== undefined && formatCidr(normalise(range)) === formatCidr(s.range) && size === s.slicePrefix
  );
}

const nameOf = (o: Obj) => (o.metadata as { name?: string } | undefined)?.name ?? '';

/**
 * A Warning event on the Node, once per node and pool (a fixed name: a repeat is refused as existing). What
 * `kubectl describe node` shows an operator whose pods cannot start.
 */
async function noSliceEvent(api: KubeApi, namespace: string, s: SlicedRange, node: string): Promise<void> {
  const now = new Date().toISOString();
  await api.create(
    { group: '', version: 'v1', plural: 'events', namespace },
    {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${node}.${s.pool}.no-free-slice`, namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: node },
      reason: 'NoFreeNodeSlice',
      message: `every /${s.slicePrefix} slice of ${formatCidr(s.range)} (NodeSlicePool ${namespace}/${s.pool}) is assigned to another node: pods of this network cannot get an address on this node until a slice is freed or the range is widened`,
      type: 'Warning',
      source: { component: 'whereabouts-ts-controller' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
  );
}

export type ReconcileReport = {
  readonly written: string[];
  /** `pool: node` for every node left without a slice. */
  readonly unassigned: string[];
  readonly errors: string[];
};

/** One pass over every sliced network: create or update its NodeSlicePools. */
export async function reconcile(api: KubeApi, namespace: string, log: Logger): Promise<ReconcileReport> {
  const report = { written: [] as string[], unassigned: [] as string[], errors: [] as string[] };
  const [nadList, nodeList] = [await listAll(api, nads), await listAll(api, nodes)];
  if (!nadList.ok) report.errors.push(nadList.error);
  if (!nodeList.ok) report.errors.push(nodeList.error);
  if (!nadList.ok || !nodeList.ok) return report;
  const nodeNames = nodeList.value.map(nameOf).sort();
  const wanted = new Map<string, SlicedRange>();
  for (const nad of nadList.value)
    for (const s of slicedRanges(((nad.spec ?? {}) as { config?: string }).config ?? ''))
      wanted.set(s.pool, s);

  for (const s of wanted.values()) {
    const layout = divide(s.range, s.slicePrefix);
    if (!layout.ok) {
      report.errors.push(`${s.pool}: ${layout.error}`);
      continue;
    }
    const ref = { ...slicePools(namespace), name: s.pool };
    const read = await api.get(ref);
    const existing = read.ok ? read.value : undefined;
    if (!read.ok && !(read.failure.kind === 'status' && read.failure.code === 404)) {
      report.errors.push(`${s.pool}: cannot read the NodeSlicePool`);
      continue;
    }
    const spec = { range: formatCidr(s.range), sliceSize: s.sliceSize };
    const sameLayout = existing !== undefined && describesLayout(existing, s);
    const current = sameLayout ? (sliceAllocationsOf(existing) ?? []) : [];
    const next = assign(layout.value, current, nodeNames, s.usable);
    for (const node of next.unassigned) {
      report.unassigned.push(`${s.pool}: ${node}`);
      log.error('no free slice for a node: pods of this network cannot start there', { pool: s.pool, node });
      await noSliceEvent(api, namespace, s, node);
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
    const rv = (existing.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? '';
    const patched = await api.jsonPatch(ref, [
      { op: 'test', path: '/metadata/resourceVersion', value: rv },
      ...(sameLayout ? [] : [{ op: 'replace', path: '/spec', value: spec }]),
      { op: existing.status === undefined ? 'add' : 'replace', path: '/status', value: status },
    ]);
    if (patched.ok) report.written.push(s.pool);
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
  readonly leaseSeconds: number;
};

export type RunningController = { isLeader(): boolean; stop(): Promise<void> };

export function runController(options: ControllerOptions): RunningController {
  const { api, log } = options;
  const lease = {
    namespace: options.namespace,
    name: 'whereabouts-ts-controller',
    identity: options.identity,
    leaseSeconds: options.leaseSeconds,
  };
  let leader = false;
  let stopped = false;
  let pass: Promise<void> = Promise.resolve();
  const tick = async () => {
    const held = await holdLease(api, lease);
    if (held !== leader)
      log.verbose(held ? 'became the leader' : 'lost the lease', { identity: lease.identity });
    leader = held;
    if (!leader || stopped) return;
    const report = await reconcile(api, options.namespace, log);
    for (const e of report.errors) log.error('reconcile', { error: e });
  };
  const timer = setInterval(() => {
    pass = pass.then(tick).catch((e: unknown) => {
      log.error('controller pass failed', { error: e instanceof Error ? e.message : String(e) });
    });
  }, options.intervalMs);
  return {
    isLeader: () => leader,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await pass;
      if (leader) await releaseLease(api, lease);
      leader = false;
    },
  };
}
