// What the product reads of a Pod beyond its metadata, decoded once: the node it is bound to and its phase.
// Pods arrive from the informer as JSON and from client-node's reads as typed models; both decode here.

import { metaOf, type ObjectMeta } from './object-meta.ts';

export type PodFacts = {
  readonly meta: ObjectMeta;
  /** `spec.nodeName`; '' while unscheduled. */
  readonly node: string;
  /** `status.phase`; 'Pending' when not reported yet. */
  readonly phase: string;
};

const field = (object: unknown, key: string): Record<string, unknown> => {
  const value =
    typeof object === 'object' && object !== null ? (object as Record<string, unknown>)[key] : undefined;
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
};

export function decodePod(object: unknown): PodFacts {
  const nodeName = field(object, 'spec').nodeName;
  const phase = field(object, 'status').phase;
  return {
    meta: metaOf(object),
    node: typeof nodeName === 'string' ? nodeName : '',
    phase: typeof phase === 'string' && phase !== '' ? phase : 'Pending',
  };
}

/**
 * Whether a pod is done with its addresses while it still exists: Terminating (deletionTimestamp set) with a
 * terminal phase, which its kubelet writes only after it has stopped the containers and the sandbox.
 */
export const isDone = (pod: PodFacts): boolean =>
  pod.meta.deletionTimestamp !== undefined && (pod.phase === 'Succeeded' || pod.phase === 'Failed');
