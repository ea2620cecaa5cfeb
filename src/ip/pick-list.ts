// A pick list (`pick_addresses`): the addresses a range may hand out, as blocks in order of preference.
// An address named twice belongs where it was named first, so the blocks are made disjoint here, keeping
// their order — then "the first free address of the first block that has one" is well defined, and the
// blocks' total size is what the range can hand out (its capacity). Everything the list does not name is
// excluded from the range (src/ip/range.ts), so the free set, capacity and node slices need nothing new.
// Pure, and costs a function of the number of blocks, never of their size: a block may be an IPv6 /64.

import { mergeIntervals, type Interval } from './interval.ts';

/** Index of the first interval of an ascending, disjoint list whose `hi` is ≥ `value` (length when none). */
function firstReaching(sorted: readonly Interval[], value: bigint): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sorted[mid] as Interval).hi < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The parts of `block` that `sorted` (ascending, disjoint) does not cover, ascending. */
function uncovered(block: Interval, sorted: readonly Interval[]): Interval[] {
  const parts: Interval[] = [];
  let cursor = block.lo;
  for (let i = firstReaching(sorted, block.lo); i < sorted.length && cursor <= block.hi; i++) {
    const covered = sorted[i] as Interval;
    if (covered.lo > block.hi) break;
    if (covered.lo > cursor) parts.push({ lo: cursor, hi: covered.lo - 1n });
    if (covered.hi + 1n > cursor) cursor = covered.hi + 1n;
  }
  if (cursor <= block.hi) parts.push({ lo: cursor, hi: block.hi });
  return parts;
}

/** Adds `block` to an ascending, disjoint list, joining what it overlaps or touches. Mutates `sorted`. */
function insertMerged(sorted: Interval[], block: Interval): void {
  const from = firstReaching(sorted, block.lo - 1n);
  let to = from;
  let lo = block.lo;
  let hi = block.hi;
  for (; to < sorted.length && (sorted[to] as Interval).lo <= block.hi + 1n; to++) {
    const joined = sorted[to] as Interval;
    if (joined.lo < lo) lo = joined.lo;
    if (joined.hi > hi) hi = joined.hi;
  }
  sorted.splice(from, to - from, { lo, hi });
}

/**
 * The blocks made disjoint in order of preference: each address stays only in the first block naming it,
 * a later block keeping its other addresses (split where an earlier block cut through it).
 */
export function preferenceOrder(blocks: Iterable<Interval>): Interval[] {
  const seen: Interval[] = [];
  const ordered: Interval[] = [];
  for (const block of blocks) {
    ordered.push(...uncovered(block, seen));
    insertMerged(seen, block);
  }
  return ordered;
}

/** The addresses between the lowest and highest picked address that the list does not name, ascending. */
export function unpicked(picks: readonly Interval[]): Interval[] {
  const sorted = mergeIntervals(picks);
  const gaps: Interval[] = [];
  for (let i = 1; i < sorted.length; i++) {
    gaps.push({ lo: (sorted[i - 1] as Interval).hi + 1n, hi: (sorted[i] as Interval).lo - 1n });
  }
  return gaps;
}
