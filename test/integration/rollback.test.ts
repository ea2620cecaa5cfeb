// A failed ADD holds nothing afterwards, and never holds a pool entry without its reservation on the way:
// the rollback releases what the ADD may have written, then drops the reservations it made — also when the
// transaction's own deadline has run out, which is often why it failed.

import { fail } from '../../src/errors.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { poolsOf, reservationsOf } from '../support/pools.ts';

let cluster: TestCluster;
beforeEach(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  await cluster.close();
});

test('a claim that committed but whose answer was lost at the deadline: pool entry released first, then its reservation', async () => {
  const store = cluster.store();
  const deadline: { at: number } = deadlineIn(30_000);
  const order: string[] = [];
  const failing: IpamStore = {
    ...store,
    // The claim commits, its answer is lost, and the deadline is over by the time anyone could retry.
    claimOffset: async (...args) => {
      const claimed = await store.claimOffset(...args);
      order.push(`claim ${String(claimed.ok)}`);
      deadline.at = 0;
      return fail({ retry: true, message: 'the answer was lost' });
    },
    releaseOffset: async (...args) => {
      const released = await store.releaseOffset(...args);
      order.push(`release ${released.ok ? released.value : 'failed'}`);
      return released;
    },
    deleteReservation: async (...args) => {
      const deleted = await store.deleteReservation(...args);
      order.push(`delete reservation ${deleted.ok ? deleted.value : 'failed'}`);
      return deleted;
    },
  };
  const result = await allocate(ipamConfig({ range: '10.30.0.0/29' }), owner('a'), {
    store: failing,
    log: silentLogger,
    deadline: deadline,
  });
  expect(result.ok).toBe(false);
  expect(order).toEqual(['claim true', 'release released', 'delete reservation deleted']);
  expect(poolsOf(cluster.server).get('10.30.0.0-29')?.allocations).toEqual({});
  expect(reservationsOf(cluster.server).size).toBe(0);
});
