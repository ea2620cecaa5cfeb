// Who owns an address beyond the pod (sticky_ips): which pod names can be StatefulSet members, when a set
// still wants its member, and how GC's plan judges retained and plain entries of members by their sets.

import {
  claimOf,
  claimPodRef,
  memberOf,
  retainedId,
  unwanted,
  type MemberFacts,
  type SetState,
} from '../../../src/allocator/keeper.ts';
import { planCollection, type PlanInput, type PodState } from '../../../src/gc/plan.ts';
import { decodePodOwner, decodeSet } from '../../../src/store/statefulset.ts';
import { ip } from '../../support/ip.ts';

describe('a pod name as a StatefulSet member', () => {
  test.each([
    ['ns/web-0', { namespace: 'ns', set: 'web', ordinal: 0 }],
    ['ns/my-db-12', { namespace: 'ns', set: 'my-db', ordinal: 12 }],
    ['ns/web-01', undefined], // the controller never writes a leading zero
    ['ns/web', undefined],
    ['ns/-3', undefined],
    ['web-0', undefined], // no namespace
    ['ns/web-1a', undefined],
  ])('%s', (podRef, member) => {
    expect(memberOf(podRef)).toEqual(member);
  });
});

describe('whether the set still wants its member', () => {
  const member = { namespace: 'ns', set: 'web', ordinal: 2 };
  const set = (replicas: number, start = 0, deleting = false): SetState => ({ replicas, start, deleting });
  test.each<[string, MemberFacts, string | undefined]>([
    ['set wants the ordinal, pod gone', { set: set(3), pod: 'absent' }, undefined],
    ['set wants the ordinal, its own pod', { set: set(3), pod: { statefulSet: 'web' } }, undefined],
    ['no such set', { set: 'absent', pod: 'absent' }, 'set-gone'],
    ['set being deleted', { set: set(3, 0, true), pod: 'absent' }, 'set-gone'],
    ['scaled to the ordinal', { set: set(2), pod: 'absent' }, 'scaled-down'],
    ['ordinals start above it', { set: set(5, 3), pod: 'absent' }, 'scaled-down'],
    ['ordinals start below it', { set: set(1, 2), pod: 'absent' }, undefined],
    ['a pod of that name nobody owns', { set: set(3), pod: {} }, 'pod-replaced'],
    ['a pod of that name another set owns', { set: set(3), pod: { statefulSet: 'other' } }, 'pod-replaced'],
  ])('%s', (_, facts, why) => {
    expect(unwanted(member, facts)).toBe(why);
  });

  test('objects are decoded with the API defaults', () => {
    expect(decodeSet({ metadata: {}, spec: {} })).toEqual({ replicas: 1, start: 0, deleting: false });
    expect(
      decodeSet({
        metadata: { deletionTimestamp: '2026-01-01T00:00:00Z' },
        spec: { replicas: 0, ordinals: { start: 4 } },
      }),
    ).toEqual({ replicas: 0, start: 4, deleting: true });
    const owned = (kind: string, controller: boolean) => ({
      metadata: { ownerReferences: [{ apiVersion: 'apps/v1', kind, name: 'web', uid: 'u', controller }] },
    });
    expect(decodePodOwner(owned('StatefulSet', true))).toEqual({ statefulSet: 'web' });
    expect(decodePodOwner(owned('StatefulSet', false))).toEqual({});
    expect(decodePodOwner(owned('ReplicaSet', true))).toEqual({});
  });
});

