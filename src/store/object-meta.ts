// The metadata of a Kubernetes object, decoded once into what the product reads of it. Objects arrive as
// JSON from our own HTTP client and as client-node's typed models (whose timestamps are Dates); either way a
// field of another type than the API's reads as absent, never as what a cast claimed it was.

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

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The string-valued entries of a map (labels, annotations), anything else left out; undefined for no map. */
const strings = (value: unknown): Record<string, string> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : undefined;

const time = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== ''
    ? value
    : value instanceof Date && !Number.isNaN(value.getTime())
      ? value.toISOString()
      : undefined;

/** The metadata of any object (or of nothing: all absent). */
export function metaOf(object: unknown): ObjectMeta {
  const raw =
    typeof object === 'object' && object !== null ? (object as { metadata?: unknown }).metadata : undefined;
  const m = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const created = time(m.creationTimestamp);
  const deleted = time(m.deletionTimestamp);
  return {
    name: text(m.name),
    namespace: text(m.namespace),
    uid: text(m.uid),
    resourceVersion: text(m.resourceVersion),
    labels: strings(m.labels),
    annotations: strings(m.annotations),
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
