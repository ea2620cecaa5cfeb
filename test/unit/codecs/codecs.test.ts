// The codecs of the objects the product reads (src/codecs/decode.ts and one file per kind): a good object
// decodes into its typed value; a malformed one of a kind that can be malformed is an error naming the kind,
// the object and the field; the kinds that never fail read a field of the wrong type as absent.

import { at, isObject, malformed, objectName, shown, stringAt } from '../../../src/codecs/decode.ts';
import { decodeEntry, decodePool, rawPool } from '../../../src/codecs/ippool.ts';
import { decodeNodeSlicePool, sliceLayoutOf } from '../../../src/codecs/nodeslicepool.ts';
import { decodeReservation } from '../../../src/codecs/reservation.ts';
import { decodeLease } from '../../../src/codecs/lease.ts';
import { decodeNad } from '../../../src/codecs/nad.ts';
import { decodeList } from '../../../src/codecs/list.ts';
import { decodePod } from '../../../src/codecs/pod.ts';
import { decodeClaim } from '../../../src/store/ipamclaim.ts';
import { decodePodOwner, decodeSet } from '../../../src/store/statefulset.ts';

const metadata = { name: 'x', namespace: 'kube-system', resourceVersion: '7' };

test('the toolkit: guards, readers and messages', () => {
  expect([{}, { a: 1 }].every(isObject)).toBe(true);
  expect([null, [], 'x', 3, undefined].some(isObject)).toBe(false);
  expect(stringAt({ a: 'b' }, 'a')).toBe('b');
  expect(stringAt({ a: 3 }, 'a')).toBeUndefined();
  expect(stringAt(null, 'a')).toBeUndefined();
  expect(objectName({ metadata })).toBe('kube-system/x');
  expect(objectName({ metadata: { name: 'node-1' } })).toBe('node-1');
  expect(objectName(7)).toBe('?');
  expect(at('spec.range', 'x')).toBe('spec.range "x"');
  expect(at('spec.range', undefined)).toBe('spec.range (absent)');
  expect(shown('y'.repeat(100))).toHaveLength(60);
  expect(malformed('IPPool', { metadata }, 'bad')).toEqual({ ok: false, error: 'IPPool kube-system/x: bad' });
});

describe('IPPool', () => {
  const pool = (spec: unknown) => ({ metadata: { ...metadata, name: '10.0.0.0-24' }, spec });

  test('decodes its range and entries; bad keys are set apart, not fatal', () => {
    const decoded = decodePool(
      pool({
        range: '10.0.0.0/24',
        allocations: {
          '5': { id: 'c1', podref: 'ns/p', ifname: 'net1' },
          x: {},
          '7': { id: 3, podref: 'ns/q' },
        },
      }),
    );
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value).toMatchObject({
      name: '10.0.0.0-24',
      resourceVersion: '7',
      range: '10.0.0.0/24',
      family: 4,
    });
    expect(decoded.value.unreadableKeys).toEqual(['x']);
    // An entry with a field of the wrong type still holds its address; the field reads as absent.
    expect(decoded.value.allocations.map((a) => [a.key, a.containerId, a.podRef, a.ifName])).toEqual([
      ['5', 'c1', 'ns/p', 'net1'],
      ['7', '', 'ns/q', ''],
    ]);
    expect(decoded.value.allocations[1]?.stored).toEqual({ id: 3, podref: 'ns/q' });
  });

  test('no allocations yet is an empty pool', () => {
    const decoded = rawPool(pool({ range: '2001:db8::/64' }));
    expect(decoded.ok && decoded.value.entries).toEqual({});
  });

  test.each([
    [{ range: 'x' }, 'IPPool kube-system/10.0.0.0-24: spec.range "x" is not a CIDR'],
    [{}, 'IPPool kube-system/10.0.0.0-24: spec.range (absent) is not a CIDR'],
    [{ range: 24 }, 'IPPool kube-system/10.0.0.0-24: spec.range 24 is not a CIDR'],
    [
      { range: '10.0.0.0/24', allocations: 'x' },
      'IPPool kube-system/10.0.0.0-24: spec.allocations "x" is not a map',
    ],
    [
      { range: '10.0.0.0/24', allocations: [] },
      'IPPool kube-system/10.0.0.0-24: spec.allocations [] is not a map',
    ],
  ])('a malformed spec %j is an error naming the pool', (spec, error) => {
    expect(decodePool(pool(spec))).toEqual({ ok: false, error });
    expect(rawPool(pool(spec))).toEqual({ ok: false, error });
  });

  test('an entry outside the family or of no object does not decode', () => {
    const spec = rawPool(pool({ range: '10.0.0.0/24' }));
    if (!spec.ok) throw new Error(spec.error);
    expect(decodeEntry(spec.value, '4294967296', { id: 'c' })).toBeUndefined();
    expect(decodeEntry(spec.value, '1', null)).toBeUndefined();
    expect(decodeEntry(spec.value, '1', { id: 'c' })?.address).toBe(spec.value.base + 1n);
  });
});

