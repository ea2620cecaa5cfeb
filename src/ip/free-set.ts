// The free addresses of a range as disjoint intervals. Every operation costs a function of the number of
// intervals — at most allocations + exclusions + 1 — and never of the size of the range, so a /8 or an
// IPv6 /64 costs what a /24 with the same allocations costs. The intervals are kept in blocks of bounded
// length, so taking an address (one found reserved by another pool, src/allocator/pool-index.ts
// `recordBlocked`) moves at most a block's worth of entries, however fragmented the pool is. A set is built
// from one read of a pool and lives as long as that read (nothing returns an address to a set: a release is
// seen in the next read).

import { compareBigint, floorIndex, type Interval } from './interval.ts';
import type { Range } from './range.ts';

/** A block holds up to 2 × blockSize ascending intervals: `lo[i]`..`hi[i]` inclusive. */
const blockSize = 64;
type Block = { lo: bigint[]; hi: bigint[] };

/** Free intervals in ascending, disjoint, non-touching order, split into non-empty blocks. Mutated in place. */
export type FreeSet = { readonly blocks: Block[] };

type Position = { readonly b: number; readonly i: number };

/** The addresses of `range` that are neither excluded nor in `taken` (which may hold anything). */
export function freeSetOf(range: Range, taken: Iterable<bigint>): FreeSet {
  const points: bigint[] = [];
  for (const address of taken) if (address >= range.first && address <= range.last) points.push(address);
  points.sort(compareBigint);

  const lo: bigint[] = [];
  const hi: bigint[] = [];
  let cursor = range.first;
  const block = (from: bigint, to: bigint): void => {
    if (from > cursor) {
      lo.push(cursor);
      hi.push(from - 1n);
    }
    if (to + 1n > cursor) cursor = to + 1n;
  };
  // Walk the two ascending lists — exclusions and taken addresses — in step.
  let p = 0;
  for (const exclusion of range.exclusions) {
    for (; p < points.length && (points[p] as bigint) < exclusion.lo; p++)
      block(points[p] as bigint, points[p] as bigint);
    block(exclusion.lo, exclusion.hi);
  }
  for (; p < points.length; p++) block(points[p] as bigint, points[p] as bigint);
  if (cursor <= range.last) {
    lo.push(cursor);
    hi.push(range.last);
  }
  const blocks: Block[] = [];
  for (let i = 0; i < lo.length; i += blockSize) {
    blocks.push({ lo: lo.slice(i, i + blockSize), hi: hi.slice(i, i + blockSize) });
  }
  return { blocks };
}

/** The free intervals in ascending order. */
export function* freeIntervals(free: FreeSet): Generator<Interval> {
  for (const { lo, hi } of free.blocks)
    for (let i = 0; i < lo.length; i++) yield { lo: lo[i] as bigint, hi: hi[i] as bigint };
}

const blockAt = (free: FreeSet, b: number): Block => free.blocks[b] as Block;

/** The interval with the greatest `lo` ≤ address, or undefined when the address is below every interval. */
function locate(free: FreeSet, address: bigint): Position | undefined {
  let low = 0;
  let high = free.blocks.length - 1;
  let b = -1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    if ((blockAt(free, mid).lo[0] as bigint) <= address) {
      b = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return b < 0 ? undefined : { b, i: floorIndex(blockAt(free, b).lo, address) };
}

/** The position after `at` (or the very first one when `at` is undefined), if there is one. */
function following(free: FreeSet, at: Position | undefined): Position | undefined {
  if (at === undefined) return free.blocks.length > 0 ? { b: 0, i: 0 } : undefined;
  if (at.i + 1 < blockAt(free, at.b).lo.length) return { b: at.b, i: at.i + 1 };
  return at.b + 1 < free.blocks.length ? { b: at.b + 1, i: 0 } : undefined;
}

function removeInterval(free: FreeSet, { b, i }: Position): void {
  const block = blockAt(free, b);
  block.lo.splice(i, 1);
  block.hi.splice(i, 1);
  if (block.lo.length === 0) free.blocks.splice(b, 1);
}

/** Inserts an interval at `{b, i}` of an existing block (a `take` splitting the interval before it). */
function insertInterval(free: FreeSet, { b, i }: Position, lo: bigint, hi: bigint): void {
  const block = blockAt(free, b);
  block.lo.splice(i, 0, lo);
  block.hi.splice(i, 0, hi);
  if (block.lo.length > 2 * blockSize) {
    free.blocks.splice(b + 1, 0, { lo: block.lo.splice(blockSize), hi: block.hi.splice(blockSize) });
  }
}

/** The lowest free address in [lo, hi], or undefined when none is free there. */
export function firstFreeIn(free: FreeSet, lo: bigint, hi: bigint): bigint | undefined {
  const at = locate(free, lo);
  if (at !== undefined && lo <= (blockAt(free, at.b).hi[at.i] as bigint)) return lo <= hi ? lo : undefined;
  const next = following(free, at);
  if (next === undefined) return undefined;
  const start = blockAt(free, next.b).lo[next.i] as bigint;
  return start <= hi ? start : undefined;
}

/** Marks an address as taken. Returns false (and changes nothing) when it was not free. */
export function take(free: FreeSet, address: bigint): boolean {
  const at = locate(free, address);
  if (at === undefined) return false;
  const block = blockAt(free, at.b);
  const lo = block.lo[at.i] as bigint;
  const hi = block.hi[at.i] as bigint;
  if (address > hi) return false;
  if (lo === hi) removeInterval(free, at);
  else if (address === lo) block.lo[at.i] = lo + 1n;
  else if (address === hi) block.hi[at.i] = hi - 1n;
  else {
    block.hi[at.i] = address - 1n;
    insertInterval(free, { b: at.b, i: at.i + 1 }, address + 1n, hi);
  }
  return true;
}

/** Number of free addresses, counting at most up to `limit` (the walk stops there). */
export function freeCount(free: FreeSet, limit?: bigint): bigint {
  let count = 0n;
  for (const { lo, hi } of freeIntervals(free)) {
    count += hi - lo + 1n;
    if (limit !== undefined && count >= limit) return limit;
  }
  return count;
}

/** The n-th free address in ascending order (0-based), or undefined past the end. */
export function nthFree(free: FreeSet, n: bigint): bigint | undefined {
  let remaining = n;
  for (const { lo, hi } of freeIntervals(free)) {
    if (remaining <= hi - lo) return lo + remaining;
    remaining -= hi - lo + 1n;
  }
  return undefined;
}

/**
 * One of the `width` lowest free addresses, chosen by `random` (a number in [0, 1)). Concurrent writers
 * that each take "the lowest" all collide on one address; spreading them over a small window keeps the
 * pool compact while making collisions rare.
 */
export function pickAmongLowest(free: FreeSet, width: number, random: () => number): bigint | undefined {
  const window = freeCount(free, BigInt(Math.max(1, Math.floor(width))));
  if (window === 0n) return undefined;
  const index = BigInt(Math.min(Number(window) - 1, Math.floor(random() * Number(window))));
  return nthFree(free, index);
}
