// Carries a plan out with conditional writes: an entry is removed only while it is still exactly the
// leaked one (so an address re-allocated since the plan is never touched), a reservation deleted only at
// the resourceVersion planned. Transient failures are retried briefly; every item is tried, and failures
// are counted, not fatal.

import { fail, ok } from '../errors.ts';
import { deadlineIn, retrying } from '../ipam/retry.ts';
import type { ApiOutcome, KubeApi } from '../store/api.ts';
import { classify, isFailedTest, isObjectNotFound, isStatus } from '../store/errors.ts';
import { group, version } from '../store/ippool.ts';
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

async function conditional(
  api: KubeApi,
  what: string,
  write: () => Promise<ApiOutcome<unknown>>,
  isChanged: (result: Extract<ApiOutcome<unknown>, { ok: false }>) => boolean,
): Promise<StoreResult<'done' | 'changed'>> {
  return retrying(deadlineIn(itemDeadlineMs), async () => {
    const result = await write();
    if (result.ok) return ok('done' as const);
    if (isChanged(result)) return ok('changed' as const);
    return fail(classify(result.failure, what, api.server));
  });
}

const annotationPath = `/metadata/annotations/${suspectsAnnotation.replace(/~/g, '~0').replace(/\//g, '~1')}`;

/**
 * The sightings write, conditional on the annotation as read: `test` of its value (null: absent — and, for a
 * pool without annotations, of the whole map), so a run never overwrites what another wrote meanwhile.
 */
function sightingsPatch(w: SightingsWrite): unknown[] {
  const empty = Object.keys(w.next).length === 0;
  const value = JSON.stringify(w.next);
  if (w.previous !== undefined) {
    return [
      { op: 'test', path: annotationPath, value: w.previous },
      empty ? { op: 'remove', path: annotationPath } : { op: 'replace', path: annotationPath, value },
    ];
  }
  if (!w.annotated) {
    return [
      { op: 'test', path: '/metadata/annotations', value: null },
      { op: 'add', path: '/metadata/annotations', value: { [suspectsAnnotation]: value } },
    ];
  }
  return [
    { op: 'test', path: annotationPath, value: null },
    { op: 'add', path: annotationPath, value },
  ];
}

export async function applyPlan(api: KubeApi, plan: Plan): Promise<Applied> {
  const released: Release[] = [];
  const deleted: ReservationDeletion[] = [];
  const errors: string[] = [];
  let changed = 0;
  for (const r of plan.releases) {
    const path = `/spec/allocations/${r.key}`;
    const result = await conditional(
      api,
      `release ${r.address} of ${r.podRef} in IPPool ${r.namespace}/${r.pool}`,
      () =>
        api.jsonPatch({ group, version, plural: 'ippools', namespace: r.namespace, name: r.pool }, [
          { op: 'test', path, value: r.stored },
          { op: 'remove', path },
        ]),
      (f) => isFailedTest(f.failure) || isObjectNotFound(f.failure),
    );
    if (!result.ok) errors.push(result.error.message);
    else if (result.value === 'done') released.push(r);
    else changed++;
  }
  for (const d of plan.deletions) {
    const result = await conditional(
      api,
      `delete OverlappingRangeIPReservation ${d.namespace}/${d.name}`,
      () =>
        api.delete(
          { group, version, plural: 'overlappingrangeipreservations', namespace: d.namespace, name: d.name },
          d.resourceVersion,
        ),
      (f) => isStatus(f.failure, 409) || isObjectNotFound(f.failure),
    );
    if (!result.ok) errors.push(result.error.message);
    else if (result.value === 'done') deleted.push(d);
    else changed++;
  }
  const recorded: SightingsWrite[] = [];
  for (const w of plan.sightings) {
    const result = await conditional(
      api,
      `record GC's sightings in IPPool ${w.namespace}/${w.pool}`,
      () =>
        api.jsonPatch(
          { group, version, plural: 'ippools', namespace: w.namespace, name: w.pool },
          sightingsPatch(w),
        ),
      (f) => isFailedTest(f.failure) || isObjectNotFound(f.failure),
    );
    if (!result.ok) errors.push(result.error.message);
    else if (result.value === 'done') recorded.push(w);
    else changed++;
  }
  return { released, deleted, recorded, changed, errors };
}
