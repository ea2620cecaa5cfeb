// What a pass of the slice controller decides on — the NetworkAttachmentDefinitions and Nodes of the cluster,
// the NodeSlicePools of its namespace — from one of two places: read from the API server there and then
// (`readSources`: a pass on its own, `reconcile` called directly), or the caches of a running controller's
// informers (`watchSources`: list, watch, resume, relist on 410, backoff: src/kube-api/informer.ts), which also
// say when something changed, so that the leader reconciles at once rather than on its next interval.
//
// A cache answers only while its informer is fresh: a failing watch is a failed read, as a failed list was,
// and nothing is decided on it. A NodeSlicePool this controller wrote (or found changed) is `pending` until
// the watch has delivered a later state — whose arrival starts the next pass — so that no pass decides on
// the state from before its own write (its write would only fail its precondition). The IPPools of departed
// nodes' slices stay reads (src/controller/controller.ts): only a departed node's slice or a layout change
// needs one, and watching the namespace's IPPools would bring the controller every allocation of every pool.

import { fail, ok, type Result } from '../errors.ts';
import type { KubeApi, Obj, ObjectRef } from '../kube-api/api.ts';
import { group, version } from '../codecs/ippool.ts';
import {
  startInformer,
  type Informer,
  type InformerFailure,
  type InformerOptions,
} from '../kube-api/informer.ts';
import { customCollection } from '../kube-api/collection.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { versionOf } from '../codecs/object-meta.ts';
import { listEvery } from '../store/paging.ts';

export type Sources = {
  /** Every NetworkAttachmentDefinition of the cluster; the error says why there are none to decide on. */
  nads(): Promise<Result<readonly Obj[], string>>;
  nodes(): Promise<Result<readonly Obj[], string>>;
  /**
   * The NodeSlicePool of that name in the controller's namespace; undefined when there is none; `pending`
   * while a cache has not yet caught up with a state it was told of (`moved`).
   */
  slicePool(name: string): Promise<Result<Obj | undefined | 'pending', string>>;
  /**
   * The NodeSlicePool exists in a state later than `resourceVersion` ('' when there was none): this pass
   * created or wrote it, or found it changed. A cache answers for it again once it holds a later state.
   */
  moved(name: string, resourceVersion: string): void;
};

export const nadsRef: ObjectRef = {
  group: 'k8s.cni.cncf.io',
  version: 'v1',
  plural: 'network-attachment-definitions',
};
export const nodesRef: ObjectRef = { group: '', version: 'v1', plural: 'nodes' };
export const slicePoolsRef = (namespace: string): ObjectRef => ({
  group,
  version,
  plural: 'nodeslicepools',
  namespace,
});

/** How long a NodeSlicePool stays `pending` at most: should its later state never arrive (deleted meanwhile). */
const pendingMs = 10_000;

/** Everything read from the API server when asked. */
export function readSources(api: KubeApi, namespace: string): Sources {
  const listed = async (ref: ObjectRef) => {
    const list = await listEvery(api, ref, `list ${ref.plural}`);
    return list.ok ? ok(list.value) : fail(list.error.message);
  };
  return {
    nads: () => listed(nadsRef),
    nodes: () => listed(nodesRef),
    slicePool: async (name) => {
      const read = await api.get({ ...slicePoolsRef(namespace), name });
      if (read.ok) return ok(read.value);
      if (read.error.kind === 'status' && read.error.code === 404) return ok(undefined);
      return fail(`${name}: cannot read the NodeSlicePool`);
    },
    moved: () => undefined,
  };
}

export type WatchedSources = {
  readonly sources: Sources;
  /** Resolves once every informer has listed. */
  readonly synced: Promise<void>;
  /** Whether every informer has listed. */
  isSynced(): boolean;
  /** Why the caches cannot be decided on now (for /readyz); undefined when they can. */
  notReady(): string | undefined;
  stop(): void;
};

export type WatchOptions = {
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Any change of a NAD, a node or a NodeSlicePool. */
  readonly onChange: () => void;
  readonly onFailure: (resource: string, failure: InformerFailure) => void;
};

/** The informers of the NADs, the nodes and the controller's namespace's NodeSlicePools. */
function startInformers(connection: KubeConnection, namespace: string, options: WatchOptions) {
  const inform = (resource: string, collection: Pick<InformerOptions, 'path' | 'list'>) =>
    startInformer({
      watch: connection.watch,
      ...collection,
      ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
      onChange: options.onChange,
      onFailure: (failure) => {
        options.onFailure(resource, failure);
      },
    });
  return {
    nads: inform(nadsRef.plural, customCollection(connection, nadsRef)),
    nodes: inform('nodes', { path: '/api/v1/nodes', list: (page) => connection.core.listNode(page) }),
    nodeslicepools: inform(
      'nodeslicepools',
      customCollection(connection, { group, version, plural: 'nodeslicepools', namespace }),
    ),
  };
}

/** A collection from its informer's cache, while it is fresh. */
const cached = (resource: string, informer: Informer) => () =>
  Promise.resolve(
    informer.fresh()
      ? ok(informer.list())
      : fail(`the watch of ${resource} is failing; deciding once it is back`),
  );

/** The NodeSlicePools from their informer's cache, `pending` after a move until the cache has caught up. */
function cachedSlicePools(informer: Informer, namespace: string): Pick<Sources, 'slicePool' | 'moved'> {
  /** NodeSlicePools that moved past the state the cache may hold: the resourceVersion they moved from. */
  const moved = new Map<string, { readonly from: bigint; readonly at: number }>();
  return {
    slicePool: (name) => {
      if (!informer.fresh())
        return Promise.resolve(fail('the watch of nodeslicepools is failing; deciding once it is back'));
      const held = informer.get(`${namespace}/${name}`);
      const mark = moved.get(name);
      if (mark === undefined) return Promise.resolve(ok(held));
      const later = held !== undefined && (versionOf(held) ?? 0n) > mark.from;
      if (!later && Date.now() - mark.at < pendingMs) return Promise.resolve(ok('pending' as const));
      moved.delete(name);
      return Promise.resolve(ok(held));
    },
    moved: (name, resourceVersion) => {
      const from = resourceVersion === '' ? 0n : (versionOf({ metadata: { resourceVersion } }) ?? 0n);
      moved.set(name, { from, at: Date.now() });
    },
  };
}

/** The informers of a running controller, and the sources they answer. */
export function watchSources(
  connection: KubeConnection,
  namespace: string,
  options: WatchOptions,
): WatchedSources {
  const informers = startInformers(connection, namespace, options);
  const all: readonly (readonly [string, Informer])[] = [
    [nadsRef.plural, informers.nads],
    ['nodes', informers.nodes],
    ['nodeslicepools', informers.nodeslicepools],
  ];
  let synced = false;
  const allSynced = Promise.all(all.map(([, i]) => i.synced)).then(() => {
    synced = true;
  });
  return {
    sources: {
      nads: cached(nadsRef.plural, informers.nads),
      nodes: cached('nodes', informers.nodes),
      ...cachedSlicePools(informers.nodeslicepools, namespace),
    },
    synced: allSynced,
    isSynced: () => synced,
    notReady: () => {
      if (!synced) return 'watch caches not synced yet';
      const failing = all.find(([, i]) => !i.fresh());
      return failing === undefined ? undefined : `the watch of ${failing[0]} is failing`;
    },
    stop: () => {
      for (const [, informer] of all) informer.stop();
    },
  };
}
