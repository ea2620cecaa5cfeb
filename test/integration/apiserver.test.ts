// The embedded API server answers the real client the way a real API server does.

import { ApiException, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
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

test('create, get, 404 and 409 AlreadyExists with Status bodies', async () => {
  const { custom } = cluster.connection();
  const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as {
    metadata: Record<string, unknown>;
  };
  expect(created.metadata).toMatchObject({ name: 'p1', namespace: 'kube-system', generation: 1 });
  expect(typeof created.metadata.resourceVersion).toBe('string');
  expect(typeof created.metadata.uid).toBe('string');
  expect(await rejection(custom.createNamespacedCustomObject({ ...where, body: pool('p1') }))).toEqual({
    code: 409,
    reason: 'AlreadyExists',
    message: 'ippools.whereabouts.cni.cncf.io "p1" already exists',
  });
  expect(await rejection(custom.getNamespacedCustomObject({ ...where, name: 'nope' }))).toEqual({
    code: 404,
    reason: 'NotFound',
    message: 'ippools.whereabouts.cni.cncf.io "nope" not found',
  });
});

test('PUT needs the current resourceVersion: stale is 409 Conflict, missing is 422 Invalid', async () => {
  const { custom } = cluster.connection();
  const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as Record<
    string,
    unknown
  >;
  const body = structuredClone(created) as {
    metadata: { resourceVersion?: string };
    spec: { allocations: Record<string, unknown> };
  };
  body.spec.allocations = { '1': { id: 'c', podref: 'ns/p' } };
  const updated = (await custom.replaceNamespacedCustomObject({ ...where, name: 'p1', body })) as {
    metadata: { resourceVersion: string; generation: number };
  };
  expect(updated.metadata.generation).toBe(2);
  expect((await rejection(custom.replaceNamespacedCustomObject({ ...where, name: 'p1', body }))).code).toBe(
    409,
  );
  delete body.metadata.resourceVersion;
  const missing = await rejection(custom.replaceNamespacedCustomObject({ ...where, name: 'p1', body }));
  expect(missing.code).toBe(422);
  expect(missing.message).toContain(
    'metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
  );
});

test('JSON patch applies to the latest object; a failed test is the generic 422', async () => {
  const { custom } = cluster.connection();
  await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
  const claim = (offset: string, id: string) =>
    custom.patchNamespacedCustomObject(
      {
        ...where,
        name: 'p1',
        body: [
          { op: 'test', path: `/spec/allocations/${offset}`, value: null },
          { op: 'add', path: `/spec/allocations/${offset}`, value: { id, podref: `ns/${id}` } },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  await claim('5', 'a');
  await claim('6', 'b'); // no resourceVersion precondition: a concurrent write elsewhere is no conflict
  expect(await rejection(claim('5', 'c'))).toEqual({
    code: 422,
    reason: 'Invalid',
    message: 'the server rejected our request due to an error in our request',
  });
  const stored = cluster.server.objects('ippools', 'whereabouts.cni.cncf.io').get('kube-system/p1') as {
    spec: { allocations: unknown };
  };
  expect(stored.spec.allocations).toEqual({
    '5': { id: 'a', podref: 'ns/a' },
    '6': { id: 'b', podref: 'ns/b' },
  });
  const malformed = await rejection(
    custom.patchNamespacedCustomObject(
      { ...where, name: 'p1', body: [{ op: 'frobnicate', path: '/x' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    ),
  );
  expect(malformed.code).toBe(400);
});

test('schema violations are 422 Invalid naming the field; unknown fields are pruned', async () => {
  const { custom } = cluster.connection();
  const bad = await rejection(
    custom.createNamespacedCustomObject({ ...where, body: pool('p1', { '1': { id: 'c' } }) }),
  );
  expect(bad.code).toBe(422);
  expect(bad.message).toContain('spec.allocations[1].podref: Required value');
  const created = (await custom.createNamespacedCustomObject({
    ...where,
    body: { ...pool('p2'), spec: { range: '10.0.0.0/24', allocations: {}, extra: 1 } },
  })) as { spec: Record<string, unknown> };
  expect(created.spec).toEqual({ range: '10.0.0.0/24', allocations: {} });
});

test('merge patch, strategic merge refused for custom resources (415)', async () => {
  const { custom } = cluster.connection();
  await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
  await custom.patchNamespacedCustomObject(
    { ...where, name: 'p1', body: { metadata: { labels: { a: 'b' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const stored = cluster.server.objects('ippools', 'whereabouts.cni.cncf.io').get('kube-system/p1') as {
    metadata: { labels: unknown };
  };
  expect(stored.metadata.labels).toEqual({ a: 'b' });
  const strategic = await rejection(
    custom.patchNamespacedCustomObject(
      { ...where, name: 'p1', body: {} },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    ),
  );
  expect(strategic.code).toBe(415);
});

test('lists pods by field and label selector, with pagination', async () => {
  const { core } = cluster.connection();
  for (let i = 0; i < 7; i++) {
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: `pod-${i}`, labels: { app: i % 2 === 0 ? 'even' : 'odd' } },
        spec: { nodeName: `node-${i % 3}`, containers: [] },
      },
    });
  }
  const onNode = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-1' });
  expect(onNode.items.map((p) => p.metadata?.name)).toEqual(['pod-1', 'pod-4']);
  const even = await core.listNamespacedPod({
    namespace: 'default',
    labelSelector: 'app in (even),app!=odd',
  });
  expect(even.items).toHaveLength(4);
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await core.listNamespacedPod({
      namespace: 'default',
      limit: 3,
      ...(token === undefined ? {} : { _continue: token }),
    });
    names.push(...page.items.map((p) => p.metadata?.name ?? ''));
    token = page.metadata?._continue;
  } while (token !== undefined && token !== '');
  expect(names).toEqual(['pod-0', 'pod-1', 'pod-2', 'pod-3', 'pod-4', 'pod-5', 'pod-6']);
  expect((await rejection(core.listPodForAllNamespaces({ fieldSelector: 'spec.bogus=1' }))).code).toBe(400);
});

test('watch streams events from a resourceVersion, and a too old one is a 410 Expired event', async () => {
  const { custom, kubeConfig } = cluster.connection();
  const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as {
    metadata: { resourceVersion: string };
  };
  const events: string[] = [];
  const done = new Promise<void>((resolve) => {
    void new Watch(kubeConfig).watch(
      '/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools',
      { resourceVersion: created.metadata.resourceVersion },
      (type: string, object: { metadata?: { name?: string } }) => {
        events.push(`${type} ${object.metadata?.name ?? ''}`);
        if (events.length === 3) resolve();
      },
      () => undefined,
    );
  });
  await custom.createNamespacedCustomObject({ ...where, body: pool('p2') });
  await custom.patchNamespacedCustomObject(
    { ...where, name: 'p1', body: { metadata: { labels: { x: 'y' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await custom.deleteNamespacedCustomObject({ ...where, name: 'p2' });
  await done;
  expect(events).toEqual(['ADDED p2', 'MODIFIED p1', 'DELETED p2']);

  const expired = await fetch(
    `${cluster.server.url}/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools?watch=true&resourceVersion=-5`,
  );
  const line = JSON.parse((await expired.text()).trim()) as {
    type: string;
    object: { code: number; reason: string };
  };
  expect(line).toMatchObject({ type: 'ERROR', object: { code: 410, reason: 'Expired' } });
});

test('delete with a stale resourceVersion precondition is 409', async () => {
  const { custom } = cluster.connection();
  await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
  const stale = await rejection(
    custom.deleteNamespacedCustomObject({
      ...where,
      name: 'p1',
      body: { preconditions: { resourceVersion: '1' } },
    }),
  );
  expect(stale.code).toBe(409);
  await custom.deleteNamespacedCustomObject({ ...where, name: 'p1' });
  expect(cluster.server.objects('ippools', 'whereabouts.cni.cncf.io').size).toBe(0);
});

test('objects over the etcd size limit are refused', async () => {
  const { custom } = cluster.connection();
  const allocations: Record<string, unknown> = {};
  for (let i = 0; i < 20_000; i++)
    allocations[String(i)] = { id: 'c'.repeat(64), podref: `namespace/pod-${i}`, ifname: 'net1' };
  const refused = await rejection(
    custom.createNamespacedCustomObject({ ...where, body: pool('big', allocations) }),
  );
  expect(refused).toMatchObject({ code: 500, message: 'etcdserver: request is too large' });
});

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
