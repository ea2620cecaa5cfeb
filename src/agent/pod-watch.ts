// The pods of the agent's node (`spec.nodeName`), watched: when one is deleted — or is Terminating with its
// containers gone — what its recorded attachments hold is released, in the background, unless the API
// server says the pod still runs (src/agent/release.ts). Its cache also tells the IPAMClaim watch whose
// owner pod runs here (src/agent/claim-watch.ts).

import type { Logger } from '../log.ts';
import { startInformer, type Informer } from '../kube-api/informer.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import { decodePod, isDone } from '../codecs/pod.ts';
import type { AttachmentRecords } from './attachments.ts';
import { informerOptions, type AgentMetrics } from './metrics.ts';
import type { Background, Releaser } from './release.ts';

export type PodWatchDeps = {
  readonly connection: KubeConnection;
  readonly nodeName: string;
  readonly log: Logger;
  readonly records: AttachmentRecords;
  readonly metrics: AgentMetrics;
  readonly releases: Releaser;
  readonly background: Background;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
};

/**
 * A pod of this node was deleted, or is Terminating with its containers gone: release what its recorded
 * attachments hold, unless the API server says it is still there and running, or a pod of that name
 * exists again. The pools are read before the pod is read back: an entry of a later pod of the same name
 * can be in that read only if that pod already existed — and then the pod's read finds it and nothing is
 * released. Every release tests the entry as read, container ID included.
 */
export async function releasePod(
  deps: Pick<PodWatchDeps, 'records' | 'metrics' | 'releases'>,
  pod: { namespace: string; name: string; uid: string },
): Promise<void> {
  const { releases } = deps;
  const podRef = `${pod.namespace}/${pod.name}`;
  const recorded = deps.records.list().filter((r) => r.podRef === podRef);
  if (recorded.length === 0) return;
  const all = await releases.holdingsOf(recorded);
  if (all === undefined) return;
  if (all.length === 0) {
    releases.forget(recorded); // released by DEL (or by GC) already
    return;
  }
  const now = await releases.podNow(pod.namespace, pod.name);
  if (now === undefined) return;
  if (!now.gone && (now.uid !== pod.uid || !now.done)) return; // still running, or a new incarnation
  const held = await releases.notKept(podRef, recorded, all);
  if (held === 'kept') return;
  const { released, failed } = await releases.release('released the address of a deleted pod', held);
  deps.metrics.releasedOnDelete.inc(released);
  if (failed === 0) releases.forget(recorded);
}

/** The informer of this node's pods, releasing for each pod deleted or done. */
export function watchPods(deps: PodWatchDeps): Informer {
  const { connection, log, metrics } = deps;
  /** UIDs of Terminating pods whose release has been started, so that later updates do not repeat it. */
  const releasing = new Set<string>();
  const fieldSelector = `spec.nodeName=${deps.nodeName}`;
  return startInformer({
    watch: connection.watch,
    path: '/api/v1/pods',
    fieldSelector,
    list: (page) => connection.core.listPodForAllNamespaces({ fieldSelector, ...page }),
    ...informerOptions(metrics, 'pods', deps.backoff),
    onFailure: (failure) => {
      metrics.watchFailures.inc({ resource: 'pods' });
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
        deps.background.run({ pod: `${namespace}/${name}` }, () => releasePod(deps, pod));
      } else if (isDone(facts) && !releasing.has(uid)) {
        releasing.add(uid);
        deps.background.run({ pod: `${namespace}/${name}` }, () => releasePod(deps, pod));
      }
    },
  });
}
