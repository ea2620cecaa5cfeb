// The IPPool object as Whereabouts writes it: `spec.range` and `spec.allocations`, a map from the decimal
// offset of an address (from the IP part of `spec.range`) to `{id, podref, ifname}`.

import type { Allocation, Owner } from '../allocator/allocation.ts';
import type { Family } from '../ip/address.ts';
import { formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';

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
};

export const entryOf = (owner: Owner): AllocationEntry => ({
  id: owner.containerId,
  podref: owner.podRef,
  ifname: owner.ifName,
});

export const offsetKey = (address: bigint, base: bigint): string => (address - base).toString();

export function newPool(name: string, subnet: Cidr): Record<string, unknown> {
  return {
    apiVersion,
    kind: 'IPPool',
    metadata: { name },
    spec: { range: formatCidr(normalise(subnet)), allocations: {} },
  };
}

/** Reads an IPPool object; undefined when its `spec.range` is not a CIDR (a damaged object). */
export function decodePool(object: Record<string, unknown>): PoolSnapshot | undefined {
  const metadata = (object.metadata ?? {}) as { name?: string; resourceVersion?: string };
  const spec = (object.spec ?? {}) as { range?: unknown; allocations?: unknown };
  const range = typeof spec.range === 'string' ? parseCidr(spec.range) : undefined;
  if (range === undefined) return undefined;
  const limit = 1n << (range.family === 4 ? 32n : 128n);
  const allocations: StoredAllocation[] = [];
  const unreadableKeys: string[] = [];
  const entries =
    typeof spec.allocations === 'object' && spec.allocations !== null ? Object.entries(spec.allocations) : [];
  for (const [key, value] of entries) {
    const entry = value as Partial<AllocationEntry> | null;
    if (!/^[0-9]{1,40}$/.test(key) || entry === null || typeof entry !== 'object') {
      unreadableKeys.push(key);
      continue;
    }
    const address = range.address + BigInt(key);
    if (address >= limit) {
      unreadableKeys.push(key);
      continue;
    }
    allocations.push({
      address,
      key,
      stored: entry,
      containerId: entry.id ?? '',
      podRef: entry.podref ?? '',
      ifName: entry.ifname ?? '',
    });
  }
  return {
    name: metadata.name ?? '',
    resourceVersion: metadata.resourceVersion ?? '',
    base: range.address,
    family: range.family,
    allocations,
    unreadableKeys,
  };
}
