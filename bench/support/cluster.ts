// The embedded API server with the project's CRDs and a kubeconfig file for it, for benchmark scenarios.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFor } from '../../src/dev-apiserver/kubeconfig.ts';
import { startApiServer, type ApiServer } from '../../src/dev-apiserver/server.ts';

export const crdDirectory = join(import.meta.dirname, '..', '..', 'crds');

export async function benchCluster(): Promise<{
  server: ApiServer;
  kubeconfig: string;
  close: () => Promise<void>;
}> {
  const server = await startApiServer({ crdDirectories: [crdDirectory] });
  const dir = mkdtempSync(join(tmpdir(), 'wb-bench-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigFor(server.url, { namespace: 'kube-system' }), { mode: 0o600 });
  return {
    server,
    kubeconfig,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
