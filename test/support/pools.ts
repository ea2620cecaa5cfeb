// Reading what an API server stores, to assert the invariants on it: `poolsOf`/`reservationsOf` read the
// embedded server's objects directly, `poolsIn`/`reservationsIn` list them from any Cluster (embedded or real).
import type { ApiServer } from '../../src/dev-apiserver/server.ts';
import type { Obj } from '../../src/kube-api/api.ts';
import type { KubeConnection } from '../../src/kube-api/kube.ts';
import type { Cluster } from './cluster.ts';

type Entry = { id: string; podref: string; ifname?: string };
type PoolSpec = { range: string; allocations: Record<string, Entry> };
type ReservationSpec = { podref: string; ifname?: string; containerid?: string };

const byName = <T>(objects: Iterable<[string, Obj]>): Map<string, T> =>
  new Map(
    [...objects].map(([key, o]) => [key.slice(key.indexOf('/') + 1), (o as { spec: T }).spec] as const),
  );

export const poolsOf = (server: ApiServer): Map<string, PoolSpec> =>
  byName(server.objects('ippools', 'whereabouts.cni.cncf.io'));

export const reservationsOf = (server: ApiServer): Map<string, ReservationSpec> =>
  byName(server.objects('overlappingrangeipreservations', 'whereabouts.cni.cncf.io'));

/** The IPPools of the cluster's namespace, by name. */
export const poolsIn = async (cluster: Cluster): Promise<Map<string, PoolSpec>> =>
  byName(await cluster.objects('ippools', 'whereabouts.cni.cncf.io'));

/** The OverlappingRangeIPReservations of the cluster's namespace, by name. */
export const reservationsIn = async (cluster: Cluster): Promise<Map<string, ReservationSpec>> =>
  byName(await cluster.objects('overlappingrangeipreservations', 'whereabouts.cni.cncf.io'));

type Custom = { custom: KubeConnection['custom'] };
const whereabouts = { group: 'whereabouts.cni.cncf.io', version: 'v1alpha1' } as const;

/**
 * Creates an IPPool as Whereabouts writes one: allocations keyed by offset, entries `{id, podref, ifname}`;
 * with `labels` as ours label a node's slice pool.
 */
export const writePool = (
  { custom }: Custom,
  name: string,
  range: string,
  allocations: Record<string, object>,
  namespace = 'kube-system',
  labels?: Record<string, string>,
) =>
  custom.createNamespacedCustomObject({
    ...whereabouts,
    namespace,
    plural: 'ippools',
    body: {
      apiVersion: `${whereabouts.group}/${whereabouts.version}`,
      kind: 'IPPool',
      metadata: { name, ...(labels === undefined ? {} : { labels }) },
      spec: { range, allocations },
    },
  });

/** Creates an OverlappingRangeIPReservation as Whereabouts writes one (no container ID). */
export const writeReservation = (
  { custom }: Custom,
  name: string,
  spec: { podref: string; ifname?: string },
  namespace = 'kube-system',
) =>
  custom.createNamespacedCustomObject({
    ...whereabouts,
    namespace,
    plural: 'overlappingrangeipreservations',
    body: {
      apiVersion: `${whereabouts.group}/${whereabouts.version}`,
      kind: 'OverlappingRangeIPReservation',
      metadata: { name },
      spec,
    },
  });

/** Creates a NetworkAttachmentDefinition (Multus' CRD) with this CNI config. */
export const writeNad = ({ custom }: Custom, name: string, config: string, namespace = 'default') =>
  custom.createNamespacedCustomObject({
    group: 'k8s.cni.cncf.io',
    version: 'v1',
    namespace,
    plural: 'network-attachment-definitions',
    body: {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name },
      spec: { config },
    },
  });

/** Creates a NodeSlicePool as Whereabouts' controller writes one: every slice listed, `""` when free. */
export const writeNodeSlicePool = (
  { custom }: Custom,
  name: string,
  spec: { range: string; sliceSize: string },
  allocations: { nodeName: string; sliceRange: string }[],
  namespace = 'kube-system',
) =>
  custom.createNamespacedCustomObject({
    ...whereabouts,
    namespace,
    plural: 'nodeslicepools',
    body: {
      apiVersion: `${whereabouts.group}/${whereabouts.version}`,
      kind: 'NodeSlicePool',
      metadata: { name },
      spec,
      status: { allocations },
    },
  });
