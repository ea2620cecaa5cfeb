// RFC 6902 JSON Patch with the semantics of the library the API server uses (evanphx/json-patch v4): a
// `test` of a missing key against null succeeds, `remove` and `replace` of a missing key fail. Decoding
// problems and application problems are told apart, because the server answers 400 and 422 for them.

export type PatchResult =
  | { readonly kind: 'applied'; readonly document: unknown }
  | { readonly kind: 'malformed'; readonly message: string }
  | { readonly kind: 'tooLarge'; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string };

type Operation = { op: string; path: string; value?: unknown; from?: string };

const ops = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

const notAList =
  'error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp';

function decode(patch: readonly unknown[]): Operation[] | string {
  for (const op of patch) {
    if (typeof op !== 'object' || op === null) return 'invalid JSON Patch';
    const o = op as Record<string, unknown>;
    if (typeof o.op !== 'string' || !ops.has(o.op)) return `Unexpected kind: ${String(o.op)}`;
    if (typeof o.path !== 'string') return `${o.op} operation missing path`;
    if ((o.op === 'move' || o.op === 'copy') && typeof o.from !== 'string')
      return `${o.op} operation missing from`;
    if ((o.op === 'add' || o.op === 'replace' || o.op === 'test') && !('value' in o))
      return `${o.op} operation missing value`;
  }
  return patch as Operation[];
}

const unescape = (token: string): string => token.replace(/~1/g, '/').replace(/~0/g, '~');

function tokens(path: string): string[] | undefined {
  if (path === '') return [];
  if (!path.startsWith('/')) return undefined;
  return path.slice(1).split('/').map(unescape);
}

type Container = Record<string, unknown> | unknown[];
type Location = { container: Container; key: string };

const isContainer = (v: unknown): v is Container => typeof v === 'object' && v !== null;

/**
 * The container holding the last token of the path, or an error message. With `fresh` (the containers this
 * patch has copied already), every container on the way is copied before it can be changed, so the patch
 * never touches the stored object and costs the length of the path, not the size of the object.
 */
function locate(document: Container, path: string, fresh?: Set<Container>): Location | string {
  const parts = tokens(path);
  if (parts === undefined || parts.length === 0) return `invalid path "${path}"`;
  let node: Container = document;
  for (const part of parts.slice(0, -1)) {
    const found: unknown = Array.isArray(node) ? node[Number(part)] : node[part];
    if (!isContainer(found)) return `path "${path}" does not exist`;
    let child: Container = found;
    if (fresh !== undefined && !fresh.has(child)) {
      child = Array.isArray(found) ? [...found] : { ...found };
      fresh.add(child);
      if (Array.isArray(node)) node[Number(part)] = child;
      else node[part] = child;
    }
    node = child;
  }
  return { container: node, key: parts[parts.length - 1] as string };
}

function arrayIndex(array: unknown[], key: string, forInsert: boolean): number | undefined {
  if (forInsert && key === '-') return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(key)) return undefined;
  const index = Number(key);
  return index <= array.length - (forInsert ? 0 : 1) ? index : undefined;
}

function get(location: Location): { found: boolean; value: unknown } {
  const { container, key } = location;
  if (Array.isArray(container)) {
    const i = arrayIndex(container, key, false);
    return i === undefined ? { found: false, value: undefined } : { found: true, value: container[i] };
  }
  return Object.hasOwn(container, key)
    ? { found: true, value: container[key] }
    : { found: false, value: undefined };
}

function add(location: Location, value: unknown): string | undefined {
  const { container, key } = location;
  if (Array.isArray(container)) {
    const i = arrayIndex(container, key, true);
    if (i === undefined) return `index "${key}" is out of bounds`;
    container.splice(i, 0, value);
  } else {
    container[key] = value;
  }
  return undefined;
}

function remove(location: Location): string | undefined {
  const { container, key } = location;
  if (!get(location).found) return `unable to remove nonexistent key: ${key}: missing value`;
  if (Array.isArray(container)) container.splice(Number(key), 1);
  else Reflect.deleteProperty(container, key);
  return undefined;
}

/** Deep equality of JSON values (object key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  return ak.every(
    (k) =>
      Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

function applyOne(document: Container, op: Operation, fresh: Set<Container>): string | undefined {
  const target = locate(document, op.path, op.op === 'test' ? undefined : fresh);
  if (typeof target === 'string') return `${op.op} operation does not apply: ${target}`;
  switch (op.op) {
    case 'add':
      return add(target, op.value);
    case 'remove':
      return remove(target);
    case 'replace': {
      if (!get(target).found) return `replace operation does not apply: doc is missing key: ${op.path}`;
      remove(target);
      return add(target, op.value);
    }
    case 'test': {
      const current = get(target);
      const actual = current.found ? current.value : null;
      return jsonEqual(actual, op.value) ? undefined : `testing value ${op.path} failed: test failed`;
    }
    case 'move':
    case 'copy': {
      const source = locate(document, op.from as string, op.op === 'move' ? fresh : undefined);
      if (typeof source === 'string') return `${op.op} operation does not apply: ${source}`;
      const value = get(source);
      if (!value.found) return `${op.op} operation does not apply: missing from ${String(op.from)}`;
      if (op.op === 'move') remove(source);
      return add(target, op.op === 'copy' ? structuredClone(value.value) : value.value);
    }
  }
  return `unknown operation ${op.op}`;
}

/** Applies the patch to a copy of the document (copied only along the paths it changes). */
export function applyJsonPatch(
  document: Record<string, unknown>,
  patch: unknown,
  maxOperations: number,
): PatchResult {
  // Only a body that is not a list of operations is a 400; kube-apiserver answers every other bad
  // operation (an unknown op, a missing value) as a patch that cannot be applied: 422.
  if (!Array.isArray(patch)) return { kind: 'malformed', message: notAList };
  const decoded = decode(patch as unknown[]);
  if (typeof decoded === 'string') return { kind: 'failed', message: decoded };
  if (decoded.length > maxOperations) {
    return {
      kind: 'tooLarge',
      message: `The allowed maximum operations in a JSON patch is ${maxOperations}, got ${decoded.length}`,
    };
  }
  const copy = { ...document };
  const fresh = new Set<Container>([copy]);
  for (const op of decoded) {
    const error = applyOne(copy, op, fresh);
    if (error !== undefined) return { kind: 'failed', message: error };
  }
  return { kind: 'applied', document: copy };
}

/** RFC 7386 JSON Merge Patch, copying only what it changes. */
export function applyMergePatch(document: unknown, patch: unknown): unknown {
  if (!isContainer(patch) || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> =
    isContainer(document) && !Array.isArray(document) ? { ...document } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(base, key);
    else base[key] = applyMergePatch(base[key], value);
  }
  return base;
}
