// The datastore of IPPools and OverlappingRangeIPReservations. Every write states its own precondition
// and needs no lock: a claim tests that the offset is still free, a release that the entry is still the
// one read; neither carries a resourceVersion, so the API server applies it to the latest object and
// writers of different offsets never conflict. Labelling a slice pool sets our own label keys and no other.
// The writes and the sorting of their answers are the conditional-write protocol's (conditional-write.ts);
// this file names each answer in the interface's words.

import type { Member, MemberFacts } from '../allocator/keeper.ts';
import { fail, ok, type Result } from '../errors.ts';
import type { Cidr } from '../ip/cidr.ts';
import type { SliceAllocation } from '../slices/layout.ts';
import type { KubeApi, Obj, ObjectRef } from './api.ts';
import {
  claimWrite,
  createReservationWrite,
  deleteReservationWrite,
  labelWrites,
  reassignWrite,
  releaseWrite,
  send,
  takeSliceWrite,
  type ReservationEntry,
} from './conditional-write.ts';
import { classify, isObjectNotFound, isStatus, type StoreError } from './errors.ts';
import { decodePool, group, newPool, version, type AllocationEntry, type PoolSnapshot } from './ippool.ts';
import { sliceAllocationsOf } from './nodeslicepool.ts';
import type { PoolLabels } from './pool-labels.ts';
import { listEvery } from './paging.ts';
import { readMemberFacts } from './statefulset.ts';
import { networksAnnotation, readClaim, readPodNetworks, writeClaimStatus, type Claim } from './ipamclaim.ts';
import { keyOf, metaOf } from './object-meta.ts';

export type StoreResult<T> = Result<T, StoreError>;

export type { ReservationEntry };
export type Reservation = { readonly spec: ReservationEntry; readonly resourceVersion: string };

/** A pod as the plugin's GC needs it. */
export type PodSummary = { readonly ref: string; readonly uid: string };

/** One IPPool of a listing: its `spec.range` as written (for its network name) and its decoded contents. */
export type PoolListing = { readonly range: string; readonly snapshot: PoolSnapshot };

