// The agent's group-commit store under the IPAM transaction, over real HTTP against the embedded API
// server, with what the agent knows of the pools (src/agent/pool-cache.ts).

import { formatIP, ipOf } from '../../src/ip/address.ts';
import { groupCommitStore } from '../../src/agent/group-commit.ts';
import { agentPools, type AgentPools } from '../../src/agent/pool-cache.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, type TransactionContext } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { poolsOf } from '../support/pools.ts';

let cluster: TestCluster;
let cache: AgentPools;
beforeEach(async () => {
  cluster = await startCluster();
  cache = agentPools(cluster.connection(), silentLogger, { node: 'node-1' });
  await cache.synced;
});
afterEach(async () => {
  cache.stop();
  await cluster.close();
});

test('more concurrent ADDs than a pool holds: every address handed out once, the rest told the pool is full', async () => {
  // 14 addresses, 20 writers at once: while the first batch is in flight, the others must not keep choosing
  // offsets that are already being claimed (that loop has no I/O and would hold the event loop until the
  // deadline, so the batch in flight could never return).
  const config = ipamConfig({ range: '10.9.0.0/28', enable_overlapping_ranges: false });
  for (let round = 0; round < 5; round++) {
    const connection = cluster.connection();
    const store = groupCommitStore(cluster.store(), connection, cache);
    const ctx: TransactionContext = { store, log: silentLogger, deadline: deadlineIn(8_000) };
    cluster.server.faults.writeLatencyMs = 50;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => allocate(config, owner(`r${round}-${i}`), ctx)),
    );
    const addresses = results.flatMap((r) => (r.ok ? r.value.map((a) => formatIP(ipOf(4, a.address))) : []));
    expect(addresses).toHaveLength(14);
    expect(new Set(addresses).size).toBe(14);
    const failures = results.flatMap((r) => (r.ok ? [] : [r.error.details]));
    expect(failures).toHaveLength(6);
    for (const f of failures) expect(f).toMatch(/no free address|full/i);
    const held = Object.values(poolsOf(cluster.server).get('10.9.0.0-28')?.allocations ?? {});
    expect(held.map((e) => e.podref).sort()).toEqual(
      results.flatMap((r, i) => (r.ok ? [`default/r${round}-${i}`] : [])).sort(),
    );
    // Empty the pool for the next round.
    cluster.server.faults.writeLatencyMs = 0;
    const { custom, namespace } = connection;
    await custom.deleteNamespacedCustomObject({
      group: 'whereabouts.cni.cncf.io',
      version: 'v1alpha1',
      namespace,
      plural: 'ippools',
      name: '10.9.0.0-28',
    });
    // The agent may still hold its copy of the deleted pool, full: the next round must not take that for
    // the API server's word (the transaction reads the pool again before it answers "full").
  }
});
