// The agent's watch cache of the IPPools in its namespace, on the shared informer (list, watch, resume,
// relist on 410, backoff: src/store/informer.ts). A state older than the one held never replaces it, so
// our own write-through updates are not undone by a late event of an earlier write. While the informer is
// not fresh (the API server restarted, the connection was reset, a 429 said to wait), the cache vouches
// for no pool: reads go to the API server until the watch has caught up.

import type { Logger } from '../log.ts';
import { startInformer, type Informer, type InformerFailure } from '../store/informer.ts';
import type { KubeConnection } from '../store/kube.ts';
import { group, version } from '../store/ippool.ts';
import type { PoolCache } from './group-commit.ts';

type Obj = Record<string, unknown>;

const versionOf = (o: Obj): bigint | undefined => {
  const rv = (o.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  return typeof rv === 'string' && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
};
const nameOf = (o: Obj): string => (o.metadata as { name?: string } | undefined)?.name ?? '';

export type WatchedPools = PoolCache & {
  readonly synced: Promise<void>;
  readonly informer: Pick<Informer, 'fresh' | 'whenFresh'>;
  stop(): void;
  /**
   * The pools exactly as the API server last reported them (our own writes not applied ahead of it, nothing
   * invalidated), fresh or not: for conditional releases, which a stale entry cannot misdirect.
   */
  reported(): Obj[];
};

export type WatchPoolsOptions = {
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly onOpen?: (what: 'list' | 'watch') => void;
  readonly onFailure?: (failure: InformerFailure) => void;
};

/** A copy of a cached pool with its allocations changed by `change` (the cached object is never mutated). */
export function withAllocations(
  pool: Record<string, unknown>,
  change: (allocations: Record<string, unknown>) => void,
): Record<string, unknown> {
  const spec = (pool.spec ?? {}) as { allocations?: Record<string, unknown> };
  const allocations = { ...(spec.allocations ?? {}) };
  change(allocations);
  return { ...pool, spec: { ...spec, allocations } };
}

export function watchPools(
  connection: KubeConnection,
  log: Logger,
  options: WatchPoolsOptions = {},
): WatchedPools {
  const pools = new Map<string, Obj>();
  const keep = (o: Obj): void => {
    const name = nameOf(o);
    const held = pools.get(name);
    const [a, b] = [held === undefined ? undefined : versionOf(held), versionOf(o)];
    if (held !== undefined && a !== undefined && b !== undefined && b < a) return;
    pools.set(name, o);
  };
  const informer = startInformer({
    kubeConfig: connection.kubeConfig,
    path: `/apis/${group}/${version}/namespaces/${encodeURIComponent(connection.namespace)}/ippools`,
    list: async (page) =>
      (await connection.custom.listNamespacedCustomObject({
        group,
        version,
        namespace: connection.namespace,
        plural: 'ippools',
        ...page,
      })) as Obj,
    // Pools are large (up to the object size limit each): a few per page.
    pageSize: 20,
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    onChange: (change, o) => {
      if (change === 'deleted') pools.delete(nameOf(o));
      else keep(o);
    },
    onFailure: (failure) => {
      log.error('pool watch failed; reads go to the API server until it is back', {
        stage: failure.stage,
        error: failure.message,
        retryInMs: Math.round(failure.retryInMs),
      });
      options.onFailure?.(failure);
    },
    ...(options.onOpen === undefined ? {} : { onOpen: options.onOpen }),
  });

  return {
    synced: informer.synced,
    informer,
    reported: () => informer.list(),
    get: (name) => (informer.fresh() ? pools.get(name) : undefined),
    put: (name, object) => {
      if (nameOf(object) === name) keep(object);
    },
    update: (name, change) => {
      const held = pools.get(name);
      if (held !== undefined) pools.set(name, withAllocations(held, change));
    },
    invalidate: (name) => pools.delete(name),
    stop: () => {
      informer.stop();
    },
  };
}
