// The node agent's connection without client-node (src/kube-api/http-api.ts `httpConnection`), on the embedded
// and the real API server: the client-node calls the agent makes answer as client-node's do (plain JSON, a
// 404 as an error with `code`), the shared informer lists and watches through it — resuming after the server
// ends the watch, with field and label selectors — and a call it does not implement runs on client-node.

import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInformer, type Change } from '../../src/kube-api/informer.ts';
import { httpApi, httpConnection } from '../../src/kube-api/http-api.ts';
import { loadCredentials } from '../../src/kube-api/kubeconfig.ts';
import type { KubeConnection } from '../../src/kube-api/kube.ts';
import { createPod, emptyNamespace, onEveryServer, startCluster, type Cluster } from '../support/cluster.ts';
import { until } from '../support/wait.ts';

type Obj = Record<string, unknown>;
const nameOf = (o: Obj) => (o.metadata as { name?: string } | undefined)?.name ?? '';

function lean(cluster: Cluster): KubeConnection {
  const credentials = loadCredentials(cluster.kubeconfig, {});
  if (!credentials.ok) throw new Error(credentials.error.details);
  return httpConnection(credentials.value, { full: () => Promise.resolve(cluster.connection()) });
}

onEveryServer(
  (start) => {
    let cluster: Cluster;
    beforeEach(async () => {
      cluster = await start();
    });
    afterEach(async () => {
      await emptyNamespace(cluster);
      await cluster.close();
    });

    test('reads and lists as client-node answers; a missing pod throws with code 404', async () => {
      const connection = lean(cluster);
      expect(connection.namespace).toBe(cluster.namespace);
      await createPod(cluster, 'p1', 'n1');
      const pod = await connection.core.readNamespacedPod({ namespace: cluster.namespace, name: 'p1' });
      expect(pod.spec?.nodeName).toBe('n1');
      await expect(
        connection.core.readNamespacedPod({ namespace: cluster.namespace, name: 'nope' }),
      ).rejects.toMatchObject({ code: 404 });
      const listed = await connection.core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=n1' });
      expect(listed.items.map((p) => p.metadata?.name)).toEqual(['p1']);
      expect(listed.metadata?.resourceVersion).toMatch(/^\d+$/);
      // The KubeApi half is the lean client's too.
      expect((await connection.list({ group: '', version: 'v1', plural: 'pods' })).ok).toBe(true);
    });

    test('a call the lean connection does not implement runs on client-node', async () => {
      const connection = lean(cluster);
      await connection.core.createNamespacedPod({
        namespace: cluster.namespace,
        body: { metadata: { name: 'by-fallback' }, spec: { containers: [{ name: 'c', image: 'i' }] } },
      });
      const pod = await connection.core.readNamespacedPod({
        namespace: cluster.namespace,
        name: 'by-fallback',
      });
      expect(pod.metadata?.name).toBe('by-fallback');
    });

    test('the informer lists and watches through it, with a field selector, across watch ends', async () => {
      const connection = lean(cluster);
      const changes: string[] = [];
      const opened: string[] = [];
      const fieldSelector = 'spec.nodeName=n1';
      await createPod(cluster, 'before', 'n1');
      const informer = startInformer({
        watch: connection.watch,
        path: '/api/v1/pods',
        fieldSelector,
        list: (page) => connection.core.listPodForAllNamespaces({ fieldSelector, ...page }),
        backoff: { initialMs: 50, maxMs: 500 },
        onChange: (change: Change, o: Obj) => changes.push(`${change} ${nameOf(o)}`),
        onOpen: (what) => opened.push(what),
      });
      try {
        await informer.synced;
        expect(informer.get(`${cluster.namespace}/before`)).toBeDefined();
        await until('the watch is open', () => opened.includes('watch'));
        await createPod(cluster, 'other-node', 'n2');
        await createPod(cluster, 'during', 'n1');
        await until('the new pod is seen', () => changes.includes('added during'));
        // The server ends every watch after its timeout (2 s here, 5 to 10 s on the real one): the
        // informer resumes, and sees what comes after.
        const watches = opened.filter((w) => w === 'watch').length;
        await until('the watch is opened again', () => opened.filter((w) => w === 'watch').length > watches);
        await cluster.connection().core.deleteNamespacedPod({
          namespace: cluster.namespace,
          name: 'before',
          gracePeriodSeconds: 0,
        });
        await until('the deletion is seen', () => changes.includes('deleted before'));
        expect(changes.some((c) => c.endsWith('other-node'))).toBe(false);
        expect(informer.fresh()).toBe(true);
      } finally {
        informer.stop();
      }
      expect(await informer.whenFresh()).toBe(false);
    }, 60_000);

    test('a refused watch is a failure with its status, never an open watch', async () => {
      const connection = lean(cluster);
      const failures: (number | undefined)[] = [];
      const opened: string[] = [];
      const informer = startInformer({
        watch: connection.watch,
        path: '/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/x/nosuchkind',
        list: () => Promise.resolve({ items: [], metadata: { resourceVersion: '1' } }),
        backoff: { initialMs: 50, maxMs: 200 },
        onFailure: (f) => failures.push(f.code),
        onOpen: (what) => opened.push(what),
      });
      try {
        await until('the watch failed', () => failures.length > 0);
        expect(failures[0]).toBe(404);
        expect(opened).not.toContain('watch');
      } finally {
        informer.stop();
      }
    });
  },
  { embedded: { watchTimeoutSeconds: 2 } },
);

