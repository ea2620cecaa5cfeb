// The node agent's watch of the NodeSlicePools of its namespace: which slices of each sliced range are this
// node's. Every ADD on a sliced network needs them, and they change only when a node takes a slice — so a
// watch (one object per sliced range, sent again to every agent only when a slice changes hands) instead of
// a GET of the NodeSlicePool per ADD. Same informer as everything else (src/kube-api/informer.ts).
//
// After this node writes a NodeSlicePool (takes a slice), the watch vouches for that object again only once
// it has delivered a state later than the one it held: until then reads go to the API server, so a node
// never decides on the state from before its own write (and takes a second slice for nothing).

import { ok } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { SliceAllocation } from '../slices/layout.ts';
import { startInformer, type Informer, type InformerFailure } from '../kube-api/informer.ts';
import { customCollection } from '../kube-api/collection.ts';
import { group, version } from '../codecs/ippool.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { decodeNodeSlicePool } from '../codecs/nodeslicepool.ts';
import type { SliceStore } from '../store/slice-store.ts';
import { versionOf as resourceVersionOf } from '../codecs/object-meta.ts';

import type { JsonObject } from '../codecs/decode.ts';

/** A state's place in the object's history; 0 for none (or one that is not a number: never trusted as later). */
const versionOf = (o: JsonObject | undefined): bigint =>
  o === undefined ? 0n : (resourceVersionOf(o) ?? 0n);

export type WatchedNodeSlicePools = {
  readonly synced: Promise<void>;
  readonly informer: Pick<Informer, 'fresh'>;
  /** The store with its slice reads answered from the watch where it vouches for them. */
  serve<S extends SliceStore>(store: S): S;
  stop(): void;
};

export type NodeSlicePoolsOptions = {
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly onOpen?: (what: 'list' | 'watch') => void;
  readonly onFailure?: (failure: InformerFailure) => void;
};

export function watchNodeSlicePools(
  connection: KubeConnection,
  log: Logger,
  options: NodeSlicePoolsOptions = {},
): WatchedNodeSlicePools {
  const { namespace } = connection;
  const informer = startInformer({
    watch: connection.watch,
    ...customCollection(connection, { group, version, plural: 'nodeslicepools', namespace }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    onFailure: (failure) => {
      log.error('the NodeSlicePool watch failed; slices are read from the API server until it is back', {
        stage: failure.stage,
        error: failure.message,
        retryInMs: Math.round(failure.retryInMs),
      });
      options.onFailure?.(failure);
    },
    ...(options.onOpen === undefined ? {} : { onOpen: options.onOpen }),
  });
  /** NodeSlicePools this node wrote, with the resourceVersion the watch held then. */
  const written = new Map<string, bigint>();

  /** The watched slices of the NodeSlicePool, when the watch vouches for them. */
  function watched(name: string): SliceAllocation[] | undefined {
    if (!informer.fresh()) return undefined;
    const object = informer.get(`${namespace}/${name}`);
    if (object === undefined) return undefined; // not seen (yet): the API server says
    const before = written.get(name);
    if (before !== undefined) {
      if (versionOf(object) <= before) return undefined;
      written.delete(name);
    }
    const pool = decodeNodeSlicePool(object);
    return pool.ok ? [...pool.value.allocations] : undefined; // malformed: the API server's read reports it
  }

  return {
    synced: informer.synced,
    informer,
    serve: (store) => ({
      ...store,
      readSlices: async (name) => {
        const slices = watched(name);
        return slices === undefined ? store.readSlices(name) : ok(slices);
      },
      assignSlice: async (name, index, free, node) => {
        written.set(name, versionOf(informer.get(`${namespace}/${name}`)));
        return store.assignSlice(name, index, free, node);
      },
    }),
    stop: () => {
      informer.stop();
    },
  };
}
