// The agent's watch cache of the IPPools in its namespace (client-node's ListWatch: list, then watch, and
// list again after a 410). A state older than the one held never replaces it, so our own write-through
// updates are not undone by a late event of an earlier write.

import { ListWatch, Watch, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { KubeConnection } from '../store/kube.ts';
import { group, version } from '../store/ippool.ts';
import type { PoolCache } from './group-commit.ts';

type Obj = Record<string, unknown>;

const versionOf = (o: Obj): bigint | undefined => {
  const rv = (o.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  return typeof rv === 'string' && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
};
const nameOf = (o: Obj): string => (o.metadata as { name?: string } | undefined)?.name ?? '';

export type WatchedPools = PoolCache & { readonly synced: Promise<void>; stop(): void; names(): string[] };

export function watchPools(connection: KubeConnection, log: Logger): WatchedPools {
  const pools = new Map<string, Obj>();
  const keep = (o: Obj): void => {
    const name = nameOf(o);
    const held = pools.get(name);
    const [a, b] = [held === undefined ? undefined : versionOf(held), versionOf(o)];
    if (held !== undefined && a !== undefined && b !== undefined && b < a) return;
    pools.set(name, o);
  };
  const path = `/apis/${group}/${version}/namespaces/${connection.namespace}/ippools`;
  const list = async () =>
    (await connection.custom.listNamespacedCustomObject({
      group,
      version,
      namespace: connection.namespace,
      plural: 'ippools',
    })) as {
      items: KubernetesObject[];
      metadata: { resourceVersion?: string };
    };
  const informer = new ListWatch<KubernetesObject>(path, new Watch(connection.kubeConfig), list, false);
  informer.on('add', (o) => {
    keep(o as Obj);
  });
  informer.on('update', (o) => {
    keep(o as Obj);
  });
  informer.on('delete', (o) => pools.delete(nameOf(o as Obj)));
  // client-node's ListWatch reconnects by itself; reads fall back to the API while the cache lacks a pool.
  informer.on('error', (e: unknown) => {
    log.error('pool watch failed', { error: e instanceof Error ? e.message : String(e) });
  });
  const synced = informer.start();

  return {
    synced,
    names: () => [...pools.keys()],
    get: (name) => pools.get(name),
    put: (name, object) => {
      if (nameOf(object) === name) keep(object);
    },
    update: (name, change) => {
      const held = pools.get(name);
      if (held === undefined) return;
      const spec = (held.spec ?? {}) as { allocations?: Record<string, unknown> };
      const allocations = { ...(spec.allocations ?? {}) };
      change(allocations);
      pools.set(name, { ...held, spec: { ...spec, allocations } });
    },
    invalidate: (name) => pools.delete(name),
    stop: () => {
      void informer.stop();
    },
  };
}
