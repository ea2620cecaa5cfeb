// Overlapping-range reservations: one object per address and network name, cluster-wide, so that pools of
// overlapping ranges never hand out one address twice. A reservation is taken before the pool entry and
// dropped after it, so no failure between the two writes ever leaves a pool entry unprotected; the worst
// it leaves is a reservation without an entry, which blocks an address until GC frees it.

import type { Owner } from '../allocator/allocation.ts';
import { ok } from '../errors.ts';
import type { ReservationEntry, ReservationStore } from '../store/reservation-store.ts';
import type { StoreResult } from '../store/result.ts';
import { retrying, type Deadline } from './retry.ts';

/** Whether a reservation belongs to the (pod, interface); Whereabouts' reservations carry no container ID. */
export const reservedFor = (spec: ReservationEntry, owner: Pick<Owner, 'podRef' | 'ifName'>): boolean =>
  spec.podref === owner.podRef && (spec.ifname ?? '') === owner.ifName;

export const reservationEntry = (owner: Owner): ReservationEntry => ({
  podref: owner.podRef,
  ifname: owner.ifName,
  containerid: owner.containerId,
});

/**
 * Creates the reservation if absent. An existing one is read to tell whose it is only when it could be our
 * own: `mayBeOurs` (one left by an earlier attempt or ADD of this attachment), or a create of ours that was
 * retried and may have committed with its answer lost. Otherwise it is another writer's, and telling so
 * costs no further request.
 */
export async function takeReservation(
  store: ReservationStore,
  name: string,
  owner: Owner,
  mayBeOurs: boolean,
  deadline: Deadline,
): Promise<StoreResult<'ours' | 'theirs'>> {
  for (;;) {
    const attempts = { retried: false };
    const created = await retrying(
      deadline,
      () => store.createReservation(name, reservationEntry(owner)),
      () => {
        attempts.retried = true;
      },
    );
    if (!created.ok) return created;
    if (created.value === 'created') return ok('ours');
    if (!mayBeOurs && !attempts.retried) return ok('theirs');
    const existing = await retrying(deadline, () => store.readReservation(name));
    if (!existing.ok) return existing;
    if (existing.value === undefined) continue; // deleted meanwhile: try to create it again
    return ok(reservedFor(existing.value.spec, owner) ? 'ours' : 'theirs');
  }
}

/** Deletes the reservation only while it still belongs to the (pod, interface). */
export async function dropReservation(
  store: ReservationStore,
  name: string,
  owner: Pick<Owner, 'podRef' | 'ifName'>,
  deadline: Deadline,
): Promise<StoreResult<'dropped' | 'notOurs'>> {
  for (;;) {
    const existing = await retrying(deadline, () => store.readReservation(name));
    if (!existing.ok) return existing;
    if (existing.value === undefined) return ok('dropped');
    if (!reservedFor(existing.value.spec, owner)) return ok('notOurs');
    const { resourceVersion } = existing.value;
    const deleted = await retrying(deadline, () => store.deleteReservation(name, resourceVersion));
    if (!deleted.ok) return deleted;
    if (deleted.value !== 'changed') return ok('dropped');
  }
}
