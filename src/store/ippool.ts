// The IPPool object as Whereabouts writes it: `spec.range` and `spec.allocations`, a map from the decimal
// offset of an address (from the IP part of `spec.range`) to `{id, podref, ifname}`. Ours carry labels too
// when they are a node's slice pool (`pool-labels.ts`).

import type { Allocation, Owner } from '../allocator/allocation.ts';
import type { Family } from '../ip/address.ts';
import { formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import type { PoolLabels } from './pool-labels.ts';
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

export function newPool(name: string, subnet: Cidr, labels?: PoolLabels): Record<string, unknown> {
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
  readonly entries: Readonly<Record<string, unknown>>;
};

/** The `spec.range` and `spec.allocations` of an IPPool object; undefined when the range is not a CIDR. */
export function rawPool(object: Record<string, unknown>): RawPool | undefined {
  const spec = (object.spec ?? {}) as { range?: unknown; allocations?: unknown };
  const range = typeof spec.range === 'string' ? parseCidr(spec.range) : undefined;
  if (range === undefined) return undefined;
  const entries =
    typeof spec.allocations === 'object' && spec.allocations !== null
      ? (spec.allocations as Record<string, unknown>)
      : {};
  return { base: range.address, family: range.family, entries };
}

/** One entry of `spec.allocations`; undefined when its key is not a decimal offset inside the family. */
export function decodeEntry(pool: RawPool, key: string, value: unknown): StoredAllocation | undefined {
  const entry = value as Partial<AllocationEntry> | null;
  if (!/^[0-9]{1,40}$/.test(key) || entry === null || typeof entry !== 'object') return undefined;
  const address = pool.base + BigInt(key);
  if (address >= 1n << (pool.family === 4 ? 32n : 128n)) return undefined;
  return {
    address,
    key,
    stored: entry,
    containerId: entry.id ?? '',
    podRef: entry.podref ?? '',
    ifName: entry.ifname ?? '',
  };
}

/** Reads an IPPool object; undefined when its `spec.range` is not a CIDR (a damaged object). */
export function decodePool(object: Record<string, unknown>): PoolSnapshot | undefined {
  const metadata = metaOf(object);
  const pool = rawPool(object);
  if (pool === undefined) return undefined;
  const allocations: StoredAllocation[] = [];
  const unreadableKeys: string[] = [];
  for (const [key, value] of Object.entries(pool.entries)) {
    const allocation = decodeEntry(pool, key, value);
    if (allocation === undefined) unreadableKeys.push(key);
    else allocations.push(allocation);
  }
  return {
    name: metadata.name,
    resourceVersion: metadata.resourceVersion,
    base: pool.base,
    family: pool.family,
    allocations,
    unreadableKeys,
    labels: metadata.labels ?? {},
  };
}
