// The labels of a node's slice pool: which node allocates from it and which sliced network it belongs to.
// A node agent lists and watches only its own node's slice pools with `nodeSelector(node)`, so what the API
// server sends it does not grow with the number of nodes. Label values are at most 63 characters of
// [A-Za-z0-9._-], alphanumeric at both ends; a name that is not one (a node name of up to 253 characters,
// or a network name that long) is written as a readable prefix and a hash of the whole name.

import { createHash } from 'node:crypto';

/** The node that allocates from the pool (Whereabouts' group is theirs; this prefix is ours). */
export const nodeLabel = 'whereabouts-ts.io/node';
/** The sliced network: the name of the NodeSlicePool whose slice the pool holds. */
export const networkLabel = 'whereabouts-ts.io/network';

export type PoolLabels = Readonly<Record<string, string>>;

const maxValue = 63;
const validValue = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?$/;
/** Hex digits of the SHA-256 of the name in a hashed value: 64 bits. */
const hashDigits = 16;

/**
 * The name itself when it is a valid label value; else its first 46 characters (others than
 * [A-Za-z0-9._-] as `-`, trimmed to alphanumeric ends), `-`, and the first 16 hex digits of the SHA-256 of
 * the whole name (UTF-8): `<prefix>-<hash>`, or `<hash>` alone when no prefix is left.
 */
export function labelValue(name: string): string {
  if (name.length <= maxValue && validValue.test(name)) return name;
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, hashDigits);
  const prefix = name
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, maxValue - hashDigits - 1)
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[^A-Za-z0-9]+$/, '');
  return prefix === '' ? hash : `${prefix}-${hash}`;
}

/** The labels of `node`'s slice pools of the sliced network `network` (its NodeSlicePool's name). */
export const slicePoolLabels = (node: string, network: string): PoolLabels => ({
  [nodeLabel]: labelValue(node),
  [networkLabel]: labelValue(network),
});

/** The label selector of `node`'s slice pools, every network's: what its agent lists and watches. */
export const nodeSelector = (node: string): string => `${nodeLabel}=${labelValue(node)}`;

/** Whether `current` has every label of `wanted` with its value. */
export const hasLabels = (current: PoolLabels, wanted: PoolLabels): boolean =>
  Object.entries(wanted).every(([key, value]) => current[key] === value);
