// The agent's group-commit store when its watch cache lags behind the API server: a write elsewhere (the
// standalone plugin, another node's agent, GC) that the watch has not delivered yet. The cache here is a
// stand-in for the watch that stays at the state the test last delivered — a watch that lags for as long as
// the test likes, without sleeps — and keeps objects by resourceVersion as the real one does.

import { groupCommitStore, type PoolCache } from '../../src/agent/group-commit.ts';
import { withAllocations } from '../../src/agent/pool-cache.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release, type TransactionContext } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { poolsOf } from '../support/pools.ts';

type Obj = Record<string, unknown>;
const group = 'whereabouts.cni.cncf.io';

const versionOf = (o: Obj): bigint =>
  BigInt((o.metadata as { resourceVersion: string } | undefined)?.resourceVersion ?? '0');

/**
 * A watch cache whose watch delivers only what the test hands it. `invalidate` forgets the pool, and the lagging
 * watch's next event — the state it last delivered — puts it right back, as a late event would.
 */
function laggingCache(): PoolCache & { deliver(name: string, object: Obj): void } {
  const pools = new Map<string, Obj>();
  const delivered = new Map<string, Obj>();
  const keep = (name: string, o: Obj): void => {
    const held = pools.get(name);
    if (held !== undefined && versionOf(o) < versionOf(held)) return;
    pools.set(name, o);
  };
  return {
    deliver(name, object) {
      delivered.set(name, object);
      keep(name, object);
    },
    get: (name) => pools.get(name),
    put: keep,
    update(name, change) {
      const held = pools.get(name);
      if (held !== undefined) pools.set(name, withAllocations(held, change));
    },
    invalidate(name) {
      pools.delete(name);
      const late = delivered.get(name);
      if (late !== undefined) keep(name, late);
    },
  };
}

let cluster: TestCluster;
let plain: IpamStore;
beforeEach(async () => {
  cluster = await startCluster();
  plain = cluster.store();
});
afterEach(async () => {
  await cluster.close();
});

const pool = '10.7.0.0-29';
const config = ipamConfig({ range: '10.7.0.0/29', enable_overlapping_ranges: false });
const ctxOf = (store: IpamStore, ms = 3_000): TransactionContext => ({
  store,
  log: silentLogger,
  deadline: deadlineIn(ms),
  random: () => 0, // the lowest free address, so that a test can hand one address to two pods in turn
});
const rawPool = async (): Promise<Obj> => {
  const o = (await cluster.objects('ippools', group)).get(pool);
  if (o === undefined) throw new Error(`no IPPool ${pool}`);
  return o;
};
const entries = () => Object.values(poolsOf(cluster.server).get(pool)?.allocations ?? {});

test('a new sandbox whose entry changed elsewhere: the ADD after "changed" reads past the stale cache and converges', async () => {
  // Sandbox c1 of pod a holds an address; the cache has seen that.
  const first = await allocate(config, owner('a', 'net1', 'c1'), ctxOf(plain));
  if (!first.ok) throw new Error(first.error.details);
  const cache = laggingCache();
  cache.deliver(pool, await rawPool());
  // Elsewhere (the standalone plugin, during an agent restart) sandbox c2 took the entry over: not in the cache.
  const second = await allocate(config, owner('a', 'net1', 'c2'), ctxOf(plain));
  expect(second.ok).toBe(true);

  // Sandbox c3 through the agent: the cache shows c1, so the reassign answers "changed"; the next read must not
  // come from the cache that caused it (before: the same stale read until the deadline, code 11).
  const store = groupCommitStore(plain, cluster.connection(), cache);
  const third = await allocate(config, owner('a', 'net1', 'c3'), ctxOf(store));
  if (!third.ok) throw new Error(third.error.details);
  expect(third.value.map((a) => formatIP(ipOf(4, a.address)))).toEqual(
    first.value.map((a) => formatIP(ipOf(4, a.address))),
  );
  expect(entries()).toEqual([{ id: 'c3', podref: 'default/a', ifname: 'net1' }]);
});

test('a reassign that succeeds is written through to the cache', async () => {
  const first = await allocate(config, owner('a', 'net1', 'c1'), ctxOf(plain));
  if (!first.ok) throw new Error(first.error.details);
  const cache = laggingCache();
  cache.deliver(pool, await rawPool());
  const store = groupCommitStore(plain, cluster.connection(), cache);
  const moved = await allocate(config, owner('a', 'net1', 'c2'), ctxOf(store));
  expect(moved.ok).toBe(true);
  // The watch has not delivered the move; the cache shows it all the same (a retried ADD of c2 finds it held).
  const cached = (cache.get(pool)?.spec as { allocations: Record<string, { id: string }> }).allocations;
  expect(Object.values(cached).map((e) => e.id)).toEqual(['c2']);
  const again = await allocate(config, owner('a', 'net1', 'c2'), ctxOf(store));
  expect(again.ok).toBe(true);
  expect(entries()).toEqual([{ id: 'c2', podref: 'default/a', ifname: 'net1' }]);
});

test('a DEL through the agent releases an entry the cache has not seen yet', async () => {
  const other = await allocate(config, owner('b'), ctxOf(plain));
  expect(other.ok).toBe(true);
  const cache = laggingCache();
  cache.deliver(pool, await rawPool());
  // Pod c's ADD committed elsewhere; the watch has not delivered it.
  const added = await allocate(config, owner('c'), ctxOf(plain));
  expect(added.ok).toBe(true);

  const store = groupCommitStore(plain, cluster.connection(), cache);
  const released = await release(config, owner('c'), ctxOf(store));
  if (!released.ok) throw new Error(released.error.details);
  // Before: "success" with nothing released, the address left for GC.
  expect(released.value).toHaveLength(1);
  expect(entries().map((e) => e.podref)).toEqual(['default/b']);
});

test('overlapping ranges: a new sandbox whose old address went to another pod meanwhile gets a new one, not code 999', async () => {
  const overlapping = ipamConfig({ range: '10.7.0.0/29', enable_overlapping_ranges: true });
  const first = await allocate(overlapping, owner('a', 'net1', 'c1'), ctxOf(plain));
  if (!first.ok) throw new Error(first.error.details);
  const cache = laggingCache();
  cache.deliver(pool, await rawPool());
  // Elsewhere: sandbox c1 was deleted and pod x got its address (with its reservation); the watch lags.
  expect((await release(overlapping, owner('a', 'net1', 'c1'), ctxOf(plain))).ok).toBe(true);
  const x = await allocate(overlapping, owner('x'), ctxOf(plain));
  if (!x.ok) throw new Error(x.error.details);
  expect(x.value.map((v) => v.address)).toEqual(first.value.map((v) => v.address));

  // Sandbox c2 of pod a through the agent: the cache still shows a holding x's address, whose reservation is x's.
  // Before: code 999 "release one of them" though nothing is wrong in the cluster.
  const store = groupCommitStore(plain, cluster.connection(), cache);
  const second = await allocate(overlapping, owner('a', 'net1', 'c2'), ctxOf(store));
  if (!second.ok) throw new Error(second.error.details);
  expect(second.value.map((v) => v.address)).not.toEqual(x.value.map((v) => v.address));
  expect(
    entries()
      .map((e) => `${e.podref} ${e.id}`)
      .sort(),
  ).toEqual(['default/a c2', 'default/x sandbox-x']);
});
