// How the flat file fills the NAD's IPAM config, as Whereabouts does it with mergo (no override): a key takes
// the flat file's value only where the NAD's is empty — absent, null, "", 0, false or [] — and objects
// (`kubernetes`, `dns`) are filled key by key. `enable_overlapping_ranges` is never taken from the flat
// file, so a host-level file cannot turn off cluster-wide duplicate protection.

import { isObject } from './json.ts';

const neverFromFlatFile = new Set(['enable_overlapping_ranges']);

export const isEmptyValue = (value: unknown): boolean =>
  value === undefined ||
  value === null ||
  value === '' ||
  value === 0 ||
  value === false ||
  (Array.isArray(value) && value.length === 0);

function fill(nad: unknown, flat: unknown): unknown {
  if (isObject(nad) && isObject(flat)) {
    const merged: Record<string, unknown> = { ...nad };
    for (const [key, value] of Object.entries(flat)) merged[key] = fill(nad[key], value);
    return merged;
  }
  return isEmptyValue(nad) ? flat : nad;
}

/** Merges two sets of IPAM fields (canonical keys), the NAD's winning wherever it says something. */
export function mergeFlatFile(
  nad: ReadonlyMap<string, unknown>,
  flat: ReadonlyMap<string, unknown>,
): Map<string, unknown> {
  const merged = new Map(nad);
  for (const [key, value] of flat) {
    if (neverFromFlatFile.has(key)) continue;
    const result = fill(nad.get(key), value);
    if (result !== undefined) merged.set(key, result);
  }
  return merged;
}
