// The IPAM configuration every verb works from, after the NAD, the flat file, CNI_ARGS and runtimeConfig
// were merged and checked (src/config/load.ts, src/config/validate.ts): types only, nothing here decodes.

import type { IP } from '../ip/address.ts';
import type { Cidr } from '../ip/cidr.ts';
import type { Range } from '../ip/range.ts';

/** Where the plugin looks for the node agent unless `agent_socket` says otherwise. */
export const defaultAgentSocket = '/run/whereabouts/agent.sock';

/** Log levels of Whereabouts, least to most verbose. */
export const logLevels = ['panic', 'error', 'verbose', 'debug'] as const;
export type LogLevel = (typeof logLevels)[number];

/** A CNI route (spec 1.1 fields), passed through to the result. */
export type Route = {
  readonly dst: Cidr;
  readonly gw?: IP;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
};

export type Dns = {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
};

/** A static address: returned as configured, never recorded in a pool. `address` keeps its host bits. */
export type StaticAddress = { readonly address: Cidr; readonly gateway?: IP };

/** One validated range of the config, with the text it came from for messages. */
export type RangeConfig = {
  readonly range: Range;
  readonly text: string;
  /** Prefix length of this range's node slices, when `node_slice_size` is set. */
  readonly slicePrefix?: number;
  /** The address the runtime asked for in this range (`runtimeConfig.ips`), allocated instead of a free one. */
  readonly requested?: bigint;
};

/** The IPAM configuration after NAD, flat file, CNI_ARGS and runtimeConfig have been merged and checked. */
export type IpamConfig = {
  /** The CNI network name (top-level `name`). */
  readonly cniName: string;
  readonly cniVersion: string;
  /** `network_name`: prefixes object names, giving independent address domains; "" when unnamed. */
  readonly networkName: string;
  /** One address is allocated from each range, in this order (top-level `range` first). */
  readonly ranges: readonly RangeConfig[];
  /** `gateway`, returned with the addresses of its own family. */
  readonly gateway?: IP;
  readonly routes: readonly Route[];
  readonly dns: Dns;
  /** `addresses` and CNI_ARGS `IP=`, returned after the allocated addresses. */
  readonly addresses: readonly StaticAddress[];
  /** `enable_overlapping_ranges`: reserve each address cluster-wide per network name. */
  readonly overlappingRanges: boolean;
  /** `sticky_ips`: DEL of a StatefulSet member keeps its address for the member's next incarnation. */
  readonly stickyIps: boolean;
  /** `node_slice_size` as a prefix length, when node slices are on. */
  readonly nodeSliceSize?: number;
  readonly kubeconfig?: string;
  readonly configurationPath?: string;
  /** The node agent's unix socket: requests go there when it exists, else the plugin does the work itself. */
  readonly agentSocket: string;
  readonly logFile?: string;
  readonly logLevel: LogLevel;
};
