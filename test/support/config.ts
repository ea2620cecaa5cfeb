import type { Owner } from '../../src/allocator/allocation.ts';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { loadConfig } from '../../src/config/load.ts';

/** An IPAM config from the `ipam` keys of a NAD, with no flat file from this machine mixed in. */
export function ipamConfig(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): IpamConfig {
  const loaded = loadConfig({
    stdin: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'net',
      type: 'macvlan',
      ...extra,
      ipam: { type: 'whereabouts', ...ipam },
    }),
    cniArgs: 'IgnoreUnknown=1',
    flatFilePaths: [],
  });
  if (!loaded.ok) throw new Error(loaded.error.details);
  return loaded.value.config;
}

export const owner = (pod: string, ifName = 'net1', containerId = `sandbox-${pod}`): Owner => ({
  containerId,
  podRef: `default/${pod}`,
  ifName,
});

/**
 * A network's CNI config as a runtime hands it to the plugin (stdin): macvlan with Whereabouts IPAM, quiet
 * logging, and `ipam`'s keys — typically a range, the agent socket and the cluster's kubeconfig.
 */
export const networkConf = (ipam: Record<string, unknown>, name = 'net'): string =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name,
    type: 'macvlan',
    ipam: { type: 'whereabouts', log_level: 'error', ...ipam },
  });
