// The facts a keeper decision needs about a StatefulSet member (src/allocator/keeper.ts), read from the API
// server and decoded here, once: the set's wanted ordinals and whether it is being deleted, and which
// StatefulSet controls the pod of the member's name. The plugin's DEL and the agent read them per member;
// GC decodes the same objects from its listings.

import { fail, ok, type Result } from '../errors.ts';
import type { MemberFacts, Member, PodOwner, SetState } from '../allocator/keeper.ts';
import type { KubeApi } from '../kube-api/api.ts';
import { arrayAt, fieldOf, objectAt, stringAt } from '../codecs/decode.ts';
import { classify, isObjectNotFound, type StoreError } from './errors.ts';

const count = (value: unknown, otherwise: number): number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : otherwise;

/**
 * A StatefulSet object as the decision needs it. Never fails: the API server validates its own kind, and a
 * count of another type reads as its default.
 */
export function decodeSet(object: unknown): Exclude<SetState, 'absent'> {
  const spec = objectAt(object, 'spec');
  return {
    replicas: count(spec.replicas, 1),
    start: count(objectAt(spec, 'ordinals').start, 0),
    deleting: fieldOf(objectAt(object, 'metadata'), 'deletionTimestamp') != null,
  };
}

/** Whether an owner reference is a StatefulSet's that controls its object. */
const isSetController = (reference: unknown): boolean =>
  fieldOf(reference, 'controller') === true &&
  fieldOf(reference, 'kind') === 'StatefulSet' &&
  (stringAt(reference, 'apiVersion') ?? '').startsWith('apps/') &&
  stringAt(reference, 'name') !== undefined;

/** The StatefulSet that controls a pod (its controller owner reference), if one does. */
export function decodePodOwner(object: unknown): Exclude<PodOwner, 'absent'> {
  const references = arrayAt(objectAt(object, 'metadata'), 'ownerReferences') ?? [];
  const name = stringAt(references.find(isSetController), 'name');
  return name === undefined ? {} : { statefulSet: name };
}

/** The member's StatefulSet and pod as the API server has them now. */
export async function readMemberFacts(
  api: KubeApi,
  member: Member,
): Promise<Result<MemberFacts, StoreError>> {
  const { namespace, set: name, ordinal } = member;
  const set = await api.get({ group: 'apps', version: 'v1', plural: 'statefulsets', namespace, name });
  if (!set.ok && !isObjectNotFound(set.error))
    return fail(classify(set.error, `get StatefulSet ${namespace}/${name}`, api.server));
  const podName = `${name}-${ordinal}`;
  const pod = await api.get({ group: '', version: 'v1', plural: 'pods', namespace, name: podName });
  if (!pod.ok && !isObjectNotFound(pod.error))
    return fail(classify(pod.error, `get pod ${namespace}/${podName}`, api.server));
  return ok({
    set: set.ok ? decodeSet(set.value) : 'absent',
    pod: pod.ok ? decodePodOwner(pod.value) : 'absent',
  });
}
