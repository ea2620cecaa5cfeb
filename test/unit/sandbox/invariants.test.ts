// The sandbox's end-of-run check (src/sandbox/invariants.ts) must catch each way the state can be wrong —
// an address held twice, an allocation or reservation of a pod that does not run (a DEL lost, an ADD that
// finished after its DEL), a running pod whose address no pool holds — and must pass the state a correct
// run leaves, including pods whose last call was cut short (uncertain: no conclusion either way).

import { checkInvariants, type RunningPod } from '../../../src/sandbox/invariants.ts';

const pool = (
  range: string,
  allocations: Record<string, { id: string; podref: string; ifname: string }>,
) => ({
  apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
  kind: 'IPPool',
  metadata: { name: range.replace(/[/:]/g, '-'), namespace: 'kube-system' },
  spec: { range, allocations },
});
const reservation = (name: string, podref: string, containerid: string) => ({
  metadata: { name, namespace: 'kube-system' },
  spec: { podref, ifname: 'net1', containerid },
});
const pod = (name: string, container: string, addresses: Record<string, string[]>): RunningPod => ({
  podRef: `sandbox/${name}`,
  containerId: container,
  addresses: new Map(Object.entries(addresses)),
});

const a = pod('a', 'ca', { net1: ['198.18.0.2/27'], net2: ['2001:db8::5/64'] });
const b = pod('b', 'cb', { net1: ['198.18.0.3/27'] });
const goodPools = [
  pool('198.18.0.0/27', {
    '2': { id: 'ca', podref: 'sandbox/a', ifname: 'net1' },
    '3': { id: 'cb', podref: 'sandbox/b', ifname: 'net1' },
  }),
  pool('2001:db8::/64', { '5': { id: 'ca', podref: 'sandbox/a', ifname: 'net2' } }),
];
const goodReservations = [
  reservation('198.18.0.2', 'sandbox/a', 'ca'),
  reservation('198.18.0.3', 'sandbox/b', 'cb'),
  reservation('2001-db8--5', 'sandbox/a', 'ca'),
];

test('the state of a correct run passes', () => {
  const report = checkInvariants([a, b], goodPools, goodReservations);
  expect(report.violations).toEqual([]);
  expect(report).toMatchObject({ duplicates: 0, strays: 0, allocations: 3, reservations: 3 });
});

test('an address given to two running pods is a duplicate', () => {
  const twin = pod('c', 'cc', { net1: ['198.18.0.3/27'] });
  const report = checkInvariants([a, b, twin], goodPools, goodReservations);
  expect(report.duplicates).toBe(1);
  expect(report.violations.join('\n')).toContain('198.18.0.3 was given to sandbox/b and to sandbox/c');
});

test('an allocation and a reservation of a pod that does not run are strays', () => {
  // b's DEL was lost (or its ADD finished after its DEL): the sandbox no longer runs it, the pool still holds it.
  const report = checkInvariants([a], goodPools, goodReservations);
  expect(report.strays).toBe(2);
  expect(report.violations.join('\n')).toMatch(/198\.18\.0\.3 .* sandbox\/b, which does not run/);
  expect(report.violations.join('\n')).toMatch(/reservation 198\.18\.0\.3 names sandbox\/b/);
});

test('a running pod whose address no pool holds, or that has no reservation, is reported', () => {
  const report = checkInvariants(
    [a, b],
    [goodPools[1] as object as Record<string, unknown>],
    goodReservations.slice(0, 2),
  );
  expect(report.violations.join('\n')).toContain(
    'sandbox/a net1 runs with 198.18.0.2, which no pool holds for it',
  );
  expect(report.violations.join('\n')).toContain('sandbox/a runs with 2001:db8::5, which has no reservation');
});

test('the allocations and reservations of a pod whose last call was cut short are not judged', () => {
  // b's ADD was killed at stop: it may or may not hold its address.
  expect(checkInvariants([a], goodPools, goodReservations, new Set(['cb'])).violations).toEqual([]);
});
