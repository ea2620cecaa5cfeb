// How many addresses a pool can really hand out. An IPPool records only its CIDR; what the allocator may
// give from it is set by the NetworkAttachmentDefinitions naming it — `range_start`/`range_end`,
// `exclude`, `exclude_gateway` and `pick_addresses` (only the listed addresses) narrow it, and a node's
// slice pool holds only the range's part inside its slice. A /16 narrowed to five addresses is full at
// five, not at 65534, and the pool alerts must see that. So capacity and free
// addresses come from the NADs' own parsed configs (the plugin's loader and src/ip/range.ts, not a second
// reading of the keys), matched to pools by the names the plugin gives them (src/codecs/names.ts).
//
// Several NADs can name one pool (one network, the same range, in several namespaces) with different
// narrowings. Each NAD's pods fail once the addresses *that NAD* may hand out are all taken, whatever the
// others still have: the figures follow the NAD with the fewest free addresses in the pool (ties: the
// smaller capacity, then the NAD's name), so the alerts fire as soon as any NAD's pods would fail, and they
// say which NAD that is. With no NAD naming the pool (deleted, or unreadable), the pool's CIDR is all there
// is to go by, and the figures say so. Pure: the NADs and pools come from the caller.

import { whereaboutsPlugins } from '../config/check-nad.ts';
import { loadConfig } from '../config/load.ts';
import { broadcastOf, formatCidr, networkOf, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import { makeRange, rangeCapacity, rangeOffers, type Range } from '../ip/range.ts';
import { withinSlice } from '../slices/layout.ts';
import { poolName } from '../codecs/names.ts';
import { decodeNad } from '../codecs/nad.ts';
import { keyOf } from '../codecs/object-meta.ts';

/** One range of a NAD's Whereabouts config: where that NAD's addresses come from. */
export type NadRange = {
  /** `namespace/name` of the NAD. */
  readonly nad: string;
  readonly networkName: string;
  /** The range with its `range_start`/`range_end` and exclusions applied. */
  readonly range: Range;
  /** The prefix length of its node slices, when `node_slice_size` is set. */
  readonly slicePrefix?: number;
};

/**
 * The ranges of every Whereabouts config of a NAD (each plugin of a conflist), loaded by the plugin's own
 * loader; none for a NAD whose config does not load. The reader has no node's files: `configuration_path`
 * is dropped, so a range given only in a node's flat file is not seen (that pool falls back to its CIDR).
 */
export function nadRangesOf(nad: unknown): NadRange[] {
  const decoded = decodeNad(nad);
  if (!decoded.ok) return [];
  const id = keyOf(nad);
  let config: unknown;
  try {
    config = decoded.value.config === '' ? undefined : JSON.parse(decoded.value.config);
  } catch {
    return [];
  }
  return whereaboutsPlugins(config).flatMap((plugin) => {
    const { configuration_path: _ignored, ...ipam } = plugin.ipam;
    const loaded = loadConfig({
      stdin: JSON.stringify({ ...plugin, ipam }),
      cniArgs: undefined,
      flatFilePaths: [],
    });
    if (!loaded.ok) return [];
    const { networkName, ranges } = loaded.value.config;
    return ranges.map((r) => ({
      nad: id,
      networkName,
      range: r.range,
      ...(r.slicePrefix === undefined ? {} : { slicePrefix: r.slicePrefix }),
    }));
  });
}

/** The NADs' ranges arranged for lookup by pool. */
export type NadIndex = {
  /** Ranges without slices, by the name of their one pool. */
  readonly whole: ReadonlyMap<string, readonly NadRange[]>;
  readonly sliced: readonly NadRange[];
};

export function indexNads(ranges: readonly NadRange[]): NadIndex {
  const whole = new Map<string, NadRange[]>();
  const sliced: NadRange[] = [];
  for (const r of ranges) {
    if (r.slicePrefix !== undefined) {
      sliced.push(r);
      continue;
    }
    const name = poolName(r.range.subnet, r.networkName);
    whole.set(name, [...(whole.get(name) ?? []), r]);
  }
  return { whole, sliced };
}

export const noNads: NadIndex = indexNads([]);

/** What capacity needs of a pool: its name, `spec.range`, network name, and the addresses it holds. */
export type PoolShape = {
  readonly name: string;
  readonly range: string;
  /** As GC reads it (src/codecs/names.ts networkNameOf, with the NodeSlicePools). */
  readonly networkName: string;
  readonly addresses: readonly bigint[];
};

export type PoolCapacity = {
  /** Addresses the pool can hand out: per the NAD it follows, else its CIDR's usable addresses. */
  readonly capacity: bigint;
  /** Of those, not allocated. */
  readonly free: bigint;
  /** The NAD (`namespace/name`) the figures follow; undefined when no NAD names the pool (CIDR figures). */
  readonly follows?: string;
  /** Every NAD whose config names the pool, sorted. */
  readonly nads: readonly string[];
};

const within = (inner: Cidr, outer: Cidr): boolean =>
  inner.family === outer.family &&
  inner.prefix >= outer.prefix &&
  networkOf(inner) >= networkOf(outer) &&
  broadcastOf(inner) <= broadcastOf(outer);

/** Whether the pool is a node's slice pool of this sliced range: `[<network>-]<node>-<slice>`. */
function isSliceOf(pool: PoolShape, slice: Cidr, r: NadRange): boolean {
  if (r.slicePrefix !== slice.prefix || !within(slice, r.range.subnet)) return false;
  if (pool.networkName !== r.networkName) return false;
  const head = r.networkName === '' ? '' : `${r.networkName}-`;
  const tail = `-${poolName(slice, '')}`;
  return (
    pool.name.startsWith(head) && pool.name.endsWith(tail) && pool.name.length > head.length + tail.length
  );
}

type Candidate = { readonly nad: string; readonly range: Range | undefined };

const figuresOf = (range: Range | undefined, addresses: readonly bigint[]) => {
  if (range === undefined) return { capacity: 0n, free: 0n };
  const capacity = rangeCapacity(range);
  const used = addresses.reduce((n, a) => (rangeOffers(range, a) ? n + 1n : n), 0n);
  return { capacity, free: capacity - used };
};

/** The capacity and free addresses of a pool, following the rule at the top of this file. */
export function poolCapacity(pool: PoolShape, index: NadIndex): PoolCapacity {
  const parsed = parseCidr(pool.range);
  if (parsed === undefined) return { capacity: 0n, free: 0n, nads: [] };
  const cidr = normalise(parsed);
  const subnet = formatCidr(cidr);
  const candidates: Candidate[] = [
    ...(index.whole.get(pool.name) ?? [])
      .filter((r) => formatCidr(r.range.subnet) === subnet)
      .map((r) => ({ nad: r.nad, range: r.range })),
    ...index.sliced
      .filter((r) => isSliceOf(pool, cidr, r))
      .map((r) => ({ nad: r.nad, range: withinSlice(r.range, cidr) })),
  ];
  if (candidates.length === 0) return { ...figuresOf(makeRange(cidr, []), pool.addresses), nads: [] };
  const figures = candidates
    .map((c) => ({ nad: c.nad, ...figuresOf(c.range, pool.addresses) }))
    .sort(
      (a, b) =>
        (a.free < b.free ? -1 : a.free > b.free ? 1 : 0) ||
        (a.capacity < b.capacity ? -1 : a.capacity > b.capacity ? 1 : 0) ||
        (a.nad < b.nad ? -1 : a.nad > b.nad ? 1 : 0),
    );
  const first = figures[0] as (typeof figures)[number];
  return {
    capacity: first.capacity,
    free: first.free,
    follows: first.nad,
    nads: [...new Set(figures.map((f) => f.nad))].sort(),
  };
}