describe('NodeSlicePool', () => {
  const slicePool = (spec: unknown, status: unknown) => ({
    metadata: { ...metadata, name: 'blue' },
    spec,
    status,
  });

  test('decodes its spec as written and its slices', () => {
    const decoded = decodeNodeSlicePool(
      slicePool(
        { range: '10.0.0.0/16', sliceSize: '/24' },
        { allocations: [{ nodeName: 'n1', sliceRange: '10.0.0.0/24' }] },
      ),
    );
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value).toMatchObject({ range: '10.0.0.0/16', sliceSize: '/24' });
    expect(decoded.value.allocations).toEqual([{ nodeName: 'n1', sliceRange: '10.0.0.0/24' }]);
    const layout = sliceLayoutOf(slicePool({ range: '10.0.0.0/16', sliceSize: '/24' }, { allocations: 'x' }));
    expect(layout.ok && layout.value.slicePrefix).toBe(24);
  });

  test('no status yet lists no slices', () => {
    const decoded = decodeNodeSlicePool(slicePool({}, undefined));
    expect(decoded.ok && decoded.value.allocations).toEqual([]);
  });

  test.each([
    [{ allocations: 'x' }, 'NodeSlicePool kube-system/blue: status.allocations "x" is not a list'],
    [{ allocations: [7] }, 'NodeSlicePool kube-system/blue: status.allocations[0] 7 is not an object'],
    [
      { allocations: [{ nodeName: 'n', sliceRange: '10.0.0.0/24' }, { sliceRange: '10.0.1.0/24' }] },
      'NodeSlicePool kube-system/blue: status.allocations[1].nodeName (absent) is not a string',
    ],
    [
      { allocations: [{ nodeName: 'n', sliceRange: 5 }] },
      'NodeSlicePool kube-system/blue: status.allocations[0].sliceRange 5 is not a string',
    ],
  ])('a malformed status %j is an error naming the pool', (status, error) => {
    expect(decodeNodeSlicePool(slicePool({}, status))).toEqual({ ok: false, error });
  });

  test.each([
    [{ range: 'x', sliceSize: '24' }, 'NodeSlicePool kube-system/blue: spec.range "x" is not a CIDR'],
    [
      { range: '10.0.0.0/16' },
      'NodeSlicePool kube-system/blue: spec.sliceSize (absent) is not a prefix length',
    ],
    [
      { range: '10.0.0.0/16', sliceSize: '/2x' },
      'NodeSlicePool kube-system/blue: spec.sliceSize "/2x" is not a prefix length',
    ],
  ])('a spec %j that gives no layout is an error naming the pool', (spec, error) => {
    expect(sliceLayoutOf(slicePool(spec, {}))).toEqual({ ok: false, error });
  });
});

describe('Lease', () => {
  const lease = (spec: unknown) => ({ metadata: { ...metadata, name: 'controller' }, spec });

  test('decodes the fields the election reads, and keeps the spec as stored', () => {
    const spec = {
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      renewTime: '2026-12-07T01:02:03.000000Z',
      acquireTime: new Date('2026-12-07T01:00:00Z'),
      leaseTransitions: 2,
      strategy: 'OldestEmulationVersion',
    };
    const decoded = decodeLease(lease(spec));
    expect(decoded).toMatchObject({
      ok: true,
      value: {
        meta: { name: 'controller', resourceVersion: '7' },
        spec: {
          holderIdentity: 'a',
          leaseDurationSeconds: 15,
          renewTime: '2026-12-07T01:02:03.000000Z',
          acquireTime: '2026-12-07T01:00:00.000Z',
          leaseTransitions: 2,
        },
        storedSpec: spec,
      },
    });
    expect(decodeLease(lease(undefined))).toMatchObject({ ok: true, value: { spec: {} } });
  });

  test.each([
    ['x', 'Lease kube-system/controller: spec "x" is not an object'],
    [{ holderIdentity: 5 }, 'Lease kube-system/controller: spec.holderIdentity 5 is not a string'],
    [
      { leaseDurationSeconds: '15' },
      'Lease kube-system/controller: spec.leaseDurationSeconds "15" is not an integer',
    ],
    [{ leaseTransitions: 1.5 }, 'Lease kube-system/controller: spec.leaseTransitions 1.5 is not an integer'],
    [{ renewTime: 3 }, 'Lease kube-system/controller: spec.renewTime 3 is not a time'],
  ])('a malformed spec %j is an error naming the Lease', (spec, error) => {
    expect(decodeLease(lease(spec))).toEqual({ ok: false, error });
  });
});

