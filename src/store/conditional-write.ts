// The conditional-write protocol: every write of ours to the API server states its own precondition — a
// JSON patch whose `test`s come first, a create that must find the name free, a delete at the
// resourceVersion read — and its answer is sorted the same way everywhere. This module is the only place
// that builds a `test` operation; the store's roles (pool-store.ts, reservation-store.ts, slice-store.ts),
// the agent's group commit, GC and the slice controller build their writes here and send them here.
//
// A write is a value (`ConditionalWrite`): the object, the request, and a description for messages. The
// group commit concatenates the operations of several patches of one pool into one (`combine`): each keeps
// its own tests, and the whole applies or nothing does.
//
// An answer is one of three outcomes, or a StoreError (from `classify`, whose `retry` says whether the
// same write may succeed later):
// - `done`:    applied;
// - `changed`: the precondition failed — a `test` failed or a `remove` found nothing (422 without object or
//              causes), the name was taken (create: 409), the object moved past the resourceVersion
//              (delete: 409);
// - `gone`:    the object does not exist (a 404 naming it), for a patch or a delete.
// What each caller makes of `changed` and `gone` is its own vocabulary (`claimed`/`taken`/`missing`, …).

import { fail, ok, type Result } from '../errors.ts';
import type { SliceAllocation } from '../slices/layout.ts';
import type { ApiOutcome, KubeApi, Obj, ObjectRef } from '../kube-api/api.ts';
import { classify, isFailedTest, isObjectNotFound, isStatus, type StoreError } from './errors.ts';
import { apiVersion, group, version, type AllocationEntry } from '../codecs/ippool.ts';
import type { PoolLabels } from '../codecs/pool-labels.ts';

