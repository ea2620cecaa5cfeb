/** A closed interval of addresses, `lo` ≤ `hi`. */
export type Interval = { readonly lo: bigint; readonly hi: bigint };

export const compareBigint = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorts the intervals and joins those that overlap or touch, so that the result is disjoint and ascending. */
export function mergeIntervals(intervals: Iterable<Interval>): Interval[] {
  const sorted = [...intervals].sort((a, b) => compareBigint(a.lo, b.lo));
  const merged: Interval[] = [];
  for (const next of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && next.lo <= last.hi + 1n) {
      if (next.hi > last.hi) merged[merged.length - 1] = { lo: last.lo, hi: next.hi };
    } else {
      merged.push(next);
    }
  }
  return merged;
}

/** The intervals cut to [lo, hi], order kept, those left empty dropped. */
export const clipIntervals = (intervals: readonly Interval[], lo: bigint, hi: bigint): Interval[] =>
  intervals
    .filter((i) => i.hi >= lo && i.lo <= hi)
    .map((i) => ({ lo: i.lo < lo ? lo : i.lo, hi: i.hi > hi ? hi : i.hi }));

/** Index of the last interval whose `lo` is ≤ `value` in an ascending list, or -1 when there is none. */
export function floorIndex(los: readonly bigint[], value: bigint): number {
  let low = 0;
  let high = los.length - 1;
  let found = -1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    if ((los[mid] as bigint) <= value) {
      found = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return found;
}

/** Whether `value` lies inside one of the disjoint ascending `intervals`. */
export function intervalsContain(intervals: readonly Interval[], value: bigint): boolean {
  let low = 0;
  let high = intervals.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const interval = intervals[mid] as Interval;
    if (value < interval.lo) high = mid - 1;
    else if (value > interval.hi) low = mid + 1;
    else return true;
  }
  return false;
}
