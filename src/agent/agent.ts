// The node agent, assembled: one warm client-node connection, the watch cache of the pools, group commit,
// the allocation service on the unix socket, fast release when a pod of this node is deleted, and
// /metrics, /healthz and /readyz.

import { ListWatch, Watch, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { parseCniArgs, podRefOf } from '../config/cni-args.ts';
import { errnoOf } from '../errors.ts';
import { ipOf } from '../ip/address.ts';
import { dropReservation } from '../ipam/reservations.ts';
import { deadlineIn } from '../ipam/retry.ts';
import type { Logger } from '../log.ts';
import { startMetricsServer } from '../metrics-server.ts';
import { decodePool, type StoredAllocation } from '../store/ippool.ts';
import type { KubeConnection } from '../store/kube.ts';
import { networkNameOf, reservationName } from '../store/names.ts';
import { kubeStore } from '../store/store.ts';
import { attachmentRecords } from './attachments.ts';
import { groupCommitStore } from './group-commit.ts';
import { install, installKubeconfig, type InstallOptions } from './install.ts';
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
  /** The node's record of its attachments (a host path that survives restarts); none: no reconcile. */
  readonly stateDir?: string;
  /** What to install onto the host, and to keep fresh (the kubeconfig, as the token rotates). */
  readonly install?: InstallOptions;
  readonly tokenCheckMs?: number;
};

