// metadata.managedFields as kube-apiserver keeps them for non-apply writes: one entry per field manager and
// operation, whose fieldsV1 lists every field that manager set, in the server's FieldsV1 shape
// (`{"f:spec": {".": {}, "f:allocations": {"f:5": {".": {}, "f:id": {}}}}}`). A write hands the fields it
// changed to its manager and takes them from the others; removed fields leave every set. The entries count
// toward the object's size, which is why the embedded server keeps them: a pool reaches the storage limit
// with fewer allocations than its spec alone suggests. Lists are kept whole (`f:containers` as one field),
// a simplification the server does not make, but no object this project writes has a list it patches.

type Obj = Record<string, unknown>;

export type ManagedFieldsEntry = {
  readonly manager: string;
  readonly operation: 'Update';
  readonly apiVersion: string;
  readonly time: string;
  readonly fieldsType: 'FieldsV1';
  readonly fieldsV1: Obj;
  readonly subresource?: string;
};

const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The metadata fields a manager can own; the rest of metadata belongs to the server. */
const ownedMetadata = ['labels', 'annotations', 'finalizers', 'ownerReferences'];

/** Every field path of `value` with its leaf value; a map that has fields is also a path of its own ("."). */
function paths(value: Obj, prefix: string, into: Map<string, unknown>): Map<string, unknown> {
  for (const [key, child] of Object.entries(value)) {
    const path = `${prefix}\u0000${key}`;
    if (isMap(child) && Object.keys(child).length > 0) {
      into.set(`${path}\u0000.`, undefined);
      paths(child, path, into);
    } else {
      into.set(path, child);
    }
  }
  return into;
}

function fieldsOf(object: Obj, subresource: string | undefined): Map<string, unknown> {
  const none = new Map<string, unknown>();
  if (subresource === 'status')
    return isMap(object.status) ? paths({ status: object.status }, '', none) : none;
  const { apiVersion: _a, kind: _k, metadata, status: _s, ...rest } = object;
  const meta = isMap(metadata) ? metadata : {};
  const owned = Object.fromEntries(ownedMetadata.filter((k) => k in meta).map((k) => [k, meta[k]]));
  return paths(
    Object.keys(owned).length > 0 ? { ...rest, metadata: owned } : rest,
    '',
    new Map<string, unknown>(),
  );
}

function toFieldsV1(set: Iterable<string>): Obj {
  const root: Obj = {};
  for (const path of set) {
    let node = root;
    const keys = path.split('\u0000').slice(1);
    keys.forEach((key, i) => {
      const name = key === '.' ? '.' : `f:${key}`;
      node[name] ??= {};
      if (i < keys.length - 1) node = node[name] as Obj;
    });
  }
  return root;
}

function fromFieldsV1(fields: unknown, prefix = '', into = new Set<string>()): Set<string> {
  if (!isMap(fields)) return into;
  for (const [name, child] of Object.entries(fields)) {
    const path = `${prefix}\u0000${name === '.' ? '.' : name.replace(/^f:/, '')}`;
    if (isMap(child) && Object.keys(child).length > 0) fromFieldsV1(child, path, into);
    else into.add(path);
  }
  return into;
}

const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The managedFields of `next` after `manager` wrote it over `current` (undefined: a create). */
export function managedFieldsAfter(
  current: Obj | undefined,
  next: Obj,
  manager: string,
  apiVersion: string,
  now: Date,
  subresource?: string,
): ManagedFieldsEntry[] {
  const before = current === undefined ? new Map<string, unknown>() : fieldsOf(current, subresource);
  const after = fieldsOf(next, subresource);
  const changed = [...after]
    .filter(([path, value]) => !before.has(path) || !sameValue(before.get(path), value))
    .map(([p]) => p);
  const removed = [...before.keys()].filter((path) => !after.has(path));
  const previous = (
    current === undefined ? [] : ((current.metadata as Obj | undefined)?.managedFields ?? [])
  ) as ManagedFieldsEntry[];
  const entries: ManagedFieldsEntry[] = [];
  let mine: Set<string> | undefined;
  for (const entry of previous) {
    const set = fromFieldsV1(entry.fieldsV1);
    for (const path of removed) set.delete(path);
    const isMine = entry.manager === manager && entry.subresource === subresource;
    if (isMine) {
      for (const path of changed) set.add(path);
      mine = set;
    } else {
      for (const path of changed) set.delete(path);
    }
    if (set.size > 0 || isMine)
      entries.push({ ...entry, ...(isMine ? { time: timestamp(now) } : {}), fieldsV1: toFieldsV1(set) });
  }
  if (mine === undefined && changed.length > 0) {
    entries.push({
      manager,
      operation: 'Update',
      apiVersion,
      time: timestamp(now),
      fieldsType: 'FieldsV1',
      fieldsV1: toFieldsV1(changed),
      ...(subresource === undefined ? {} : { subresource }),
    });
  }
  return entries.filter((e) => Object.keys(e.fieldsV1).length > 0);
}

const timestamp = (now: Date): string => now.toISOString().replace(/\.\d+Z$/, 'Z');

/** The field manager of a request: `?fieldManager=`, else the User-Agent up to its first "/", as the server does. */
export function managerOf(fieldManager: string | null, userAgent: string | undefined): string {
  if (fieldManager !== null && fieldManager !== '') return fieldManager;
  const agent = (userAgent ?? '').split('/')[0]?.trim() ?? '';
  return agent === '' ? 'unknown' : agent.slice(0, 128);
}

/** Who writes, and through which part of the object: for managedFields and the status subresource. */
export type Writer = { readonly manager: string; readonly subresource: 'status' | undefined };
