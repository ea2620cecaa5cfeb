// The few readers the codecs of Kubernetes objects are written with (src/codecs/ippool.ts, nodeslicepool.ts,
// reservation.ts, lease.ts, …): type guards and field readers over parsed JSON, so that an object is
// decoded by looking at what it holds, never by a cast that claims what it holds. A decode that can fail
// returns a Result whose error names the object and the field: `IPPool kube-system/10.0.0.0-24: spec.range
// "x" is not a CIDR`. Kept to a handful of functions on purpose (no schema library: the plugin's cold start).

import { fail, type Result } from '../errors.ts';

/** A parsed JSON object (a Kubernetes object, or any map in one): its fields still to be decoded. */
export type JsonObject = Record<string, unknown>;

/** What a codec gives: the typed value, or a message naming the object and what is wrong with it. */
export type Decoded<T> = Result<T, string>;

/** Whether a value is a JSON object (not null, not an array). */
export const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The value itself when it is an object; an empty one otherwise (a body that is no object). */
export const objectOf = (value: unknown): JsonObject => (isObject(value) ? value : {});

/** The field of an object; undefined when the value is no object or has no such field. */
export const fieldOf = (value: unknown, key: string): unknown => (isObject(value) ? value[key] : undefined);

/** The object at `key`; an empty one when absent or of another type. */
export const objectAt = (value: unknown, key: string): JsonObject => objectOf(fieldOf(value, key));

/** The string at `key`; undefined when absent or of another type. */
export const stringAt = (value: unknown, key: string): string | undefined => {
  const field = fieldOf(value, key);
  return typeof field === 'string' ? field : undefined;
};

/** The string at `key`; '' when absent or of another type. */
export const textAt = (value: unknown, key: string): string => stringAt(value, key) ?? '';

/** The array at `key`; undefined when absent or of another type. */
export const arrayAt = (value: unknown, key: string): readonly unknown[] | undefined => {
  const field = fieldOf(value, key);
  return Array.isArray(field) ? field : undefined;
};

/** The string-valued entries of a map (labels, annotations), others left out; undefined for no map. */
export const stringMap = (value: unknown): Record<string, string> | undefined =>
  isObject(value)
    ? Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : undefined;

/**
 * A timestamp as RFC 3339 text: the API's strings as they are, client-node's Dates as ISO 8601; undefined
 * for anything else (and for '').
 */
export const timestamp = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== ''
    ? value
    : value instanceof Date && !Number.isNaN(value.getTime())
      ? value.toISOString()
      : undefined;

/** A value as a message shows it: JSON, cut short. */
export function shown(value: unknown): string {
  let text = typeof value === 'string' ? value : String(value);
  try {
    // Typed as a string, but undefined for undefined, a function or a symbol: String's text then.
    text = JSON.stringify(value) || text;
  } catch {
    // a cycle or a BigInt: String's text
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** What a field holds, for a message: `spec.range "x"`, `spec.range (absent)`. */
export const at = (path: string, value: unknown): string =>
  value === undefined ? `${path} (absent)` : `${path} ${shown(value)}`;

/** `namespace/name` (`name` when cluster-scoped, `?` for no name), for messages. */
const nameOf = (namespace: string, name: string): string =>
  namespace === '' ? name || '?' : `${namespace}/${name || '?'}`;

/** `namespace/name` of an object, for messages. */
export const objectName = (object: unknown): string => {
  const metadata = objectAt(object, 'metadata');
  return nameOf(textAt(metadata, 'namespace'), textAt(metadata, 'name'));
};

/** The failure of decoding `object` of `kind`: `IPPool ns/name: <problem>`. */
export const malformed = (kind: string, object: unknown, problem: string): Decoded<never> =>
  fail(`${kind} ${objectName(object)}: ${problem}`);
