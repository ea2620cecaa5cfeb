// After a restart or a reboot: the attachments this node made whose pod is gone — deleted while the agent
// was down or the node was off — or Terminating with its containers gone, are released; records whose
// allocation has moved on (the pod's new sandbox re-used it, or it was released) are dropped. A pod that
// exists keeps its addresses wherever it runs, and a pod that cannot be read keeps them until next time.
// Only the records written before this agent started are decided on: an ADD it serves meanwhile is
// recorded too, but its pod was there a moment ago — not a pod that went while no agent ran.

import type { Logger } from '../log.ts';
import { deadlineIn, retrying } from '../ipam/retry.ts';
import { networkNameOf } from '../codecs/names.ts';
import type { Attachment, AttachmentRecords } from './attachments.ts';
import type { AgentMetrics } from './metrics.ts';
import type { Releaser, ReleaseStore } from './release.ts';

/** How long the pools are listed (with retries) for the records of an older agent. */
const listDeadlineMs = 30_000;

export type ReconcileDeps = {
  readonly store: ReleaseStore;
  readonly log: Logger;
  readonly nodeName: string;
  readonly records: AttachmentRecords;
  readonly metrics: AgentMetrics;
  readonly releases: Releaser;
};

/**
 * Records an agent older than this one wrote name no pools: found from one list of the namespace's pools
 * (every entry of the record's pod and interface, in whichever pool), and written back complete — as
 * records of networks that may keep addresses beyond a DEL, which is what matching them by pod needs.
 */
async function completeOldRecords(deps: ReconcileDeps): Promise<void> {
  const { records, log } = deps;
  const old = records.list().filter((r) => r.sites === undefined);
  if (old.length === 0) return;
  const listed = await retrying(deadlineIn(listDeadlineMs), () => deps.store.listPools());
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
        network: networkNameOf(snapshot.name, range, [], deps.nodeName),
      }));
    records.add({ ...r, sites, sticky: true });
  }
  log.verbose('completed the attachment records of an older agent', { records: old.length });
}

/** Decides on one record: released, dropped (its allocation moved on) or kept; the addresses released. */
async function reconcileOne(deps: ReconcileDeps, record: Attachment): Promise<number> {
  const { releases, log } = deps;
  const held = await releases.holdingsOf([record]);
  if (held === undefined) return 0;
  if (held.length === 0) {
    releases.forget([record]);
    return 0;
  }
  const [namespace = '', name = ''] = record.podRef.split('/');
  // An IPAMClaim's address outlives its pods: only the claim's deletion releases it.
  if (name.startsWith('ipamclaim:')) return 0;
  const now = await releases.podNow(namespace, name);
  if (now !== undefined && !now.gone && now.node !== deps.nodeName) {
    // Kept: a live pod's address is never released because of where it runs. But the agent should have
    // served only pods of its node — a node name that differs from the pods' spec.nodeName (a short host
    // name against an FQDN) is a misconfiguration worth saying.
    deps.metrics.foreignAttachments.inc();
    log.error('an attachment recorded on this node belongs to a pod running on another node; kept', {
      pod: record.podRef,
      podNode: now.node,
      agentNode: deps.nodeName,
    });
  }
  if (now === undefined || (!now.gone && !now.done)) return 0;
  const kept = await releases.notKept(record.podRef, [record], held);
  if (kept === 'kept') return 0;
  const outcome = await releases.release('released the address of a pod gone while the agent was down', kept);
  if (outcome.failed === 0) releases.forget([record]); // else: again next start
  return outcome.released;
}

/** Decides on every record in `recordedBefore` (`containerId/ifName`: those written before the start). */
export async function reconcileAttachments(
  deps: ReconcileDeps,
  recordedBefore: ReadonlySet<string>,
): Promise<void> {
  await completeOldRecords(deps);
  let released = 0;
  for (const record of deps.records.list()) {
    if (!recordedBefore.has(`${record.containerId}/${record.ifName}`)) continue;
    released += await reconcileOne(deps, record);
  }
  deps.metrics.releasedOnReconcile.inc(released);
  deps.log.verbose('reconciled the attachments of this node', { released });
}
