// The conditional-write protocol: what each write sends (its precondition and its change, exactly as the
// callers sent them before they shared this module), what the patches do to an object (applied with the
// embedded API server's JSON patch, which has kube-apiserver's semantics), and how every answer is sorted.

import { applyJsonPatch } from '../../../src/dev-apiserver/json-patch.ts';
import type { ApiFailure, ApiOutcome, KubeApi, Obj, ObjectRef } from '../../../src/kube-api/api.ts';
import {
  annotationWrite,
  answerOf,
  assignSliceWrite,
  claimOffsetWrite,
  combine,
  createReservationWrite,
  deleteReservationWrite,
  ipPoolRef,
  labelWrites,
  reassignWrite,
  releaseWrite,
  request,
  send,
  versionedWrite,
  type ConditionalWrite,
  type PatchWrite,
} from '../../../src/store/conditional-write.ts';

const pool = { namespace: 'kube-system', name: '10.0.0.0-24' };
const poolRef: ObjectRef = {
  group: 'whereabouts.cni.cncf.io',
  version: 'v1alpha1',
  plural: 'ippools',
  namespace: 'kube-system',
  name: '10.0.0.0-24',
};
const entry = { id: 'c1', podref: 'ns/a', ifname: 'net1' };
const other = { id: 'c2', podref: 'ns/b', ifname: 'net1' };

/** The patch applied to `document`: the resulting object, or 'failed' (the API server's 422). */
function apply(document: Obj, write: PatchWrite): unknown {
  const result = applyJsonPatch(document, write.ops, 10_000);
  return result.kind === 'applied' ? result.document : result.kind;
}

const poolWith = (allocations: Obj, metadata: Obj = { name: pool.name }): Obj => ({
  metadata,
  spec: { range: '10.0.0.0/24', allocations },
});

describe('the writes of an IPPool allocation', () => {
  test('claim: the offset tested free, then the entry added', () => {
    const write = claimOffsetWrite(pool, '5', entry);
    expect(write).toEqual({
      verb: 'patch',
      ref: poolRef,
      ops: [
        { op: 'test', path: '/spec/allocations/5', value: null },
        { op: 'add', path: '/spec/allocations/5', value: entry },
      ],
      what: 'claim offset 5 in IPPool kube-system/10.0.0.0-24',
    });
    expect(apply(poolWith({}), write)).toEqual(poolWith({ '5': entry }));
    expect(apply(poolWith({ '5': other }), write)).toBe('failed');
  });

  test('reassign: the entry tested as read, then replaced', () => {
    const write = reassignWrite(pool, '5', other, entry);
    expect(write.ops).toEqual([
      { op: 'test', path: '/spec/allocations/5', value: other },
      { op: 'replace', path: '/spec/allocations/5', value: entry },
    ]);
    expect(write.what).toBe('update offset 5 in IPPool kube-system/10.0.0.0-24');
    expect(apply(poolWith({ '5': other }), write)).toEqual(poolWith({ '5': entry }));
    expect(apply(poolWith({ '5': { ...other, id: 'c3' } }), write)).toBe('failed');
    expect(apply(poolWith({}), write)).toBe('failed');
  });

  test('release: the entry tested as read, then removed; a removed entry fails too', () => {
    const write = releaseWrite(pool, '5', entry);
    expect(write.ops).toEqual([
      { op: 'test', path: '/spec/allocations/5', value: entry },
      { op: 'remove', path: '/spec/allocations/5' },
    ]);
    expect(write.ref).toEqual(poolRef);
    expect(write.what).toBe('release offset 5 in IPPool kube-system/10.0.0.0-24');
    expect(releaseWrite(pool, '5', entry, 'release 10.0.0.5 of ns/a').what).toBe('release 10.0.0.5 of ns/a');
    expect(apply(poolWith({ '5': entry, '6': other }), write)).toEqual(poolWith({ '6': other }));
    expect(apply(poolWith({ '5': other }), write)).toBe('failed');
    expect(apply(poolWith({}), write)).toBe('failed');
  });

  test('combine: every write of the batch, in order, with its own test; one failing test fails all', () => {
    const batch = combine(
      ipPoolRef(pool),
      [claimOffsetWrite(pool, '5', entry), releaseWrite(pool, '6', other)],
      'patch IPPool kube-system/10.0.0.0-24 (2 changes)',
    );
    expect(batch).toEqual({
      verb: 'patch',
      ref: poolRef,
      ops: [
        { op: 'test', path: '/spec/allocations/5', value: null },
        { op: 'add', path: '/spec/allocations/5', value: entry },
        { op: 'test', path: '/spec/allocations/6', value: other },
        { op: 'remove', path: '/spec/allocations/6' },
      ],
      what: 'patch IPPool kube-system/10.0.0.0-24 (2 changes)',
    });
    expect(apply(poolWith({ '6': other }), batch)).toEqual(poolWith({ '5': entry }));
    expect(apply(poolWith({ '5': other, '6': other }), batch)).toBe('failed');
  });
});

