// Carries a plan out with conditional writes: an entry is removed only while it is still exactly the
// leaked one (so an address re-allocated since the plan is never touched), a reservation deleted only at
// the resourceVersion planned. Transient failures are retried briefly; every item is tried, and failures
// are counted, not fatal.

import { ok } from '../errors.ts';
import { deadlineIn, retrying } from '../ipam/retry.ts';
import type { KubeApi } from '../kube-api/api.ts';
import {
  annotationWrite,
  deleteReservationWrite,
  releaseWrite,
  send,
  type ConditionalWrite,
} from '../store/conditional-write.ts';
import type { StoreResult } from '../store/store.ts';
import {
  suspectsAnnotation,
  type Plan,
  type Release,
  type ReservationDeletion,
  type SightingsWrite,
} from './plan.ts';

export type Applied = {
  readonly released: readonly Release[];
  readonly deleted: readonly ReservationDeletion[];
  /** Pools whose sightings of address-changed entries were recorded (or pruned). */
  readonly recorded: readonly SightingsWrite[];
  /** Items left alone because they changed since the plan (re-allocated, released by DEL meanwhile). */
  readonly changed: number;
  readonly errors: readonly string[];
};

/** How long one item may be retried before it counts as failed. */
const itemDeadlineMs = 10_000;

/** One write, retried while its failure is transient: `changed` also when the object is gone. */
async function conditional(api: KubeApi, write: ConditionalWrite): Promise<StoreResult<'done' | 'changed'>> {
  const result = await retrying(deadlineIn(itemDeadlineMs), () => send(api, write));
  if (!result.ok) return result;
  return ok(result.value === 'done' ? 'done' : 'changed');
}

/**
 * The sightings write, conditional on the annotation as read (see annotationWrite), so a run never
 * overwrites what another wrote meanwhile. Sightings that became empty remove the annotation.
 */
function sightingsWrite(w: SightingsWrite): ConditionalWrite {
  const empty = Object.keys(w.next).length === 0;
  return annotationWrite(
    { namespace: w.namespace, name: w.pool },
    suspectsAnnotation,
    { previous: w.previous, annotated: w.annotated },
    w.previous !== undefined && empty ? undefined : JSON.stringify(w.next),
    `record GC's sightings in IPPool ${w.namespace}/${w.pool}`,
  );
}

export async function applyPlan(api: KubeApi, plan: Plan): Promise<Applied> {
  const released: Release[] = [];
  const deleted: ReservationDeletion[] = [];
  const errors: string[] = [];
  let changed = 0;
  for (const r of plan.releases) {
    const result = await conditional(
      api,
      releaseWrite(
        { namespace: r.namespace, name: r.pool },
        r.key,
        r.stored,
        `release ${r.address} of ${r.podRef} in IPPool ${r.namespace}/${r.pool}`,
      ),
    );
    if (!result.ok) errors.push(result.error.message);
    else if (result.value === 'done') released.push(r);
    else changed++;
  }
  for (const d of plan.deletions) {
    const result = await conditional(
      api,
      deleteReservationWrite({ namespace: d.namespace, name: d.name }, d.resourceVersion),
    );
    if (!result.ok) errors.push(result.error.message);
    else if (result.value === 'done') deleted.push(d);
    else changed++;
  }
  const recorded: SightingsWrite[] = [];
  for (const w of plan.sightings) {
    const result = await conditional(api, sightingsWrite(w));
    if (!result.ok) errors.push(result.error.message);
    else if (result.value === 'done') recorded.push(w);
    else changed++;
  }
  return { released, deleted, recorded, changed, errors };
}
