// Metadata and pods decoded once: JSON from our client and client-node's typed models (Dates) read alike, and
// a field of the wrong type reads as absent instead of lying through a cast.

import { V1Pod } from '@kubernetes/client-node';
import { keyOf, metaOf, versionOf } from '../../../src/codecs/object-meta.ts';
import { decodePod, isDone } from '../../../src/codecs/pod.ts';

test('metadata of a JSON object', () => {
  const meta = metaOf({
    metadata: {
      name: 'p',
      namespace: 'ns',
      uid: 'u-1',
      resourceVersion: '42',
      labels: { a: 'b', n: 3 },
      annotations: { x: 'y' },
      creationTimestamp: '2026-12-07T01:02:03Z',
    },
  });
  expect(meta).toEqual({
    name: 'p',
    namespace: 'ns',
    uid: 'u-1',
    resourceVersion: '42',
    labels: { a: 'b' },
    annotations: { x: 'y' },
    creationTimestamp: '2026-12-07T01:02:03Z',
  });
  expect(keyOf({ metadata: { name: 'p', namespace: 'ns' } })).toBe('ns/p');
  expect(keyOf({ metadata: { name: 'node-1' } })).toBe('/node-1');
});

test('absent or mistyped fields read as absent; no map is told from an empty one', () => {
  for (const object of [undefined, null, 7, 'x', {}, { metadata: 'no' }, { metadata: null }])
    expect(metaOf(object)).toEqual({
      name: '',
      namespace: '',
      uid: '',
      resourceVersion: '',
      labels: undefined,
      annotations: undefined,
    });
  const mistyped = metaOf({ metadata: { name: 5, labels: ['a'], annotations: {}, deletionTimestamp: 7 } });
  expect(mistyped.name).toBe('');
  expect(mistyped.labels).toBeUndefined();
  expect(mistyped.annotations).toEqual({});
  expect(mistyped.deletionTimestamp).toBeUndefined();
});

test('resourceVersions compare as numbers, and one that is not a number is not compared', () => {
  expect(versionOf({ metadata: { resourceVersion: '10' } })).toBe(10n);
  expect((versionOf({ metadata: { resourceVersion: '9' } }) ?? 0n) < 10n).toBe(true);
  expect(versionOf({ metadata: { resourceVersion: 'abc' } })).toBeUndefined();
  expect(versionOf({})).toBeUndefined();
});

test('a client-node pod (Date timestamps) and the same pod as JSON decode alike', () => {
  const typed = new V1Pod();
  typed.metadata = {
    name: 'web-0',
    namespace: 'ns',
    uid: 'u',
    deletionTimestamp: new Date('2026-12-07T01:00:00Z'),
  };
  typed.spec = { nodeName: 'node-1', containers: [] };
  typed.status = { phase: 'Failed' };
  const json = {
    metadata: { name: 'web-0', namespace: 'ns', uid: 'u', deletionTimestamp: '2026-12-07T01:00:00.000Z' },
    spec: { nodeName: 'node-1' },
    status: { phase: 'Failed' },
  };
  expect(decodePod(typed)).toEqual(decodePod(json));
  expect(isDone(decodePod(json))).toBe(true);
});

test('a pod is done only when Terminating with a terminal phase', () => {
  const pod = (deleting: boolean, phase?: string) =>
    decodePod({
      metadata: { name: 'p', ...(deleting ? { deletionTimestamp: '2026-12-07T01:00:00Z' } : {}) },
      ...(phase === undefined ? {} : { status: { phase } }),
    });
  expect(isDone(pod(true, 'Succeeded'))).toBe(true);
  expect(isDone(pod(true, 'Failed'))).toBe(true);
  expect(isDone(pod(true, 'Running'))).toBe(false);
  expect(isDone(pod(true))).toBe(false);
  expect(isDone(pod(false, 'Failed'))).toBe(false);
  expect(pod(false).phase).toBe('Pending');
  expect(pod(false).node).toBe('');
});