export type IpamStore = {
  readonly namespace: string;
  /** Opens the connection to the API server ahead of the first call (KubeApi.warm), when it can. */
  warm?(): Promise<void>;
  /** Whether the API server answers and serves the IPPool resource (for STATUS). */
  probe(): Promise<StoreResult<void>>;
  /** The pods scheduled on a node (`spec.nodeName`), every page of them. */
  podsOnNode(node: string): Promise<StoreResult<PodSummary[]>>;
  readPool(name: string): Promise<StoreResult<PoolSnapshot | undefined>>;
  /** Every IPPool of the namespace, every page of them; pools without a valid `spec.range` are left out. */
  listPools(): Promise<StoreResult<PoolListing[]>>;
  /** A store whose `readPool` may answer from a cache (the agent's watch cache) also reads from the API server. */
  readPoolCurrent?(name: string): Promise<StoreResult<PoolSnapshot | undefined>>;
  /** Creates the IPPool, empty, with `labels` (a node's slice pool: `slicePoolLabels`). */
  createPool(name: string, subnet: Cidr, labels?: PoolLabels): Promise<StoreResult<'created' | 'exists'>>;
  /** Sets `labels` on the IPPool, keeping its other labels: `missing` when the pool is gone. */
  labelPool(name: string, labels: PoolLabels): Promise<StoreResult<'labelled' | 'missing'>>;
  /** Adds the entry at `key` if that offset is free: `taken` when it is not, `missing` when the pool is gone. */
  claim(
    pool: string,
    key: string,
    entry: AllocationEntry,
  ): Promise<StoreResult<'claimed' | 'taken' | 'missing'>>;
  /** Replaces the entry at `key` if it is still exactly `current`. */
  reassign(
    pool: string,
    key: string,
    current: unknown,
    entry: AllocationEntry,
  ): Promise<StoreResult<'done' | 'changed'>>;
  /** Removes the entry at `key` if it is still exactly `current`: `changed` when it is not (or is gone). */
  release(pool: string, key: string, current: unknown): Promise<StoreResult<'released' | 'changed'>>;
  readReservation(name: string): Promise<StoreResult<Reservation | undefined>>;
  createReservation(name: string, entry: ReservationEntry): Promise<StoreResult<'created' | 'exists'>>;
  /** Deletes the reservation if it is still at `resourceVersion`: `changed` when it moved on, `gone` when absent. */
  deleteReservation(
    name: string,
    resourceVersion: string,
  ): Promise<StoreResult<'deleted' | 'changed' | 'gone'>>;
  /** What decides whether a StatefulSet still wants its member's address (`sticky_ips`). */
  memberFacts(member: Member): Promise<StoreResult<MemberFacts>>;
  /** A pod's `k8s.v1.cni.cncf.io/networks` annotation; undefined when the pod or annotation is absent. */
  podNetworks(namespace: string, name: string): Promise<StoreResult<string | undefined>>;
  /** An IPAMClaim; undefined when it does not exist. */
  readClaim(namespace: string, name: string): Promise<StoreResult<Claim | undefined>>;
  writeClaimStatus(
    namespace: string,
    name: string,
    status: { readonly ips: readonly string[]; readonly ownerPod: string },
  ): Promise<StoreResult<'written' | 'gone'>>;
  /** The slice assignments of a NodeSlicePool; undefined when it does not exist. */
  readSlices(name: string): Promise<StoreResult<SliceAllocation[] | undefined>>;
  /**
   * Gives the slice at `index` of the NodeSlicePool to `node` if that entry is still exactly `free`:
   * `changed` when it is not (taken meanwhile, re-sliced, or the pool is gone).
   */
  takeSlice(
    name: string,
    index: number,
    free: SliceAllocation,
    node: string,
  ): Promise<StoreResult<'taken' | 'changed'>>;
};

