// The metadata of a Kubernetes object, decoded once into what the product reads of it. Objects arrive as
// JSON from our own HTTP client and as client-node's typed models (whose timestamps are Dates); either way a
// field of another type than the API's reads as absent, never as what a cast claimed it was.

import { objectAt, stringMap, textAt, timestamp } from './decode.ts';

/** What the product reads of `metadata`; absent strings are ''. */
export type ObjectMeta = {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /** Undefined when the object has no map at all (a JSON patch must then add the whole map). */
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly annotations: Readonly<Record<string, string>> | undefined;
  /** RFC 3339, when set. */
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
};

/** The metadata of any object (or of nothing: all absent). */
export function metaOf(object: unknown): ObjectMeta {
  const m = objectAt(object, 'metadata');
  const created = timestamp(m.creationTimestamp);
  const deleted = timestamp(m.deletionTimestamp);
  return {
    name: textAt(m, 'name'),
    namespace: textAt(m, 'namespace'),
    uid: textAt(m, 'uid'),
    resourceVersion: textAt(m, 'resourceVersion'),
    labels: stringMap(m.labels),
    annotations: stringMap(m.annotations),
    ...(created === undefined ? {} : { creationTimestamp: created }),
    ...(deleted === undefined ? {} : { deletionTimestamp: deleted }),
  };
}

/** `namespace/name` (cluster-scoped: `/name`): the key of an object in a cache. */
export const keyOf = (object: unknown): string => {
  const { namespace, name } = metaOf(object);
  return `${namespace}/${name}`;
};

/**
 * The resourceVersion as a number, to tell which of two states of one object is later; undefined when it is
 * not a decimal number (the API server's are, but clients are told to treat them as opaque: callers must
 * then take the newer arrival).
 */
export function versionOf(object: unknown): bigint | undefined {
  const rv = metaOf(object).resourceVersion;
  return /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}
