// What the operator commands and the exporter report, computed from pools and reservations as GC collects
// them: per-pool use against capacity (which the NADs set: src/ops/capacity.ts), who holds an address, what
// a pod holds. Pure: no API calls here.

import { formatIP, ipOf, parseIP, type IP } from '../ip/address.ts';
import { cidrContains, normalise, parseCidr } from '../ip/cidr.ts';
import type { PoolState, ReservationState } from '../gc/plan.ts';
import { decodeEntry, type RawPool } from '../codecs/ippool.ts';
import { noNads, poolCapacity, type NadIndex, type PoolShape } from './capacity.ts';
import { reservationName } from '../codecs/names.ts';
import { isClaimed, isRetained } from '../allocator/keeper.ts';

export type PoolUsage = {
  readonly namespace: string;
  readonly pool: string;
  readonly range: string;
  readonly networkName: string;
  /** Entries that decode to an address. */
  readonly allocated: number;
  /**
   * Addresses the pool can hand out: as the NAD it follows allows (its range_start/range_end and exclusions
   * applied, its part of the slice for a node's slice pool), else the CIDR's usable addresses
   * (src/ops/capacity.ts).
   */
  readonly capacity: bigint;
  /** Of those, not allocated. */
  readonly free: bigint;
  /** The NAD (`namespace/name`) the figures follow; undefined: no NAD names the pool, figures of the CIDR. */
  readonly follows?: string;
  /** Every NAD whose config names the pool. */
  readonly nads: readonly string[];
};

/** The addresses a pool's entries hold. */
export function addressesOf(pool: RawPool): bigint[] {
  const addresses: bigint[] = [];
  for (const [key, value] of Object.entries(pool.entries)) {
    const a = decodeEntry(pool, key, value);
    if (a !== undefined) addresses.push(a.address);
  }
  return addresses;
}

/** Use and capacity of a pool, capacity as the NADs naming it allow (none given: the CIDR's). */
export function poolUsage(p: PoolState, nads: NadIndex = noNads): PoolUsage {
  return usageOf(
    p.namespace,
    { name: p.name, range: p.range, networkName: p.networkName, addresses: addressesOf(p.pool) },
    nads,
  );
}

/** The same from a pool's shape: the exporter keeps only that of each pool, not its entries. */
export function usageOf(namespace: string, shape: PoolShape, nads: NadIndex): PoolUsage {
  const { capacity, free, follows, nads: naming } = poolCapacity(shape, nads);
  return {
    namespace,
    pool: shape.name,
    range: shape.range,
    networkName: shape.networkName,
    allocated: shape.addresses.length,
    capacity,
    free,
    ...(follows === undefined ? {} : { follows }),
    nads: naming,
  };
}

/** Share of the pool's capacity that is allocated, 0 to 1; 1 when it can hand out nothing. */
export const utilisation = (u: PoolUsage): number =>
  u.capacity === 0n ? 1 : Number(u.capacity - u.free) / Number(u.capacity);

/** Where a pool's capacity comes from, for a table: `apps/blue`, `apps/blue (1 of 2 NADs)`, `CIDR (no NAD)`. */
export const capacityOf = (u: PoolUsage): string =>
  u.follows === undefined
    ? 'CIDR (no NAD)'
    : u.nads.length > 1
      ? `${u.follows} (1 of ${u.nads.length} NADs)`
      : u.follows;

/** A pool entry or a reservation naming an address or a pod. */
export type Holding =
  | {
      readonly kind: 'allocation';
      readonly namespace: string;
      readonly pool: string;
      readonly address: string;
      readonly podRef: string;
      readonly containerId: string;
      readonly ifName: string;
      /** Kept beyond the pod's sandboxes: for its StatefulSet member (`sticky_ips`), or owned by an IPAMClaim. */
      readonly keptFor?: 'statefulset-member' | 'ipamclaim';
    }
  | {
      readonly kind: 'reservation';
      readonly namespace: string;
      readonly name: string;
      readonly address: string;
      readonly podRef: string;
      readonly ifName: string;
    };

function allocationsOf(p: PoolState, picks: (address: IP, podRef: string) => boolean): Holding[] {
  const held: Holding[] = [];
  for (const [key, value] of Object.entries(p.pool.entries)) {
    const a = decodeEntry(p.pool, key, value);
    if (a === undefined) continue;
    const address = ipOf(p.pool.family, a.address);
    if (!picks(address, a.podRef)) continue;
    held.push({
      kind: 'allocation',
      namespace: p.namespace,
      pool: p.name,
      address: formatIP(address),
      podRef: a.podRef,
      containerId: a.containerId,
      ifName: a.ifName,
      ...(isRetained(a) ? { keptFor: 'statefulset-member' as const } : {}),
      ...(isClaimed(a) ? { keptFor: 'ipamclaim' as const } : {}),
    });
  }
  return held;
}

/** Every pool entry and reservation of `address` (in any network). */
export function holdersOf(
  address: IP,
  pools: readonly PoolState[],
  reservations: readonly ReservationState[],
): Holding[] {
  const text = formatIP(address);
  const inPools = pools
    .filter((p) => {
      const cidr = parseCidr(p.range);
      return cidr !== undefined && cidrContains(normalise(cidr), address);
    })
    .flatMap((p) => allocationsOf(p, (a) => a.value === address.value && a.family === address.family));
  const bare = reservationName(address, '');
  const reserved = reservations
    .filter((r) => r.name === bare || r.name.endsWith(`-${bare}`))
    .map((r): Holding => ({
      kind: 'reservation',
      namespace: r.namespace,
      name: r.name,
      address: text,
      podRef: r.podRef,
      ifName: r.ifName,
    }));
  return [...inPools, ...reserved];
}

/** Every pool entry and reservation of a pod (`namespace/name`). */
export function holdingsOf(
  podRef: string,
  pools: readonly PoolState[],
  reservations: readonly ReservationState[],
): Holding[] {
  // Reservation names of the pod's own addresses, which tell the address of a reservation for certain.
  const named = new Map<string, string>();
  const inPools = pools.flatMap((p) =>
    allocationsOf(p, (address, ref) => {
      if (ref !== podRef) return false;
      named.set(`${p.namespace}/${reservationName(address, p.networkName)}`, formatIP(address));
      return true;
    }),
  );
  const reserved = reservations
    .filter((r) => r.podRef === podRef)
    .map((r): Holding => ({
      kind: 'reservation',
      namespace: r.namespace,
      name: r.name,
      address: named.get(`${r.namespace}/${r.name}`) ?? addressOfReservation(r.name),
      podRef: r.podRef,
      ifName: r.ifName,
    }));
  return [...inPools, ...reserved];
}

/**
 * The address a reservation's name stands for, when nothing else tells: the name less any network-name
 * prefix (`blue-10.0.0.5`). IPv6 names are ambiguous once `-` replaced `:` (`abc-2001-db8--5` may be
 * network `abc`'s 2001:db8::5 or abc:2001:db8::5): the longest reading is a best guess.
 */
export function addressOfReservation(name: string): string {
  const parts = name.split('-');
  for (let i = 0; i < parts.length; i++) {
    const tail = parts.slice(i).join('-');
    const v4 = parseIP(tail);
    if (v4?.family === 4) return formatIP(v4);
    const v6 = parseIP(tail.replace(/-/g, ':'));
    if (v6?.family === 6 && reservationName(v6, '') === tail) return formatIP(v6);
  }
  return '';
}

/** A plain text table: a header row and left-aligned columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
