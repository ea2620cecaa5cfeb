import { broadcastOf, networkOf, type Cidr } from './cidr.ts';
import { intervalsContain, mergeIntervals, type Interval } from './interval.ts';

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
  /** Excluded addresses inside [first, last], disjoint and ascending. */
  readonly exclusions: readonly Interval[];
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
 * [first, last] is kept.
 */
export function makeRange(subnet: Cidr, exclusions: readonly Cidr[], start?: bigint, end?: bigint): Range {
  const usable = usableAddresses(subnet);
  const first = start !== undefined && start > usable.lo ? start : usable.lo;
  const last = end !== undefined && end < usable.hi ? end : usable.hi;
  const clipped = mergeIntervals(exclusionIntervals(exclusions))
    .filter((i) => i.hi >= first && i.lo <= last)
    .map((i) => ({ lo: i.lo < first ? first : i.lo, hi: i.hi > last ? last : i.hi }));
  return { subnet, first, last, exclusions: clipped };
}

/** Whether the range would hand out this address: inside [first, last] and not excluded. */
export const rangeOffers = (range: Range, address: bigint): boolean =>
  address >= range.first && address <= range.last && !intervalsContain(range.exclusions, address);

/** How many addresses the range can hand out in all. */
export const rangeCapacity = (range: Range): bigint =>
  range.exclusions.reduce((n, i) => n - (i.hi - i.lo + 1n), range.last - range.first + 1n);
