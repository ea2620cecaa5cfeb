// An in-process Kubernetes API server: the part of the REST API this project uses, with the semantics of
// the real one — resourceVersion on every write, Status bodies for 404/409/422, JSON Patch applied to the
// latest object (a failed `test` is 422), merge patch, selectors, pagination, watch streams, the default
// etcd object size limit — plus switches for latency and faults. The plugin, agent, GC and exporter reach
// it only through a kubeconfig, like any API server; nothing in them knows it exists.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtInCauses } from './built-in-validation.ts';
import { discoveryDocument, RawDocument } from './discovery.ts';
import { applyJsonPatch, applyMergePatch, jsonEqual } from './json-patch.ts';
import { seededRandom } from '../random.ts';
import { managedFieldsAfter, managerOf } from './managed-fields.ts';
import { apiVersionOf, builtInResources, loadCrds, type ResourceDef } from './resources.ts';
import { validateAndPrune } from './schema.ts';
import { matches, parseSelector, type Selector } from './selectors.ts';
import * as status from './status.ts';
import type { HttpError, Status } from './status.ts';

/** Switches for tests and benchmarks; change them at any time on `server.faults`. */
export type Faults = {
  /** Delay before every request is handled. */
  latencyMs: number;
  /** Extra delay for writes (POST, PUT, PATCH, DELETE). */
  writeLatencyMs: number;
  /** Probability per request of answering 500, 503 or 429 (with Retry-After) instead of handling it. */
  errorRates: { 500?: number; 503?: number; 429?: number };
  retryAfterSeconds: number;
  /** Probability per request of closing the connection without handling the request. */
  dropRate: number;
  /** Probability per write of committing it and then closing the connection without an answer. */
  lostResponseRate: number;
  /** Which requests the error, drop and loss switches apply to; all but watches by default. */
  appliesTo: (request: RequestInfo) => boolean;
};

export type RequestInfo = {
  readonly verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  readonly def: ResourceDef;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  /** `status` for a request to …/<name>/status (authorized as `<plural>/status`, as kube-apiserver does). */
  readonly subresource?: 'status';
  /** Who asked: the user of the bearer token, when the server knows `users`. */
  readonly user?: string;
};

export type Stats = {
  /** TCP connections accepted: with keep-alive clients, far fewer than requests. */
  connections: number;
  requests: number;
  writes: number;
  /** Answers with 409 (AlreadyExists or Conflict) or 422 (failed patch test, invalid object). */
  conflicts: number;
  byVerb: Record<string, number>;
  byStatus: Record<number, number>;
};

export type ApiServerOptions = {
  /** Directories of CRD manifests to serve. */
  readonly crdDirectories?: readonly string[];
  /** When set, every request must carry `Authorization: Bearer <token>` (else 401). */
  readonly token?: string;
  /** Bearer token → user name: every request must carry one of these tokens (else 401), and `authorize`
   *  learns whose it is — one server, several identities, as RBAC tests need. */
  readonly users?: Readonly<Record<string, string>>;
  /** When it returns false the request is answered 403 Forbidden, as RBAC would. */
  readonly authorize?: (request: RequestInfo) => boolean;
  readonly port?: number;
  readonly host?: string;
  /** The seed of the fault switches' dice: the same seed rolls the same faults for the same requests. */
  readonly faultSeed?: number;
  /** kube-apiserver's --min-request-timeout: a watch that names no timeoutSeconds ends after this long
   *  (the real server picks between this and twice this; here exactly this, for repeatable tests). */
  readonly watchTimeoutSeconds?: number;
};

export type ApiServer = {
  readonly url: string;
  /** The seed the fault switches roll with (given, or chosen at start): a failing run is replayed with it. */
  readonly faultSeed: number;
  readonly faults: Faults;
  readonly stats: Stats;
  /** Objects of one kind, by `namespace/name` (cluster-scoped: `/name`), as stored. For assertions. */
  objects(plural: string, group?: string): Map<string, Record<string, unknown>>;
  resetStats(): void;
  /** Forgets the history before now, as etcd's compaction does: older continue tokens and watch
   *  resourceVersions answer 410 Expired. */
  compact(): void;
  /** Stops and starts again on the same port with the same objects, as a restarted kube-apiserver comes
   *  back to the same etcd: every watch and connection ends, nothing stored is lost. */
  restart(): Promise<void>;
  /** From now on, the bearer token every request must carry (as after a token rotation). */
  acceptToken(token: string): void;
  close(): Promise<void>;
};

