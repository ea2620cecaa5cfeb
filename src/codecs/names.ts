// Object names exactly as Whereabouts computes them (pkg/storage/kubernetes/ipam.go), so that both can
// share a cluster's pools and reservations.

import { isDns1123Subdomain } from '../config/kube-names.ts';
import { formatIP, type IP } from '../ip/address.ts';
import { formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import type { SliceAllocation } from '../slices/layout.ts';

/** Whereabouts' normalizeRange: a trailing `:` gets a `0`, then every `:` and `/` becomes `-`. */
const normalizeRange = (text: string): string =>
  (text.endsWith(':') ? `${text}0` : text).replace(/[:/]/g, '-');

/**
 * The IPPool of a range: `10.0.0.0-8`, `<network_name>-10.0.0.0-8`; a node's slice pool adds the node:
 * `<node>-<slice>` or `<network_name>-<node>-<slice>`.
 */
export function poolName(subnet: Cidr, networkName: string, nodeName?: string): string {
  const parts = [networkName, nodeName ?? '', normalizeRange(formatCidr(subnet))].filter((p) => p !== '');
  return parts.join('-');
}

/**
 * The NodeSlicePool of the range at `index` of a network (named after `network_name`, else the CNI name):
 * the first range's is the name itself, as Whereabouts names it; later ranges, which Whereabouts never
 * sliced, add their range: `<name>-10.1.0.0-16`.
 */
export const nodeSlicePoolName = (name: string, index: number, subnet: Cidr): string =>
  index === 0 ? name : poolName(subnet, name);

/** The OverlappingRangeIPReservation of an address: `10.0.0.1`, `2001--1`, `2001--0` for `2001::`, with `<network_name>-` in front. */
export function reservationName(ip: IP, networkName: string): string {
  const text = formatIP(ip);
  const name = (text.endsWith(':') ? `${text}0` : text).replace(/:/g, '-');
  return networkName === '' ? name : `${networkName}-${name}`;
}

/** Whether the API server would accept the name: a DNS-1123 subdomain (no `..`, no `.-`). */
export const isValidObjectName = (name: string): boolean => isDns1123Subdomain(name);

/** A NodeSlicePool as the network-name lookup needs it. */
export type SliceLayout = { readonly name: string; readonly allocations: readonly SliceAllocation[] };

const normalisedText = (range: string): string | undefined => {
  const cidr = parseCidr(range);
  return cidr === undefined ? undefined : formatCidr(normalise(cidr));
};

/** The part of a pool's name before its range (`blue-10.0.0.0-24` → `blue`); undefined when it does not end in it. */
function prefixOf(poolName: string, range: string): { prefix: string; slice: string } | undefined {
  const text = normalisedText(range);
  if (text === undefined) return undefined;
  const suffix = `-${normalizeRange(text)}`;
  if (poolName === normalizeRange(text)) return { prefix: '', slice: text };
  return poolName.endsWith(suffix) ? { prefix: poolName.slice(0, -suffix.length), slice: text } : undefined;
}

/** A node's slice pool: the NodeSlicePool its slice is listed in, and its network's name. */
export type NodeSliceOf = { readonly nodeSlicePool: string; readonly network: string };

/**
 * Whether an IPPool is a node's slice pool — `<network>-<node>-<slice>`, or `<node>-<slice>` for an unnamed
 * network — told by the NodeSlicePool listing its range as a slice (named after `network_name` when there is
 * one) and the node holding that slice; undefined for a whole-range pool.
 */
export function nodeSliceOf(
  poolName: string,
  range: string,
  slicePools: readonly SliceLayout[],
): NodeSliceOf | undefined {
  const parts = prefixOf(poolName, range);
  if (parts === undefined) return undefined;
  const { prefix, slice } = parts;
  const listing = slicePools.filter((sp) =>
    sp.allocations.some((a) => normalisedText(a.sliceRange) === slice),
  );
  for (const sp of listing) {
    for (const { nodeName, sliceRange } of sp.allocations) {
      if (nodeName === '' || normalisedText(sliceRange) !== slice) continue;
      if (prefix === nodeName) return { nodeSlicePool: sp.name, network: '' };
      if (prefix === `${sp.name}-${nodeName}`) return { nodeSlicePool: sp.name, network: sp.name };
    }
  }
  // The slice has changed hands since the pool was made: a named network's pool starts with its name.
  const named = listing.find((sp) => prefix.startsWith(`${sp.name}-`));
  return named === undefined ? undefined : { nodeSlicePool: named.name, network: named.name };
}

/**
 * The network name of an IPPool — what its reservations are prefixed with — from its name and range: a
 * whole-range pool is `<network>-<range>`; a node's slice pool is told by the NodeSlicePools
 * (`nodeSliceOf`) or — for the agent, which knows only its own node — by that node's name.
 */
export function networkNameOf(
  poolName: string,
  range: string,
  slicePools: readonly SliceLayout[] = [],
  node?: string,
): string {
  const parts = prefixOf(poolName, range);
  if (parts === undefined) return '';
  const sliced = nodeSliceOf(poolName, range, slicePools);
  if (sliced !== undefined) return sliced.network;
  const { prefix } = parts;
  if (node !== undefined) {
    if (prefix === node) return '';
    if (prefix.endsWith(`-${node}`)) return prefix.slice(0, -node.length - 1);
  }
  return prefix;
}
