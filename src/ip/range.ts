import { broadcastOf, networkOf, type Cidr } from './cidr.ts';
import { clipIntervals, intervalsContain, mergeIntervals, type Interval } from './interval.ts';
import { preferenceOrder, unpicked } from './pick-list.ts';

/**
 * An allocation range: a subnet, the part of it that may be handed out, and what is excluded from that part.
 * Addresses are absolute values of the subnet's family.
 */
export type Range = {
  /** The normalised subnet (host bits cleared); results carry its prefix length. */
  readonly subnet: Cidr;
  /** Lowest and highest address that may be allocated (`range_start` / `range_end`, within the usable part). */
  readonly first: bigint;
  readonly last: bigint;
  /**
   * Addresses inside [first, last] that are not handed out, disjoint and ascending: the `exclude` entries
   * and `exclude_gateway`, and with a pick list every address it does not name.
   */
  readonly exclusions: readonly Interval[];
  /**
   * `pick_addresses`: the addresses to hand out as disjoint blocks in order of preference (the first free
   * address of the first block that has one is taken), inside [first, last], which they narrow to their
   * lowest and highest address. Absent: the lowest free addresses are taken.
   */
  readonly picks?: readonly Interval[];
};

/**
 * The addresses of a subnet that may be assigned. Like Whereabouts, the network and broadcast (for IPv6 the
 * all-ones host) addresses are skipped. Unlike Whereabouts, which refuses subnets with fewer than two host
 * bits, a /31 or /127 point-to-point subnet has both addresses usable (RFC 3021, RFC 6164) and a /32 or
 * /128 has its single address.
 */
export function usableAddresses(subnet: Cidr): Interval {
  const network = networkOf(subnet);
  const broadcast = broadcastOf(subnet);
  return broadcast - network >= 3n
    ? { lo: network + 1n, hi: broadcast - 1n }
    : { lo: network, hi: broadcast };
}

/** The exclusion CIDRs as address intervals: each covers its whole subnet, network and broadcast included. */
export const exclusionIntervals = (exclusions: readonly Cidr[]): Interval[] =>
  exclusions.map((c) => ({ lo: networkOf(c), hi: broadcastOf(c) }));

/**
 * Builds a range. `start`/`end` narrow the usable part; the caller has checked that they lie in the subnet
 * and are ordered. Exclusions may overlap, be unsorted or reach outside the range; only the part inside
 * [first, last] is kept. `picks`, when given, are the pick list's blocks in the order written (they may
 * overlap and reach outside [first, last]): the range then hands out only their addresses, in that order.
 */
export function makeRange(
  subnet: Cidr,
  exclusions: readonly Cidr[],
  start?: bigint,
  end?: bigint,
  picks?: readonly Interval[],
): Range {
  const usable = usableAddresses(subnet);
  const first = start !== undefined && start > usable.lo ? start : usable.lo;
  const last = end !== undefined && end < usable.hi ? end : usable.hi;
  const excluded = mergeIntervals(exclusionIntervals(exclusions));
  const whole: Range = { subnet, first, last, exclusions: clipIntervals(excluded, first, last) };
  if (picks === undefined) return whole;
  return narrowToPicks(whole, preferenceOrder(picks));
}

/**
 * The range handing out only `picks` (disjoint, in order of preference): [first, last] shrinks to the
 * lowest and highest picked address, and what lies between them unpicked becomes excluded. With nothing
 * picked inside the range, it hands out nothing.
 */
function narrowToPicks(range: Range, ordered: readonly Interval[]): Range {
  const picks = clipIntervals(ordered, range.first, range.last);
  const sorted = mergeIntervals(picks);
  const lowest = sorted[0];
  const highest = sorted.at(-1);
  if (lowest === undefined || highest === undefined) {
    return { ...range, exclusions: [{ lo: range.first, hi: range.last }], picks: [] };
  }
  const exclusions = mergeIntervals([...range.exclusions, ...unpicked(picks)]);
  return {
    subnet: range.subnet,
    first: lowest.lo,
    last: highest.hi,
    exclusions: clipIntervals(exclusions, lowest.lo, highest.hi),
    picks,
  };
}

/**
 * The part of the range inside [lo, hi] (a node's slice): its own bounds, exclusions and pick list still
 * apply. Undefined when nothing of the range falls there — with a pick list, when it names nothing there.
 */
export function clipRange(range: Range, lo: bigint, hi: bigint): Range | undefined {
  const first = range.first > lo ? range.first : lo;
  const last = range.last < hi ? range.last : hi;
  if (first > last) return undefined;
  const clipped: Range = {
    subnet: range.subnet,
    first,
    last,
    exclusions: clipIntervals(range.exclusions, first, last),
  };
  if (range.picks === undefined) return clipped;
  const picks = clipIntervals(range.picks, first, last);
  return picks.length === 0 ? undefined : narrowToPicks(clipped, picks);
}

/** The range without one more address (`exclude_gateway`); unchanged when it does not hand it out. */
export function withoutAddress(range: Range, address: bigint): Range {
  if (!rangeOffers(range, address)) return range;
  const exclusions = mergeIntervals([...range.exclusions, { lo: address, hi: address }]);
  return { ...range, exclusions };
}

/** Whether the range would hand out this address: inside [first, last] and not excluded. */
export const rangeOffers = (range: Range, address: bigint): boolean =>
  address >= range.first && address <= range.last && !intervalsContain(range.exclusions, address);

/** How many addresses the range can hand out in all. */
export const rangeCapacity = (range: Range): bigint =>
  range.exclusions.reduce((n, i) => n - (i.hi - i.lo + 1n), range.last - range.first + 1n);
