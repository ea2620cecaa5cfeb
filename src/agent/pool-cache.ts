// What the node agent knows of the IPPools, without receiving every other node's writes (docs/decisions.md,
// "What an agent knows of a pool"). Two kinds of pool, two ways of knowing:
//
// - Its own node's slice pools (`node_slice_size`), which only this node writes: watched with a label
//   selector (src/codecs/pool-labels.ts), on the shared informer (src/kube-api/informer.ts: list, watch, resume,
//   relist on 410, backoff). While the informer is not fresh the watch vouches for nothing.
// - Every other pool — above all the shared, unsliced ones every node writes: the copy the API server last
//   sent this agent, in the answer to its own read or write, trusted for `trustMs` after it arrived and
//   forgotten after that. A burst on a node reads the pool once and then works from its own patches'
//   answers; a pool the node is not using costs it nothing. A copy may miss another node's write of the
//   last seconds, exactly as a lagging watch would: the conditional writes catch it (src/agent/group-commit.ts
//   then reads the pool again), and every decision that "nothing is held" is taken on a fresh read.
//
// A state older than the one held never replaces it, so a late answer never undoes a later one.

import type { Logger } from '../log.ts';
import { startInformer, type Informer, type InformerFailure } from '../kube-api/informer.ts';
import { customCollection } from '../kube-api/collection.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { group, version } from '../codecs/ippool.ts';
import { nodeSelector } from '../codecs/pool-labels.ts';
import type { PoolCache } from './group-commit.ts';
import { metaOf, versionOf } from '../codecs/object-meta.ts';

import { objectAt, type JsonObject } from '../codecs/decode.ts';

/** Whether `o` is not older than `held` (by resourceVersion; when either has none, the newer arrival wins). */
const notOlder = (o: JsonObject, held: JsonObject | undefined): boolean => {
  if (held === undefined) return true;
  const [a, b] = [versionOf(held), versionOf(o)];
  return a === undefined || b === undefined || b >= a;
};

export type AgentPools = PoolCache & {
  /** The first list of the node's slice pools. */
  readonly synced: Promise<void>;
  /** The watch of the node's slice pools. */
  readonly informer: Pick<Informer, 'fresh' | 'whenFresh'>;
  /** Pools held now: watched slice pools and trusted copies (the agent's `whereabouts_agent_pools_held`). */
  held(): { readonly watched: number; readonly copies: number };
  stop(): void;
};

export type AgentPoolsOptions = {
  /** The agent's node: its slice pools are watched. */
  readonly node: string;
  /** How long a copy of a pool from an answer of the API server is trusted (default 10 s). */
  readonly trustMs?: number;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly onOpen?: (what: 'list' | 'watch') => void;
  readonly onFailure?: (failure: InformerFailure) => void;
  /** The clock (tests). */
  readonly now?: () => number;
};

/** About as long as a watch event may lag on a busy API server: a copy is never trusted longer than that. */
export const defaultTrustMs = 10_000;

/** A copy of a cached pool with its allocations changed by `change` (the cached object is never mutated). */
export function withAllocations(pool: JsonObject, change: (allocations: JsonObject) => void): JsonObject {
  const spec = objectAt(pool, 'spec');
  const allocations = { ...objectAt(spec, 'allocations') };
  change(allocations);
  return { ...pool, spec: { ...spec, allocations } };
}

export function agentPools(connection: KubeConnection, log: Logger, options: AgentPoolsOptions): AgentPools {
  const now = options.now ?? (() => performance.now());
  const trustMs = options.trustMs ?? defaultTrustMs;
  const watched = new Map<string, JsonObject>();
  /** Copies from answers, with when the API server sent them. */
  const copies = new Map<string, { readonly object: JsonObject; readonly at: number }>();
  const informer = startInformer({
    watch: connection.watch,
    ...customCollection(
      connection,
      { group, version, plural: 'ippools', namespace: connection.namespace },
      nodeSelector(options.node),
    ),
    // Pools are large (up to the object size limit each): a few per page.
    pageSize: 20,
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    onChange: (change, o) => {
      const { name } = metaOf(o);
      if (change === 'deleted') watched.delete(name);
      else if (notOlder(o, watched.get(name))) watched.set(name, o);
    },
    onFailure: (failure) => {
      log.error(
        "the watch of this node's slice pools failed; they are read from the API server until it is back",
        {
          stage: failure.stage,
          error: failure.message,
          retryInMs: Math.round(failure.retryInMs),
        },
      );
      options.onFailure?.(failure);
    },
    ...(options.onOpen === undefined ? {} : { onOpen: options.onOpen }),
  });

  /** The copy of a pool, while it is trusted; an untrusted one is forgotten. */
  const copyOf = (name: string): JsonObject | undefined => {
    const copy = copies.get(name);
    if (copy === undefined) return undefined;
    if (now() - copy.at <= trustMs) return copy.object;
    copies.delete(name);
    return undefined;
  };
  // Copies nobody asked for again are dropped, so that the agent holds only the pools it is using.
  const sweep = setInterval(() => {
    for (const name of copies.keys()) copyOf(name);
  }, trustMs);
  sweep.unref();

  return {
    synced: informer.synced,
    informer,
    held: () => ({ watched: watched.size, copies: copies.size }),
    get: (name) => (informer.fresh() ? watched.get(name) : undefined) ?? copyOf(name),
    put: (name, object) => {
      if (metaOf(object).name !== name) return;
      if (watched.has(name)) {
        if (notOlder(object, watched.get(name))) watched.set(name, object);
        return;
      }
      if (notOlder(object, copies.get(name)?.object)) copies.set(name, { object, at: now() });
    },
    update: (name, change) => {
      const held = watched.get(name);
      if (held !== undefined) watched.set(name, withAllocations(held, change));
      const copy = copies.get(name);
      if (copy !== undefined) copies.set(name, { object: withAllocations(copy.object, change), at: copy.at });
    },
    invalidate: (name) => {
      watched.delete(name);
      copies.delete(name);
    },
    stop: () => {
      clearInterval(sweep);
      informer.stop();
    },
  };
}