export function kubeStore(api: KubeApi): IpamStore {
  const { namespace, server } = api;
  const pools = (name?: string): ObjectRef => ({
    group,
    version,
    plural: 'ippools',
    namespace,
    ...(name === undefined ? {} : { name }),
  });
  const slicePool = (name: string): ObjectRef => ({
    group,
    version,
    plural: 'nodeslicepools',
    namespace,
    name,
  });
  const reservation = (name: string): ObjectRef => ({
    group,
    version,
    plural: 'overlappingrangeipreservations',
    namespace,
    name,
  });

  /** GET of one object: undefined when it does not exist. */
  async function getIfExists(ref: ObjectRef, what: string): Promise<StoreResult<Obj | undefined>> {
    const result = await api.get(ref);
    if (result.ok) return ok(result.value);
    return isObjectNotFound(result.error) ? ok(undefined) : fail(classify(result.error, what, server));
  }

  return {
    namespace,

    async warm() {
      await api.warm?.();
    },

    async probe() {
      const result = await api.list(pools(), { limit: 1 });
      return result.ok ? ok(undefined) : fail(classify(result.error, `list IPPools in ${namespace}`, server));
    },

    async podsOnNode(node) {
      const listed = await listEvery(
        api,
        { group: '', version: 'v1', plural: 'pods' },
        `list pods on node ${node}`,
        { fieldSelector: `spec.nodeName=${node}` },
      );
      if (!listed.ok) return listed;
      return ok(listed.value.map((pod) => ({ ref: keyOf(pod), uid: metaOf(pod).uid })));
    },

    async readPool(name) {
      const result = await getIfExists(pools(name), `get IPPool ${namespace}/${name}`);
      if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
      const snapshot = decodePool(result.value);
      return snapshot === undefined
        ? fail({
            retry: false,
            message: `IPPool ${namespace}/${name} has no valid spec.range; fix or delete the object`,
          })
        : ok(snapshot);
    },

    async listPools() {
      // Pools are large (up to the object size limit each): a few per page.
      const listed = await listEvery(api, pools(), `list IPPools in ${namespace}`, { limit: 20 });
      if (!listed.ok) return listed;
      const found: PoolListing[] = [];
      for (const item of listed.value) {
        const snapshot = decodePool(item);
        const range = ((item.spec ?? {}) as { range?: unknown }).range;
        if (snapshot !== undefined && typeof range === 'string') found.push({ range, snapshot });
      }
      return ok(found);
    },

    async createPool(name, subnet, labels) {
      const result = await api.create(pools(), newPool(name, subnet, labels));
      if (result.ok) return ok('created');
      return isStatus(result.error, 409)
        ? ok('exists')
        : fail(classify(result.error, `create IPPool ${namespace}/${name}`, server));
    },

    async labelPool(name, labels) {
      // One of the two forms applies (see labelWrites); labels that appeared or vanished meanwhile make the
      // other one apply, so each is tried twice.
      const { whole, each } = labelWrites({ namespace, name }, labels);
      for (const write of [whole, each, whole, each]) {
        const result = await send(api, write);
        if (!result.ok) return result;
        if (result.value !== 'changed') return ok(result.value === 'done' ? 'labelled' : 'missing');
      }
      return fail({ retry: true, message: `${whole.what}: its labels kept changing under the patch` });
    },

    async claim(pool, key, entry) {
      const result = await send(api, claimWrite({ namespace, name: pool }, key, entry));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'claimed' : result.value === 'gone' ? 'missing' : 'taken');
    },

    async reassign(pool, key, current, entry) {
      const result = await send(api, reassignWrite({ namespace, name: pool }, key, current, entry));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'done' : 'changed');
    },

    async release(pool, key, current) {
      const result = await send(api, releaseWrite({ namespace, name: pool }, key, current));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'released' : 'changed');
    },

    async readReservation(name) {
      const result = await getIfExists(
        reservation(name),
        `get OverlappingRangeIPReservation ${namespace}/${name}`,
      );
      if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
      const spec = (result.value.spec ?? {}) as Partial<ReservationEntry>;
      return ok({
        spec: {
          podref: spec.podref ?? '',
          ...(spec.ifname === undefined ? {} : { ifname: spec.ifname }),
          ...(spec.containerid === undefined ? {} : { containerid: spec.containerid }),
        },
        resourceVersion: metaOf(result.value).resourceVersion,
      });
    },

    async createReservation(name, entry) {
      const result = await send(api, createReservationWrite({ namespace, name }, entry));
      if (!result.ok) return result;
      // A create is never `gone`: a 404 is an error (the CRDs not installed).
      return ok(result.value === 'done' ? 'created' : 'exists');
    },

    async deleteReservation(name, resourceVersion) {
      const result = await send(api, deleteReservationWrite({ namespace, name }, resourceVersion));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'deleted' : result.value);
    },

    memberFacts: (member) => readMemberFacts(api, member),
    podNetworks: (podNamespace, name) => readPodNetworks(api, podNamespace, name, networksAnnotation),
    readClaim: (claimNamespace, name) => readClaim(api, claimNamespace, name),
    writeClaimStatus: (claimNamespace, name, status) => writeClaimStatus(api, claimNamespace, name, status),

    async readSlices(name) {
      const result = await getIfExists(slicePool(name), `get NodeSlicePool ${namespace}/${name}`);
      if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
      const allocations = sliceAllocationsOf(result.value);
      return allocations === undefined
        ? fail({
            retry: false,
            message: `NodeSlicePool ${namespace}/${name} has a malformed status.allocations; delete it and the controller writes it again`,
          })
        : ok(allocations);
    },

    async takeSlice(name, index, free, node) {
      const result = await send(api, takeSliceWrite({ namespace, name }, index, free, node));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'taken' : 'changed');
    },
  };
}

export type { StoreError };