/** etcd's default request size limit (--max-request-bytes), which bounds a stored object. */
export const maxObjectBytes = 1_572_864;
/** The API server's request body limit. */
const maxRequestBytes = 3 * 1024 * 1024;
/** The API server's maxJSONPatchOperations. */
const maxJsonPatchOperations = 10_000;
/** Watch events kept for watches that resume from a resourceVersion; older ones answer 410 Expired. */
const historyLength = 100_000;

type Obj = Record<string, unknown>;
/** Who writes, and through which part of the object: for managedFields and the status subresource. */
type Writer = { readonly manager: string; readonly subresource: 'status' | undefined };
type WatchEvent = {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly def: ResourceDef;
  readonly object: Obj;
};
type Watcher = {
  readonly def: ResourceDef;
  readonly namespace: string | undefined;
  readonly labels: Selector;
  readonly fields: Selector;
  readonly send: (event: WatchEvent) => void;
};

const metadataOf = (o: Obj): Obj => (o.metadata ?? {}) as Obj;
const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;
const defKey = (def: ResourceDef): string => `${def.group}/${def.plural}`;
const numberOrUndefined = (text: string | null): number | undefined =>
  text === null || text === '' || Number.isNaN(Number(text)) ? undefined : Number(text);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Thrown inside request handling to answer with an error; caught in one place, turned into the response. */
class Failure extends Error {
  readonly error: HttpError;
  constructor(error: HttpError) {
    super(error.status.message);
    this.error = error;
  }
}
const raise = (error: HttpError): never => {
  throw new Failure(error);
};

type Route =
  | {
      readonly kind: 'resource';
      readonly def: ResourceDef;
      readonly namespace: string | undefined;
      readonly name: string | undefined;
      /** `status` for …/<name>/status of a kind with a status subresource. */
      readonly subresource?: 'status';
    }
  | { readonly kind: 'discovery'; readonly body: unknown };

