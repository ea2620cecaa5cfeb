// Reads what GC plans from: every IPPool and reservation (all namespaces), then every pod, page by page,
// each reduced at once to the few fields the plan needs (pool entries stay as parsed, pods that no
// allocation names are dropped), so memory follows the number of allocations, not the size of the cluster. Pools and reservations are read before pods on purpose: an allocation in the pool list was
// made for a pod that existed before the pod list was taken, so "pod gone" can never be a pod that was
// created while GC was listing.

import { ok, type Result } from '../errors.ts';
import type { KubeApi } from '../kube-api/api.ts';
import type { StoreError } from '../store/errors.ts';
import { eachPage } from '../store/paging.ts';
import { group, rawPool, version } from '../codecs/ippool.ts';
import { networkNameOf, type SliceLayout } from '../codecs/names.ts';
import { decodeNodeSlicePool } from '../codecs/nodeslicepool.ts';
import { decodeReservation } from '../codecs/reservation.ts';
import { stringAt } from '../codecs/decode.ts';
import { decodePodOwner, decodeSet } from '../store/statefulset.ts';
import { claimRef } from '../store/ipamclaim.ts';
import type { SetState } from '../allocator/keeper.ts';
import { networkStatusAnnotation } from './network-status.ts';
import { suspectsAnnotation, type PodState, type PoolState, type ReservationState } from './plan.ts';
import { metaOf } from '../codecs/object-meta.ts';
import { decodePod } from '../codecs/pod.ts';

export type Collected = {
  readonly pools: PoolState[];
  readonly reservations: ReservationState[];
  readonly pods: Map<string, PodState>;
  /** StatefulSets by `namespace/name`; absent when they could not be listed (src/gc/plan.ts keeps then). */
  readonly statefulSets?: Map<string, Exclude<SetState, 'absent'>>;
  /** IPAMClaims by `namespace/name`; absent when they could not be listed. */
  readonly claims?: Set<string>;
  /** Pools that could not be read, each as its codec's error (the pool and what is wrong), for the summary. */
  readonly skipped: string[];
};

/** Objects per page: pools are large (up to the 1.5 MiB object limit each), pods and reservations small. */
const pageSizes = { pools: 10, small: 500 } as const;

const timeOf = (value: string | undefined): number => (value === undefined ? 0 : new Date(value).getTime());

/** `pods: false`: pools and reservations only (the operator commands need no pods); `keepers`: GC's StatefulSets and IPAMClaims too. */
export async function collect(
  api: KubeApi,
  options: { readonly pods: boolean; readonly keepers?: boolean } = { pods: true },
): Promise<Result<Collected, StoreError>> {
  // A node's slice pool is named `<network>-<node>-<slice>`: its network name needs the NodeSlicePools. A
  // cluster without that CRD (Whereabouts before v0.8) has none.
  const slicePools = new Map<string, SliceLayout[]>();
  const slicesRead = await eachPage(
    api,
    { group, version, plural: 'nodeslicepools' },
    'list NodeSlicePools',
    (o) => {
      const decoded = decodeNodeSlicePool(o);
      const { name, namespace } = metaOf(o);
      const layouts = slicePools.get(namespace) ?? [];
      // A malformed one lists no slices: its pools read as whole-range pools.
      layouts.push({ name, allocations: decoded.ok ? decoded.value.allocations : [] });
      slicePools.set(namespace, layouts);
    },
    { limit: pageSizes.small },
  );
  if (!slicesRead.ok && slicesRead.error.status !== 404) return slicesRead;

  const pools: PoolState[] = [];
  const skipped: string[] = [];
  // Only pods that some allocation names are kept: most pods of a cluster have no secondary network.
  const referenced = new Set<string>();
  const poolsRead = await eachPage(
    api,
    { group, version, plural: 'ippools' },
    'list IPPools',
    (o) => {
      const decoded = rawPool(o);
      const { name, namespace, annotations } = metaOf(o);
      if (!decoded.ok) {
        skipped.push(decoded.error);
        return;
      }
      const pool = decoded.value;
      for (const entry of Object.values(pool.entries)) {
        const podRef = stringAt(entry, 'podref');
        if (podRef !== undefined) referenced.add(podRef);
      }
      const { range } = pool;
      const networkName = networkNameOf(name, range, slicePools.get(namespace));
      const suspects = annotations?.[suspectsAnnotation];
      pools.push({
        namespace,
        name,
        networkName,
        range,
        pool,
        annotated: annotations !== undefined,
        ...(suspects === undefined ? {} : { suspects }),
      });
    },
    { limit: pageSizes.pools },
  );
  if (!poolsRead.ok) return poolsRead;

  const reservations: ReservationState[] = [];
  const reservationsRead = await eachPage(
    api,
    { group, version, plural: 'overlappingrangeipreservations' },
    'list OverlappingRangeIPReservations',
    (o) => {
      const { meta: m, spec } = decodeReservation(o);
      reservations.push({
        namespace: m.namespace,
        name: m.name,
        podRef: spec.podref,
        ifName: spec.ifname ?? '',
        resourceVersion: m.resourceVersion,
        createdAt: timeOf(m.creationTimestamp),
      });
    },
    { limit: pageSizes.small },
  );
  if (!reservationsRead.ok) return reservationsRead;

  const pods = new Map<string, PodState>();
  if (!options.pods) return ok({ pools, reservations, pods, skipped });
  const podsRead = await eachPage(
    api,
    { group: '', version: 'v1', plural: 'pods' },
    'list pods',
    (o) => {
      const pod = decodePod(o);
      const m = pod.meta;
      const ref = `${m.namespace}/${m.name}`;
      if (!referenced.has(ref)) return;
      const networkStatus = m.annotations?.[networkStatusAnnotation];
      const { statefulSet } = decodePodOwner(o);
      pods.set(ref, {
        phase: pod.phase,
        ...(statefulSet === undefined ? {} : { statefulSet }),
        createdAt: timeOf(m.creationTimestamp),
        ...(networkStatus === undefined ? {} : { networkStatus }),
      });
    },
    { limit: pageSizes.small },
  );
  if (!podsRead.ok) return podsRead;
  if (options.keepers !== true) return ok({ pools, reservations, pods, skipped });

  // The sets that decide retained entries (`sticky_ips`). Without them (no right to list, a failed list)
  // GC still runs: retained entries are kept, plain ones judged by their pods alone.
  const statefulSets = new Map<string, Exclude<SetState, 'absent'>>();
  const setsRead = await eachPage(
    api,
    { group: 'apps', version: 'v1', plural: 'statefulsets' },
    'list StatefulSets',
    (o) => {
      const { name, namespace } = metaOf(o);
      statefulSets.set(`${namespace}/${name}`, decodeSet(o));
    },
    { limit: pageSizes.small },
  );
  // The IPAMClaims whose entries are kept. Not listed (no CRD, no right to): their entries are all kept.
  const claims = new Set<string>();
  const claimsRead = await eachPage(
    api,
    claimRef(),
    'list IPAMClaims',
    (o) => {
      const { name, namespace } = metaOf(o);
      claims.add(`${namespace}/${name}`);
    },
    { limit: pageSizes.small },
  );
  return ok({
    pools,
    reservations,
    pods,
    skipped,
    ...(setsRead.ok ? { statefulSets } : {}),
    ...(claimsRead.ok ? { claims } : {}),
  });
}
