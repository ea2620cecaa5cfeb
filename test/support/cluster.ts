// The API servers the tests run against, behind one `Cluster` shape: the embedded one (fault switches, a
// new server per test) and a real kube-apiserver with etcd (kube/control-plane.ts: one per test file, a new
// namespace per test). `onEveryServer` runs one suite against both, the way hono runs one router suite
// against every router: a behaviour the real server has and the embedded one lacks is a bug in the embedded one.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFor } from '../../src/dev-apiserver/kubeconfig.ts';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/dev-apiserver/server.ts';
import type { Obj } from '../../src/kube-api/api.ts';
import { connect, type ClientNodeConnection } from '../../src/kube-api/kube.ts';
import { kubeStore, type IpamStore } from '../../src/store/store.ts';
import { findBinaries } from '../../kube/binaries.ts';
import { describeWhenBuilt, type Built } from './built.ts';
import { seedsKey } from './environment.ts';
import { crdDirectory, startControlPlane, type Answer, type ControlPlane } from '../../kube/control-plane.ts';

export { crdDirectory };

/** The IPAMClaim CRD, which the real control plane gets from kube/fixtures/ too (KubeVirt persistent IPs). */
export const ipamClaimCrd = join(import.meta.dirname, '..', '..', 'kube', 'fixtures', 'ipamclaims.yaml');

export type Cluster = {
  readonly kind: 'embedded' | 'real';
  readonly url: string;
  /** A kubeconfig file with full rights whose context namespace is `namespace`. */
  readonly kubeconfig: string;
  /** The namespace of this test's pools and reservations. */
  readonly namespace: string;
  connection(options?: { requestTimeoutMs?: number }): ClientNodeConnection;
  store(options?: { requestTimeoutMs?: number }): IpamStore;
  /** The objects of one kind in `namespace` (cluster-scoped kinds: all), by name, as stored. */
  objects(plural: string, group?: string): Promise<Map<string, Obj>>;
  /** One raw request with full rights, for what client-node cannot send. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<Answer>;
  /** Forgets the history before now: older continue tokens and resourceVersions answer 410 Expired. */
  compact(): Promise<void>;
  close(): Promise<void>;
};

/** A cluster on the embedded server, whose switches and stored objects the test reaches directly. */
export type TestCluster = Cluster & { readonly server: ApiServer };

function writeKubeconfig(text: string): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'wb-cluster-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, text, { mode: 0o600 });
  return {
    path,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function connectionTo(kubeconfig: string) {
  return (o: { requestTimeoutMs?: number } = {}): ClientNodeConnection => {
    const c = connect({ kubeconfig, ...o });
    if (!c.ok) throw new Error(c.error.details);
    return c.value;
  };
}

export async function startCluster(
  options: ApiServerOptions & { namespace?: string } = {},
): Promise<TestCluster> {
  const replay = Number(process.env.WHEREABOUTS_TS_FAULT_SEED);
  const server = await startApiServer({
    crdDirectories: [crdDirectory, ipamClaimCrd],
    ...(Number.isInteger(replay) && process.env.WHEREABOUTS_TS_FAULT_SEED !== ''
      ? { faultSeed: replay }
      : {}),
    ...options,
  });
  // The test environment prints these when the test fails (test/support/environment.ts).
  const seeds = (globalThis as Record<string, unknown>)[seedsKey];
  if (Array.isArray(seeds)) seeds.push(server.faultSeed);
  const namespace = options.namespace ?? 'kube-system';
  const file = writeKubeconfig(
    kubeconfigFor(server.url, {
      namespace,
      ...(options.token === undefined ? {} : { token: options.token }),
    }),
  );
  const connection = connectionTo(file.path);
  return {
    kind: 'embedded',
    server,
    url: server.url,
    kubeconfig: file.path,
    namespace,
    connection,
    store: (o) => kubeStore(connection(o)),
    objects: (plural, group = '') =>
      Promise.resolve(
        new Map(
          [...server.objects(plural, group)]
            .filter(([key]) => key.startsWith('/') || key.startsWith(`${namespace}/`))
            .map(([key, o]) => [key.slice(key.indexOf('/') + 1), o]),
        ),
      ),
    request: async (method, path, body, contentType = 'application/json') => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'Content-Type': contentType }),
          ...(options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // plain text
      }
      return { status: response.status, body: parsed };
    },
    compact: () => {
      server.compact();
      return Promise.resolve();
    },
    close: async () => {
      await server.close();
      file.remove();
    },
  };
}

