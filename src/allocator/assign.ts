// Choosing an address for an owner in one pool, from the pool's index (src/allocator/pool-index.ts): the
// one it holds already, a free one, or a requested one. Only a choice: the transaction claims it with a
// conditional write (src/ipam/transaction.ts), and chooses again when another writer was first. Pure.

import { formatCidr } from '../ip/cidr.ts';
import { formatIP, ipOf } from '../ip/address.ts';
import { firstFreeIn, pickAmongLowest, type FreeSet } from '../ip/free-set.ts';
import type { Interval } from '../ip/interval.ts';
import { rangeCapacity, usableAddresses, type Range } from '../ip/range.ts';
import type { Allocation, Owner } from './allocation.ts';
import { heldBy, holderOf, type PoolIndex } from './pool-index.ts';

/**
 * How many of the lowest free addresses a writer chooses among at first (`spread`): wide enough in large
 * pools that a burst of concurrent writers rarely collides, a sixteenth of the pool so that it stays compact.
 * After a collision the transaction doubles it, up to `maxWindow`.
 */
export function initialWindow(range: Range): number {
  const sixteenth = rangeCapacity(range) / 16n;
  return sixteenth < 64n ? 64 : sixteenth > 4096n ? 4096 : Number(sixteenth);
}

export const maxWindow = 65_536;

/** What the allocator decided for one owner in one pool (`assign`, `assignRequested`). */
export type Assignment =
  /** The (pod, interface) already holds this allocation: ADD is idempotent and returns it. */
  | { readonly kind: 'held'; readonly allocation: Allocation }
  /** A free address to claim with a conditional write. */
  | { readonly kind: 'free'; readonly address: bigint }
  /** Nothing can be handed out; `reason` says why, for a person to act on. */
  | { readonly kind: 'unavailable'; readonly reason: string };

/** Chooses among the free addresses; undefined when none is free. */
export type Picker = (free: FreeSet) => bigint | undefined;

/** A random choice among the `width` lowest free addresses (see `pickAmongLowest`). */
export const spread =
  (width: number, random: () => number = Math.random): Picker =>
  (free) =>
    pickAmongLowest(free, width, random);

/**
 * The first free address in the order of a pick list (`pick_addresses`). Strictly in order, also under
 * concurrency: writers racing for one address collide, and the conditional write lets one win while the
 * others choose again, the next address in the list.
 */
export function inPickOrder(free: FreeSet, picks: readonly Interval[]): bigint | undefined {
  for (const block of picks) {
    const address = firstFreeIn(free, block.lo, block.hi);
    if (address !== undefined) return address;
  }
  return undefined;
}

const exhausted = (index: PoolIndex, range: Range): string => {
  const family = range.subnet.family;
  const among =
    range.picks === undefined
      ? `between ${formatIP(ipOf(family, range.first))} and ${formatIP(ipOf(family, range.last))}`
      : `among its pick_addresses (${formatIP(ipOf(family, range.first))} to ${formatIP(ipOf(family, range.last))})`;
  return (
    `no free address in ${formatCidr(range.subnet)} ${among}: all ${rangeCapacity(range)} assignable ` +
    `addresses are taken (${index.allocations.length} allocations in the pool)`
  );
};

/**
 * The address for `owner`: the one it holds already, else a free one chosen by `pick` — or, when the
 * range has a pick list, the first free one in its order.
 */
export function assign(index: PoolIndex, owner: Owner, pick: Picker): Assignment {
  const held = heldBy(index, owner);
  if (held !== undefined) return { kind: 'held', allocation: held };
  const { range } = index;
  const address = range.picks === undefined ? pick(index.free) : inPickOrder(index.free, range.picks);
  if (address !== undefined) return { kind: 'free', address };
  return { kind: 'unavailable', reason: exhausted(index, range) };
}

/**
 * A specific address asked for by the runtime (the `ips` capability). It may lie outside `range_start` /
 * `range_end` or inside an exclusion — those only steer automatic choice — but must be a usable address
 * of the subnet and not held by anyone else.
 */
export function assignRequested(index: PoolIndex, owner: Owner, address: bigint): Assignment {
  const { subnet } = index.range;
  const text = formatIP(ipOf(subnet.family, address));
  const held = heldBy(index, owner);
  if (held !== undefined) {
    if (held.address === address) return { kind: 'held', allocation: held };
    return {
      kind: 'unavailable',
      reason: `${owner.podRef} interface ${owner.ifName} already holds ${formatIP(ipOf(subnet.family, held.address))} in ${formatCidr(subnet)}, not the requested ${text}`,
    };
  }
  const usable = usableAddresses(subnet);
  if (address < usable.lo || address > usable.hi) {
    return {
      kind: 'unavailable',
      reason: `requested address ${text} is not a usable address of ${formatCidr(subnet)}`,
    };
  }
  const holder = holderOf(index, address);
  if (holder !== undefined) {
    return {
      kind: 'unavailable',
      reason: `requested address ${text} is held by ${holder.podRef} interface ${holder.ifName}`,
    };
  }
  return { kind: 'free', address };
}

/**
 * The allocations DEL releases for a container's interface. Matched on (container ID, interface) as CNI
 * defines the attachment; more than one only in pools damaged by races.
 */
export const releasable = (
  allocations: Iterable<Allocation>,
  attachment: Pick<Owner, 'containerId' | 'ifName'>,
): Allocation[] =>
  [...allocations].filter((a) => a.containerId === attachment.containerId && a.ifName === attachment.ifName);
