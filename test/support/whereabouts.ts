// Whereabouts v0.9.4 (`npm run peers:build`) run as a runtime runs it, next to ours on one cluster: the same
// network configuration reaches both plugins. Whereabouts needs a flat file (it answers "config file not
// found" without one) and CNI_PATH; ours reads the same flat file through the same `configuration_path` key.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtPeers } from './built.ts';
import { execute, pluginPath, podEnv, type Output } from './exec.ts';

export type Plugin = 'whereabouts' | 'ours';

export type Plugins = {
  /** The `ipam` section for both plugins: `fields` plus the flat file naming the cluster's kubeconfig. */
  readonly ipam: (fields: Record<string, unknown>) => Record<string, unknown>;
  /** Runs one CNI command of pod `pod` (interface net1, sandbox `sandbox-<pod>`) through `plugin`. */
  readonly call: (
    plugin: Plugin,
    command: string,
    pod: string,
    config: unknown,
    containerId?: string,
  ) => Promise<Output>;
  readonly remove: () => void;
};

/** Both plugins against the cluster whose kubeconfig (its context naming the namespace) is `kubeconfig`. */
export function bothPlugins(kubeconfig: string, namespace: string): Plugins {
  const dir = mkdtempSync(join(tmpdir(), 'wb-interop-'));
  const flatFile = join(dir, 'whereabouts.conf');
  writeFileSync(flatFile, JSON.stringify({ datastore: 'kubernetes', kubernetes: { kubeconfig } }));
  const executable = { whereabouts: builtPeers().whereabouts, ours: pluginPath };
  return {
    ipam: (fields) => ({ type: 'whereabouts', configuration_path: flatFile, log_level: 'error', ...fields }),
    call: (plugin, command, pod, config, containerId = `sandbox-${pod}`) =>
      execute(
        executable[plugin],
        { ...podEnv(command, pod, containerId, namespace), CNI_PATH: builtPeers().pluginsDir },
        JSON.stringify(config),
        180_000,
      ),
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The address of the first IP an ADD answered (without prefix length), or why it failed. */
export function answered(output: Output): { ok: true; address: string } | { ok: false; why: string } {
  if (output.code === 0) {
    const result = JSON.parse(output.stdout) as { ips?: { address: string }[] };
    const address = result.ips?.[0]?.address.split('/')[0];
    if (address !== undefined) return { ok: true, address };
  }
  return {
    ok: false,
    why: `exit ${output.code}: ${output.stdout.trim()} ${output.stderr.trim().slice(-300)}`,
  };
}