describe('GC and the entries of StatefulSet members', () => {
  const now = 1_000_000_000;
  const graceMs = 300_000;
  const input = (
    id: string,
    pods: Record<string, PodState>,
    sets: Record<string, Exclude<SetState, 'absent'>> | undefined,
    suspects?: string,
  ): PlanInput => ({
    pools: [
      {
        namespace: 'ns',
        name: '10.0.0.0-24',
        networkName: '',
        range: '10.0.0.0/24',
        pool: {
          base: ip('10.0.0.0'),
          family: 4,
          entries: { '5': { id, podref: 'ns/web-1', ifname: 'net1' } },
        },
        ...(suspects === undefined ? {} : { suspects }),
      },
    ],
    reservations: [],
    pods: new Map(Object.entries(pods)),
    ...(sets === undefined ? {} : { statefulSets: new Map(Object.entries(sets)) }),
    now,
    graceMs,
  });
  const wants = { 'ns/web': { replicas: 2, start: 0, deleting: false } };
  const scaledDown = { 'ns/web': { replicas: 1, start: 0, deleting: false } };
  const ownPod: PodState = { phase: 'Pending', createdAt: now, statefulSet: 'web' };
  const strangerPod: PodState = { phase: 'Running', createdAt: now - 3_600_000 };

  test.each<
    [
      string,
      string,
      Record<string, PodState>,
      Record<string, Exclude<SetState, 'absent'>> | undefined,
      number,
    ]
  >([
    ['retained, the set wants it, no pod', retainedId, {}, wants, 0],
    ['retained, the set wants it, its next pod', retainedId, { 'ns/web-1': ownPod }, wants, 0],
    ['retained, the sets could not be listed', retainedId, {}, undefined, 0],
    ['plain, pod gone, the set wants it (the next pod takes it over)', 'c1', {}, wants, 0],
    ['plain, pod gone, the sets could not be listed: as today', 'c1', {}, undefined, 1],
    ['plain, pod gone, scaled down: as today', 'c1', {}, scaledDown, 1],
    ['plain, pod gone, no set: as today', 'c1', {}, {}, 1],
  ])('%s: %d released', (_, id, pods, sets, released) => {
    expect(planCollection(input(id, pods, sets)).releases).toHaveLength(released);
  });

  test.each<[string, Record<string, PodState>, Record<string, Exclude<SetState, 'absent'>>]>([
    ['scaled below the ordinal', {}, scaledDown],
    ['the set deleted', {}, {}],
    ['a pod of that name the set does not own', { 'ns/web-1': strangerPod }, wants],
  ])('retained, %s: seen first, released only a grace period later', (_, pods, sets) => {
    const first = planCollection(input(retainedId, pods, sets));
    expect(first.releases).toEqual([]);
    expect(first.suspects).toBe(1);
    const recorded = JSON.stringify(first.sightings[0]?.next);
    const soon = planCollection({ ...input(retainedId, pods, sets, recorded), now: now + graceMs - 1 });
    expect(soon.releases).toEqual([]);
    const later = planCollection({ ...input(retainedId, pods, sets, recorded), now: now + graceMs });
    expect(later.releases.map((r) => r.reason)).toEqual(['member-unwanted']);
    // Wanted again before that (scaled back up): the sighting is dropped, nothing released.
    const back = planCollection({ ...input(retainedId, {}, wants, recorded), now: now + graceMs });
    expect(back.releases).toEqual([]);
    expect(back.sightings[0]?.next).toEqual({});
  });
});

describe('GC and the entries of IPAMClaims', () => {
  const now = 1_000_000_000;
  const input = (claims: string[] | undefined, pods: Record<string, PodState> = {}): PlanInput => ({
    pools: [
      {
        namespace: 'ns',
        name: '10.0.0.0-24',
        networkName: '',
        range: '10.0.0.0/24',
        pool: {
          base: ip('10.0.0.0'),
          family: 4,
          entries: { '5': { id: 'c1', podref: claimPodRef('vms', 'vm1.net'), ifname: 'net1' } },
        },
      },
    ],
    reservations: [],
    pods: new Map(Object.entries(pods)),
    ...(claims === undefined ? {} : { claims: new Set(claims) }),
    now,
    graceMs: 300_000,
  });

  test('kept while the claim exists, whatever pods there are (no pod is named by it)', () => {
    expect(planCollection(input(['vms/vm1.net'])).releases).toEqual([]);
  });
  test('kept when the claims could not be listed', () => {
    expect(planCollection(input(undefined)).releases).toEqual([]);
  });
  test('released at once when the claim is gone', () => {
    expect(planCollection(input(['vms/vm2.net'])).releases.map((r) => r.reason)).toEqual(['claim-gone']);
  });
  test('a claim reference is no pod name and no StatefulSet member', () => {
    expect(claimOf(claimPodRef('vms', 'vm1.net'))).toEqual({ namespace: 'vms', name: 'vm1.net' });
    expect(claimOf('vms/vm1.net')).toBeUndefined();
    expect(memberOf(claimPodRef('vms', 'db-0'))).toBeUndefined();
  });
});