describe('labels and annotations of an IPPool', () => {
  const labels = { 'whereabouts-ts.io/node': 'n1', 'whereabouts-ts.io/network': 'net' };

  test('labels: the whole map where there is none, else each of ours (keys escaped)', () => {
    const { whole, each } = labelWrites(pool, labels);
    expect(whole.ops).toEqual([
      { op: 'test', path: '/metadata/labels', value: null },
      { op: 'add', path: '/metadata/labels', value: labels },
    ]);
    expect(each.ops).toEqual([
      { op: 'add', path: '/metadata/labels/whereabouts-ts.io~1node', value: 'n1' },
      { op: 'add', path: '/metadata/labels/whereabouts-ts.io~1network', value: 'net' },
    ]);
    expect(whole.what).toBe('label IPPool kube-system/10.0.0.0-24');
    expect(each.what).toBe(whole.what);
    const unlabelled = poolWith({});
    const labelled = poolWith({}, { name: pool.name, labels: { keep: 'me' } });
    expect(apply(unlabelled, whole)).toEqual(poolWith({}, { name: pool.name, labels }));
    expect(apply(unlabelled, each)).toBe('failed');
    expect(apply(labelled, whole)).toBe('failed');
    expect(apply(labelled, each)).toEqual(
      poolWith({}, { name: pool.name, labels: { keep: 'me', ...labels } }),
    );
  });

  const key = 'whereabouts-ts.io/suspects';
  const path = '/metadata/annotations/whereabouts-ts.io~1suspects';

  test('annotation as read: tested, then replaced or (value undefined) removed', () => {
    const read = { previous: '{"5":1}', annotated: true };
    expect(annotationWrite(pool, key, read, '{"5":2}', 'record').ops).toEqual([
      { op: 'test', path, value: '{"5":1}' },
      { op: 'replace', path, value: '{"5":2}' },
    ]);
    const removal = annotationWrite(pool, key, read, undefined, 'record');
    expect(removal.ops).toEqual([
      { op: 'test', path, value: '{"5":1}' },
      { op: 'remove', path },
    ]);
    expect(removal.what).toBe('record');
    expect(removal.ref).toEqual(poolRef);
    const annotated = poolWith({}, { name: pool.name, annotations: { [key]: '{"5":1}', x: 'y' } });
    expect(apply(annotated, removal)).toEqual(poolWith({}, { name: pool.name, annotations: { x: 'y' } }));
    expect(apply(poolWith({}, { name: pool.name, annotations: { [key]: '{}' } }), removal)).toBe('failed');
  });

  test('annotation absent: tested absent, then added; in a pool without annotations, the whole map', () => {
    expect(annotationWrite(pool, key, { previous: undefined, annotated: true }, '{}', 'w').ops).toEqual([
      { op: 'test', path, value: null },
      { op: 'add', path, value: '{}' },
    ]);
    const whole = annotationWrite(pool, key, { previous: undefined, annotated: false }, '{}', 'w');
    expect(whole.ops).toEqual([
      { op: 'test', path: '/metadata/annotations', value: null },
      { op: 'add', path: '/metadata/annotations', value: { [key]: '{}' } },
    ]);
    expect(apply(poolWith({}), whole)).toEqual(
      poolWith({}, { name: pool.name, annotations: { [key]: '{}' } }),
    );
    expect(apply(poolWith({}, { name: pool.name, annotations: { x: 'y' } }), whole)).toBe('failed');
  });
});

