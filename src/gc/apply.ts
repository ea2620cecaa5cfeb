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
import type { Plan, Release, ReservationDeletion } from './plan.ts';

export type Applied = {
  readonly released: readonly Release[];
  readonly deleted: readonly ReservationDeletion[];
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
  return { released, deleted, changed, errors };
}
