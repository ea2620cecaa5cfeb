// Who owns an address beyond the pod. With `sticky_ips`, two kinds of keeper hold an address across pods:
//
// - a StatefulSet member — the set and its ordinal — rather than one incarnation of the pod: DEL keeps the
//   entry, marked as retained, and the next incarnation's ADD takes it over;
// - an IPAMClaim (KubeVirt persistent IPs): the entry is the claim's from the start — its `podref` names the
//   claim, not a pod — so both pods of a live migration get the one address, and no DEL releases it.
//
// The plugin's DEL, the agent's release on pod deletion and GC all ask the one question answered here —
// does the keeper still want the address? — from facts each of them reads its own way (decoded at the
// boundary, src/store/statefulset.ts and src/store/ipamclaim.ts). Pure.
//
// Both keep Whereabouts' entry format `{id, podref, ifname}`, so Whereabouts and older whereabouts-ts read
// the address as allocated: a retained entry's `id` (the container ID) is `retainedId`, which no DEL of a
// container matches; a claim's `podref` is `<namespace>/ipamclaim:<name>`, which no pod can be named (`:`
// is not allowed in pod names), so no pod's ADD or DEL ever takes it for its own.

import type { Allocation } from './allocation.ts';

/** The `id` of a pool entry kept for a StatefulSet member between incarnations (never a container ID). */
export const retainedId = 'whereabouts-ts:retained';

export const isRetained = (a: Pick<Allocation, 'containerId'>): boolean => a.containerId === retainedId;

/** The `podref` of an entry an IPAMClaim owns. */
export const claimPodRef = (namespace: string, name: string): string => `${namespace}/ipamclaim:${name}`;

/** The IPAMClaim an entry's `podref` names, if it names one. */
export function claimOf(podRef: string): { readonly namespace: string; readonly name: string } | undefined {
  const match = /^([^/]+)\/ipamclaim:([^/]+)$/.exec(podRef);
  return match === null ? undefined : { namespace: match[1] as string, name: match[2] as string };
}

export const isClaimed = (a: Pick<Allocation, 'podRef'>): boolean => claimOf(a.podRef) !== undefined;

/** A StatefulSet member as a pod name tells it: `<set>-<ordinal>` in its namespace. */
export type Member = { readonly namespace: string; readonly set: string; readonly ordinal: number };

/**
 * The member a pod reference could be: its name split at the last `-`, the rest a decimal ordinal (no
 * leading zero, as the StatefulSet controller writes it). Only a candidate: whether such a set exists and
 * owns the pod is for the facts to say, never guessed from the name.
 */
export function memberOf(podRef: string): Member | undefined {
  const slash = podRef.indexOf('/');
  if (slash <= 0) return undefined;
  const namespace = podRef.slice(0, slash);
  const name = podRef.slice(slash + 1);
  const match = /^([a-z0-9][-a-z0-9.]*)-(0|[1-9][0-9]{0,8})$/.exec(name);
  if (match === null) return undefined;
  return { namespace, set: match[1] as string, ordinal: Number(match[2]) };
}

/** A StatefulSet as the decision needs it; `absent` when the API server has none of that name. */
export type SetState =
  | 'absent'
  | {
      /** `spec.replicas` (default 1) and `spec.ordinals.start` (default 0): the ordinals the set wants. */
      readonly replicas: number;
      readonly start: number;
      /** Being deleted (`metadata.deletionTimestamp`). */
      readonly deleting: boolean;
    };

/** The pod of the member's name: `absent`, or the StatefulSet that controls it (none: something else). */
export type PodOwner = 'absent' | { readonly statefulSet?: string };

export type MemberFacts = { readonly set: SetState; readonly pod: PodOwner };

/** Why a keeper no longer wants the address; undefined: it still does. */
export type Unwanted = 'set-gone' | 'scaled-down' | 'pod-replaced';

/**
 * Whether the set still wants its member's address: it exists and is not being deleted, the ordinal is
 * among those it wants, and a pod of the member's name, if any, is the set's own.
 */
export function unwanted(member: Member, facts: MemberFacts): Unwanted | undefined {
  const { set, pod } = facts;
  if (set === 'absent' || set.deleting) return 'set-gone';
  if (member.ordinal < set.start || member.ordinal >= set.start + set.replicas) return 'scaled-down';
  if (pod !== 'absent' && pod.statefulSet !== member.set) return 'pod-replaced';
  return undefined;
}