/** A cluster in a new namespace of a running control plane. */
export async function realCluster(plane: ControlPlane, prefix = 'test'): Promise<Cluster> {
  const namespace = await plane.namespace(prefix);
  const file = writeKubeconfig(plane.kubeconfig({ namespace }));
  const connection = connectionTo(file.path);
  return {
    kind: 'real',
    url: plane.url,
    kubeconfig: file.path,
    namespace,
    connection,
    store: (o) => kubeStore(connection(o)),
    objects: async (plural, group = '') => {
      const api = connection();
      // Every kind the tests read is served at v1, but for Whereabouts' own CRDs.
      const version = group === 'whereabouts.cni.cncf.io' ? 'v1alpha1' : 'v1';
      const namespaced = !['nodes', 'namespaces'].includes(plural);
      const listed = await api.list({ group, version, plural, ...(namespaced ? { namespace } : {}) });
      if (!listed.ok) throw new Error(`list ${plural}: ${JSON.stringify(listed.error)}`);
      return new Map(listed.value.items.map((o) => [(o.metadata as { name: string }).name, o] as const));
    },
    request: (method, path, body, contentType) => plane.request(method, path, body, contentType),
    compact: () => plane.compact(),
    close: () => {
      file.remove();
      return Promise.resolve();
    },
  };
}

/** Whether the real control plane can run here; with CI=true its absence fails the run instead. */
export const realServer = ((): Built => {
  const found = findBinaries();
  return found.ok ? { ok: true } : { ok: false, why: found.why };
})();

export const realServerName = 'real kube-apiserver';

/**
 * Declares `suite` once for each API server: `start` gives each test a fresh cluster (a new embedded
 * server, or a new namespace on the file's real control plane), which the suite closes.
 */
export function onEveryServer(
  suite: (start: () => Promise<Cluster>, kind: Cluster['kind']) => void,
  options: { embedded?: ApiServerOptions } = {},
): void {
  describe('embedded API server', () => {
    suite(() => startCluster(options.embedded), 'embedded');
  });
  onRealServer((plane) => {
    suite(() => realCluster(plane()), 'real');
  });
}

/** Declares `suite` against a real control plane started once for the enclosing file. */
export function onRealServer(suite: (plane: () => ControlPlane) => void): void {
  describeWhenBuilt(realServerName, realServer, () => {
    let plane: ControlPlane | undefined;
    beforeAll(async () => {
      plane = await startControlPlane({ minRequestTimeoutSeconds: 5 });
    }, 180_000);
    afterAll(async () => {
      await plane?.stop();
    });
    suite(() => {
      if (plane === undefined) throw new Error('the control plane did not start');
      return plane;
    });
  });
}

/**
 * Removes what a test left in its namespace of the real control plane — pods (at once, as a kubelet's final
 * delete), IPPools, reservations, NodeSlicePools, NADs, Leases, Events — so that the cluster-wide readers
 * of the file's next test (GC, the exporter, the slice controller) start from nothing. Nothing to do on the
 * embedded server: each test has its own.
 */
export async function emptyNamespace(cluster: Cluster): Promise<void> {
  if (cluster.kind !== 'real') return;
  const { core, custom } = cluster.connection();
  const namespace = cluster.namespace;
  await core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
  await core.deleteCollectionNamespacedEvent({ namespace });
  for (const [group, version, plural] of [
    ['whereabouts.cni.cncf.io', 'v1alpha1', 'ippools'],
    ['whereabouts.cni.cncf.io', 'v1alpha1', 'overlappingrangeipreservations'],
    ['whereabouts.cni.cncf.io', 'v1alpha1', 'nodeslicepools'],
    ['k8s.cni.cncf.io', 'v1', 'network-attachment-definitions'],
    ['coordination.k8s.io', 'v1', 'leases'],
  ] as const)
    await custom.deleteCollectionNamespacedCustomObject({ group, version, namespace, plural });
}

/**
 * Creates a pod in the cluster's namespace, bound to `node` when given, as the scheduler leaves it: no
 * kubelet runs in the tests, so it stays Pending until a test reports another phase (status subresource).
 */
export const createPod = (
  cluster: Cluster,
  name: string,
  node?: string,
  annotations?: Record<string, string>,
) =>
  cluster.connection().core.createNamespacedPod({
    namespace: cluster.namespace,
    body: {
      metadata: { name, ...(annotations === undefined ? {} : { annotations }) },
      spec: {
        ...(node === undefined ? {} : { nodeName: node }),
        containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
      },
    },
  });