/** How often the projected token and CA are looked at for a change, by default. */
const tokenCheckMs = 5_000;

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

  const releasedOnReconcile = new Counter({
    name: 'whereabouts_agent_released_on_reconcile_total',
    help: 'Allocations released at start-up because their pod had left this node while the agent was down',
    registers: [registry],
  });

  if (options.install !== undefined) {
    const installed = install(options.install);
    if (!installed.ok)
      throw new Error(`cannot install onto the host: ${installed.error.file}: ${installed.error.reason}`);
    log.verbose('installed onto the host', installed.value);
  }
  const records = options.stateDir === undefined ? undefined : attachmentRecords(options.stateDir);
  /** Keeps the node's record in step with what the plugin was told. */
  function record(verb: string, env: Readonly<Record<string, string>>): void {
    const args = parseCniArgs(env.CNI_ARGS);
    const podRef = args.ok ? podRefOf(args.value) : undefined;
    const containerId = env.CNI_CONTAINERID ?? '';
    const ifName = env.CNI_IFNAME ?? '';
    try {
      if (verb === 'ADD' && podRef !== undefined) records?.add({ podRef, containerId, ifName });
      if (verb === 'DEL') records?.remove(containerId, ifName);
    } catch (e) {
      log.error('cannot update the attachment record', { error: errnoOf(e) ?? String(e) });
    }
  }

  const cache = watchPools(connection, log);
  const store = groupCommitStore(kubeStore(connection), connection, cache);
  let reported = { patches: 0, items: 0, fallbacks: 0 };
  const agent = await startAgent({
    socketPath: options.socketPath,
    store,
    log,
    nodeName: options.nodeName,
    ...(options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths }),
    observe: ({ env, exitCode, seconds }) => {
      const verb = env.CNI_COMMAND ?? '';
      if (exitCode === 0) record(verb, env);
      requests.inc({ verb, result: exitCode === 0 ? 'ok' : 'error' });
      latency.observe({ verb }, seconds);
      const now = store.stats;
      if (now.patches > reported.patches)
        batches.observe((now.items - reported.items) / (now.patches - reported.patches));
      fallbacks.inc(now.fallbacks - reported.fallbacks);
      reported = { ...now };
    },
  });

  /**
   * Releases, conditionally, every allocation the filter picks (and drops its reservation): what the plain
   * DEL does, but found in the watch cache by owner instead of by container and interface.
   */
  async function releaseWhere(
    why: string,
    picks: (a: StoredAllocation) => boolean,
  ): Promise<{ released: number; failed: number }> {
    let released = 0;
    let failed = 0;
    for (const poolName of cache.names()) {
      const object = cache.get(poolName);
      const snapshot = object === undefined ? undefined : decodePool(object);
      if (snapshot === undefined) continue;
      const range = ((object?.spec ?? {}) as { range?: string }).range ?? '';
      for (const a of snapshot.allocations.filter(picks)) {
        const result = await store.release(poolName, a.key, a.stored);
        if (!result.ok) failed++;
        if (!result.ok || result.value !== 'released') continue;
        released++;
        log.verbose(why, { pod: a.podRef, pool: poolName, ifname: a.ifName, container: a.containerId });
        // The agent's own node tells its slice pools (`<network>-<node>-<slice>`) from whole-range pools.
        const network = networkNameOf(poolName, range, [], options.nodeName);
        const reservation = reservationName(ipOf(snapshot.family, a.address), network);
        await dropReservation(store, reservation, a, deadlineIn(10_000));
      }
    }
    return { released, failed };
  }

  /** Whether a pod of that name is (again) scheduled on this node; an unreadable answer counts as yes. */
  async function onThisNode(namespace: string, name: string): Promise<boolean> {
    try {
      const pod = await connection.core.readNamespacedPod({ namespace, name });
      return pod.spec?.nodeName === options.nodeName || pod.spec?.nodeName === undefined;
    } catch (e) {
      return (e as { code?: number }).code !== 404;
    }
  }

  /** A pod of this node was deleted: release what it holds, unless a pod of that name exists again. */
  async function releasePod(namespace: string, name: string): Promise<void> {
    const podRef = `${namespace}/${name}`;
    try {
      await connection.core.readNamespacedPod({ namespace, name });
      return; // a new incarnation (StatefulSet): its allocation is live
    } catch {
      // gone: release below
    }
    const { released } = await releaseWhere(
      'released the address of a deleted pod',
      (a) => a.podRef === podRef,
    );
    releasedOnDelete.inc(released);
    for (const r of records?.list() ?? []) if (r.podRef === podRef) records?.remove(r.containerId, r.ifName);
  }

  /**
   * After a restart or a reboot: the attachments this node made whose pod is no longer on it (deleted while
   * the agent was down or the node was off) are released; records whose allocation has moved on (the pod's
   * new sandbox re-used it, or it was released) are dropped.
   */
  async function reconcile(): Promise<void> {
    if (records === undefined) return;
    let released = 0;
    for (const record of records.list()) {
      const holds = (a: StoredAllocation) =>
        a.podRef === record.podRef && a.containerId === record.containerId && a.ifName === record.ifName;
      const live = cache.names().some((pool) => {
        const object = cache.get(pool);
        return (object === undefined ? undefined : decodePool(object))?.allocations.some(holds) ?? false;
      });
      const [namespace = '', name = ''] = record.podRef.split('/');
      if (live && (await onThisNode(namespace, name))) continue;
      const outcome = live
        ? await releaseWhere('released the address of a pod gone while the agent was down', holds)
        : { released: 0, failed: 0 };
      released += outcome.released;
      if (outcome.failed === 0) records.remove(record.containerId, record.ifName); // else: again next start
    }
    releasedOnReconcile.inc(released);
    log.verbose('reconciled the attachments of this node', { released });
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
  void Promise.all([cache.synced, podsSynced])
    .then(reconcile)
    .catch((e: unknown) => {
      log.error('reconcile failed; the cluster GC covers what it missed', {
        error: e instanceof Error ? e.message : String(e),
      });
    })
    .then(() => (ready = true));
  const refresh =
    options.install === undefined
      ? undefined
      : setInterval(() => {
          const refreshed = installKubeconfig(options.install as InstallOptions);
          if (!refreshed.ok) log.error('cannot refresh the plugin kubeconfig', { ...refreshed.error });
          else if (refreshed.value === 'written')
            log.verbose('rewrote the plugin kubeconfig: token or CA changed');
        }, options.tokenCheckMs ?? tokenCheckMs);
  const metrics = await startMetricsServer(registry, options.metricsPort, () =>
    ready ? undefined : 'watch caches not synced yet',
  );
  log.verbose('agent ready', { node: options.nodeName, metrics: metrics.url });

  return {
    agent,
    metricsUrl: metrics.url,
    stop: async () => {
      clearInterval(refresh);
      cache.stop();
      void pods.stop();
      await agent.close();
      await metrics.close();
    },
  };
}
