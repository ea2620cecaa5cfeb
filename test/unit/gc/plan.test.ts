import { networkNameOf } from '../../../src/codecs/names.ts';
import { interfacesOf } from '../../../src/gc/network-status.ts';
import {
  planCollection,
  sightingsOf,
  suspectsAnnotation,
  type PlanInput,
  type PodState,
  type PoolState,
  type ReservationState,
} from '../../../src/gc/plan.ts';
import { ip } from '../../support/ip.ts';

const now = 1_000_000_000;
const grace = 300_000;
const old = now - 3_600_000;

/** A pool entry as stored: `[offset key, {id, podref, ifname}]` in 10.0.0.0/24. */
type Entry = [string, { id: string; podref: string; ifname: string }];
const allocation = (address: string, podRef: string, ifName = 'net1'): Entry => [
  String(ip(address) - ip('10.0.0.0')),
  { id: `c-${podRef}`, podref: podRef, ifname: ifName },
];

const pool = (entries: Entry[], networkName = ''): PoolState => ({
  namespace: 'kube-system',
  name: networkName === '' ? '10.0.0.0-24' : `${networkName}-10.0.0.0-24`,
  networkName,
  range: '10.0.0.0/24',
  pool: { base: ip('10.0.0.0'), family: 4, entries: Object.fromEntries(entries) },
});

const pod = (
  phase: string,
  options: { createdAt?: number; status?: Record<string, string[]> } = {},
): PodState => ({
  phase,
  createdAt: options.createdAt ?? old,
  ...(options.status === undefined
    ? {}
    : {
        networkStatus: JSON.stringify(
          Object.entries(options.status).map(([iface, ips]) => ({
            name: 'default/net',
            interface: iface,
            ips,
          })),
        ),
      }),
});

describe('which allocations are leaked', () => {
  test.each<[string, PodState | undefined, string | undefined]>([
    ['the pod is gone', undefined, 'pod-gone'],
    ['the pod Succeeded (a finished Job)', pod('Succeeded'), 'pod-finished'],
    ['the pod Failed', pod('Failed'), 'pod-finished'],
    [
      'network-status shows the interface with another address (new incarnation)',
      pod('Running', { status: { net1: ['10.0.0.99'] } }),
      'address-changed',
    ],
    ['network-status shows the address', pod('Running', { status: { net1: ['10.0.0.5'] } }), undefined],
    [
      'network-status shows the address among others',
      pod('Running', { status: { net1: ['10.0.0.7', '10.0.0.5'] } }),
      undefined,
    ],
    ['Running without network-status: nothing to judge by', pod('Running'), undefined],
    ['network-status without this interface', pod('Running', { status: { net2: ['10.0.0.99'] } }), undefined],
    ['Pending without network-status (still starting)', pod('Pending'), undefined],
    [
      'a pod younger than the grace period, whatever its status says',
      pod('Running', { createdAt: now - 60_000, status: { net1: ['10.0.0.99'] } }),
      undefined,
    ],
    [
      'Pending but old, with another address in network-status',
      pod('Pending', { status: { net1: ['10.0.0.99'] } }),
      'address-changed',
    ],
  ])('%s → %s', (_, state, reason) => {
    const pods = new Map(state === undefined ? [] : [['default/a', state] as const]);
    // The entry's mismatch was seen by the run before, an hour ago (see the sightings below).
    const seen = JSON.stringify({ '5': { id: 'c-default/a', since: new Date(old).toISOString() } });
    const plan = planCollection({
      pools: [{ ...pool([allocation('10.0.0.5', 'default/a')]), suspects: seen }],
      reservations: [],
      pods,
      now,
      graceMs: grace,
    });
    expect(plan.releases.map((r) => r.reason)).toEqual(reason === undefined ? [] : [reason]);
  });

  test('an allocation without a pod reference is never released', () => {
    const plan = planCollection({
      pools: [pool([allocation('10.0.0.5', '')])],
      reservations: [],
      pods: new Map(),
      now,
      graceMs: grace,
    });
    expect(plan.releases).toEqual([]);
  });

  test('a release carries the entry exactly as stored, for its conditional write', () => {
    const plan = planCollection({
      pools: [pool([allocation('10.0.0.5', 'default/gone')])],
      reservations: [],
      pods: new Map(),
      now,
      graceMs: grace,
    });
    expect(plan.releases[0]).toMatchObject({
      key: '5',
      stored: { id: 'c-default/gone', podref: 'default/gone', ifname: 'net1' },
      address: '10.0.0.5',
    });
  });
});

