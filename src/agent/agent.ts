// The node agent, assembled from its parts, each started in turn and stopped in reverse (src/lifecycle.ts):
// one warm connection (the lean client, src/kube-api/http-api.ts), what it knows of the pools (its own node's
// slice pools watched, the pools it is writing held briefly: src/agent/pool-cache.ts), group commit, the
// allocation service on the unix socket (src/agent/server.ts), the node's record of its attachments, release
// when a pod of this node or an IPAMClaim is deleted (src/agent/pod-watch.ts, claim-watch.ts) and of what
// went while it was down (src/agent/reconcile.ts), and /metrics, /healthz and /readyz.

import type { Logger } from '../log.ts';
import { startMetricsServer } from '../metrics-server.ts';
import { parts, type Parts } from '../lifecycle.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { kubeStore } from '../store/store.ts';
import { attachmentRecords, recordServed, type AttachmentRecords } from './attachments.ts';
import { watchClaims } from './claim-watch.ts';
import { groupCommitStore } from './group-commit.ts';
import { install, keepKubeconfigFresh, pluginKubeconfigPath, type InstallOptions } from './install.ts';
import { agentMetrics, cacheGauges, informerOptions, observeServed, type AgentMetrics } from './metrics.ts';
import { watchNodeSlicePools } from './node-slice-pools.ts';
import { watchPods } from './pod-watch.ts';
import { agentPools } from './pool-cache.ts';
import { reconcileAttachments } from './reconcile.ts';
import { background, releaser, type Background } from './release.ts';
import { startAgent, type Agent } from './server.ts';

export type RunAgentOptions = {
  readonly connection: KubeConnection;
  readonly socketPath: string;
  readonly nodeName: string;
  readonly log: Logger;
  readonly flatFilePaths?: readonly string[];
  /** The kubeconfig by which plugins name this agent's store; by default the one it installs. */
  readonly kubeconfig?: string;
  /** Port of /metrics, /healthz and /readyz (0: any free port). */
  readonly metricsPort: number;
  /** The node's record of its attachments (a host path that survives restarts); none: no reconcile. */
  readonly stateDir?: string;
  /** What to install onto the host, and to keep fresh (the kubeconfig, as the token rotates). */
  readonly install?: InstallOptions;
  readonly tokenCheckMs?: number;
  /** First and longest pause between failed lists and watches (default 250 ms to 30 s). */
  readonly watchBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** How long a copy of a shared pool from the API server's answer is trusted (src/agent/pool-cache.ts). */
  readonly poolTrustMs?: number;
};

/** How often the projected token and CA are looked at for a change, by default. */
const tokenCheckMs = 5_000;

export type RunningAgent = { readonly agent: Agent; readonly metricsUrl: string; stop(): Promise<void> };

/** Installs onto the host what `options.install` names, and keeps its kubeconfig fresh (a part). */
function installOnHost(options: RunAgentOptions, running: Parts): void {
  if (options.install === undefined) return;
  const installed = install(options.install);
  if (!installed.ok)
    throw new Error(`cannot install onto the host: ${installed.error.file}: ${installed.error.reason}`);
  options.log.verbose('installed onto the host', installed.value);
  running.started(
    'kubeconfig refresh',
    keepKubeconfigFresh(options.install, options.tokenCheckMs ?? tokenCheckMs, options.log),
  );
}

/** What the agent knows of the pools (src/agent/pool-cache.ts), its store over them, and the slice watch. */
function startPools(options: RunAgentOptions, running: Parts, metrics: AgentMetrics) {
  const { connection, log } = options;
  const cache = agentPools(connection, log, {
    node: options.nodeName,
    ...(options.poolTrustMs === undefined ? {} : { trustMs: options.poolTrustMs }),
    ...informerOptions(metrics, 'ippools', options.watchBackoff),
  });
  running.started('pool cache', () => {
    cache.stop();
  });
  const store = groupCommitStore(kubeStore(connection), connection, cache);
  const slices = watchNodeSlicePools(
    connection,
    log,
    informerOptions(metrics, 'nodeslicepools', options.watchBackoff),
  );
  running.started('NodeSlicePool watch', () => {
    slices.stop();
  });
  return { cache, store, slices };
}

type Pools = ReturnType<typeof startPools>;

/** The allocation service on the unix socket; every request served is recorded and counted. */
async function startSocket(
  options: RunAgentOptions,
  running: Parts,
  { records, metrics, pools }: { records: AttachmentRecords; metrics: AgentMetrics; pools: Pools },
): Promise<Agent> {
  const { install } = options;
  const kubeconfig =
    options.kubeconfig ?? (install === undefined ? undefined : pluginKubeconfigPath(install));
  const observers = [recordServed(records, options.log), observeServed(metrics, () => pools.store.stats)];
  const agent = await startAgent({
    socketPath: options.socketPath,
    store: pools.slices.serve(pools.store),
    log: options.log,
    nodeName: options.nodeName,
    ...(options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths }),
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    observe: (served) => {
      for (const observe of observers) observe(served);
    },
  });
  running.started('socket server', () => agent.close());
  return agent;
}

