// The node agent, assembled: one warm connection (the lean client, src/store/http-api.ts), what it knows of
// the pools (its own node's slice pools watched, the pools it is writing held briefly:
// src/agent/pool-cache.ts), group commit, the allocation service on the unix socket, the node's record of
// its attachments, fast release when a pod of this node is deleted, and /metrics, /healthz and /readyz.

import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errnoOf } from '../errors.ts';
import { releaseAt, type ReleaseSite } from '../ipam/transaction.ts';
import { claimPodRef, isRetained, memberOf, unwanted } from '../allocator/keeper.ts';
import { claimGroup, claimVersion, decodeClaim } from '../store/ipamclaim.ts';
import { deadlineIn, retrying } from '../ipam/retry.ts';
import type { Logger } from '../log.ts';
import { startMetricsServer } from '../metrics-server.ts';
import type { StoredAllocation } from '../store/ippool.ts';
import type { KubeConnection } from '../store/kube.ts';
import { networkNameOf } from '../store/names.ts';
import { startInformer, type ListAnswer } from '../store/informer.ts';
import { kubeStore } from '../store/store.ts';
import { attachmentRecords, type Attachment } from './attachments.ts';
import { groupCommitStore } from './group-commit.ts';
import { install, installKubeconfig, pluginKubeconfigPath, type InstallOptions } from './install.ts';
import { watchNodeSlicePools } from './node-slice-pools.ts';
import { agentPools } from './pool-cache.ts';
import { startAgent, type Agent, type Served } from './server.ts';
import { metaOf } from '../store/object-meta.ts';
import { decodePod, isDone } from '../store/pod.ts';

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
/** How long a pod is read back (with retries) before its release is left to GC. */
const podReadDeadlineMs = 30_000;
/** How long the release of a deleted pod's address keeps trying to drop its reservation. */
const reservationDropMs = 60_000;

/** An allocation as the API server has it, with where its release looks. */
type Holding = ReleaseSite & { readonly a: StoredAllocation };

