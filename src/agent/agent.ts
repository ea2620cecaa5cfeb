// The node agent, assembled: one warm client-node connection, the watch cache of the pools, group commit,
// the allocation service on the unix socket, fast release when a pod of this node is deleted, and
// /metrics, /healthz and /readyz.

import { createServer, type Server } from 'node:http';
import { ListWatch, Watch, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { networkNameOf } from '../gc/collect.ts';
import { ipOf } from '../ip/address.ts';
import { dropReservation } from '../ipam/reservations.ts';
import { deadlineIn } from '../ipam/retry.ts';
import type { Logger } from '../log.ts';
import { decodePool } from '../store/ippool.ts';
import type { KubeConnection } from '../store/kube.ts';
import { reservationName } from '../store/names.ts';
import { kubeStore } from '../store/store.ts';
import { groupCommitStore } from './group-commit.ts';
import { watchPools } from './pool-cache.ts';
import { startAgent, type Agent } from './server.ts';

export type RunAgentOptions = {
  readonly connection: KubeConnection;
  readonly socketPath: string;
  readonly nodeName: string;
  readonly log: Logger;
  readonly flatFilePaths?: readonly string[];
  /** Port of /metrics, /healthz and /readyz (0: any free port). */
  readonly metricsPort: number;
};

export type RunningAgent = { readonly agent: Agent; readonly metricsUrl: string; stop(): Promise<void> };

export async function runAgent(options: RunAgentOptions): Promise<RunningAgent> {
  const { connection, log } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'whereabouts_agent_requests_total',
    help: 'Plugin requests served, by verb and result',
    labelNames: ['verb', 'result'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'whereabouts_agent_request_seconds',
    help: 'Time to serve a plugin request, by verb',
    labelNames: ['verb'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const batches = new Histogram({
    name: 'whereabouts_agent_batch_size',
    help: 'Changes per group-committed pool patch',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const fallbacks = new Counter({
    name: 'whereabouts_agent_batch_fallbacks_total',
    help: 'Group commits whose tests failed and were settled one by one',
    registers: [registry],
  });
  const releasedOnDelete = new Counter({
    name: 'whereabouts_agent_released_on_pod_delete_total',
    help: 'Allocations released when a pod of this node was deleted',
    registers: [registry],
  });

  const cache = watchPools(connection, log);
  const store = groupCommitStore(kubeStore(connection), connection, cache);
  let reported = { patches: 0, items: 0, fallbacks: 0 };
  const agent = await startAgent({
    socketPath: options.socketPath,
    store,
    log,
    nodeName: options.nodeName,
    ...(options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths }),
    observe: (verb, exitCode, seconds) => {
      requests.inc({ verb, result: exitCode === 0 ? 'ok' : 'error' });
      latency.observe({ verb }, seconds);
      const now = store.stats;
      if (now.patches > reported.patches)
        batches.observe((now.items - reported.items) / (now.patches - reported.patches));
      fallbacks.inc(now.fallbacks - reported.fallbacks);
      reported = { ...now };
    },
  });

  /** A pod of this node was deleted: release what it holds, unless a pod of that name exists again. */
  async function releasePod(namespace: string, name: string): Promise<void> {
    const podRef = `${namespace}/${name}`;
    try {
      await connection.core.readNamespacedPod({ namespace, name });
      return; // a new incarnation (StatefulSet): its allocation is live
    } catch {
      // gone: release below
    }
    for (const poolName of cache.names()) {
      const object = cache.get(poolName);
      const snapshot = object === undefined ? undefined : decodePool(object);
      if (snapshot === undefined) continue;
      const range = ((object?.spec ?? {}) as { range?: string }).range ?? '';
      for (const a of snapshot.allocations.filter((x) => x.podRef === podRef)) {
        const released = await store.release(poolName, a.key, a.stored);
        if (!released.ok || released.value !== 'released') continue;
        releasedOnDelete.inc();
        log.verbose('released the address of a deleted pod', {
          pod: podRef,
          pool: poolName,
          ifname: a.ifName,
        });
        const reservation = reservationName(ipOf(snapshot.family, a.address), networkNameOf(poolName, range));
        await dropReservation(store, reservation, a, deadlineIn(10_000));
      }
    }
  }

  const podPath = '/api/v1/pods';
  const pods = new ListWatch<KubernetesObject>(
    podPath,
    new Watch(connection.kubeConfig),
    () =>
      connection.core.listPodForAllNamespaces({
        fieldSelector: `spec.nodeName=${options.nodeName}`,
      }),
    false,
    undefined,
    `spec.nodeName=${options.nodeName}`,
  );
  pods.on('delete', (o) => {
    const meta = (o as V1Pod).metadata;
    if (meta?.namespace !== undefined && meta.name !== undefined) void releasePod(meta.namespace, meta.name);
  });
  pods.on('error', (e: unknown) => {
    log.error('pod watch failed', { error: e instanceof Error ? e.message : String(e) });
  });
  const podsSynced = pods.start();

  let ready = false;
  void Promise.all([cache.synced, podsSynced]).then(() => (ready = true));
  const metrics: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      });
    } else if (req.url === '/healthz') {
      res.end('ok');
    } else if (req.url === '/readyz') {
      res.writeHead(ready ? 200 : 503);
      res.end(ready ? 'ready' : 'watch caches not synced yet');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => metrics.listen(options.metricsPort, resolve));
  const port = (metrics.address() as { port: number }).port;
  log.verbose('agent ready', { node: options.nodeName, metrics: port });

  return {
    agent,
    metricsUrl: `http://127.0.0.1:${port}`,
    stop: async () => {
      cache.stop();
      void pods.stop();
      await agent.close();
      metrics.closeAllConnections();
      await new Promise<void>((resolve) =>
        metrics.close(() => {
          resolve();
        }),
      );
    },
  };
}