describe('other objects', () => {
  test('take a slice: the slice entry tested free, then its node set', () => {
    const free = { nodeName: '', sliceRange: '10.0.0.0/28' };
    const write = assignSliceWrite({ namespace: 'kube-system', name: 'net' }, 3, free, 'n1');
    expect(write).toEqual({
      verb: 'patch',
      ref: { ...poolRef, plural: 'nodeslicepools', name: 'net' },
      ops: [
        { op: 'test', path: '/status/allocations/3', value: free },
        { op: 'replace', path: '/status/allocations/3/nodeName', value: 'n1' },
      ],
      what: 'take slice 10.0.0.0/28 in NodeSlicePool kube-system/net',
    });
  });

  test('a write at a resourceVersion: the version tested first, then the changes', () => {
    const ref: ObjectRef = {
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      namespace: 'ns',
      name: 'l',
    };
    const write = versionedWrite(
      ref,
      '42',
      [{ op: 'replace', path: '/spec', value: { a: 1 } }],
      'write Lease ns/l',
    );
    expect(write).toEqual({
      verb: 'patch',
      ref,
      ops: [
        { op: 'test', path: '/metadata/resourceVersion', value: '42' },
        { op: 'replace', path: '/spec', value: { a: 1 } },
      ],
      what: 'write Lease ns/l',
    });
  });

  test('reservations: created into the collection, deleted at the resourceVersion read', () => {
    const target = { namespace: 'kube-system', name: '10.0.0.5' };
    const reservations = { ...poolRef, plural: 'overlappingrangeipreservations' };
    const { name: _, ...collection } = reservations;
    expect(createReservationWrite(target, { podref: 'ns/a', ifname: 'net1', containerid: 'c1' })).toEqual({
      verb: 'create',
      ref: collection,
      body: {
        apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
        kind: 'OverlappingRangeIPReservation',
        metadata: { name: '10.0.0.5' },
        spec: { podref: 'ns/a', ifname: 'net1', containerid: 'c1' },
      },
      what: 'create OverlappingRangeIPReservation kube-system/10.0.0.5',
    });
    expect(deleteReservationWrite(target, '7')).toEqual({
      verb: 'delete',
      ref: { ...reservations, name: '10.0.0.5' },
      resourceVersion: '7',
      what: 'delete OverlappingRangeIPReservation kube-system/10.0.0.5',
    });
  });
});

