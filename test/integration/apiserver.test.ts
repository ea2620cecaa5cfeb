// What only the embedded API server has: fault switches, its stand-ins for authentication and RBAC, and
// the connection statistics benchmarks read. Everything it shares with kube-apiserver is in the contract
// suite (test/contract/api.test.ts), which runs against both.

import { ApiException } from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../support/cluster.ts';

let cluster: TestCluster;
beforeEach(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  await cluster.close();
});

const where = {
  group: 'whereabouts.cni.cncf.io',
  version: 'v1alpha1',
  namespace: 'kube-system',
  plural: 'ippools',
};
const pool = (name: string, allocations: Record<string, unknown> = {}) => ({
  apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
  kind: 'IPPool',
  metadata: { name },
  spec: { range: '10.0.0.0/24', allocations },
});

/** The HTTP status and Status body of a rejected client-node call (client-node 2 keeps the body as text). */
async function rejection(
  promise: Promise<unknown>,
): Promise<{ code: number; reason?: string; message: string }> {
  try {
    await promise;
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    const body = JSON.parse(String(e.body)) as { reason?: string; message: string };
    return {
      code: e.code,
      ...(body.reason === undefined ? {} : { reason: body.reason }),
      message: body.message,
    };
  }
  throw new Error('expected the call to fail');
}

test('fault switches: 429 with Retry-After, 503, dropped connections, responses lost after commit', async () => {
  const { custom } = cluster.connection({ requestTimeoutMs: 2000 });
  cluster.server.faults.errorRates = { 429: 1 };
  cluster.server.faults.retryAfterSeconds = 3;
  const limited = await fetch(
    `${cluster.server.url}/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools`,
  );
  expect(limited.status).toBe(429);
  expect(limited.headers.get('retry-after')).toBe('3');
  cluster.server.faults.errorRates = { 503: 1 };
  expect((await rejection(custom.listNamespacedCustomObject({ ...where }))).code).toBe(503);
  cluster.server.faults.errorRates = {};

  cluster.server.faults.dropRate = 1;
  await expect(custom.listNamespacedCustomObject({ ...where })).rejects.not.toBeInstanceOf(ApiException);
  cluster.server.faults.dropRate = 0;

  cluster.server.faults.lostResponseRate = 1;
  await expect(custom.createNamespacedCustomObject({ ...where, body: pool('lost') })).rejects.toBeDefined();
  cluster.server.faults.lostResponseRate = 0;
  expect(cluster.server.objects('ippools', 'whereabouts.cni.cncf.io').has('kube-system/lost')).toBe(true);
});

test('401 without the token, 403 when RBAC would refuse', async () => {
  await cluster.close();
  cluster = await startCluster({ token: 'secret-token', authorize: (r) => r.verb !== 'delete' });
  const { custom } = cluster.connection();
  await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
  const forbidden = await rejection(custom.deleteNamespacedCustomObject({ ...where, name: 'p1' }));
  expect(forbidden.code).toBe(403);
  const anonymous = await fetch(
    `${cluster.server.url}/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools`,
  );
  expect(anonymous.status).toBe(401);
});

test('the store keeps connections warm: sequential requests share a connection', async () => {
  const store = cluster.store();
  cluster.server.resetStats();
  for (let i = 0; i < 30; i++) await store.readPool(`pool-${i}`);
  expect(cluster.server.stats.requests).toBe(30);
  // client-node 2.0 alone opens one connection per request; the second connection here is the first
  // request's, not yet back in the pool when the second request starts.
  expect(cluster.server.stats.connections).toBeLessThanOrEqual(2);
});

test('fault injection is replayable: the same seed fails the same requests', async () => {
  const statuses = async (faultSeed: number): Promise<number[]> => {
    const seeded = await startCluster({ faultSeed });
    seeded.server.faults.errorRates = { 500: 0.3, 503: 0.3 };
    const seen: number[] = [];
    for (let i = 0; i < 30; i++)
      seen.push(
        (
          await fetch(
            `${seeded.server.url}/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools`,
          )
        ).status,
      );
    await seeded.close();
    return seen;
  };
  const first = await statuses(42);
  expect(new Set(first)).toEqual(new Set([200, 500, 503]));
  expect(await statuses(42)).toEqual(first);
  expect(await statuses(43)).not.toEqual(first);
});