describe('NetworkAttachmentDefinition', () => {
  const nad = (spec: unknown) => ({ metadata: { ...metadata, name: 'blue' }, spec });

  test('decodes spec.config; none is ""', () => {
    expect(decodeNad(nad({ config: '{"a":1}' }))).toMatchObject({ ok: true, value: { config: '{"a":1}' } });
    expect(decodeNad(nad(undefined))).toMatchObject({ ok: true, value: { config: '' } });
  });

  test('a config that is no string is an error naming the NAD', () => {
    expect(decodeNad(nad({ config: { cniVersion: '1.0.0' } }))).toEqual({
      ok: false,
      error:
        'NetworkAttachmentDefinition kube-system/blue: spec.config {"cniVersion":"1.0.0"} is not a string',
    });
  });
});

test('OverlappingRangeIPReservation: its owner, a field of the wrong type read as absent', () => {
  expect(
    decodeReservation({
      metadata: { ...metadata, name: '10.0.0.5' },
      spec: { podref: 'ns/p', ifname: 'net1' },
    }),
  ).toMatchObject({
    meta: { name: '10.0.0.5', namespace: 'kube-system' },
    spec: { podref: 'ns/p', ifname: 'net1' },
  });
  expect(decodeReservation({ spec: { podref: 5, ifname: null, containerid: 'c' } }).spec).toEqual({
    podref: '',
    containerid: 'c',
  });
  expect(decodeReservation({ spec: 'x' }).spec).toEqual({ podref: '' });
});

test('Pod: its node and phase; wrong types read as absent (client-node models: object-meta.test.ts)', () => {
  expect(decodePod({ metadata, spec: { nodeName: 'n1' }, status: { phase: 'Running' } })).toMatchObject({
    node: 'n1',
    phase: 'Running',
  });
  expect(decodePod({ spec: { nodeName: 3 }, status: { phase: '' } })).toMatchObject({
    node: '',
    phase: 'Pending',
  });
  expect(decodePod({ spec: 'x', status: [] })).toMatchObject({ node: '', phase: 'Pending' });
});

test('IPAMClaim, StatefulSet and a pod owner: wrong types read as absent', () => {
  expect(decodeClaim({ spec: { network: 'blue', interface: 'net1' }, status: { ownerPod: 'vm1' } })).toEqual({
    network: 'blue',
    interface: 'net1',
    ownerPod: 'vm1',
  });
  expect(decodeClaim({ spec: { network: 5 }, status: null })).toEqual({
    network: '',
    interface: '',
    ownerPod: '',
  });
  expect(
    decodeSet({ spec: { replicas: 3, ordinals: { start: 2 } }, metadata: { deletionTimestamp: 'now' } }),
  ).toEqual({ replicas: 3, start: 2, deleting: true });
  expect(decodeSet({ spec: { replicas: '3', ordinals: 'x' } })).toEqual({
    replicas: 1,
    start: 0,
    deleting: false,
  });
  const owners = (references: unknown) => decodePodOwner({ metadata: { ownerReferences: references } });
  expect(
    owners([
      null,
      { controller: true, kind: 'StatefulSet', apiVersion: 'apps/v1', name: 5 },
      { controller: true, kind: 'StatefulSet', apiVersion: 'apps/v1', name: 'web' },
    ]),
  ).toEqual({ statefulSet: 'web' });
  expect(owners('x')).toEqual({});
});

test('a list page: its objects, the next page and the resourceVersion, from JSON or client-node', () => {
  expect(
    decodeList({ items: [{ a: 1 }, null, 'x'], metadata: { continue: 'c', resourceVersion: '9' } }),
  ).toEqual({
    items: [{ a: 1 }],
    continue: 'c',
    resourceVersion: '9',
  });
  expect(decodeList({ items: [], metadata: { _continue: 'd' } })).toEqual({ items: [], continue: 'd' });
  expect(decodeList({ metadata: { continue: '' } })).toEqual({ items: [] });
  expect(decodeList('x')).toEqual({ items: [] });
});