type PodNow =
  | { readonly gone: true }
  | { readonly gone: false; readonly uid: string; readonly done: boolean; readonly node: string };

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

  const keptForMembers = new Counter({
    name: 'whereabouts_agent_kept_for_statefulset_total',
    help: 'Deleted pods whose addresses were kept because their StatefulSet still wants the member (sticky_ips)',
    registers: [registry],
  });

  const releasedOnClaimDelete = new Counter({
    name: 'whereabouts_agent_released_on_claim_delete_total',
    help: 'Allocations released when an IPAMClaim whose owner pod runs on this node was deleted',
    registers: [registry],
  });

  const foreignAttachments = new Counter({
    name: 'whereabouts_agent_foreign_attachments_total',
    help: 'Attachments this node recorded whose pod runs on another node (kept; a node-name mismatch between the agent and its pods?)',
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
  const records = attachmentRecords(options.stateDir);
  /**
   * The attachments recorded before this agent started: the only ones the start-up reconcile decides on.
   * An ADD it serves meanwhile is recorded too, but its pod was there a moment ago — not a pod that went
   * while no agent ran.
   */
  const recordedBefore = new Set(records.list().map((r) => `${r.containerId}/${r.ifName}`));
  /**
   * Keeps the node's record in step with what the plugin was told: an ADD's pools; a DEL ends the record
   * unless the network keeps addresses beyond a DEL (`sticky_ips`), whose record the pod's or the claim's
   * deletion settles.
   */
  function record({ env, held }: Served): void {
    const containerId = env.CNI_CONTAINERID ?? '';
    const ifName = env.CNI_IFNAME ?? '';
    try {
      if (env.CNI_COMMAND === 'ADD' && held !== undefined)
        records.add({ podRef: held.podRef, containerId, ifName, sites: held.sites, sticky: held.sticky });
      if (env.CNI_COMMAND === 'DEL' && records.get(containerId, ifName)?.sticky !== true)
        records.remove(containerId, ifName);
    } catch (e) {
      log.error('cannot update the attachment record', { error: errnoOf(e) ?? String(e) });
    }
  }
  const forget = (done: readonly Attachment[]): void => {
    for (const r of done) records.remove(r.containerId, r.ifName);
  };

  const watchStarts = new Counter({
    name: 'whereabouts_agent_watch_starts_total',
    help: 'Lists and watches the API server accepted, by resource (a watch is re-opened whenever the server ends it)',
    labelNames: ['resource', 'request'],
    registers: [registry],
  });
  const watchFailures = new Counter({
    name: 'whereabouts_agent_watch_failures_total',
    help: 'Failed lists and watches, by resource (each is retried with backoff)',
    labelNames: ['resource'],
    registers: [registry],
  });
  const informerOptions = (resource: string) => ({
    ...(options.watchBackoff === undefined ? {} : { backoff: options.watchBackoff }),
    onOpen: (request: 'list' | 'watch') => {
      watchStarts.inc({ resource, request });
    },
    onFailure: () => {
      watchFailures.inc({ resource });
    },
  });
  const cache = agentPools(connection, log, {
    node: options.nodeName,
    ...(options.poolTrustMs === undefined ? {} : { trustMs: options.poolTrustMs }),
    ...informerOptions('ippools'),
  });
  const store = groupCommitStore(kubeStore(connection), connection, cache);
  const nodeSlicePools = watchNodeSlicePools(connection, log, informerOptions('nodeslicepools'));
  let reported = { patches: 0, items: 0, fallbacks: 0 };
  const ownKubeconfig =
    options.kubeconfig ?? (options.install === undefined ? undefined : pluginKubeconfigPath(options.install));
  const agent = await startAgent({
    socketPath: options.socketPath,
    store: nodeSlicePools.serve(store),
    log,
    nodeName: options.nodeName,
    ...(options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths }),
    ...(ownKubeconfig === undefined ? {} : { kubeconfig: ownKubeconfig }),
    observe: (served) => {
      const { env, exitCode, seconds } = served;
      const verb = env.CNI_COMMAND ?? '';
      if (exitCode === 0) record(served);
      requests.inc({ verb, result: exitCode === 0 ? 'ok' : 'error' });
      latency.observe({ verb }, seconds);
      const now = store.stats;
      if (now.patches > reported.patches)
        batches.observe((now.items - reported.items) / (now.patches - reported.patches));
      fallbacks.inc(now.fallbacks - reported.fallbacks);
      reported = { ...now };
    },
  });

  /** Ends waits and retries at stop. */
  const stopping = new AbortController();
  /** Releases on pod deletion under way. */
  const background = new Set<Promise<void>>();

  /**
   * What the recorded attachments hold now, read from the API server (one read per recorded pool):
   * entries of the record's pod (or claim) and interface — of its container, or, where the network keeps
   * addresses beyond a DEL, whatever container the entry names now (retained for a StatefulSet member, moved
   * to the claim's latest pod). `undefined` when a pool cannot be read: nothing is decided on half a view.
   */
  async function holdingsOf(recorded: readonly Attachment[]): Promise<Holding[] | undefined> {
    const sites = new Map<string, ReleaseSite>();
    for (const r of recorded) for (const site of r.sites ?? []) sites.set(site.pool, site);
    const found: Holding[] = [];
    for (const site of sites.values()) {
      const read = await retrying(deadlineIn(podReadDeadlineMs), () => store.readPoolCurrent(site.pool));
      if (!read.ok) {
        log.error("cannot read a pool of this node's attachments; deciding on them later (GC covers them)", {
          pool: site.pool,
          error: read.error.message,
        });
        return undefined;
      }
      const held = (read.value?.allocations ?? []).filter((a) =>
        recorded.some(
          (r) =>
            r.sites?.some((s) => s.pool === site.pool) === true &&
            a.podRef === r.podRef &&
            a.ifName === r.ifName &&
            (r.sticky === true || a.containerId === r.containerId),
        ),
      );
      found.push(...held.map((a) => ({ ...site, a })));
    }
    return found;
  }

  /**
   * Releases each holding with the plain DEL's release (src/ipam/transaction.ts `releaseAt`), found by the
   * holding's container and interface instead of by a DEL's: conditional writes, and the reservation dropped
   * once the pool no longer holds the entry — also when the write committed but its answer was lost. An entry
   * that changed since — a new sandbox of the pod took it over, DEL released it — is left alone.
   */
  async function release(
    why: string,
    held: readonly Holding[],
  ): Promise<{ released: number; failed: number }> {
    let released = 0;
    let failed = 0;
    for (const { a, ...site } of held) {
      const { pool } = site;
      // With room to outlast an API server restart (429s until its caches are back).
      const result = await releaseAt({ store, log, deadline: deadlineIn(reservationDropMs) }, [site], {
        containerId: a.containerId,
        podRef: a.podRef,
        ifName: a.ifName,
      });
      if (!result.ok) {
        failed++;
        log.error('could not release an address; GC will', {
          pod: a.podRef,
          pool,
          container: a.containerId,
          error: result.error.details,
        });
        continue;
      }
      if (result.value.length === 0) continue;
      released += result.value.length;
      log.verbose(why, { pod: a.podRef, pool, ifname: a.ifName, container: a.containerId });
    }
    return { released, failed };
  }

  /**
   * The pod of that name as the API server has it now: gone (404), or its UID and whether its containers are
   * gone. A pod is done with its addresses when it is gone, or when it is being deleted and its kubelet has
   * reported a terminal phase: on deletion the kubelet stops the containers and the sandbox (CNI DEL) first,
   * and only then writes Succeeded or Failed. A Terminating pod without a terminal phase may still run — its
   * grace period, or a node whose kubelet is down or cut off — and keeps everything. `undefined`: no answer
   * (never taken for "gone").
   */
  async function podNow(namespace: string, name: string): Promise<PodNow | undefined> {
    const deadline = Date.now() + podReadDeadlineMs;
    for (let pauseMs = 100; ; pauseMs = Math.min(pauseMs * 2, 2_000)) {
      try {
        const pod = decodePod(await connection.core.readNamespacedPod({ namespace, name }));
        return { gone: false, uid: pod.meta.uid, done: isDone(pod), node: pod.node };
      } catch (e) {
        if ((e as { code?: unknown }).code === 404) return { gone: true };
        if (Date.now() + pauseMs > deadline || stopping.signal.aborted) {
          log.error('cannot read a pod of this node back; its addresses stay (GC covers them)', {
            pod: `${namespace}/${name}`,
            error: e instanceof Error ? e.message : String(e),
          });
          return undefined;
        }
      }
      await sleep(pauseMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  }

  /** Runs a release in the background; a stop waits for those under way. */
  function inBackground(what: Record<string, string>, work: () => Promise<void>): void {
    if (stopping.signal.aborted) return;
    const task = work().catch((e: unknown) => {
      log.error('release failed; GC covers it', {
        ...what,
        error: e instanceof Error ? e.message : String(e),
      });
    });
    background.add(task);
    void task.finally(() => background.delete(task));
  }

  /**
   * A pod of this node was deleted, or is Terminating with its containers gone: release what its recorded
   * attachments hold, unless the API server says it is still there and running, or a pod of that name
   * exists again. The pools are read before the pod is read back: an entry of a later pod of the same name
   * can be in that read only if that pod already existed — and then the pod's read finds it and nothing is
   * released. Every release tests the entry as read, container ID included.
   */
  async function releasePod(pod: { namespace: string; name: string; uid: string }): Promise<void> {
    const podRef = `${pod.namespace}/${pod.name}`;
    const recorded = records.list().filter((r) => r.podRef === podRef);
    if (recorded.length === 0) return;
    const all = await holdingsOf(recorded);
    if (all === undefined) return;
    if (all.length === 0) {
      forget(recorded); // released by DEL (or by GC) already
      return;
    }
    const now = await podNow(pod.namespace, pod.name);
    if (now === undefined) return;
    if (!now.gone && (now.uid !== pod.uid || !now.done)) return; // still running, or a new incarnation
    const held = await notKept(podRef, recorded, all);
    if (held === 'kept') return;
    const { released, failed } = await release('released the address of a deleted pod', held);
    releasedOnDelete.inc(released);
    if (failed === 0) forget(recorded);
  }

  /**
   * Leaves out what a StatefulSet member's set still wants (src/allocator/keeper.ts): its retained entries,
   * and the entries of its last sandbox, which the kubelet's DEL settles by the network's `sticky_ips` (or
   * the next incarnation's ADD takes over). Only networks with `sticky_ips` keep anything, so only their
   * records make the set be read. When the set cannot be read, retained entries stay (GC decides them
   * later) and the others are released as for any pod.
   */
  async function notKept(
    podRef: string,
    recorded: readonly Attachment[],
    held: readonly Holding[],
  ): Promise<Holding[] | 'kept'> {
    const member = recorded.some((r) => r.sticky === true) ? memberOf(podRef) : undefined;
    if (member === undefined) return held.filter(({ a }) => !isRetained(a));
    const facts = await retrying(deadlineIn(podReadDeadlineMs), () => store.memberFacts(member));
    if (!facts.ok) {
      log.error('cannot read the StatefulSet of a deleted pod; its retained addresses stay (GC decides)', {
        pod: podRef,
        error: facts.error.message,
      });
      return held.filter(({ a }) => !isRetained(a));
    }
    const why = unwanted(member, facts.value);
    if (why === undefined) {
      keptForMembers.inc();
      return 'kept';
    }
    log.verbose('the StatefulSet no longer wants the member: its addresses are released', {
      pod: podRef,
      why,
    });
    return [...held];
  }

  /**
   * Records an agent older than this one wrote name no pools: found from one list of the namespace's pools
   * (every entry of the record's pod and interface, in whichever pool), and written back complete — as
   * records of networks that may keep addresses beyond a DEL, which is what matching them by pod needs.
   */
  async function completeOldRecords(): Promise<void> {
    const old = records.list().filter((r) => r.sites === undefined);
    if (old.length === 0) return;
    const listed = await retrying(deadlineIn(podReadDeadlineMs), () => store.listPools());
    if (!listed.ok) {
      log.error('cannot list the pools for the records of an older agent; trying again at the next start', {
        error: listed.error.message,
      });
      return;
    }
    for (const r of old) {
      const sites = listed.value
        .filter(({ snapshot }) =>
          snapshot.allocations.some((a) => a.podRef === r.podRef && a.ifName === r.ifName),
        )
        .map(({ range, snapshot }) => ({
          pool: snapshot.name,
          family: snapshot.family,
          // The agent's own node tells its slice pools (`<network>-<node>-<slice>`) from whole-range pools.
          network: networkNameOf(snapshot.name, range, [], options.nodeName),
        }));
      records.add({ ...r, sites, sticky: true });
    }
    log.verbose('completed the attachment records of an older agent', { records: old.length });
  }

  /**
   * After a restart or a reboot: the attachments this node made whose pod is gone — deleted while the agent
   * was down or the node was off — or Terminating with its containers gone, are released; records whose
   * allocation has moved on (the pod's new sandbox re-used it, or it was released) are dropped. A pod that
   * exists keeps its addresses wherever it runs, and a pod that cannot be read keeps them until next time.
   */
  async function reconcile(): Promise<void> {
    await completeOldRecords();
    let released = 0;
    for (const record of records.list()) {
      if (!recordedBefore.has(`${record.containerId}/${record.ifName}`)) continue;
      const held = await holdingsOf([record]);
      if (held === undefined) continue;
      if (held.length === 0) {
        forget([record]);
        continue;
      }
      const [namespace = '', name = ''] = record.podRef.split('/');
      // An IPAMClaim's address outlives its pods: only the claim's deletion releases it.
      if (name.startsWith('ipamclaim:')) continue;
      const now = await podNow(namespace, name);
      if (now !== undefined && !now.gone && now.node !== options.nodeName) {
        // Kept: a live pod's address is never released because of where it runs. But the agent should have
        // served only pods of its node — a node name that differs from the pods' spec.nodeName (a short host
        // name against an FQDN) is a misconfiguration worth saying.
        foreignAttachments.inc();
        log.error('an attachment recorded on this node belongs to a pod running on another node; kept', {
          pod: record.podRef,
          podNode: now.node,
          agentNode: options.nodeName,
        });
      }
      if (now === undefined || (!now.gone && !now.done)) continue;
      const kept = await notKept(record.podRef, [record], held);
      if (kept === 'kept') continue;
      const outcome = await release('released the address of a pod gone while the agent was down', kept);
      released += outcome.released;
      if (outcome.failed === 0) forget([record]); // else: again next start
    }
    releasedOnReconcile.inc(released);
    log.verbose('reconciled the attachments of this node', { released });
  }

  /** UIDs of Terminating pods whose release has been started, so that later updates do not repeat it. */
  const releasing = new Set<string>();
  const fieldSelector = `spec.nodeName=${options.nodeName}`;
  const pods = startInformer({
    kubeConfig: connection.kubeConfig,
    path: '/api/v1/pods',
    fieldSelector,
    list: (page) => connection.core.listPodForAllNamespaces({ fieldSelector, ...page }),
    ...informerOptions('pods'),
    onFailure: (failure) => {
      watchFailures.inc({ resource: 'pods' });
      log.error('pod watch failed; retrying', {
        stage: failure.stage,
        error: failure.message,
        retryInMs: Math.round(failure.retryInMs),
      });
    },
    onChange: (change, o) => {
      const facts = decodePod(o);
      const { namespace, name, uid } = facts.meta;
      if (namespace === '' || name === '') return;
      const pod = { namespace, name, uid };
      if (change === 'deleted') {
        releasing.delete(uid);
        // What a release when Terminating left, if anything.
        inBackground({ pod: `${namespace}/${name}` }, () => releasePod(pod));
      } else if (isDone(facts) && !releasing.has(uid)) {
        releasing.add(uid);
        inBackground({ pod: `${namespace}/${name}` }, () => releasePod(pod));
      }
    },
  });
  const podsSynced = pods.synced;

  // IPAMClaims: an address a claim owns is released when the claim is deleted, by the agent of the node its
  // owner pod (`status.ownerPod`) still runs on — one agent, not every one; if that pod is gone already, GC
  // releases it. A cluster without the CRD answers 404: the watch stops (GC still releases).
  const claims = startInformer({
    kubeConfig: connection.kubeConfig,
    path: `/apis/${claimGroup}/${claimVersion}/ipamclaims`,
    list: async (page) =>
      (await connection.custom.listClusterCustomObject({
        group: claimGroup,
        version: claimVersion,
        plural: 'ipamclaims',
        ...page,
      })) as ListAnswer,
    ...informerOptions('ipamclaims'),
    onFailure: (failure) => {
      watchFailures.inc({ resource: 'ipamclaims' });
      // No IPAMClaim CRD (no KubeVirt persistent IPs here): nothing to watch until the agent restarts.
      if (failure.stage === 'list' && failure.code === 404) {
        log.verbose('IPAMClaims are not served: deleted claims are left to GC');
        claims.stop();
      }
    },
    onChange: (change, o) => {
      if (change !== 'deleted') return;
      const { namespace, name } = metaOf(o);
      const { ownerPod } = decodeClaim(o);
      if (ownerPod === '' || pods.get(`${namespace}/${ownerPod}`) === undefined) return;
      const podRef = claimPodRef(namespace, name);
      inBackground({ claim: `${namespace}/${name}` }, async () => {
        const recorded = records.list().filter((r) => r.podRef === podRef);
        const held = await holdingsOf(recorded);
        if (held === undefined) return;
        const { released, failed } = await release('released the address of a deleted IPAMClaim', held);
        releasedOnClaimDelete.inc(released);
        if (failed === 0) forget(recorded);
      });
    },
  });

  let reconciled = false;
  void Promise.all([cache.synced, podsSynced])
    .then(reconcile)
    .catch((e: unknown) => {
      log.error('reconcile failed; the cluster GC covers what it missed', {
        error: e instanceof Error ? e.message : String(e),
      });
    })
    .then(() => (reconciled = true));
  new Gauge({
    name: 'whereabouts_agent_watch_fresh',
    help: '1 while the watch cache of the resource follows the API server, 0 while a list or watch is failing',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      this.set({ resource: 'ippools' }, cache.informer.fresh() ? 1 : 0);
      this.set({ resource: 'nodeslicepools' }, nodeSlicePools.informer.fresh() ? 1 : 0);
      this.set({ resource: 'pods' }, pods.fresh() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'whereabouts_agent_pools_held',
    help: "IPPools the agent holds in memory: this node's slice pools (watched), and copies of the pools it is writing (held a few seconds)",
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const held = cache.held();
      this.set({ kind: 'watched' }, held.watched);
      this.set({ kind: 'copies' }, held.copies);
    },
  });
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
    !reconciled
      ? 'watch caches not synced yet'
      : !cache.informer.fresh()
        ? "the watch of this node's slice pools is failing (they are read from the API server)"
        : !pods.fresh()
          ? 'the pod watch is failing (release on pod deletion waits for it)'
          : undefined,
  );
  log.verbose('agent ready', { node: options.nodeName, metrics: metrics.url });

  return {
    agent,
    metricsUrl: metrics.url,
    stop: async () => {
      clearInterval(refresh);
      stopping.abort();
      cache.stop();
      nodeSlicePools.stop();
      pods.stop();
      claims.stop();
      await agent.close();
      // Releases already under way finish (their writes are conditional); none starts from now on.
      await Promise.all([...background]);
      await metrics.close();
    },
  };
}
