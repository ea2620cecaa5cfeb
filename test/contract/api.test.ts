// The API contract: every behaviour of the Kubernetes API that the product relies on, run against the
// embedded API server and against a real kube-apiserver with etcd. The embedded server is a verified fake:
// where the two differ, the embedded one is wrong (or the product relied on something only it does).

import { ApiException, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { classify, isFailedTest, isObjectNotFound } from '../../src/store/errors.ts';
import { statusFailure, type ApiFailure } from '../../src/kube-api/api.ts';
import { onEveryServer, type Cluster } from '../support/cluster.ts';

const group = 'whereabouts.cni.cncf.io';
const version = 'v1alpha1';

const pool = (name: string, allocations: Record<string, unknown> = {}) => ({
  apiVersion: `${group}/${version}`,
  kind: 'IPPool',
  metadata: { name },
  spec: { range: '10.0.0.0/24', allocations },
});

const podBody = (name: string, extra: { labels?: Record<string, string>; nodeName?: string } = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, ...(extra.labels === undefined ? {} : { labels: extra.labels }) },
  spec: {
    ...(extra.nodeName === undefined ? {} : { nodeName: extra.nodeName }),
    containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
  },
});

type Rejection = {
  code: number;
  reason?: string;
  message: string;
  details?: Record<string, unknown>;
  /** The body as it came, for the store's own decoding. */
  body: unknown;
};

/** The HTTP status and Status body of a rejected client-node call (client-node 2 keeps the body as text). */
async function rejection(promise: Promise<unknown>): Promise<Rejection> {
  try {
    await promise;
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    let body: unknown;
    try {
      body = JSON.parse(String(e.body));
    } catch {
      // not a Status: kube-apiserver answers an unknown resource with a plain "404 page not found"
    }
    const status = (typeof body === 'object' && body !== null ? body : {}) as Partial<Rejection>;
    return {
      code: e.code,
      ...(status.reason === undefined ? {} : { reason: status.reason }),
      message: status.message ?? '',
      ...(status.details === undefined ? {} : { details: status.details }),
      body,
    };
  }
  throw new Error('expected the call to fail');
}

/** The failure as the store decodes it from the same answer. */
const asFailure = (r: Rejection): ApiFailure => statusFailure(r.code, r.body);

const poolsPath = (cluster: Cluster) => `/apis/${group}/${version}/namespaces/${cluster.namespace}/ippools`;

const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Watch events until `until` says stop or the server ends the watch; resolves with the events and why it ended. */
function watchEvents(
  cluster: Cluster,
  path: string,
  query: Record<string, string | number | boolean>,
  until: (events: { type: string; object: Record<string, unknown> }[]) => boolean = () => false,
  onOpen: () => Promise<void> = () => Promise.resolve(),
): Promise<{
  events: { type: string; object: Record<string, unknown> }[];
  ended: 'server' | 'client';
  error?: unknown;
}> {
  const events: { type: string; object: Record<string, unknown> }[] = [];
  return new Promise((resolve, reject) => {
    let controller: AbortController | undefined;
    let stopped = false;
    new Watch(cluster.connection().kubeConfig)
      .watch(
        path,
        query,
        (type: string, object: Record<string, unknown>) => {
          events.push({ type, object });
          if (!stopped && until(events)) {
            stopped = true;
            controller?.abort();
            resolve({ events, ended: 'client' });
          }
        },
        (error: unknown) => {
          if (!stopped) resolve({ events, ended: 'server', ...(error == null ? {} : { error }) });
          stopped = true;
        },
      )
      .then(async (c) => {
        controller = c;
        await onOpen();
      })
      .catch(reject);
  });
}

