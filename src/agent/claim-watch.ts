// IPAMClaims, watched: an address a claim owns is released when the claim is deleted, by the agent of the
// node its owner pod (`status.ownerPod`) still runs on — one agent, not every one; if that pod is gone
// already, GC releases it. A cluster without the IPAMClaim CRD answers 404: the watch stops (GC still
// releases).

import { claimPodRef } from '../allocator/keeper.ts';
import type { Logger } from '../log.ts';
import { claimGroup, claimVersion, decodeClaim } from '../store/ipamclaim.ts';
import { startInformer, type Informer } from '../kube-api/informer.ts';
import { customCollection } from '../kube-api/collection.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { metaOf } from '../codecs/object-meta.ts';
import type { AttachmentRecords } from './attachments.ts';
import { informerOptions, type AgentMetrics } from './metrics.ts';
import type { Background, Releaser } from './release.ts';

export type ClaimWatchDeps = {
  readonly connection: KubeConnection;
  readonly log: Logger;
  readonly records: AttachmentRecords;
  readonly metrics: AgentMetrics;
  readonly releases: Releaser;
  readonly background: Background;
  /** This node's pods: a claim's owner pod is looked up there. */
  readonly pods: Pick<Informer, 'get'>;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
};

/** Releases what the recorded attachments of a deleted claim hold. */
async function releaseClaim(deps: ClaimWatchDeps, podRef: string): Promise<void> {
  const { releases } = deps;
  const recorded = deps.records.list().filter((r) => r.podRef === podRef);
  const held = await releases.holdingsOf(recorded);
  if (held === undefined) return;
  const { released, failed } = await releases.release('released the address of a deleted IPAMClaim', held);
  deps.metrics.releasedOnClaimDelete.inc(released);
  if (failed === 0) releases.forget(recorded);
}

export function watchClaims(deps: ClaimWatchDeps): Informer {
  const { connection, log, metrics } = deps;
  const claims: Informer = startInformer({
    watch: connection.watch,
    ...customCollection(connection, { group: claimGroup, version: claimVersion, plural: 'ipamclaims' }),
    ...informerOptions(metrics, 'ipamclaims', deps.backoff),
    onFailure: (failure) => {
      metrics.watchFailures.inc({ resource: 'ipamclaims' });
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
      if (ownerPod === '' || deps.pods.get(`${namespace}/${ownerPod}`) === undefined) return;
      deps.background.run({ claim: `${namespace}/${name}` }, () =>
        releaseClaim(deps, claimPodRef(namespace, name)),
      );
    },
  });
  return claims;
}
