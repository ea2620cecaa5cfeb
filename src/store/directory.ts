// The directory role of the store: what the plugin and the agent read about pods, nodes and the owners
// that keep an address beyond a pod — the pods of a node (the plugin's GC), a pod's network selection
// annotation and its IPAMClaim (whose status an ADD writes), a StatefulSet member's facts (`sticky_ips`).
// None of it is a pool, a reservation or a slice: the allocation transaction never needs it.

import type { Member, MemberFacts } from '../allocator/keeper.ts';
import { ok } from '../errors.ts';
import type { KubeApi } from '../kube-api/api.ts';
import { networksAnnotation, readClaim, readPodNetworks, writeClaimStatus, type Claim } from './ipamclaim.ts';
import { keyOf, metaOf } from '../codecs/object-meta.ts';
import { listEvery } from './paging.ts';
import type { StoreResult } from './result.ts';
import { readMemberFacts } from './statefulset.ts';

/** A pod as the plugin's GC needs it. */
export type PodSummary = { readonly ref: string; readonly uid: string };

export type Directory = {
  /** The pods scheduled on a node (`spec.nodeName`), every page of them. */
  podsOnNode(node: string): Promise<StoreResult<PodSummary[]>>;
  /** A pod's `k8s.v1.cni.cncf.io/networks` annotation; undefined when the pod or annotation is absent. */
  podNetworks(namespace: string, name: string): Promise<StoreResult<string | undefined>>;
  /** What decides whether a StatefulSet still wants its member's address (`sticky_ips`). */
  memberFacts(member: Member): Promise<StoreResult<MemberFacts>>;
  /** An IPAMClaim; undefined when it does not exist. */
  readClaim(namespace: string, name: string): Promise<StoreResult<Claim | undefined>>;
  writeClaimStatus(
    namespace: string,
    name: string,
    status: { readonly ips: readonly string[]; readonly ownerPod: string },
  ): Promise<StoreResult<'written' | 'gone'>>;
};

async function podsOnNode(api: KubeApi, node: string): Promise<StoreResult<PodSummary[]>> {
  const listed = await listEvery(
    api,
    { group: '', version: 'v1', plural: 'pods' },
    `list pods on node ${node}`,
    { fieldSelector: `spec.nodeName=${node}` },
  );
  if (!listed.ok) return listed;
  return ok(listed.value.map((pod) => ({ ref: keyOf(pod), uid: metaOf(pod).uid })));
}

/** Pods, StatefulSets and IPAMClaims (of any namespace) on the API server. */
export const kubeDirectory = (api: KubeApi): Directory => ({
  podsOnNode: (node) => podsOnNode(api, node),
  podNetworks: (namespace, name) => readPodNetworks(api, namespace, name, networksAnnotation),
  memberFacts: (member) => readMemberFacts(api, member),
  readClaim: (namespace, name) => readClaim(api, namespace, name),
  writeClaimStatus: (namespace, name, status) => writeClaimStatus(api, namespace, name, status),
});