describe('the answers', () => {
  const status = (code: number, more: Partial<Extract<ApiFailure, { kind: 'status' }>> = {}): ApiFailure => ({
    kind: 'status',
    code,
    message: 'm',
    ...more,
  });
  const failedTest = status(422, { reason: 'Invalid', message: 'the server rejected our request' });
  const schemaViolation = status(422, { reason: 'Invalid', subject: 'x', causes: true });
  const notFound = status(404, { reason: 'NotFound', subject: 'x' });
  const notServed = status(404, { message: '404 page not found' });
  const exists = status(409, { reason: 'AlreadyExists', subject: 'x' });
  const conflict = status(409, { reason: 'Conflict', subject: 'x' });
  const tooLarge = status(500, { message: 'etcdserver: request is too large' });
  const refused: ApiFailure = { kind: 'network', code: 'ECONNREFUSED' };

  const patchWrite = claimOffsetWrite(pool, '5', entry);
  const createWrite = createReservationWrite(
    { namespace: 'kube-system', name: '10.0.0.5' },
    { podref: 'ns/a' },
  );
  const deleteWrite = deleteReservationWrite({ namespace: 'kube-system', name: '10.0.0.5' }, '7');
  const failed = (failure: ApiFailure): ApiOutcome<unknown> => ({ ok: false, error: failure });

  const sorted = (write: ConditionalWrite, outcome: ApiOutcome<unknown>) => {
    const r = answerOf(write, outcome, 'https://k');
    return r.ok ? r.value : r.error.retry ? 'retry' : 'fail';
  };

  test.each([
    ['patch applied', patchWrite, { ok: true, value: {} }, 'done'],
    ['patch: a failed test', patchWrite, failed(failedTest), 'changed'],
    ['patch: no such object', patchWrite, failed(notFound), 'gone'],
    ['patch: the resource not served', patchWrite, failed(notServed), 'fail'],
    ['patch: refused by the schema', patchWrite, failed(schemaViolation), 'fail'],
    ['patch: too large', patchWrite, failed(tooLarge), 'fail'],
    ['patch: a conflict', patchWrite, failed(conflict), 'retry'],
    ['patch: 503', patchWrite, failed(status(503)), 'retry'],
    ['patch: no answer', patchWrite, failed(refused), 'retry'],
    ['patch: forbidden', patchWrite, failed(status(403)), 'fail'],
    ['create done', createWrite, { ok: true, value: {} }, 'done'],
    ['create: the name taken', createWrite, failed(exists), 'changed'],
    ['create: a 404 is never gone', createWrite, failed(notFound), 'fail'],
    ['create: 422 from the schema', createWrite, failed(schemaViolation), 'fail'],
    ['create: 429', createWrite, failed(status(429)), 'retry'],
    ['delete done', deleteWrite, { ok: true, value: undefined }, 'done'],
    ['delete: moved past the resourceVersion', deleteWrite, failed(conflict), 'changed'],
    ['delete: no such object', deleteWrite, failed(notFound), 'gone'],
    ['delete: the resource not served', deleteWrite, failed(notServed), 'fail'],
    ['delete: a 422 is no failed test', deleteWrite, failed(failedTest), 'retry'],
    ['delete: no answer', deleteWrite, failed(refused), 'retry'],
  ] as const)('%s', (_, write, outcome, expected) => {
    expect(sorted(write, outcome as ApiOutcome<unknown>)).toBe(expected);
  });

  test("an error's message names the write and keeps classify's advice", () => {
    const r = answerOf(patchWrite, failed(tooLarge), 'https://k');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toMatch(/^claim offset 5 in IPPool kube-system\/10\.0\.0\.0-24: /);
      expect(r.error.message).toContain('node_slice_size');
    }
    const n = answerOf(deleteWrite, failed(refused), 'https://k');
    expect(n.ok ? undefined : n.error).toEqual({
      retry: true,
      refused: true,
      message:
        'delete OverlappingRangeIPReservation kube-system/10.0.0.5: the API server https://k is unreachable (ECONNREFUSED)',
    });
  });

  test('send makes the request of the verb and sorts its answer', async () => {
    const calls: unknown[] = [];
    const api: KubeApi = {
      server: 'https://k',
      namespace: 'kube-system',
      get: () => Promise.reject(new Error('unused')),
      list: () => Promise.reject(new Error('unused')),
      jsonPatch: (ref, ops) => {
        calls.push(['patch', ref, ops]);
        return Promise.resolve({ ok: false, error: failedTest });
      },
      create: (ref, body) => {
        calls.push(['create', ref, body]);
        return Promise.resolve({ ok: true, value: body });
      },
      delete: (ref, rv) => {
        calls.push(['delete', ref, rv]);
        return Promise.resolve({ ok: false, error: notFound });
      },
    };
    expect(await send(api, patchWrite)).toEqual({ ok: true, value: 'changed' });
    expect(await send(api, createWrite)).toEqual({ ok: true, value: 'done' });
    expect(await send(api, deleteWrite)).toEqual({ ok: true, value: 'gone' });
    expect(await request(api, patchWrite)).toEqual({ ok: false, error: failedTest });
    expect(calls).toEqual([
      ['patch', patchWrite.ref, patchWrite.ops],
      ['create', createWrite.ref, createWrite.body],
      ['delete', deleteWrite.ref, '7'],
      ['patch', patchWrite.ref, patchWrite.ops],
    ]);
  });
});
