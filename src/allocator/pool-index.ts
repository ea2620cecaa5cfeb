// The index of one pool as one read of it shows it: its allocations in address order, and the range's free
// addresses. The transaction builds one from every snapshot it reads (src/ipam/transaction.ts
// `allocateRange`) and drops it after that round; nothing keeps an index across reads. Pure.

import { freeSetOf, take, type FreeSet } from '../ip/free-set.ts';
import { compareBigint } from '../ip/interval.ts';
import type { Range } from '../ip/range.ts';
import type { Allocation } from './allocation.ts';

/**
 * What the allocator needs to know about one pool: its allocations and the range's free addresses. Built
 * from a snapshot by `indexPool` for the few questions one round asks (what the attachment holds, who holds
 * an address, what is free), so it keeps no maps: building one per read is the cost of every ADD.
 */
export type PoolIndex = {
  readonly range: Range;
  /** The pool's allocations, ascending by address. */
  readonly allocations: readonly Allocation[];
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
  const sorted = ascending([...allocations]);
  const taken: bigint[] = sorted.map((a) => a.address);
  for (const address of blocked) taken.push(address);
  return { range, allocations: sorted, free: freeSetOf(range, taken) };
}

/** The allocations ascending by address; a decoded pool mostly is already (its keys are offsets). */
function ascending(allocations: Allocation[]): Allocation[] {
  for (let i = 1; i < allocations.length; i++)
    if ((allocations[i] as Allocation).address < (allocations[i - 1] as Allocation).address)
      return allocations.sort((a, b) => compareBigint(a.address, b.address));
  return allocations;
}

/** The allocation a (pod, interface) holds in this pool: the lowest if a damaged pool holds several. */
export const heldBy = (
  index: PoolIndex,
  attachment: { podRef: string; ifName: string },
): Allocation | undefined =>
  index.allocations.find((a) => a.podRef === attachment.podRef && a.ifName === attachment.ifName);

/** The allocation of this pool at `address`, if any. */
export function holderOf(index: PoolIndex, address: bigint): Allocation | undefined {
  const { allocations } = index;
  let low = 0;
  let high = allocations.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const at = (allocations[mid] as Allocation).address;
    if (at < address) low = mid + 1;
    else if (at > address) high = mid - 1;
    else return allocations[mid];
  }
  return undefined;
}

/**
 * Marks an address as unavailable for the rest of this round without an allocation of this pool (see
 * `blocked` above): the transaction found its cluster-wide reservation taken by another attachment.
 */
export const recordBlocked = (index: PoolIndex, address: bigint): void => void take(index.free, address);
