// The OverlappingRangeIPReservation role of the store: one object per address and network name,
// cluster-wide, so that pools of overlapping ranges never hand out one address twice. The precondition of
// each write is the object itself: a create must find the name free, a delete the resourceVersion read
// (conditional-write.ts builds both and sorts their answers; this file names them in the role's words).

import { ok } from '../errors.ts';
import type { KubeApi } from '../kube-api/api.ts';
import {
  createReservationWrite,
  deleteReservationWrite,
  reservationRef,
  send,
  type ReservationEntry,
} from './conditional-write.ts';
import { decodeReservation } from '../codecs/reservation.ts';
import { getIfExists, type StoreResult } from './result.ts';

export type { ReservationEntry };
export type Reservation = { readonly spec: ReservationEntry; readonly resourceVersion: string };

export type ReservationStore = {
  readReservation(name: string): Promise<StoreResult<Reservation | undefined>>;
  /** Creates the reservation if the name is free: `exists` when it is not (another's, or ours from before). */
  createReservation(name: string, entry: ReservationEntry): Promise<StoreResult<'created' | 'exists'>>;
  /** Deletes the reservation if it is still at `resourceVersion`: `changed` when it moved on, `gone` when absent. */
  deleteReservation(
    name: string,
    resourceVersion: string,
  ): Promise<StoreResult<'deleted' | 'changed' | 'gone'>>;
};

async function readReservation(api: KubeApi, name: string): Promise<StoreResult<Reservation | undefined>> {
  const target = { namespace: api.namespace, name };
  const result = await getIfExists(
    api,
    reservationRef(target),
    `get OverlappingRangeIPReservation ${target.namespace}/${name}`,
  );
  if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
  const { spec, meta } = decodeReservation(result.value);
  return ok({ spec, resourceVersion: meta.resourceVersion });
}

/** The reservations of the API's namespace on the API server. */
export function kubeReservations(api: KubeApi): ReservationStore {
  const target = (name: string) => ({ namespace: api.namespace, name });
  return {
    readReservation: (name) => readReservation(api, name),
    async createReservation(name, entry) {
      const result = await send(api, createReservationWrite(target(name), entry));
      if (!result.ok) return result;
      // A create is never `gone`: a 404 is an error (the CRDs not installed).
      return ok(result.value === 'done' ? 'created' : 'exists');
    },
    async deleteReservation(name, resourceVersion) {
      const result = await send(api, deleteReservationWrite(target(name), resourceVersion));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'deleted' : result.value);
    },
  };
}