describe('address-changed needs two sightings a grace period apart (Multus writes network-status late)', () => {
  const entry = (id: string): Entry => ['5', { id, podref: 'default/a', ifname: 'net1' }];
  const lagging = new Map([['default/a', pod('Running', { status: { net1: ['10.0.0.4'] } })]]);
  const input = (id: string, suspects: string | undefined, at: number, pods = lagging): PlanInput => ({
    pools: [
      {
        ...pool([entry(id)]),
        annotated: suspects !== undefined,
        ...(suspects === undefined ? {} : { suspects }),
      },
    ],
    reservations: [],
    pods,
    now: at,
    graceMs: grace,
  });
  const recorded = (plan: ReturnType<typeof planCollection>) => plan.sightings[0]?.next;

  test('first sighting: recorded, not released', () => {
    const plan = planCollection(input('new', undefined, now));
    expect(plan.releases).toEqual([]);
    expect(plan.suspects).toBe(1);
    expect(plan.sightings).toEqual([
      {
        namespace: 'kube-system',
        pool: '10.0.0.0-24',
        annotated: false,
        next: { '5': { id: 'new', since: new Date(now).toISOString() } },
      },
    ]);
  });

  test('second sighting of the same entry a grace period later: released, and its sighting pruned', () => {
    const first = JSON.stringify(recorded(planCollection(input('new', undefined, now))));
    const plan = planCollection(input('new', first, now + grace));
    expect(plan.releases.map((r) => [r.key, r.containerId, r.reason])).toEqual([
      ['5', 'new', 'address-changed'],
    ]);
    expect(plan.sightings).toEqual([
      { namespace: 'kube-system', pool: '10.0.0.0-24', previous: first, annotated: true, next: {} },
    ]);
  });

  test('second sighting sooner than a grace period later: kept, the first sighting stands', () => {
    const first = JSON.stringify(recorded(planCollection(input('new', undefined, now))));
    const plan = planCollection(input('new', first, now + grace - 1));
    expect(plan.releases).toEqual([]);
    expect(plan.suspects).toBe(1);
    expect(plan.sightings).toEqual([]); // nothing to write
  });

  test('second sighting with a changed container ID: a new sighting, not a release', () => {
    const first = JSON.stringify(recorded(planCollection(input('old-sandbox', undefined, now))));
    const plan = planCollection(input('new-sandbox', first, now + grace));
    expect(plan.releases).toEqual([]);
    expect(recorded(plan)).toEqual({
      '5': { id: 'new-sandbox', since: new Date(now + grace).toISOString() },
    });
  });

  test('mismatch gone (Multus caught up): the sighting is dropped, and a later mismatch starts afresh', () => {
    const first = JSON.stringify(recorded(planCollection(input('new', undefined, now))));
    const caughtUp = new Map([['default/a', pod('Running', { status: { net1: ['10.0.0.5'] } })]]);
    const plan = planCollection(input('new', first, now + grace, caughtUp));
    expect(plan.releases).toEqual([]);
    expect(recorded(plan)).toEqual({});
    const again = planCollection(input('new', undefined, now + 2 * grace));
    expect(again.releases).toEqual([]);
    expect(recorded(again)).toEqual({ '5': { id: 'new', since: new Date(now + 2 * grace).toISOString() } });
  });

  test('the entry gone, or its pod gone: the sighting is dropped', () => {
    const first = JSON.stringify(recorded(planCollection(input('new', undefined, now))));
    const gone = planCollection(input('new', first, now + grace, new Map()));
    expect(gone.releases.map((r) => r.reason)).toEqual(['pod-gone']);
    expect(recorded(gone)).toEqual({});
    const empty = planCollection({
      ...input('new', first, now + grace),
      pools: [{ ...pool([]), suspects: first }],
    });
    expect(recorded(empty)).toEqual({});
  });

  test('unreadable sightings read as none', () => {
    expect(sightingsOf('not json')).toEqual(new Map());
    expect(
      sightingsOf('{"5":{"id":"c","since":"yesterday"},"6":{"id":"c","since":"2026-01-01T00:00:00Z"}}'),
    ).toEqual(new Map([['6', { id: 'c', since: '2026-01-01T00:00:00Z' }]]));
    expect(suspectsAnnotation).toBe('whereabouts-ts.io/gc-suspects');
  });
});

