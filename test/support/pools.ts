// Reading what the embedded API server stores, to assert the invariants on it.
import type { ApiServer } from '../../src/apiserver/server.ts';
import type { KubeConnection } from '../../src/store/kube.ts';

type Entry = { id: string; podref: string; ifname?: string };

export const poolsOf = (
  server: ApiServer,
): Map<string, { range: string; allocations: Record<string, Entry> }> =>
  new Map(
    [...server.objects('ippools', 'whereabouts.cni.cncf.io')].map(([key, o]) => [
      key.split('/')[1] as string,
      (o as { spec: { range: string; allocations: Record<string, Entry> } }).spec,
    ]),
  );

export const reservationsOf = (
  server: ApiServer,
): Map<string, { podref: string; ifname?: string; containerid?: string }> =>
  new Map(
    [...server.objects('overlappingrangeipreservations', 'whereabouts.cni.cncf.io')].map(([key, o]) => [
      key.split('/')[1] as string,
      (o as { spec: { podref: string; ifname?: string; containerid?: string } }).spec,
    ]),
  );

type Custom = { custom: KubeConnection['custom'] };
const whereabouts = { group: 'whereabouts.cni.cncf.io', version: 'v1alpha1' } as const;

/** Creates an IPPool as Whereabouts writes one: allocations keyed by offset, entries `{id, podref, ifname}`. */
export const writePool = (
  { custom }: Custom,
  name: string,
  range: string,
  allocations: Record<string, object>,
  namespace = 'kube-system',
) =>
  custom.createNamespacedCustomObject({
    ...whereabouts,
    namespace,
    plural: 'ippools',
    body: {
      apiVersion: `${whereabouts.group}/${whereabouts.version}`,
      kind: 'IPPool',
      metadata: { name },
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
