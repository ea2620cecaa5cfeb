// Hundreds of simultaneous allocations from many simulated nodes, on the embedded API server and on a real
// kube-apiserver with etcd, and with injected faults on the embedded one. The invariants, checked on what
// the API server stores after every burst: no address held twice, every stored allocation belongs to an
// owner that was told that address, every reservation matches a pool entry of its owner (nothing leaked),
// and no owner lost its address.

import type { Owner } from '../../src/allocator/allocation.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { seededRandom } from '../../bench/report.ts';
import { onEveryServer, startCluster, type Cluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig } from '../support/config.ts';
import { poolsIn, reservationsIn } from '../support/pools.ts';

const nodes = 10;
const podsPerNode = 50;
const config = ipamConfig({ range: '10.20.0.0/23' });

type Outcome = { owner: Owner; address?: string; error?: string };

/**
 * How a burst runs. `inFlight`: the allocations each node runs at once. The embedded server takes all 500
 * at once; a real kube-apiserver applies every patch of one IPPool in turn and redoes a patch whose commit
 * lost the race (decode, patch, managedFields, validation, encode), so its work grows with the writers in
 * flight — there, each node runs one allocation after another, and the request timeout is the plugin's.
 */
type Shape = { readonly inFlight: number; readonly requestTimeoutMs: number; readonly deadlineMs: number };
const shapes: Record<Cluster['kind'], Shape> = {
  embedded: { inFlight: podsPerNode, requestTimeoutMs: 2_000, deadlineMs: 45_000 },
  real: { inFlight: 1, requestTimeoutMs: 30_000, deadlineMs: 60_000 },
};

const owners = (seed: number) =>
  Array.from({ length: nodes * podsPerNode }, (_, i): Owner => ({
    containerId: `c-${seed}-${i}`,
    podRef: `ns${i % nodes}/pod-${i}`,
    ifName: 'net1',
  }));

/** Runs `each` for every owner: node `i % nodes` handles owner `i`, `inFlight` at a time, on its own connection. */
async function onNodes<T>(
  cluster: Cluster,
  shape: Shape,
  all: readonly Owner[],
  each: (owner: Owner, store: IpamStore) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  await Promise.all(
    Array.from({ length: nodes }, async (_, node) => {
      // One connection per simulated node, as each node's plugin runs against the API server on its own.
      const store = cluster.store({ requestTimeoutMs: shape.requestTimeoutMs });
      const mine = all.map((owner, i) => ({ owner, i })).filter(({ i }) => i % nodes === node);
      let next = 0;
      await Promise.all(
        Array.from({ length: shape.inFlight }, async () => {
          for (let item = mine[next++]; item !== undefined; item = mine[next++])
            results[item.i] = await each(item.owner, store);
        }),
      );
    }),
  );
  return results;
}

async function burst(cluster: Cluster, shape: Shape, seed: number): Promise<Outcome[]> {
  const random = seededRandom(seed);
  return onNodes(cluster, shape, owners(seed), async (owner, store): Promise<Outcome> => {
    const result = await allocate(config, owner, {
      store,
      log: silentLogger,
      deadline: deadlineIn(shape.deadlineMs),
      random,
    });
    if (!result.ok) return { owner, error: result.error.details };
    return { owner, address: formatIP(ipOf(4, result.value[0]?.address ?? 0n)) };
  });
}

/** Checks the stored state against what the owners were told. */
async function assertInvariants(cluster: Cluster, outcomes: Outcome[]): Promise<void> {
  const allocations = (await poolsIn(cluster)).get('10.20.0.0-23')?.allocations ?? {};
  const told = new Map(
    outcomes.filter((o) => o.address !== undefined).map((o) => [o.owner.podRef, o.address]),
  );
  const stored = Object.entries(allocations).map(([offset, entry]) => ({
    address: formatIP(ipOf(4, 0x0a140000n + BigInt(offset))),
    ...entry,
  }));
  // No address twice (a map cannot hold a key twice, so: no owner twice, and addresses told are distinct).
  expect(new Set(stored.map((s) => s.podref)).size).toBe(stored.length);
  expect(new Set(told.values()).size).toBe(told.size);
  // Every stored allocation belongs to an owner that was told exactly that address, and vice versa.
  for (const s of stored) expect(told.get(s.podref)).toBe(s.address);
  expect(stored).toHaveLength(told.size);
  // Reservations: one per stored allocation, of the same owner; none left over.
  const reservations = await reservationsIn(cluster);
  expect(reservations.size).toBe(stored.length);
  for (const s of stored) expect(reservations.get(s.address)?.podref).toBe(s.podref);
}

/** Releases every owner and checks that the pool and the reservations are left empty. */
async function releaseAll(cluster: Cluster, shape: Shape, outcomes: Outcome[]): Promise<void> {
  const released = await onNodes(
    cluster,
    shape,
    outcomes.map((o) => o.owner),
    (owner, store) =>
      release(config, owner, { store, log: silentLogger, deadline: deadlineIn(shape.deadlineMs) }),
  );
  expect(released.filter((r) => !r.ok)).toEqual([]);
  expect((await poolsIn(cluster)).get('10.20.0.0-23')?.allocations).toEqual({});
  expect((await reservationsIn(cluster)).size).toBe(0);
}

onEveryServer((start, kind) => {
  const shape = shapes[kind];
  // Three bursts on the embedded server (a new server each), one on the real one: it takes minutes for
  // 500 allocations on a small machine, and the bursts differ only in the seed.
  describe.each(kind === 'embedded' ? [1, 2, 3] : [1])('burst with seed %i', (seed) => {
    let cluster: Cluster;
    beforeEach(async () => {
      cluster = await start();
    });
    afterEach(async () => {
      await cluster.close();
    });

    test(`500 allocations from 10 nodes, ${shape.inFlight * nodes} in flight, into one /23: all succeed, no duplicate; all released`, async () => {
      const outcomes = await burst(cluster, shape, seed);
      expect(outcomes.filter((o) => o.error !== undefined)).toEqual([]);
      await assertInvariants(cluster, outcomes);
      await releaseAll(cluster, shape, outcomes);
    }, 600_000);
  });
});

describe('embedded API server with injected faults', () => {
  describe.each([1, 2, 3])('burst with seed %i', (seed) => {
    let cluster: TestCluster;
    beforeEach(async () => {
      cluster = await startCluster();
    });
    afterEach(async () => {
      await cluster.close();
    });

    test('500 allocations under 20% injected 5xx and lost responses: no duplicate, nothing leaked, then all released', async () => {
      cluster.server.faults.errorRates = { 500: 0.1, 503: 0.05, 429: 0.05 };
      cluster.server.faults.retryAfterSeconds = 0;
      cluster.server.faults.lostResponseRate = 0.1;
      const outcomes = await burst(cluster, shapes.embedded, seed + 100);
      await assertInvariants(cluster, outcomes);
      expect(outcomes.filter((o) => o.error !== undefined)).toEqual([]);

      // Releasing everything through the same faults leaves the pool and the reservations empty.
      await releaseAll(cluster, shapes.embedded, outcomes);
    }, 300_000);
  });
});
