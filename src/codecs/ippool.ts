// The IPPool object as Whereabouts writes it: `spec.range` and `spec.allocations`, a map from the decimal
// offset of an address (from the IP part of `spec.range`) to `{id, podref, ifname}`. Ours carry labels too
// when they are a node's slice pool (`pool-labels.ts`).

import type { Allocation, Owner } from '../allocator/allocation.ts';
import type { Family } from '../ip/address.ts';
import { formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import type { PoolLabels } from './pool-labels.ts';
import { ok } from '../errors.ts';
import { at, isObject, malformed, objectAt, textAt, type Decoded, type JsonObject } from './decode.ts';
import { metaOf } from './object-meta.ts';

export const group = 'whereabouts.cni.cncf.io';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;

/** One entry of `spec.allocations`, exactly as stored. */
export type AllocationEntry = { id: string; podref: string; ifname?: string };

/** An allocation with its key and its entry exactly as stored, for the `test` of a conditional write. */
export type StoredAllocation = Allocation & { readonly key: string; readonly stored: unknown };

export type PoolSnapshot = {
  readonly name: string;
  readonly resourceVersion: string;
  /** `spec.range` as written. */
  readonly range: string;
  /** The address offsets count from: the IP part of `spec.range` as written (normally the network). */
  readonly base: bigint;
  readonly family: Family;
  readonly allocations: readonly StoredAllocation[];
  /** Offsets that are not decimal numbers: skipped, as Whereabouts skips them, and never written. */
  readonly unreadableKeys: readonly string[];
  /** `metadata.labels` (those with string values); empty when it has none. */
  readonly labels: PoolLabels;
};

export const entryOf = (owner: Owner): AllocationEntry => ({
  id: owner.containerId,
  podref: owner.podRef,
  ifname: owner.ifName,
});

export const offsetKey = (address: bigint, base: bigint): string => (address - base).toString();

export function newPool(name: string, subnet: Cidr, labels?: PoolLabels): JsonObject {
  return {
    apiVersion,
    kind: 'IPPool',
    metadata: { name, ...(labels === undefined ? {} : { labels }) },
    spec: { range: formatCidr(normalise(subnet)), allocations: {} },
  };
}

/** The raw `spec.allocations` of a pool and what its keys count from: enough to decode entries one by one. */
export type RawPool = {
  readonly base: bigint;
  readonly family: Family;
  readonly entries: Readonly<JsonObject>;
};

/** What the codec reads of an IPPool's spec: its range as written too. */
export type PoolSpec = RawPool & {
  /** `spec.range` as written. */
  readonly range: string;
};

/**
 * The `spec.range` and `spec.allocations` of an IPPool object, its entries left undecoded (GC and the
 * exporter decode them one at a time); an error when the range is not a CIDR or the allocations no map.
 */
export function rawPool(object: unknown): Decoded<PoolSpec> {
  const spec = objectAt(object, 'spec');
  const range = typeof spec.range === 'string' ? parseCidr(spec.range) : undefined;
  if (range === undefined || typeof spec.range !== 'string')
    return malformed('IPPool', object, `${at('spec.range', spec.range)} is not a CIDR`);
  const { allocations } = spec;
  if (allocations !== undefined && allocations !== null && !isObject(allocations))
    return malformed('IPPool', object, `${at('spec.allocations', allocations)} is not a map`);
  return ok({ range: spec.range, base: range.address, family: range.family, entries: allocations ?? {} });
}

/**
 * One entry of `spec.allocations`; undefined when its key is not a decimal offset inside the family or its
 * value not an object. Fields of another type than a string read as absent (''); the entry still holds its
 * address, and `stored` keeps it exactly as read for the `test` of a write.
 */
export function decodeEntry(pool: RawPool, key: string, value: unknown): StoredAllocation | undefined {
  // An array holds its address too (as it always did): only what is no object at all is unreadable.
  if (!/^[0-9]{1,40}$/.test(key) || typeof value !== 'object' || value === null) return undefined;
  const address = pool.base + BigInt(key);
  if (address >= 1n << (pool.family === 4 ? 32n : 128n)) return undefined;
  return {
    address,
    key,
    stored: value,
    containerId: textAt(value, 'id'),
    podRef: textAt(value, 'podref'),
    ifName: textAt(value, 'ifname'),
  };
}

/** Reads an IPPool object; an error naming it when its `spec.range` is not a CIDR (a damaged object). */
export function decodePool(object: unknown): Decoded<PoolSnapshot> {
  const metadata = metaOf(object);
  const pool = rawPool(object);
  if (!pool.ok) return pool;
  const allocations: StoredAllocation[] = [];
  const unreadableKeys: string[] = [];
  for (const [key, value] of Object.entries(pool.value.entries)) {
    const allocation = decodeEntry(pool.value, key, value);
    if (allocation === undefined) unreadableKeys.push(key);
    else allocations.push(allocation);
  }
  return ok({
    name: metadata.name,
    resourceVersion: metadata.resourceVersion,
    range: pool.value.range,
    base: pool.value.base,
    family: pool.value.family,
    allocations,
    unreadableKeys,
    labels: metadata.labels ?? {},
  });
}