/**
 * Release on the agent's own: the pod and IPAMClaim watches, and the start-up reconcile of the records made
 * before this agent started, once the pools and pods have listed. Whether that reconcile is done yet.
 */
function startReleases(
  options: RunAgentOptions,
  running: Parts,
  {
    records,
    metrics,
    pools,
    releasing,
    recordedBefore,
  }: {
    records: AttachmentRecords;
    metrics: AgentMetrics;
    pools: Pools;
    releasing: ReleasingParts;
    /** `containerId/ifName` of the records written before the agent started. */
    recordedBefore: ReadonlySet<string>;
  },
) {
  const { connection, log, nodeName } = options;
  const { store } = pools;
  const releases = releaser({
    store,
    connection,
    log,
    records,
    metrics,
    stopping: releasing.stopping.signal,
  });
  const backoff = options.watchBackoff;
  const deps = {
    connection,
    log,
    records,
    metrics,
    releases,
    background: releasing.work,
    ...(backoff && { backoff }),
  };
  const pods = watchPods({ ...deps, nodeName });
  running.started('pod watch', () => {
    pods.stop();
  });
  const claims = watchClaims({ ...deps, pods });
  running.started('IPAMClaim watch', () => {
    claims.stop();
  });
  // From the stop on, no release starts, and none waits any longer to read a pod back.
  running.started('new releases', () => {
    releasing.stopping.abort();
  });
  let reconciled = false;
  void Promise.all([pools.cache.synced, pods.synced])
    .then(() => reconcileAttachments({ store, log, nodeName, records, metrics, releases }, recordedBefore))
    .catch((e: unknown) => {
      log.error('reconcile failed; the cluster GC covers what it missed', {
        error: e instanceof Error ? e.message : String(e),
      });
    })
    .then(() => (reconciled = true));
  return { pods, reconciled: () => reconciled };
}

/** The releases' work in the background, and what ends it: created before the socket, stopped after it. */
type ReleasingParts = { readonly stopping: AbortController; readonly work: Background };

function releasing(log: Logger, running: Parts): ReleasingParts {
  const stopping = new AbortController();
  const work = background(log, stopping.signal);
  // Releases under way finish (their writes are conditional) once the socket is closed.
  running.started('releases under way', () => work.settled());
  return { stopping, work };
}

/**
 * Starts the agent's parts in order, each registered as it starts (so that a failure half-way stops what
 * had started); the caller stops them.
 */
async function startParts(options: RunAgentOptions, running: Parts) {
  const metrics = agentMetrics();
  /** Why /readyz answers 503; set once everything has started. */
  let notReady = (): string | undefined => 'watch caches not synced yet';
  const server = await startMetricsServer(metrics.registry, options.metricsPort, () => notReady());
  running.started('metrics endpoint', () => server.close());
  const records = attachmentRecords(options.stateDir);
  /**
   * The attachments recorded before this agent started — before its socket serves anything: the only ones
   * the start-up reconcile decides on.
   */
  const recordedBefore = new Set(records.list().map((r) => `${r.containerId}/${r.ifName}`));
  const pools = startPools(options, running, metrics);
  const background = releasing(options.log, running);
  const agent = await startSocket(options, running, { records, metrics, pools });
  const { pods, reconciled } = startReleases(options, running, {
    records,
    metrics,
    pools,
    releasing: background,
    recordedBefore,
  });
  const { cache, slices } = pools;
  cacheGauges(
    metrics,
    {
      ippools: () => cache.informer.fresh(),
      nodeslicepools: () => slices.informer.fresh(),
      pods: () => pods.fresh(),
    },
    () => cache.held(),
  );
  notReady = () =>
    !reconciled()
      ? 'watch caches not synced yet'
      : !cache.informer.fresh()
        ? "the watch of this node's slice pools is failing (they are read from the API server)"
        : !pods.fresh()
          ? 'the pod watch is failing (release on pod deletion waits for it)'
          : undefined;
  return { agent, metricsUrl: server.url };
}

export async function runAgent(options: RunAgentOptions): Promise<RunningAgent> {
  const running = parts();
  try {
    installOnHost(options, running);
    const { agent, metricsUrl } = await startParts(options, running);
    options.log.verbose('agent ready', { node: options.nodeName, metrics: metricsUrl });
    return { agent, metricsUrl, stop: () => running.stop() };
  } catch (e) {
    await running.stop().catch((stopped: unknown) => {
      options.log.error('could not stop what had started', { error: String(stopped) });
    });
    throw e;
  }
}