describe('which reservations are orphaned', () => {
  const reservation = (name: string, podRef: string, createdAt = old, ifName = 'net1'): ReservationState => ({
    namespace: 'kube-system',
    name,
    podRef,
    ifName,
    resourceVersion: '7',
    createdAt,
  });
  const live = new Map([['default/a', pod('Running')]]);

  test.each<[string, PoolState[], ReservationState, boolean]>([
    [
      'matches a live entry of its owner',
      [pool([allocation('10.0.0.5', 'default/a')])],
      reservation('10.0.0.5', 'default/a'),
      false,
    ],
    [
      'of a named network, matched by computing the name (Whereabouts deleted these)',
      [pool([allocation('10.0.0.5', 'default/a')], 'blue')],
      reservation('blue-10.0.0.5', 'default/a'),
      false,
    ],
    ['no entry holds its address', [pool([])], reservation('10.0.0.5', 'default/a'), true],
    [
      'its entry is leaked and released',
      [pool([allocation('10.0.0.5', 'default/gone')])],
      reservation('10.0.0.5', 'default/gone'),
      true,
    ],
    [
      'no entry, but younger than the grace period (an ADD in flight)',
      [pool([])],
      reservation('10.0.0.5', 'default/a', now - 1_000),
      false,
    ],
    [
      'held by a live entry of another owner: left for a person',
      [pool([allocation('10.0.0.5', 'default/a')])],
      reservation('10.0.0.5', 'default/b'),
      false,
    ],
    [
      'another interface of the same pod',
      [pool([allocation('10.0.0.5', 'default/a')])],
      reservation('10.0.0.5', 'default/a', old, 'net2'),
      false,
    ],
  ])('%s → orphaned: %s', (_, pools, r, orphaned) => {
    const plan = planCollection({ pools, reservations: [r], pods: live, now, graceMs: grace });
    expect(plan.deletions.map((d) => d.name)).toEqual(orphaned ? [r.name] : []);
  });

  test('a live address in a Fast IPAM per-node pool keeps its reservation, though the pool name misleads', () => {
    // Whereabouts' per-node pool `node-1-10.0.0.0-24` reads as network "node-1"; its reservation is `10.0.0.5`.
    const perNode: PoolState = {
      ...pool([allocation('10.0.0.5', 'default/a')]),
      name: 'node-1-10.0.0.0-24',
      networkName: 'node-1',
    };
    const r = reservation('10.0.0.5', 'default/a', old);
    const plan = planCollection({ pools: [perNode], reservations: [r], pods: live, now, graceMs: grace });
    expect(plan.deletions).toEqual([]);
  });

  test('IPv6 reservation names ending in --0 are matched, not parsed', () => {
    // 2001:db8:1:: prints with a trailing "::", so its reservation is named 2001-db8-1--0.
    const v6: PoolState = {
      namespace: 'kube-system',
      name: '2001-db8---32',
      networkName: '',
      range: '2001:db8::/32',
      pool: {
        base: ip('2001:db8::'),
        family: 6,
        entries: {
          [String(ip('2001:db8:1::') - ip('2001:db8::'))]: { id: 'c', podref: 'default/a', ifname: 'net1' },
        },
      },
    };
    const plan = planCollection({
      pools: [v6],
      reservations: [reservation('2001-db8-1--0', 'default/a')],
      pods: live,
      now,
      graceMs: grace,
    });
    expect(plan.deletions).toEqual([]);
    expect(plan.releases).toEqual([]);
  });
});

test('network names are read off pool names by their range, not guessed', () => {
  expect(networkNameOf('10.0.0.0-24', '10.0.0.0/24')).toBe('');
  expect(networkNameOf('blue-net-10.0.0.0-24', '10.0.0.0/24')).toBe('blue-net');
  expect(networkNameOf('storage-2001-db8---64', '2001:db8::/64')).toBe('storage');
});

test("node slice pools' network names come from the NodeSlicePool of the slice and the node holding it", () => {
  const slice = (name: string, nodeName: string) => ({
    name,
    allocations: [{ nodeName, sliceRange: '10.8.0.0/24' }],
  });
  expect(networkNameOf('n1-10.8.0.0-24', '10.8.0.0/24', [slice('fast', 'n1')])).toBe('');
  expect(networkNameOf('blue-n1-10.8.0.0-24', '10.8.0.0/24', [slice('blue', 'n1')])).toBe('blue');
  // The slice moved to another node since the pool was made: a named network's pool starts with its name.
  expect(networkNameOf('blue-gone-10.8.0.0-24', '10.8.0.0/24', [slice('blue', 'n2')])).toBe('blue');
  // A whole-range pool whose CIDR is some other network's slice is still read by its range.
  expect(networkNameOf('red-10.8.0.0-24', '10.8.0.0/24', [slice('fast', 'n1')])).toBe('red');
  // The agent knows its own node only.
  expect(networkNameOf('blue-node-1-10.0.0.0-28', '10.0.0.0/28', [], 'node-1')).toBe('blue');
  expect(networkNameOf('node-1-10.0.0.0-28', '10.0.0.0/28', [], 'node-1')).toBe('');
  expect(networkNameOf('blue-10.0.0.0-28', '10.0.0.0/28', [], 'node-1')).toBe('blue');
});

test('network-status: interfaces and their addresses, the default network left out', () => {
  const status = JSON.stringify([
    { name: 'cbr0', interface: 'eth0', ips: ['10.244.1.5'], default: true },
    { name: 'default/storage', interface: 'net1', ips: ['10.0.0.5', '2001:db8::5'] },
  ]);
  expect(interfacesOf(status)).toEqual(new Map([['net1', ['10.0.0.5', '2001:db8::5']]]));
  expect(interfacesOf(undefined)).toBeUndefined();
  expect(interfacesOf('not json')).toBeUndefined();
});
