// The ADD result of a delegated IPAM plugin, in the format of the config's CNI version: no `interfaces`,
// no `interface` index; `version` on each address before 1.0.0; the route fields of 1.1.0 only there.

import type { IpamConfig, Route } from '../config/ipam-config.ts';
import { formatIP, ipOf, type IP } from '../ip/address.ts';
import { formatCidr } from '../ip/cidr.ts';
import type { Allocated } from '../ipam/transaction.ts';
import { atLeast } from './versions.ts';

type IpEntry = { version?: '4' | '6'; address: string; gateway?: string };

export type AddResult = {
  cniVersion: string;
  ips: IpEntry[];
  routes?: Record<string, string | number>[];
  dns?: Record<string, unknown>;
};

function route(r: Route, version: string): Record<string, string | number> {
  const out: Record<string, string | number> = { dst: formatCidr(r.dst) };
  if (r.gw !== undefined) out.gw = formatIP(r.gw);
  if (atLeast(version, '1.1.0')) {
    for (const key of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
      const value = r[key];
      if (value !== undefined) out[key] = value;
    }
  }
  return out;
}

export function addResult(config: IpamConfig, allocated: readonly Allocated[]): AddResult {
  const version = config.cniVersion;
  const entry = (address: IP, prefix: number, gateway: IP | undefined): IpEntry => ({
    ...(atLeast(version, '1.0.0') ? {} : { version: address.family === 4 ? '4' : '6' }),
    address: `${formatIP(address)}/${prefix}`,
    ...(gateway === undefined ? {} : { gateway: formatIP(gateway) }),
  });
  const ips = [
    ...allocated.map(({ range, address }) => {
      const { family, prefix } = range.range.subnet;
      const gateway = config.gateway?.family === family ? config.gateway : undefined;
      return entry(ipOf(family, address), prefix, gateway);
    }),
    ...config.addresses.map((s) =>
      entry(ipOf(s.address.family, s.address.address), s.address.prefix, s.gateway),
    ),
  ];
  const dns = Object.fromEntries(
    Object.entries(config.dns).filter(([, v]) => !Array.isArray(v) || v.length > 0),
  );
  return {
    cniVersion: version,
    ips,
    ...(config.routes.length === 0 ? {} : { routes: config.routes.map((r) => route(r, version)) }),
    ...(Object.keys(dns).length === 0 ? {} : { dns }),
  };
}
