// Hundreds of simultaneous allocations from many simulated nodes, with and without injected faults. The
// invariants, checked on what the API server stores after every burst: no address held twice, every
// stored allocation belongs to an owner that was told that address, every reservation matches a pool entry
// of its owner (nothing leaked), and no owner lost its address.

import type { Owner } from '../../src/allocator/allocation.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { seededRandom } from '../../bench/report.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig } from '../support/config.ts';
import { poolsOf, reservationsOf } from '../support/pools.ts';

const nodes = 10;
const podsPerNode = 50;
const config = ipamConfig({ range: '10.20.0.0/23' });

type Outcome = { owner: Owner; address?: string; error?: string };

async function burst(cluster: TestCluster, seed: number): Promise<Outcome[]> {
  const random = seededRandom(seed);
  // One connection per simulated node, as each node's plugin runs against the API server on its own.
  const stores: IpamStore[] = Array.from({ length: nodes }, () => cluster.store({ requestTimeoutMs: 2_000 }));
  const owners = Array.from({ length: nodes * podsPerNode }, (_, i): Owner => ({
    containerId: `c-${seed}-${i}`,
    podRef: `ns${i % nodes}/pod-${i}`,
    ifName: 'net1',
  }));
  return Promise.all(
    owners.map(async (owner, i): Promise<Outcome> => {
      const result = await allocate(config, owner, {
        store: stores[i % nodes] as IpamStore,
        log: silentLogger,
        deadline: deadlineIn(45_000),
        random,
      });
      if (!result.ok) return { owner, error: result.error.details };
      return { owner, address: formatIP(ipOf(4, result.value[0]?.address ?? 0n)) };
    }),
  );
}

/** Checks the stored state against what the owners were told. */
function assertInvariants(cluster: TestCluster, outcomes: Outcome[]): void {
  const allocations = poolsOf(cluster.server).get('10.20.0.0-23')?.allocations ?? {};
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
  const reservations = reservationsOf(cluster.server);
  expect(reservations.size).toBe(stored.length);
  for (const s of stored) expect(reservations.get(s.address)?.podref).toBe(s.podref);
}

describe.each([1, 2, 3])('burst of %#', (seed) => {
  let cluster: TestCluster;
  beforeEach(async () => {
    cluster = await startCluster();
  });
  afterEach(async () => {
    await cluster.close();
  });

  test('500 simultaneous allocations from 10 nodes into one /23: all succeed, no duplicate', async () => {
    const outcomes = await burst(cluster, seed);
    expect(outcomes.filter((o) => o.error !== undefined)).toEqual([]);
    assertInvariants(cluster, outcomes);
  });

  test('the same under 20% injected 5xx and lost responses: no duplicate, nothing leaked, then all released', async () => {
    cluster.server.faults.errorRates = { 500: 0.1, 503: 0.05, 429: 0.05 };
    cluster.server.faults.retryAfterSeconds = 0;
    cluster.server.faults.lostResponseRate = 0.1;
    const outcomes = await burst(cluster, seed + 100);
    assertInvariants(cluster, outcomes);
    expect(outcomes.filter((o) => o.error !== undefined)).toEqual([]);

    // Releasing everything through the same faults leaves the pool and the reservations empty.
    const store = cluster.store({ requestTimeoutMs: 2_000 });
    const released = await Promise.all(
      outcomes.map((o) =>
        release(config, o.owner, { store, log: silentLogger, deadline: deadlineIn(45_000) }),
      ),
    );
    expect(released.filter((r) => !r.ok)).toEqual([]);
    expect(poolsOf(cluster.server).get('10.20.0.0-23')?.allocations).toEqual({});
    expect(reservationsOf(cluster.server).size).toBe(0);
  });
});
