// What the node agent releases on its own, and how: the entries its node's records hold (one read of each
// recorded pool), whether their pod is done with them (read back from the API server), whether a StatefulSet
// still wants a member's address, and the release itself — the plain DEL's (src/ipam/transaction.ts
// `releaseAt`). Used on a pod's deletion (src/agent/pod-watch.ts), an IPAMClaim's (src/agent/claim-watch.ts)
// and at start-up (src/agent/reconcile.ts). Nothing is decided on a cache: "nothing held" only on a pool
// read from the API server, "done" only on the pod read back.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { isRetained, memberOf, unwanted } from '../allocator/keeper.ts';
import { deadlineIn, retrying } from '../ipam/retry.ts';
import { releaseAt, type ReleaseContext, type ReleaseSite } from '../ipam/transaction.ts';
import type { StoredAllocation } from '../codecs/ippool.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { decodePod, isDone } from '../codecs/pod.ts';
import type { Directory, PoolStore } from '../store/store.ts';
import type { Attachment, AttachmentRecords } from './attachments.ts';
import type { AgentMetrics } from './metrics.ts';

/** How long a pod is read back (with retries) before its release is left to GC. */
const podReadDeadlineMs = 30_000;
/** How long the release of a deleted pod's address keeps trying to drop its reservation. */
const reservationDropMs = 60_000;

/** What the agent's releases read and write: its store (group commit over the plain store). */
export type ReleaseStore = ReleaseContext['store'] &
  Pick<Directory, 'memberFacts'> &
  Pick<PoolStore, 'listPools'> & { readPoolCurrent: NonNullable<PoolStore['readPoolCurrent']> };

/** An allocation as the API server has it, with where its release looks. */
export type Holding = ReleaseSite & { readonly a: StoredAllocation };

export type PodNow =
  | { readonly gone: true }
  | { readonly gone: false; readonly uid: string; readonly done: boolean; readonly node: string };

export type ReleaseDeps = {
  readonly store: ReleaseStore;
  readonly connection: KubeConnection;
  readonly log: Logger;
  readonly records: AttachmentRecords;
  readonly metrics: AgentMetrics;
  /** Aborted at stop: ends the waits between reads. */
  readonly stopping: AbortSignal;
};

/**
 * What the recorded attachments hold now, read from the API server (one read per recorded pool):
 * entries of the record's pod (or claim) and interface — of its container, or, where the network keeps
 * addresses beyond a DEL, whatever container the entry names now (retained for a StatefulSet member, moved
 * to the claim's latest pod). `undefined` when a pool cannot be read: nothing is decided on half a view.
 */
async function holdingsOf(
  { store, log }: ReleaseDeps,
  recorded: readonly Attachment[],
): Promise<Holding[] | undefined> {
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
  { store, log }: ReleaseDeps,
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
async function podNow(
  { connection, stopping, log }: ReleaseDeps,
  namespace: string,
  name: string,
): Promise<PodNow | undefined> {
  const deadline = Date.now() + podReadDeadlineMs;
  for (let pauseMs = 100; ; pauseMs = Math.min(pauseMs * 2, 2_000)) {
    try {
      const pod = decodePod(await connection.core.readNamespacedPod({ namespace, name }));
      return { gone: false, uid: pod.meta.uid, done: isDone(pod), node: pod.node };
    } catch (e) {
      if ((e as { code?: unknown }).code === 404) return { gone: true };
      if (Date.now() + pauseMs > deadline || stopping.aborted) {
        log.error('cannot read a pod of this node back; its addresses stay (GC covers them)', {
          pod: `${namespace}/${name}`,
          error: e instanceof Error ? e.message : String(e),
        });
        return undefined;
      }
    }
    await sleep(pauseMs, undefined, { signal: stopping }).catch(() => undefined);
  }
}

/**
 * Leaves out what a StatefulSet member's set still wants (src/allocator/keeper.ts): its retained entries,
 * and the entries of its last sandbox, which the kubelet's DEL settles by the network's `sticky_ips` (or
 * the next incarnation's ADD takes over). Only networks with `sticky_ips` keep anything, so only their
 * records make the set be read. When the set cannot be read, retained entries stay (GC decides them
 * later) and the others are released as for any pod.
 */
async function notKept(
  { store, log, metrics }: ReleaseDeps,
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
    metrics.keptForMembers.inc();
    return 'kept';
  }
  log.verbose('the StatefulSet no longer wants the member: its addresses are released', {
    pod: podRef,
    why,
  });
  return [...held];
}

/** The releases of the agent, on its store, records and connection. */
export function releaser(deps: ReleaseDeps) {
  return {
    holdingsOf: (recorded: readonly Attachment[]) => holdingsOf(deps, recorded),
    release: (why: string, held: readonly Holding[]) => release(deps, why, held),
    podNow: (namespace: string, name: string) => podNow(deps, namespace, name),
    notKept: (podRef: string, recorded: readonly Attachment[], held: readonly Holding[]) =>
      notKept(deps, podRef, recorded, held),
    /** Ends the records of attachments that are settled. */
    forget: (done: readonly Attachment[]): void => {
      for (const r of done) deps.records.remove(r.containerId, r.ifName);
    },
  };
}

export type Releaser = ReturnType<typeof releaser>;

/** Work the agent runs on its own (releases): none starts once stopping; a stop waits for those under way. */
export function background(log: Logger, stopping: AbortSignal) {
  const running = new Set<Promise<void>>();
  return {
    run(what: Record<string, string>, work: () => Promise<void>): void {
      if (stopping.aborted) return;
      const task = work().catch((e: unknown) => {
        log.error('release failed; GC covers it', {
          ...what,
          error: e instanceof Error ? e.message : String(e),
        });
      });
      running.add(task);
      void task.finally(() => running.delete(task));
    },
    /** Resolves once the work under way has finished. */
    settled: async (): Promise<void> => {
      await Promise.all([...running]);
    },
  };
}

export type Background = ReturnType<typeof background>;
