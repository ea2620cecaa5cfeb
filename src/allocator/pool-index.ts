import { freeSetOf, give, take, type FreeSet } from '../ip/free-set.ts';
import { compareBigint } from '../ip/interval.ts';
import type { Range } from '../ip/range.ts';
import { attachmentKey, type Allocation } from './allocation.ts';

/**
 * What the allocator needs to know about one pool: its allocations by address and by (pod, interface),
 * and the range's free addresses. Built from a pool snapshot, or kept current by a watch cache through
 * `recordAllocated` / `recordReleased`.
 */
export type PoolIndex = {
  readonly range: Range;
  readonly byAddress: Map<bigint, Allocation>;
  /** Allocations per (pod, interface), ascending by address; more than one only in pools damaged by races. */
  readonly byAttachment: Map<string, Allocation[]>;
  readonly free: FreeSet;
};

/**
 * `blocked` are addresses that are not free although this pool does not hold them — for example addresses
 * reserved cluster-wide by another pool of an overlapping range.
 */
export function indexPool(
  range: Range,
  allocations: Iterable<Allocation>,
  blocked: Iterable<bigint> = [],
): PoolIndex {
  const byAddress = new Map<bigint, Allocation>();
  const byAttachment = new Map<string, Allocation[]>();
  for (const allocation of [...allocations].sort((a, b) => compareBigint(a.address, b.address))) {
    addToMaps(byAddress, byAttachment, allocation);
  }
  return { range, byAddress, byAttachment, free: freeSetOf(range, [...byAddress.keys(), ...blocked]) };
}

function addToMaps(
  byAddress: PoolIndex['byAddress'],
  byAttachment: PoolIndex['byAttachment'],
  allocation: Allocation,
): void {
  byAddress.set(allocation.address, allocation);
  const key = attachmentKey(allocation);
  const held = byAttachment.get(key);
  if (held === undefined) {
    byAttachment.set(key, [allocation]);
    return;
  }
  const after = held.findIndex((a) => a.address > allocation.address);
  held.splice(after < 0 ? held.length : after, 0, allocation);
}

/** The allocation a (pod, interface) holds in this pool: the lowest if a damaged pool holds several. */
export const heldBy = (
  index: PoolIndex,
  attachment: { podRef: string; ifName: string },
): Allocation | undefined => index.byAttachment.get(attachmentKey(attachment))?.[0];

export function recordAllocated(index: PoolIndex, allocation: Allocation): void {
  recordReleased(index, allocation.address);
  addToMaps(index.byAddress, index.byAttachment, allocation);
  take(index.free, allocation.address);
}

export function recordReleased(index: PoolIndex, address: bigint): void {
  const allocation = index.byAddress.get(address);
  if (allocation === undefined) return;
  index.byAddress.delete(address);
  const key = attachmentKey(allocation);
  const remaining = (index.byAttachment.get(key) ?? []).filter((a) => a.address !== address);
  if (remaining.length === 0) index.byAttachment.delete(key);
  else index.byAttachment.set(key, remaining);
  give(index.free, index.range, address);
}

/** Marks an address as unavailable without an allocation of this pool (see `blocked` above). */
export const recordBlocked = (index: PoolIndex, address: bigint): void => void take(index.free, address);