test('`whereabouts-ts agent` runs on the lean connection: it syncs without loading client-node', async () => {
  const cluster = await startCluster({ watchTimeoutSeconds: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'wb-lean-agent-'));
  // Every module the process resolves, client-node's ones written down (Node's synchronous module hooks).
  const loaded = join(dir, 'client-node-loaded');
  const preload = join(dir, 'preload.mjs');
  writeFileSync(
    preload,
    [
      "import { registerHooks } from 'node:module';",
      "import { appendFileSync } from 'node:fs';",
      'registerHooks({ resolve(specifier, context, next) {',
      '  const resolved = next(specifier, context);',
      `  if (resolved.url.includes('/@kubernetes/client-node/')) appendFileSync(${JSON.stringify(loaded)}, resolved.url);`,
      '  return resolved;',
      '} });',
    ].join('\n'),
  );
  const agent = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts'),
      'agent',
      '--kubeconfig',
      cluster.kubeconfig,
      '--node-name',
      'n1',
      '--socket',
      join(dir, 'agent.sock'),
      '--state-dir',
      join(dir, 'state'),
      '--metrics-port',
      '0',
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: `--import=${preload}` } },
  );
  try {
    let printed = '';
    agent.stdout.on('data', (d: Buffer) => (printed += d.toString()));
    await until('the agent is ready', () => /metrics (\S+)/.test(printed), 30_000);
    const url = /metrics (\S+)/.exec(printed)?.[1] ?? '';
    await until(
      'the agent has synced',
      () =>
        fetch(`${url}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        ),
      30_000,
    );
    expect(existsSync(loaded) ? readFileSync(loaded, 'utf8') : '').toBe('');
  } finally {
    agent.kill('SIGTERM');
    await once(agent, 'exit');
    rmSync(dir, { recursive: true, force: true });
    await cluster.close();
  }
}, 60_000);

test('a token file is read again once a minute, as the kubelet rotates it', async () => {
  const cluster = await startCluster({ token: 'first' });
  const dir = mkdtempSync(join(tmpdir(), 'wb-lean-token-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'first\n');
  const now = Date.now();
  let clock = now;
  const spy = jest.spyOn(Date, 'now').mockImplementation(() => clock);
  try {
    const api = httpApi({
      server: cluster.url,
      namespace: cluster.namespace,
      insecure: true,
      token: 'first',
      tokenFile,
    });
    const ref = { group: '', version: 'v1', plural: 'pods', namespace: cluster.namespace };
    expect((await api.list(ref)).ok).toBe(true);
    // Rotated: the server wants the new token, the file has it; the copy read a minute ago is still used.
    cluster.server.acceptToken('second');
    writeFileSync(tokenFile, 'second\n');
    clock = now + 30_000;
    expect(await api.list(ref)).toMatchObject({ ok: false, error: { code: 401 } });
    clock = now + 61_000;
    expect((await api.list(ref)).ok).toBe(true);
  } finally {
    spy.mockRestore();
    rmSync(dir, { recursive: true, force: true });
    await cluster.close();
  }
});