/** One JSON-patch operation (RFC 6902), as we send them. */
export type PatchOp =
  | { readonly op: 'test' | 'add' | 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

export type PatchWrite = {
  readonly verb: 'patch';
  readonly ref: ObjectRef;
  /** The precondition (`test`s) and the change, in the order sent. */
  readonly ops: readonly PatchOp[];
  /** What the write does, for messages: `claim offset 5 in IPPool kube-system/10.0.0.0-24`. */
  readonly what: string;
};
/** A create, whose precondition is that the name is free (409: `changed`). */
export type CreateWrite = {
  readonly verb: 'create';
  /** The collection. */
  readonly ref: ObjectRef;
  readonly body: Obj;
  readonly what: string;
};
/** A delete, only while the object is still at `resourceVersion`. */
export type DeleteWrite = {
  readonly verb: 'delete';
  readonly ref: ObjectRef;
  readonly resourceVersion: string;
  readonly what: string;
};
export type ConditionalWrite = PatchWrite | CreateWrite | DeleteWrite;

export type Answer = 'done' | 'changed' | 'gone';
export type WriteResult = Result<Answer, StoreError>;

/** A namespaced object by name. */
export type Target = { readonly namespace: string; readonly name: string };

/** The spec of an OverlappingRangeIPReservation. Whereabouts never writes `containerid`; we do. */
export type ReservationEntry = { podref: string; ifname?: string; containerid?: string };

/** Sorts the API server's answer to `write` (see the top of this file). */
export function answerOf(write: ConditionalWrite, outcome: ApiOutcome<unknown>, server: string): WriteResult {
  if (outcome.ok) return ok('done');
  const f = outcome.error;
  if (write.verb !== 'create' && isObjectNotFound(f)) return ok('gone');
  if (write.verb === 'patch' ? isFailedTest(f) : isStatus(f, 409)) return ok('changed');
  return fail(classify(f, write.what, server));
}

/** The request of a write, with the API server's raw answer (the group commit keeps the patched object). */
export function request(api: KubeApi, write: PatchWrite): Promise<ApiOutcome<Obj>>;
export function request(api: KubeApi, write: ConditionalWrite): Promise<ApiOutcome<unknown>>;
export function request(api: KubeApi, write: ConditionalWrite): Promise<ApiOutcome<unknown>> {
  switch (write.verb) {
    case 'patch':
      return api.jsonPatch(write.ref, write.ops);
    case 'create':
      return api.create(write.ref, write.body);
    case 'delete':
      return api.delete(write.ref, write.resourceVersion);
  }
}

/** Sends the write and sorts the answer. */
export async function send(api: KubeApi, write: ConditionalWrite): Promise<WriteResult> {
  return answerOf(write, await request(api, write), api.server);
}

/** Several patches of one object as one patch: every test of each, in order; all apply or none does. */
export const combine = (ref: ObjectRef, writes: readonly PatchWrite[], what: string): PatchWrite => ({
  verb: 'patch',
  ref,
  ops: writes.flatMap((w) => w.ops),
  what,
});

// Objects and paths.

export const ipPoolRef = (pool: Target): ObjectRef => ({
  group,
  version,
  plural: 'ippools',
  namespace: pool.namespace,
  name: pool.name,
});
export const nodeSlicePoolRef = (pool: Target): ObjectRef => ({
  group,
  version,
  plural: 'nodeslicepools',
  namespace: pool.namespace,
  name: pool.name,
});
const reservationsRef = (namespace: string): ObjectRef => ({
  group,
  version,
  plural: 'overlappingrangeipreservations',
  namespace,
});
export const reservationRef = (reservation: Target): ObjectRef => ({
  ...reservationsRef(reservation.namespace),
  name: reservation.name,
});

/** A map key as one JSON-pointer segment (RFC 6901: `~` is `~0`, `/` is `~1`). */
export const pointerSegment = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

const allocationPath = (key: string): string => `/spec/allocations/${key}`;
const named = (kind: string, t: Target): string => `${kind} ${t.namespace}/${t.name}`;

const patch = (ref: ObjectRef, what: string, ops: readonly PatchOp[]): PatchWrite => ({
  verb: 'patch',
  ref,
  ops,
  what,
});

// The writes of an IPPool's allocations. None carries a resourceVersion: the API server applies them to the
// latest object, and writers of different offsets never conflict.

/** Adds the entry at `key` while that offset is free. `changed`: taken; `gone`: no such pool. */
export function claimOffsetWrite(pool: Target, key: string, entry: AllocationEntry): PatchWrite {
  const path = allocationPath(key);
  return patch(ipPoolRef(pool), `claim offset ${key} in ${named('IPPool', pool)}`, [
    { op: 'test', path, value: null },
    { op: 'add', path, value: entry },
  ]);
}

/** Replaces the entry at `key` (a new sandbox of the same pod) while it is still exactly `current`. */
export function reassignWrite(
  pool: Target,
  key: string,
  current: unknown,
  entry: AllocationEntry,
): PatchWrite {
  const path = allocationPath(key);
  return patch(ipPoolRef(pool), `update offset ${key} in ${named('IPPool', pool)}`, [
    { op: 'test', path, value: current },
    { op: 'replace', path, value: entry },
  ]);
}

/** Removes the entry at `key` while it is still exactly `current` (a removed entry fails the test too). */
export function releaseWrite(
  pool: Target,
  key: string,
  current: unknown,
  what = `release offset ${key} in ${named('IPPool', pool)}`,
): PatchWrite {
  const path = allocationPath(key);
  return patch(ipPoolRef(pool), what, [
    { op: 'test', path, value: current },
    { op: 'remove', path },
  ]);
}

/**
 * Sets `labels` on an IPPool, keeping its other labels, in the two forms one of which applies: a JSON patch
 * adds a key only to a map that exists. `whole`: where there are no labels, the whole map (tested absent, so
 * nobody's labels are replaced); `each`: each of ours, into the existing map (no test: fails as `changed`
 * when the map is absent). Labels that appeared or vanished meanwhile make the other form apply.
 */
export function labelWrites(pool: Target, labels: PoolLabels): { whole: PatchWrite; each: PatchWrite } {
  const ref = ipPoolRef(pool);
  const what = `label ${named('IPPool', pool)}`;
  return {
    whole: patch(ref, what, [
      { op: 'test', path: '/metadata/labels', value: null },
      { op: 'add', path: '/metadata/labels', value: labels },
    ]),
    each: patch(
      ref,
      what,
      Object.entries(labels).map(([key, value]) => ({
        op: 'add',
        path: `/metadata/labels/${pointerSegment(key)}`,
        value,
      })),
    ),
  };
}

/**
 * Writes annotation `key` of an IPPool while it is still as read: `previous` (undefined: absent; and where
 * the pool has no annotations at all, `annotated` false, the whole map tested absent). `value` undefined
 * removes the annotation (one that was there).
 */
export function annotationWrite(
  pool: Target,
  key: string,
  read: { readonly previous: string | undefined; readonly annotated: boolean },
  value: string | undefined,
  what: string,
): PatchWrite {
  const ref = ipPoolRef(pool);
  const path = `/metadata/annotations/${pointerSegment(key)}`;
  if (read.previous !== undefined) {
    return patch(ref, what, [
      { op: 'test', path, value: read.previous },
      value === undefined ? { op: 'remove', path } : { op: 'replace', path, value },
    ]);
  }
  const change: PatchOp[] =
    value === undefined
      ? []
      : read.annotated
        ? [{ op: 'add', path, value }]
        : [{ op: 'add', path: '/metadata/annotations', value: { [key]: value } }];
  return read.annotated
    ? patch(ref, what, [{ op: 'test', path, value: null }, ...change])
    : patch(ref, what, [{ op: 'test', path: '/metadata/annotations', value: null }, ...change]);
}

/**
 * Assigns the slice at `index` of a NodeSlicePool to `node` (the node takes it) while that entry is still
 * exactly `free`. `changed`: assigned meanwhile or re-sliced; `gone`: no such NodeSlicePool.
 */
export function assignSliceWrite(
  slicePool: Target,
  index: number,
  free: SliceAllocation,
  node: string,
): PatchWrite {
  const path = `/status/allocations/${index}`;
  return patch(
    nodeSlicePoolRef(slicePool),
    `take slice ${free.sliceRange} in ${named('NodeSlicePool', slicePool)}`,
    [
      { op: 'test', path, value: free },
      { op: 'replace', path: `${path}/nodeName`, value: node },
    ],
  );
}

/** Writes `changes` to any object while it is still at `resourceVersion` (a Lease, a NodeSlicePool). */
export const versionedWrite = (
  ref: ObjectRef,
  resourceVersion: string,
  changes: readonly PatchOp[],
  what: string,
): PatchWrite =>
  patch(ref, what, [{ op: 'test', path: '/metadata/resourceVersion', value: resourceVersion }, ...changes]);

// Overlapping-range reservations: one object per address, so the precondition is the object itself.

/** Creates the reservation while the name is free. `changed`: it exists (another's, or ours from before). */
export const createReservationWrite = (reservation: Target, entry: ReservationEntry): CreateWrite => ({
  verb: 'create',
  ref: reservationsRef(reservation.namespace),
  body: {
    apiVersion,
    kind: 'OverlappingRangeIPReservation',
    metadata: { name: reservation.name },
    spec: entry,
  },
  what: `create ${named('OverlappingRangeIPReservation', reservation)}`,
});

/** Deletes the reservation while it is still at `resourceVersion`. `changed`: it moved on; `gone`: absent. */
export const deleteReservationWrite = (reservation: Target, resourceVersion: string): DeleteWrite => ({
  verb: 'delete',
  ref: reservationRef(reservation),
  resourceVersion,
  what: `delete ${named('OverlappingRangeIPReservation', reservation)}`,
});
