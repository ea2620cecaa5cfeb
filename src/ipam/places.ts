// Where a range's allocations live. Without node slices: one IPPool for the whole range. With them
// (`node_slice_size`): one IPPool per slice the node holds — Whereabouts' per-node pools,
// `<network>-<node>-<slice>` — each handing out addresses only inside its slice, with the range's own
// range_start/range_end and exclusions still applied. The slices are assigned in the range's NodeSlicePool;
// a node whose slices are full takes the lowest free one itself, with a conditional write. A slice pool
// carries labels naming its node and its NodeSlicePool, which the node's agent selects its pools by.

import type { IpamConfig, RangeConfig } from '../config/ipam-config.ts';
import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';
import { parseCidr, type Cidr } from '../ip/cidr.ts';
import { lowestFreeSlice, offersIn, slicesOf, withinSlice, type SliceAllocation } from '../slices/layout.ts';
import { isValidObjectName, nodeSlicePoolName, poolName } from '../codecs/names.ts';
import { storeFailure } from '../store/errors.ts';
import { slicePoolLabels, type PoolLabels } from '../codecs/pool-labels.ts';
import type { SliceStore } from '../store/slice-store.ts';
import { remaining, retrying, type Deadline } from './retry.ts';

export type Place = {
  readonly pool: string;
  /** The pool's `spec.range`: the range's subnet, or the slice. */
  readonly subnet: Cidr;
  /** The range as allocation in this pool sees it: its part inside the slice. */
  readonly range: RangeConfig;
  /** A slice pool's labels (`slicePoolLabels`); none for a range's one pool. */
  readonly labels?: PoolLabels;
};

export type PlaceContext = {
  /** Only the slices: where a range's allocations live is decided before any pool is read. */
  readonly store: SliceStore;
  readonly deadline: Deadline;
  /** The node the plugin runs for: needed only for ranges with node slices. */
  readonly node?: string;
};

function named(name: string, what: string): Result<string> {
  if (isValidObjectName(name)) return ok(name);
  return fail(
    ipamError(
      CniCode.InvalidConfig,
      `${what} gives the IPPool name "${name}", which Kubernetes does not accept`,
    ),
  );
}

/** The one pool of a range without slices. */
export function rangePlace(config: IpamConfig, range: RangeConfig): Result<Place> {
  const pool = named(poolName(range.range.subnet, config.networkName), `range ${range.text}`);
  return pool.ok ? ok({ pool: pool.value, subnet: range.range.subnet, range }) : pool;
}

/** The NodeSlicePool of a sliced range: named after `network_name`, else the CNI name. */
export const nodeSlicePoolOf = (config: IpamConfig, index: number): string =>
  nodeSlicePoolName(
    config.networkName === '' ? config.cniName : config.networkName,
    index,
    (config.ranges[index] as RangeConfig).range.subnet,
  );

/** A slice's pool for the node; undefined when the range has no address in the slice. */
function slicePlace(
  config: IpamConfig,
  index: number,
  node: string,
  sliceRange: string,
): Result<Place | undefined> {
  const range = config.ranges[index] as RangeConfig;
  const slice = parseCidr(sliceRange);
  const part = slice === undefined ? undefined : withinSlice(range.range, slice);
  if (slice === undefined || part === undefined) return ok(undefined);
  const pool = named(poolName(slice, config.networkName, node), `slice ${sliceRange} of node ${node}`);
  if (!pool.ok) return pool;
  const labels = slicePoolLabels(node, nodeSlicePoolOf(config, index));
  return ok({ pool: pool.value, subnet: slice, range: { ...range, range: part }, labels });
}

function slicePlaces(
  config: IpamConfig,
  index: number,
  node: string,
  slices: readonly string[],
): Result<Place[]> {
  const places: Place[] = [];
  for (const slice of slices) {
    const place = slicePlace(config, index, node, slice);
    if (!place.ok) return place;
    if (place.value !== undefined) places.push(place.value);
  }
  return ok(places);
}

function nodeOf(ctx: PlaceContext): Result<string> {
  if (ctx.node !== undefined && ctx.node !== '') return ok(ctx.node);
  return fail(ipamError(CniCode.Internal, 'node_slice_size is set but the node name is unknown'));
}

/**
 * Every pool where the range's allocations of this node may be: the range's pool, or one per slice the
 * node holds (none when the NodeSlicePool does not exist yet).
 */
export async function placesOf(
  ctx: PlaceContext,
  config: IpamConfig,
  index: number,
): Promise<Result<Place[]>> {
  const range = config.ranges[index] as RangeConfig;
  if (range.slicePrefix === undefined) {
    const place = rangePlace(config, range);
    return place.ok ? ok([place.value]) : place;
  }
  const node = nodeOf(ctx);
  if (!node.ok) return node;
  const slices = await retrying(ctx.deadline, () => ctx.store.readSlices(nodeSlicePoolOf(config, index)));
  if (!slices.ok) return fail(storeFailure(slices.error));
  return slicePlaces(config, index, node.value, slicesOf(slices.value ?? [], node.value));
}

/**
 * More room for the node in a sliced range, once every place in `tried` is full: a slice the node got
 * meanwhile (another ADD on this node took one), else the lowest free usable slice, taken with a write
 * that succeeds only while that slice is still free. Code 11 when no slice is free.
 */
export async function takeSlice(
  ctx: PlaceContext,
  config: IpamConfig,
  index: number,
  tried: ReadonlySet<string>,
): Promise<Result<Place[]>> {
  const range = config.ranges[index] as RangeConfig;
  const node = nodeOf(ctx);
  if (!node.ok) return node;
  const name = nodeSlicePoolOf(config, index);
  const where = `NodeSlicePool ${ctx.store.namespace}/${name}`;
  for (;;) {
    const read = await retrying(ctx.deadline, () => ctx.store.readSlices(name));
    if (!read.ok) return fail(storeFailure(read.error));
    if (read.value === undefined) {
      return fail(
        ipamError(
          CniCode.TryAgainLater,
          `${where} does not exist: the whereabouts-ts controller creates it for every network with node_slice_size — is it running?`,
        ),
      );
    }
    const allocations: readonly SliceAllocation[] = read.value;
    const mine = slicePlaces(config, index, node.value, slicesOf(allocations, node.value));
    if (!mine.ok) return mine;
    const fresh = mine.value.filter((p) => !tried.has(p.pool));
    if (fresh.length > 0) return ok(fresh);
    const i = lowestFreeSlice(allocations, offersIn(range.range));
    if (i === undefined) {
      return fail(
        ipamError(
          CniCode.TryAgainLater,
          `no free address for node ${node.value} in ${range.text}: its slices (${slicesOf(allocations, node.value).join(', ') || 'none'}) are full and every slice of ${where} is assigned; free addresses, widen the range, or choose a smaller node_slice_size`,
        ),
      );
    }
    const free = allocations[i] as SliceAllocation;
    const assigned = await retrying(ctx.deadline, () => ctx.store.assignSlice(name, i, free, node.value));
    if (!assigned.ok) return fail(storeFailure(assigned.error));
    if (assigned.value === 'assigned') {
      const place = slicePlace(config, index, node.value, free.sliceRange);
      if (!place.ok) return place;
      if (place.value !== undefined) return ok([place.value]);
    }
    if (remaining(ctx.deadline) === 0) {
      return fail(
        ipamError(CniCode.TryAgainLater, `could not take a free slice of ${where} before the deadline`),
      );
    }
  }
}