export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const defs = [...builtInResources, ...(options.crdDirectories ?? []).flatMap((d) => loadCrds(d))];
  const store = new Map<string, Map<string, Obj>>(defs.map((d) => [defKey(d), new Map()]));
  const watchers = new Set<Watcher>();
  const history: WatchEvent[] = [];
  let resourceVersion = 1;
  /** The resourceVersion of the last compaction: nothing older can be listed or watched from. */
  let compactedAt = 0;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 1800;
  const faultSeed = options.faultSeed ?? Math.floor(Math.random() * 2 ** 32);
  const roll = seededRandom(faultSeed);
  const openResponses = new Set<ServerResponse>();

  const faults: Faults = {
    latencyMs: 0,
    writeLatencyMs: 0,
    errorRates: {},
    retryAfterSeconds: 1,
    dropRate: 0,
    lostResponseRate: 0,
    appliesTo: (r) => r.verb !== 'watch',
  };
  const stats: Stats = { connections: 0, requests: 0, writes: 0, conflicts: 0, byVerb: {}, byStatus: {} };

  const objectsOf = (def: ResourceDef): Map<string, Obj> => store.get(defKey(def)) as Map<string, Obj>;

  function record(def: ResourceDef, type: WatchEvent['type'], object: Obj): void {
    // Stored objects are never changed in place (every write builds a new one), so events can share them.
    const event: WatchEvent = { rv: resourceVersion, type, def, object };
    history.push(event);
    if (history.length > historyLength) history.splice(0, history.length - historyLength);
    for (const watcher of watchers) if (watcher.def === def) watcher.send(event);
  }

  function route(url: URL): Route | undefined {
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const document = discoveryDocument(defs, url.pathname);
    if (document !== undefined) return { kind: 'discovery', body: document };
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 2) {
      group = '';
      version = parts[1] as string;
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      group = parts[1] as string;
      version = parts[2] as string;
      rest = parts.slice(3);
    } else {
      return undefined;
    }
    const served = defs.filter((d) => d.group === group && d.version === version);
    if (rest.length === 0) return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const def = served.find((d) => d.plural === rest[0]);
    const subresource = rest[2];
    if (def === undefined || (namespace !== undefined && !def.namespaced)) return undefined;
    if (
      rest.length > 3 ||
      (subresource !== undefined && (subresource !== 'status' || !def.statusSubresource))
    )
      return undefined;
    const name = rest[1];
    if (name !== undefined && def.namespaced && namespace === undefined) return undefined;
    return { kind: 'resource', def, namespace, name, ...(subresource === 'status' ? { subresource } : {}) };
  }

  function selectorsOf(url: URL): { labels: Selector; fields: Selector } {
    const labels = parseSelector(url.searchParams.get('labelSelector'));
    if (typeof labels === 'string') raise(status.badRequest(labels));
    const fields = parseSelector(url.searchParams.get('fieldSelector'));
    if (typeof fields === 'string') raise(status.badRequest(fields));
    return { labels: labels as Selector, fields: fields as Selector };
  }

  function checkFieldLabels(def: ResourceDef, fields: Selector): void {
    const supported = Object.keys(def.fields({}));
    for (const r of fields) {
      if (!supported.includes(r.key)) raise(status.badRequest(`field label not supported: ${r.key}`));
    }
  }

  const selected = (
    def: ResourceDef,
    o: Obj,
    namespace: string | undefined,
    labels: Selector,
    fields: Selector,
  ): boolean => {
    const meta = metadataOf(o);
    if (namespace !== undefined && meta.namespace !== namespace) return false;
    const objectLabels = (meta.labels ?? {}) as Record<string, string>;
    const values = def.fields(o);
    return matches(labels, (k) => objectLabels[k]) && matches(fields, (k) => values[k]);
  };

  function list(def: ResourceDef, namespace: string | undefined, url: URL): Obj {
    const { labels, fields } = selectorsOf(url);
    checkFieldLabels(def, fields);
    const limit = Number(url.searchParams.get('limit') ?? '0');
    const token = url.searchParams.get('continue');
    let after = '';
    if (token !== null && token !== '') {
      let decoded: { start?: unknown; rv?: unknown } = {};
      try {
        decoded = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as typeof decoded;
      } catch {
        raise(status.badRequest('continue key is not valid'));
      }
      if (typeof decoded.start !== 'string' || typeof decoded.rv !== 'number')
        raise(status.badRequest('continue key is not valid'));
      if ((decoded.rv as number) < compactedAt) raise(status.expired(status.continueExpiredMessage));
      after = decoded.start as string;
    }
    const keys = [...objectsOf(def).keys()].filter((k) => k > after).sort();
    const items: Obj[] = [];
    let next: string | undefined;
    for (const key of keys) {
      const o = objectsOf(def).get(key) as Obj;
      if (!selected(def, o, namespace, labels, fields)) continue;
      if (limit > 0 && items.length === limit) {
        next = Buffer.from(JSON.stringify({ start: keyOf(...lastKey(items)), rv: resourceVersion })).toString(
          'base64',
        );
        break;
      }
      items.push(o);
    }
    return {
      apiVersion: apiVersionOf(def),
      kind: `${def.kind}List`,
      metadata: {
        resourceVersion: String(resourceVersion),
        ...(next === undefined ? {} : { continue: next }),
      },
      items,
    };
  }

  const lastKey = (items: Obj[]): [string | undefined, string] => {
    const meta = metadataOf(items[items.length - 1] as Obj);
    return [meta.namespace as string | undefined, meta.name as string];
  };

  function get(def: ResourceDef, namespace: string | undefined, name: string): Obj {
    return objectsOf(def).get(keyOf(namespace, name)) ?? raise(status.notFound(def, name));
  }

  /**
   * Refuses an object over etcd's limit — after trying it without managedFields, as kube-apiserver does:
   * an object too large only with them is stored without them.
   */
  function checkSize(o: Obj): void {
    if (Buffer.byteLength(JSON.stringify(o)) <= maxObjectBytes) return;
    const meta = metadataOf(o);
    if (meta.managedFields !== undefined) {
      delete meta.managedFields;
      if (Buffer.byteLength(JSON.stringify(o)) <= maxObjectBytes) return;
    }
    raise(status.storageError('etcdserver: request is too large'));
  }

  function validate(def: ResourceDef, o: Obj, name: string): void {
    if (!def.custom || def.schema === undefined) return;
    const causes = Object.entries(o)
      .filter(([k]) => !['apiVersion', 'kind', 'metadata'].includes(k))
      .flatMap(([k, v]) => {
        const property = def.schema?.properties?.[k];
        if (property === undefined) {
          Reflect.deleteProperty(o, k);
          return [];
        }
        return validateAndPrune(property, v, k);
      });
    for (const key of def.schema.required ?? [])
      if (!(key in o)) causes.push({ field: key, message: 'Required value' });
    if (causes.length > 0) raise(status.invalid(def, name, causes));
  }

  function commit(def: ResourceDef, o: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    resourceVersion++;
    const meta = metadataOf(o);
    meta.resourceVersion = String(resourceVersion);
    objectsOf(def).set(keyOf(meta.namespace as string | undefined, meta.name as string), o);
    record(def, type, o);
    return o;
  }

  function create(def: ResourceDef, namespace: string | undefined, body: unknown, writer: Writer): Obj {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      raise(status.badRequest('the body must be an object'));
    const o = structuredClone(body) as Obj;
    const meta = (o.metadata ?? {}) as Obj;
    let name = meta.name as string | undefined;
    if ((name === undefined || name === '') && typeof meta.generateName === 'string')
      name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if (name === undefined || name === '')
      raise(
        status.invalid(def, '', [
          { field: 'metadata.name', message: 'Required value: name or generateName is required' },
        ]),
      );
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name as string) || (name as string).length > 253) {
      raise(
        status.invalid(def, name as string, [
          {
            field: 'metadata.name',
            message: `Invalid value: "${name as string}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
          },
        ]),
      );
    }
    if (objectsOf(def).has(keyOf(namespace, name as string)))
      raise(status.alreadyExists(def, name as string));
    o.apiVersion = apiVersionOf(def);
    o.kind = def.kind;
    // A kind with a status subresource starts without the status its creator wrote; a pod starts Pending.
    if (def.statusSubresource === true) {
      delete o.status;
      if (def.group === '' && def.plural === 'pods') o.status = { phase: 'Pending' };
    }
    o.metadata = {
      ...meta,
      name,
      ...(def.namespaced ? { namespace } : {}),
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      generation: 1,
    };
    validate(def, o, name as string);
    if (!def.custom) {
      const causes = builtInCauses(def.plural, o);
      if (causes.length > 0) raise(status.invalid(def, name as string, causes));
    }
    (o.metadata as Obj).managedFields = managedFieldsAfter(
      undefined,
      o,
      writer.manager,
      apiVersionOf(def),
      new Date(),
    );
    checkSize(o);
    return commit(def, o, 'ADDED');
  }

  /**
   * Stores `next` as the new state of `current`, keeping identity fields; bumps generation on spec changes.
   * Through the status subresource only `status` changes; elsewhere `status` of a kind with that
   * subresource does not.
   */
  function replaceWith(def: ResourceDef, current: Obj, proposed: Obj, writer: Writer): Obj {
    const before = metadataOf(current);
    const name = before.name as string;
    const next: Obj =
      writer.subresource === 'status'
        ? { ...current, ...(proposed.status === undefined ? {} : { status: proposed.status }) }
        : def.statusSubresource === true
          ? { ...proposed, ...(current.status === undefined ? {} : { status: current.status }) }
          : proposed;
    if (def.statusSubresource === true && writer.subresource === undefined && current.status === undefined)
      delete next.status;
    const after = {
      ...(writer.subresource === 'status'
        ? before
        : typeof next.metadata === 'object' && next.metadata !== null
          ? (next.metadata as Obj)
          : {}),
    };
    for (const k of [
      'name',
      'namespace',
      'uid',
      'creationTimestamp',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
    ])
      if (before[k] === undefined) Reflect.deleteProperty(after, k);
      else after[k] = before[k];
    next.metadata = after;
    next.apiVersion = apiVersionOf(def);
    next.kind = def.kind;
    validate(def, next, name);
    const specChanged = !jsonEqual(
      { ...next, metadata: undefined, status: undefined },
      { ...current, metadata: undefined, status: undefined },
    );
    after.generation = ((before.generation as number | undefined) ?? 1) + (specChanged ? 1 : 0);
    after.managedFields = managedFieldsAfter(
      current,
      next,
      writer.manager,
      apiVersionOf(def),
      new Date(),
      writer.subresource,
    );
    checkSize(next);
    return commit(def, next, 'MODIFIED');
  }

  function update(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    body: unknown,
    writer: Writer,
  ): Obj {
    const current = get(def, namespace, name);
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      raise(status.badRequest('the body must be an object'));
    const next = structuredClone(body) as Obj;
    const rv = metadataOf(next).resourceVersion;
    if (rv === undefined || rv === '') {
      if (def.conditionalUpdateOnly)
        raise(
          status.invalid(def, name, [
            {
              field: 'metadata.resourceVersion',
              message: 'Invalid value: 0: must be specified for an update',
            },
          ]),
        );
    } else if (rv !== metadataOf(current).resourceVersion) {
      raise(status.conflict(def, name, status.optimisticLockMessage));
    }
    return replaceWith(def, current, next, writer);
  }

  function patched(
    def: ResourceDef,
    current: Obj,
    name: string,
    contentType: string,
    body: unknown,
  ): unknown {
    if (contentType === 'application/json-patch+json') {
      const result = applyJsonPatch(current, body, maxJsonPatchOperations);
      switch (result.kind) {
        case 'malformed':
          return raise(status.badRequest(result.message));
        case 'tooLarge':
          return raise(status.tooLarge(result.message));
        case 'failed':
          return raise(status.unprocessablePatch());
        case 'applied':
          return result.document;
      }
    }
    // Strategic merge is served for built-in kinds as a plain merge patch: enough for the maps we patch.
    if (
      contentType === 'application/merge-patch+json' ||
      (!def.custom && contentType === 'application/strategic-merge-patch+json')
    ) {
      const patchRv = metadataOf((body ?? {}) as Obj).resourceVersion;
      if (patchRv !== undefined && patchRv !== metadataOf(current).resourceVersion)
        raise(status.conflict(def, name, status.optimisticLockMessage));
      return applyMergePatch(current, body);
    }
    return raise(
      status.unsupportedMediaType([
        'application/json-patch+json',
        'application/merge-patch+json',
        'application/apply-patch+yaml',
      ]),
    );
  }

  function patch(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    contentType: string,
    body: unknown,
    writer: Writer,
  ): Obj {
    const current = get(def, namespace, name);
    const next = patched(def, current, name, contentType, body);
    if (typeof next !== 'object' || next === null || Array.isArray(next))
      return raise(status.badRequest('the patched object is not an object'));
    return replaceWith(def, current, next as Obj, writer);
  }

  /**
   * DELETE. A pod bound to a node is deleted gracefully, as kube-apiserver does: it gets a
   * deletionTimestamp and stays (Terminating) until its kubelet — or a delete with grace period 0 —
   * removes it. Unbound and finished pods go at once.
   */
  function remove(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    body: unknown,
    gracePeriodParam: string | null,
  ): Obj | Status {
    const current = get(def, namespace, name);
    const meta = metadataOf(current);
    const options = (body ?? {}) as {
      preconditions?: { uid?: string; resourceVersion?: string };
      gracePeriodSeconds?: number;
    };
    const preconditions = options.preconditions;
    if (preconditions?.uid !== undefined && preconditions.uid !== meta.uid) {
      raise(
        status.conflict(
          def,
          name,
          `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${String(meta.uid)}`,
        ),
      );
    }
    if (
      preconditions?.resourceVersion !== undefined &&
      preconditions.resourceVersion !== meta.resourceVersion
    ) {
      raise(
        status.conflict(
          def,
          name,
          `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${String(meta.resourceVersion)}`,
        ),
      );
    }
    const grace = gracePeriodOf(
      def,
      current,
      options.gracePeriodSeconds ?? numberOrUndefined(gracePeriodParam),
    );
    if (grace > 0) {
      if (meta.deletionTimestamp !== undefined) return current;
      const deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      return commit(
        def,
        { ...current, metadata: { ...meta, deletionTimestamp, deletionGracePeriodSeconds: grace } },
        'MODIFIED',
      );
    }
    objectsOf(def).delete(keyOf(namespace, name));
    resourceVersion++;
    record(def, 'DELETED', { ...current, metadata: { ...meta, resourceVersion: String(resourceVersion) } });
    return status.success(def, name, meta.uid as string);
  }

  /** The grace period a DELETE gets: pods bound to a node and still running get one, nothing else does. */
  function gracePeriodOf(def: ResourceDef, o: Obj, requested: number | undefined): number {
    if (def.group !== '' || def.plural !== 'pods') return 0;
    const spec = (o.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
    const phase = ((o.status ?? {}) as { phase?: string }).phase;
    if (spec.nodeName === undefined || spec.nodeName === '' || phase === 'Succeeded' || phase === 'Failed')
      return 0;
    return Math.max(0, requested ?? spec.terminationGracePeriodSeconds ?? 30);
  }

  function watch(def: ResourceDef, namespace: string | undefined, url: URL, res: ServerResponse): void {
    const { labels, fields } = selectorsOf(url);
    checkFieldLabels(def, fields);
    const rvParam = url.searchParams.get('resourceVersion');
    const since = rvParam === null || rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    // The first resourceVersion whose event is still known; after a compaction, only what comes next.
    const oldest = history[0]?.rv ?? resourceVersion + 1;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // As the real server does: the client learns at once that the watch is open, before any event.
    res.flushHeaders();
    openResponses.add(res);
    const write = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    if (since !== undefined && (Number.isNaN(since) || since < oldest - 1)) {
      write('ERROR', status.expired(`too old resource version: ${rvParam ?? ''} (${oldest - 1})`).status);
      res.end();
      openResponses.delete(res);
      return;
    }
    const watcher: Watcher = {
      def,
      namespace,
      labels,
      fields,
      send: (event) => {
        if (selected(def, event.object, namespace, labels, fields)) write(event.type, event.object);
      },
    };
    if (since === undefined) {
      for (const o of objectsOf(def).values())
        if (selected(def, o, namespace, labels, fields)) write('ADDED', o);
      // As kube-apiserver does for a watch from "now" that allows bookmarks: one marking the initial events' end.
      if (url.searchParams.get('allowWatchBookmarks') === 'true')
        write('BOOKMARK', {
          apiVersion: apiVersionOf(def),
          kind: def.kind,
          metadata: {
            resourceVersion: String(resourceVersion),
            annotations: { 'k8s.io/initial-events-end': 'true' },
          },
        });
    } else {
      for (const event of history) if (event.rv > since && event.def === def) watcher.send(event);
    }
    watchers.add(watcher);
    const finish = () => {
      watchers.delete(watcher);
      openResponses.delete(res);
      if (!res.writableEnded) res.end();
    };
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    setTimeout(finish, (timeout > 0 ? timeout : watchTimeoutSeconds) * 1000).unref();
    res.on('close', finish);
  }

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxRequestBytes) {
          reject(new Failure(status.tooLarge(`Request entity too large: limit is ${maxRequestBytes}`)));
          req.destroy();
        } else {
          chunks.push(chunk);
        }
      });
      req.on('end', () => {
        resolve(Buffer.concat(chunks));
      });
      req.on('error', reject);
    });

  const send = (res: ServerResponse, code: number, body: unknown, retryAfter?: number): void => {
    stats.byStatus[code] = (stats.byStatus[code] ?? 0) + 1;
    if (code === 409 || code === 422) stats.conflicts++;
    const payload = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
      ...(retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) }),
    });
    res.end(payload);
  };

  function verbOf(method: string, name: string | undefined, url: URL): RequestInfo['verb'] | undefined {
    const watching = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    switch (method) {
      case 'GET':
        return name !== undefined ? 'get' : watching ? 'watch' : 'list';
      case 'POST':
        return name === undefined ? 'create' : undefined;
      case 'PUT':
        return name !== undefined ? 'update' : undefined;
      case 'PATCH':
        return name !== undefined ? 'patch' : undefined;
      case 'DELETE':
        return name !== undefined ? 'delete' : undefined;
      default:
        return undefined;
    }
  }

  let acceptedToken = options.token;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (acceptedToken !== undefined && req.headers.authorization !== `Bearer ${acceptedToken}`) {
      send(res, 401, status.unauthorized().status);
      return;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const user =
      bearer !== undefined && options.users !== undefined && Object.hasOwn(options.users, bearer)
        ? options.users[bearer]
        : undefined;
    if (options.users !== undefined && user === undefined) {
      send(res, 401, status.unauthorized().status);
      return;
    }
    const target = route(url);
    if (target === undefined) {
      // As kube-apiserver answers a group or resource it does not serve: no Status, plain text.
      stats.byStatus[404] = (stats.byStatus[404] ?? 0) + 1;
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 19 });
      res.end('404 page not found\n');
      return;
    }
    if (target.kind === 'discovery') {
      if (target.body instanceof RawDocument) {
        res.writeHead(200, {
          'Content-Type': target.body.contentType,
          'Content-Length': target.body.body.length,
        });
        res.end(target.body.body);
      } else send(res, 200, target.body);
      return;
    }
    const { def, namespace, name } = target;
    const verb = verbOf(req.method ?? 'GET', name, url);
    if (verb === undefined) {
      send(res, 405, status.methodNotAllowed().status);
      return;
    }
    stats.byVerb[verb] = (stats.byVerb[verb] ?? 0) + 1;
    const info: RequestInfo = {
      verb,
      def,
      namespace,
      name,
      ...(target.subresource === undefined ? {} : { subresource: target.subresource }),
      ...(user === undefined ? {} : { user }),
    };
    const isWrite = verb === 'create' || verb === 'update' || verb === 'patch' || verb === 'delete';
    if (isWrite) stats.writes++;
    if (verb !== 'watch') {
      const delay = faults.latencyMs + (isWrite ? faults.writeLatencyMs : 0);
      if (delay > 0) await sleep(delay);
    }
    if (faults.appliesTo(info)) {
      if (roll() < faults.dropRate) {
        req.socket.destroy();
        return;
      }
      let dice = roll();
      for (const code of [500, 503, 429] as const) {
        const rate = faults.errorRates[code] ?? 0;
        if (dice < rate) {
          const error =
            code === 500
              ? status.internalError('injected fault')
              : code === 503
                ? status.serviceUnavailable()
                : status.tooManyRequests(faults.retryAfterSeconds);
          send(res, code, error.status, error.retryAfter);
          return;
        }
        dice -= rate;
      }
    }
    if (options.authorize !== undefined && !options.authorize(info)) {
      send(res, 403, status.forbidden(def, name ?? '', verb, namespace).status);
      return;
    }
    const raw = await readBody(req);
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        raise(status.badRequest('the request body is not valid JSON'));
      }
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const writer: Writer = {
      manager: managerOf(url.searchParams.get('fieldManager'), req.headers['user-agent']),
      subresource: target.subresource,
    };
    let code = 200;
    let result: unknown;
    switch (verb) {
      case 'get':
        result = get(def, namespace, name as string);
        break;
      case 'list':
        result = list(def, namespace, url);
        break;
      case 'watch':
        watch(def, namespace, url, res);
        return;
      case 'create':
        result = create(def, def.namespaced ? namespace : undefined, body, writer);
        code = 201;
        break;
      case 'update':
        result = update(def, namespace, name as string, body, writer);
        break;
      case 'patch':
        result = patch(def, namespace, name as string, contentType, body, writer);
        break;
      case 'delete':
        result = remove(def, namespace, name as string, body, url.searchParams.get('gracePeriodSeconds'));
        break;
    }
    if (isWrite && faults.appliesTo(info) && roll() < faults.lostResponseRate) {
      req.socket.destroy();
      return;
    }
    send(res, code, result);
  }

  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const error =
        e instanceof Failure ? e.error : status.internalError(e instanceof Error ? e.message : String(e));
      send(res, error.status.code, error.status, error.retryAfter);
    });
  });
  server.on('connection', () => {
    stats.connections++;
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as AddressInfo;
  /** Ends every watch and connection and stops listening; the objects stay. */
  const stop = async (): Promise<void> => {
    for (const res of openResponses) res.end();
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  };

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    faultSeed,
    faults,
    stats,
    acceptToken: (token) => {
      acceptedToken = token;
    },
    objects: (plural, group = '') => {
      const def = defs.find((d) => d.plural === plural && d.group === group);
      if (def === undefined) throw new Error(`no resource ${plural} in group "${group}"`);
      return objectsOf(def);
    },
    compact: () => {
      compactedAt = resourceVersion;
      history.splice(0, history.length);
    },
    resetStats: () => {
      Object.assign(stats, {
        connections: 0,
        requests: 0,
        writes: 0,
        conflicts: 0,
        byVerb: {},
        byStatus: {},
      });
    },
    close: stop,
    restart: async () => {
      await stop();
      await new Promise<void>((resolve) => server.listen(port, options.host ?? '127.0.0.1', resolve));
    },
  };
}