onEveryServer(
  (start) => {
    let cluster: Cluster;
    let where: { group: string; version: string; namespace: string; plural: string };
    beforeEach(async () => {
      cluster = await start();
      where = { group, version, namespace: cluster.namespace, plural: 'ippools' };
    });
    afterEach(async () => {
      await cluster.close();
    });

    test('create, get, 404 NotFound and 409 AlreadyExists, with the Status bodies the store classifies', async () => {
      const { custom } = cluster.connection();
      const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as {
        metadata: Record<string, unknown>;
      };
      expect(created.metadata).toMatchObject({ name: 'p1', namespace: cluster.namespace, generation: 1 });
      expect(typeof created.metadata.resourceVersion).toBe('string');
      expect(typeof created.metadata.uid).toBe('string');
      expect(
        await rejection(custom.createNamespacedCustomObject({ ...where, body: pool('p1') })),
      ).toMatchObject({
        code: 409,
        reason: 'AlreadyExists',
        message: 'ippools.whereabouts.cni.cncf.io "p1" already exists',
      });
      const missing = await rejection(custom.getNamespacedCustomObject({ ...where, name: 'nope' }));
      expect(missing).toMatchObject({
        code: 404,
        reason: 'NotFound',
        message: 'ippools.whereabouts.cni.cncf.io "nope" not found',
      });
      expect(isObjectNotFound(asFailure(missing))).toBe(true);
    });

    test('a resource type the server does not serve is a 404 the store tells from a missing object', async () => {
      const { custom } = cluster.connection();
      const missing = await rejection(
        custom.listNamespacedCustomObject({ ...where, plural: 'nosuchthings' }),
      );
      expect(missing.code).toBe(404);
      expect(isObjectNotFound(asFailure(missing))).toBe(false);
      expect(classify(asFailure(missing), 'list', cluster.url).message).toContain('CRDs are not installed');
    });

    test('PUT needs the current resourceVersion: stale is 409 Conflict, missing is 422 Invalid', async () => {
      const { custom } = cluster.connection();
      const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as Record<
        string,
        unknown
      >;
      const body = structuredClone(created) as {
        metadata: { resourceVersion?: string; managedFields?: unknown };
        spec: { allocations: Record<string, unknown> };
      };
      body.spec.allocations = { '1': { id: 'c', podref: 'ns/p' } };
      const updated = (await custom.replaceNamespacedCustomObject({ ...where, name: 'p1', body })) as {
        metadata: { resourceVersion: string; generation: number };
      };
      expect(updated.metadata.generation).toBe(2);
      expect(
        await rejection(custom.replaceNamespacedCustomObject({ ...where, name: 'p1', body })),
      ).toMatchObject({
        code: 409,
        reason: 'Conflict',
      });
      delete body.metadata.resourceVersion;
      const missing = await rejection(custom.replaceNamespacedCustomObject({ ...where, name: 'p1', body }));
      expect(missing).toMatchObject({ code: 422, reason: 'Invalid' });
      expect(missing.message).toContain(
        'metadata.resourceVersion: Invalid value: 0: must be specified for an update',
      );
    });

    test('JSON patch applies to the latest object; a test of a missing key against null passes; a failed test is 422', async () => {
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
          jsonPatch,
        );
      await claim('5', 'a');
      // No resourceVersion precondition: writers of different offsets never conflict, even all at once.
      await Promise.all(Array.from({ length: 20 }, (_, i) => claim(String(10 + i), `w${i}`)));
      const failed = await rejection(claim('5', 'c'));
      expect(failed).toMatchObject({ code: 422 });
      expect(isFailedTest(asFailure(failed))).toBe(true);
      expect(classify(asFailure(failed), 'claim', cluster.url).retry).toBe(true);
      const stored = (await cluster.objects('ippools', group)).get('p1') as { spec: { allocations: object } };
      expect(Object.keys(stored.spec.allocations)).toHaveLength(21);
      expect(stored.spec.allocations).toMatchObject({ '5': { id: 'a', podref: 'ns/a' } });
      // A release: test that the entry is still this owner's, then remove it.
      const release = (id: string) =>
        custom.patchNamespacedCustomObject(
          {
            ...where,
            name: 'p1',
            body: [
              { op: 'test', path: '/spec/allocations/5/id', value: id },
              { op: 'remove', path: '/spec/allocations/5' },
            ],
          },
          jsonPatch,
        );
      expect(isFailedTest(asFailure(await rejection(release('someone-else'))))).toBe(true);
      await release('a');
      expect(isFailedTest(asFailure(await rejection(release('a'))))).toBe(true);
      // An operation the server cannot apply is a 422 like a failed test; only a body that is not a list of
      // operations is a 400.
      const unknownOp = await rejection(
        custom.patchNamespacedCustomObject(
          { ...where, name: 'p1', body: [{ op: 'frobnicate', path: '/x' }] },
          jsonPatch,
        ),
      );
      expect(unknownOp.code).toBe(422);
      const notAList = await cluster.request(
        'PATCH',
        `${poolsPath(cluster)}/p1`,
        { op: 'add' },
        'application/json-patch+json',
      );
      expect(notAList.status).toBe(400);
    });

    test('a patch that breaks the schema is 422 Invalid naming the field, told apart from a failed test', async () => {
      const { custom } = cluster.connection();
      await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
      const invalid = await rejection(
        custom.patchNamespacedCustomObject(
          { ...where, name: 'p1', body: [{ op: 'add', path: '/spec/allocations/7', value: { id: 'x' } }] },
          jsonPatch,
        ),
      );
      expect(invalid).toMatchObject({ code: 422, reason: 'Invalid' });
      expect(invalid.message).toContain('spec.allocations.7.podref: Required value');
      expect(isFailedTest(asFailure(invalid))).toBe(false);
      expect(classify(asFailure(invalid), 'claim', cluster.url).retry).toBe(false);
    });

    test('schema violations on create are 422 Invalid naming the field; unknown fields are pruned', async () => {
      const { custom } = cluster.connection();
      const bad = await rejection(
        custom.createNamespacedCustomObject({ ...where, body: pool('p1', { '1': { id: 'c' } }) }),
      );
      expect(bad).toMatchObject({ code: 422, reason: 'Invalid' });
      expect(bad.message).toContain('spec.allocations.1.podref: Required value');
      const created = (await custom.createNamespacedCustomObject({
        ...where,
        body: { ...pool('p2'), spec: { range: '10.0.0.0/24', allocations: {}, extra: 1 } },
      })) as { spec: Record<string, unknown> };
      expect(created.spec).toEqual({ range: '10.0.0.0/24', allocations: {} });
    });

    test('merge patch of a custom resource; strategic merge is refused with 415', async () => {
      const { custom } = cluster.connection();
      await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
      await custom.patchNamespacedCustomObject(
        { ...where, name: 'p1', body: { metadata: { labels: { a: 'b' } } } },
        mergePatch,
      );
      const stored = (await cluster.objects('ippools', group)).get('p1') as { metadata: { labels: unknown } };
      expect(stored.metadata.labels).toEqual({ a: 'b' });
      const strategic = await rejection(
        custom.patchNamespacedCustomObject(
          { ...where, name: 'p1', body: {} },
          setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
        ),
      );
      expect(strategic.code).toBe(415);
    });

    test('every write records its field manager in managedFields', async () => {
      const { custom } = cluster.connection();
      await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
      await custom.patchNamespacedCustomObject(
        {
          ...where,
          name: 'p1',
          body: [
            { op: 'add', path: '/spec/allocations/3', value: { id: 'c3', podref: 'ns/p3', ifname: 'net1' } },
          ],
        },
        jsonPatch,
      );
      const stored = (await cluster.objects('ippools', group)).get('p1') as {
        metadata: { managedFields?: { manager: string; operation: string; fieldsV1: unknown }[] };
      };
      const fields = stored.metadata.managedFields ?? [];
      expect(fields.map((f) => f.operation).sort()).toEqual(['Update']);
      expect(fields[0]?.fieldsV1).toMatchObject({
        'f:spec': { 'f:allocations': { 'f:3': { 'f:id': {}, 'f:podref': {}, 'f:ifname': {} } } },
      });
    });

    test('pods by field and label selector, with pagination', async () => {
      const { core } = cluster.connection();
      const namespace = cluster.namespace;
      for (let i = 0; i < 7; i++) {
        await core.createNamespacedPod({
          namespace,
          body: podBody(`pod-${i}`, {
            labels: { app: i % 2 === 0 ? 'even' : 'odd' },
            nodeName: `node-${i % 3}`,
          }),
        });
      }
      const onNode = await core.listNamespacedPod({ namespace, fieldSelector: 'spec.nodeName=node-1' });
      expect(onNode.items.map((p) => p.metadata?.name)).toEqual(['pod-1', 'pod-4']);
      const even = await core.listNamespacedPod({ namespace, labelSelector: 'app in (even),app!=odd' });
      expect(even.items).toHaveLength(4);
      const names: string[] = [];
      let token: string | undefined;
      do {
        const page = await core.listNamespacedPod({
          namespace,
          limit: 3,
          ...(token === undefined ? {} : { _continue: token }),
        });
        names.push(...page.items.map((p) => p.metadata?.name ?? ''));
        token = page.metadata?._continue;
      } while (token !== undefined && token !== '');
      expect(names).toEqual(['pod-0', 'pod-1', 'pod-2', 'pod-3', 'pod-4', 'pod-5', 'pod-6']);
      expect(
        (await rejection(core.listNamespacedPod({ namespace, fieldSelector: 'spec.bogus=1' }))).code,
      ).toBe(400);
    });

    test('a continue token from before a compaction is 410 Expired; a new list starts over', async () => {
      const { custom } = cluster.connection();
      for (let i = 0; i < 5; i++)
        await custom.createNamespacedCustomObject({ ...where, body: pool(`p${i}`) });
      const first = (await custom.listNamespacedCustomObject({ ...where, limit: 2 })) as {
        metadata: { continue?: string };
      };
      expect(first.metadata.continue).toBeTruthy();
      await custom.createNamespacedCustomObject({ ...where, body: pool('p9') });
      await cluster.compact();
      const expired = await rejection(
        custom.listNamespacedCustomObject({ ...where, limit: 2, _continue: first.metadata.continue ?? '' }),
      );
      expect(expired).toMatchObject({ code: 410, reason: 'Expired' });
      expect(classify(asFailure(expired), 'list', cluster.url).retry).toBe(true);
      const again = (await custom.listNamespacedCustomObject({ ...where })) as { items: unknown[] };
      expect(again.items).toHaveLength(6);
    });

    test('watch streams events from a resourceVersion; one from before a compaction is 410 Expired', async () => {
      const { custom } = cluster.connection();
      const path = poolsPath(cluster);
      const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as {
        metadata: { resourceVersion: string };
      };
      const watched = watchEvents(
        cluster,
        path,
        { resourceVersion: created.metadata.resourceVersion },
        (events) => events.length === 3,
        async () => {
          await custom.createNamespacedCustomObject({ ...where, body: pool('p2') });
          await custom.patchNamespacedCustomObject(
            { ...where, name: 'p1', body: { metadata: { labels: { x: 'y' } } } },
            mergePatch,
          );
          await custom.deleteNamespacedCustomObject({ ...where, name: 'p2' });
        },
      );
      const { events } = await watched;
      expect(events.map((e) => `${e.type} ${(e.object.metadata as { name: string }).name}`)).toEqual([
        'ADDED p2',
        'MODIFIED p1',
        'DELETED p2',
      ]);
      await cluster.compact();
      const stale = await watchEvents(cluster, path, { resourceVersion: created.metadata.resourceVersion });
      expect(stale.events.filter((e) => e.type === 'ERROR').map((e) => e.object)).toEqual([
        expect.objectContaining({ code: 410, reason: 'Expired' }),
      ]);
    });

    test('a watch from now lists, then bookmarks the end of the initial events when asked to', async () => {
      const { custom } = cluster.connection();
      await custom.createNamespacedCustomObject({ ...where, body: pool('p1') });
      const { events } = await watchEvents(
        cluster,
        poolsPath(cluster),
        { allowWatchBookmarks: true },
        (seen) => seen.some((e) => e.type === 'BOOKMARK'),
      );
      expect(events.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK']);
      expect(events[1]?.object.metadata).toMatchObject({
        annotations: { 'k8s.io/initial-events-end': 'true' },
      });
    });

    test('the server ends every watch: at its timeoutSeconds, and at its own limit when none is asked', async () => {
      const { custom } = cluster.connection();
      const created = (await custom.createNamespacedCustomObject({ ...where, body: pool('p1') })) as {
        metadata: { resourceVersion: string };
      };
      const asked = await watchEvents(cluster, poolsPath(cluster), {
        resourceVersion: created.metadata.resourceVersion,
        timeoutSeconds: 1,
      });
      expect(asked).toMatchObject({ ended: 'server', events: [] });
      expect(asked.error).toBeUndefined();
      // Both servers are started with a 5-second limit (kube-apiserver's --min-request-timeout).
      const unasked = await watchEvents(cluster, poolsPath(cluster), {
        resourceVersion: created.metadata.resourceVersion,
      });
      expect(unasked).toMatchObject({ ended: 'server', events: [] });
    });

    test('the status subresource: status changes only through /status', async () => {
      const { core } = cluster.connection();
      const namespace = cluster.namespace;
      await core.createNamespacedPod({ namespace, body: podBody('web', { nodeName: 'node-1' }) });
      await core.patchNamespacedPod(
        { namespace, name: 'web', body: { metadata: { labels: { a: 'b' } }, status: { phase: 'Failed' } } },
        mergePatch,
      );
      expect((await core.readNamespacedPod({ namespace, name: 'web' })).status?.phase).not.toBe('Failed');
      await core.patchNamespacedPodStatus(
        { namespace, name: 'web', body: { status: { phase: 'Running', podIP: '10.1.2.3' } } },
        mergePatch,
      );
      const pod = await core.readNamespacedPod({ namespace, name: 'web' });
      expect(pod.status?.phase).toBe('Running');
      expect(pod.metadata?.labels).toEqual({ a: 'b' });
    });

    test('a pod bound to a node stays Terminating after a graceful delete until it is deleted with grace 0', async () => {
      const { core } = cluster.connection();
      const namespace = cluster.namespace;
      await core.createNamespacedPod({ namespace, body: podBody('bound', { nodeName: 'node-1' }) });
      await core.createNamespacedPod({ namespace, body: podBody('unbound') });
      await core.deleteNamespacedPod({ namespace, name: 'bound' });
      await core.deleteNamespacedPod({ namespace, name: 'unbound' });
      const terminating = await core.readNamespacedPod({ namespace, name: 'bound' });
      expect(terminating.metadata?.deletionTimestamp).toBeDefined();
      expect(terminating.metadata?.deletionGracePeriodSeconds).toBe(30);
      expect((await rejection(core.readNamespacedPod({ namespace, name: 'unbound' }))).code).toBe(404);
      await core.deleteNamespacedPod({ namespace, name: 'bound', gracePeriodSeconds: 0 });
      expect((await rejection(core.readNamespacedPod({ namespace, name: 'bound' }))).code).toBe(404);
    });

    test('an event about a Node: the new form may live in kube-system, the old form only in default', async () => {
      const event = (name: string, namespace: string, newStyle: boolean) => ({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Node', name: 'node-1' },
        reason: 'NoFreeNodeSlice',
        message: 'm',
        type: 'Warning',
        ...(newStyle
          ? {
              eventTime: new Date().toISOString().replace('Z', '000Z'),
              reportingComponent: 'whereabouts-ts-controller',
              reportingInstance: 'controller-0',
              action: 'AssignNodeSlice',
            }
          : {}),
      });
      const made = await cluster.request('POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: 'events-' },
      });
      const elsewhere = (made.body as { metadata: { name: string } }).metadata.name;
      const answers: string[] = [];
      for (const [namespace, newStyle] of [
        ['kube-system', true],
        [elsewhere, true],
        ['kube-system', false],
        ['default', false],
      ] as const) {
        const created = await cluster.request(
          'POST',
          `/api/v1/namespaces/${namespace}/events`,
          event(`e-${elsewhere}-${String(newStyle)}`, namespace, newStyle),
        );
        answers.push(
          `${namespace === elsewhere ? 'elsewhere' : namespace} ${newStyle ? 'new' : 'old'} ${created.status}`,
        );
        if (created.status === 422)
          expect((created.body as { message: string }).message).toContain(
            'involvedObject.namespace: Invalid value: "": does not match event.namespace',
          );
      }
      expect(answers).toEqual([
        'kube-system new 201',
        'elsewhere new 422',
        'kube-system old 422',
        'default old 201',
      ]);
      // `kubectl describe node` finds them by field selector.
      const listed = await cluster.request(
        'GET',
        `/api/v1/namespaces/kube-system/events?fieldSelector=${encodeURIComponent('involvedObject.kind=Node,involvedObject.name=node-1,reason=NoFreeNodeSlice')}`,
      );
      expect(
        (listed.body as { items: { metadata: { name: string } }[] }).items.map((e) => e.metadata.name),
      ).toContain(`e-${elsewhere}-true`);
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
      expect(stale).toMatchObject({ code: 409, reason: 'Conflict' });
      await custom.deleteNamespacedCustomObject({ ...where, name: 'p1' });
      expect((await cluster.objects('ippools', group)).size).toBe(0);
    });

    test('an object that fits the storage limit only without managedFields is stored without them', async () => {
      const { custom } = cluster.connection();
      const allocations: Record<string, unknown> = {};
      for (let i = 0; i < 9_500; i++)
        allocations[String(i)] = { id: 'c'.repeat(64), podref: `namespace/pod-${i}`, ifname: 'net1' };
      await custom.createNamespacedCustomObject({ ...where, body: pool('near-full', allocations) });
      const stored = (await cluster.objects('ippools', group)).get('near-full') as {
        metadata: { managedFields?: unknown[] };
        spec: { allocations: object };
      };
      expect(Object.keys(stored.spec.allocations)).toHaveLength(9_500);
      expect(stored.metadata.managedFields ?? []).toEqual([]);
    });

    test('an object over the storage limit is refused with an error the store reports as too large', async () => {
      const { custom } = cluster.connection();
      const allocations: Record<string, unknown> = {};
      for (let i = 0; i < 14_000; i++)
        allocations[String(i)] = { id: 'c'.repeat(64), podref: `namespace/pod-${i}`, ifname: 'net1' };
      const refused = await rejection(
        custom.createNamespacedCustomObject({ ...where, body: pool('big', allocations) }),
      );
      const classified = classify(asFailure(refused), 'create', cluster.url);
      expect(classified.retry).toBe(false);
      expect(classified.message).toContain('larger than the API server');
    });
  },
  { embedded: { watchTimeoutSeconds: 5 } },
);
