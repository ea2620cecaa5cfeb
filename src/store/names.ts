// Object names exactly as Whereabouts computes them (pkg/storage/kubernetes/ipam.go), so that both can
// share a cluster's pools and reservations.

import { formatIP, type IP } from '../ip/address.ts';
import { formatCidr, type Cidr } from '../ip/cidr.ts';

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

/** Whether the API server would accept the name (a DNS-1123 subdomain). */
export const isValidObjectName = (name: string): boolean =>
  name.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name);
