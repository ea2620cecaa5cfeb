// An embedded API server with this project's CRDs, reached the way every component reaches a cluster:
// through a kubeconfig file and the real client.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFor } from '../../src/apiserver/kubeconfig.ts';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/apiserver/server.ts';
import { connect, type KubeConnection } from '../../src/store/kube.ts';
import { kubeStore, type IpamStore } from '../../src/store/store.ts';

export const crdDirectory = join(import.meta.dirname, '..', '..', 'crds');

export type TestCluster = {
  readonly server: ApiServer;
  readonly kubeconfig: string;
  readonly namespace: string;
  connection(options?: { requestTimeoutMs?: number }): KubeConnection;
  store(options?: { requestTimeoutMs?: number }): IpamStore;
  close(): Promise<void>;
};

export async function startCluster(
  options: ApiServerOptions & { namespace?: string } = {},
): Promise<TestCluster> {
  const server = await startApiServer({ crdDirectories: [crdDirectory], ...options });
  const dir = mkdtempSync(join(tmpdir(), 'wb-cluster-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const namespace = options.namespace ?? 'kube-system';
  writeFileSync(
    kubeconfig,
    kubeconfigFor(server.url, {
      namespace,
      ...(options.token === undefined ? {} : { token: options.token }),
    }),
    { mode: 0o600 },
  );
  const connection = (o: { requestTimeoutMs?: number } = {}): KubeConnection => {
    const c = connect({ kubeconfig, ...o });
    if (!c.ok) throw new Error(c.error.details);
    return c.value;
  };
  return {
    server,
    kubeconfig,
    namespace,
    connection,
    store: (o) => kubeStore(connection(o)),
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
