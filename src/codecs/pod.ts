// What the product reads of a Pod beyond its metadata, decoded once: the node it is bound to and its phase.
// Pods arrive from the informer as JSON and from client-node's reads as typed models; both decode here.

import { objectAt, textAt } from './decode.ts';
import { metaOf, type ObjectMeta } from './object-meta.ts';

export type PodFacts = {
  readonly meta: ObjectMeta;
  /** `spec.nodeName`; '' while unscheduled. */
  readonly node: string;
  /** `status.phase`; 'Pending' when not reported yet. */
  readonly phase: string;
};

/** Never fails: a field of another type than the API's reads as absent (pods are the API server's own kind). */
export function decodePod(object: unknown): PodFacts {
  return {
    meta: metaOf(object),
    node: textAt(objectAt(object, 'spec'), 'nodeName'),
    phase: textAt(objectAt(object, 'status'), 'phase') || 'Pending',
  };
}

/**
 * Whether a pod is done with its addresses while it still exists: Terminating (deletionTimestamp set) with a
 * terminal phase, which its kubelet writes only after it has stopped the containers and the sandbox.
 */
export const isDone = (pod: PodFacts): boolean =>
  pod.meta.deletionTimestamp !== undefined && (pod.phase === 'Succeeded' || pod.phase === 'Failed');
