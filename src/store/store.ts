// The datastore as roles, each a small interface its users depend on alone (as CNI host-local's allocator
// depends on its small `Store` and nothing else):
// - `PoolStore` (pool-store.ts): IPPools — read, list, create, label, and the conditional writes of an
//   offset's entry (claim, reassign, release);
// - `ReservationStore` (reservation-store.ts): the cluster-wide OverlappingRangeIPReservations;
// - `SliceStore` (slice-store.ts): a node's view of NodeSlicePools — read the slices, assign one;
// - `Directory` (directory.ts): pods, nodes and the owners that keep addresses (StatefulSets, IPAMClaims);
// - `Probe` (here): whether the API server serves our resources — the plugin's STATUS, nothing else.
// The allocation transaction (src/ipam/) takes pools, reservations and slices; each CNI verb takes what it
// uses; the agent's group commit wraps the pools alone. `IpamStore` is all of them at once — what a plugin
// invocation opens — and `kubeStore` composes it from the roles' constructors over one KubeApi.

import { fail, ok } from '../errors.ts';
import type { KubeApi } from '../kube-api/api.ts';
import { kubeDirectory, type Directory } from './directory.ts';
import { classify, type StoreError } from './errors.ts';
import { ipPools, kubePools, type PoolStore } from './pool-store.ts';
import { kubeReservations, type ReservationStore } from './reservation-store.ts';
import type { StoreResult } from './result.ts';
import { kubeSlices, type SliceStore } from './slice-store.ts';

export type { Directory, PodSummary } from './directory.ts';
export type { PoolListing, PoolStore } from './pool-store.ts';
export type { Reservation, ReservationEntry, ReservationStore } from './reservation-store.ts';
export type { StoreResult } from './result.ts';
export type { SliceStore } from './slice-store.ts';
export type { StoreError };

export type Probe = {
  /** Whether the API server answers and serves the IPPool resource (for STATUS). */
  probe(): Promise<StoreResult<void>>;
};

/** Every role at once, over one connection: what a plugin invocation opens. */
export type IpamStore = PoolStore &
  ReservationStore &
  SliceStore &
  Directory &
  Probe & {
    /** Opens the connection to the API server ahead of the first call (KubeApi.warm), when it can. */
    warm?(): Promise<void>;
  };

/** One IPPool listed, or why not. */
export const kubeProbe = (api: KubeApi): Probe => ({
  async probe() {
    const { namespace } = api;
    const result = await api.list(ipPools(namespace), { limit: 1 });
    return result.ok
      ? ok(undefined)
      : fail(classify(result.error, `list IPPools in ${namespace}`, api.server));
  },
});

export const kubeStore = (api: KubeApi): IpamStore => ({
  ...kubePools(api),
  ...kubeReservations(api),
  ...kubeSlices(api),
  ...kubeDirectory(api),
  ...kubeProbe(api),
  async warm() {
    await api.warm?.();
  },
});
