// The merged IPAM keys, checked and turned into one typed IpamConfig. Every rejected value is named in the
// error with its key; values Whereabouts accepted and existing NADs may carry are accepted with a warning,
// and so is a range without node slices larger than one IPPool can hold.
// The plugin stops at the first error; `whereabouts-ts validate` wants them all (validateAll), which are
// the same checks in the same order, so its first error is always the one the plugin would give.

import { CniCode, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { addressBits, formatIP, ipOf, parseIP, type Family, type IP } from '../ip/address.ts';
import { cidrContains, formatCidr, normalise, parseCidr, type Cidr } from '../ip/cidr.ts';
import { rangeCapacity, usableAddresses, withoutAddress } from '../ip/range.ts';
import type { CniArgs } from './cni-args.ts';
import { readFields, stringField, stringsField, type Fields, type Schema } from './fields.ts';
import {
  defaultAgentSocket,
  logLevels,
  type Dns,
  type IpamConfig,
  type LogLevel,
  type RangeConfig,
  type Route,
  type StaticAddress,
} from './ipam-config.ts';
import { quoteText } from './json.ts';
import { isDns1123Subdomain } from './kube-names.ts';
import { parseIpRanges, parseRangeEntry } from './ranges.ts';
import { maxSlices } from '../slices/layout.ts';

export const ipamSchema = {
  type: 'string',
  range: 'string',
  range_start: 'string',
  range_end: 'string',
  exclude: 'strings',
  // whereabouts-ts extensions, named as in upstream proposals: whereabouts#674 (per range; here also at the
  // top level, for `range`) and whereabouts#681.
  pick_addresses: 'strings',
  exclude_gateway: 'boolean',
  ipRanges: 'array',
  gateway: 'string',
  routes: 'array',
  dns: 'object',
  addresses: 'array',
  enable_overlapping_ranges: 'boolean',
  network_name: 'string',
  node_slice_size: 'string',
  log_file: 'string',
  log_level: 'string',
  kubernetes: 'object',
  configuration_path: 'string',
  // whereabouts-ts only: where the node agent listens (the agent writes it into the flat file).
  agent_socket: 'string',
  // whereabouts-ts only: a StatefulSet member keeps its address across incarnations (docs/persistent.md).
  sticky_ips: 'boolean',
  // Accepted for compatibility; they have no effect here (no leader election, no etcd, no race tests).
  leader_lease_duration: 'integer',
  leader_renew_deadline: 'integer',
  leader_retry_period: 'integer',
  sleep_for_race: 'integer',
  reconciler_cron_expression: 'string',
  datastore: 'string',
  etcd_host: 'string',
  etcd_username: 'string',
  etcd_password: 'string',
  etcd_key_file: 'string',
  etcd_cert_file: 'string',
  etcd_ca_cert_file: 'string',
  // Untagged fields of Whereabouts' Go struct that its decoder also matched; overwritten there, ignored here.
  name: 'string',
  podname: 'string',
  podnamespace: 'string',
} as const satisfies Schema;

const kubernetesSchema = { kubeconfig: 'string', k8s_api_root: 'string' } as const satisfies Schema;
const dnsSchema = {
  nameservers: 'strings',
  domain: 'string',
  search: 'strings',
  options: 'strings',
} as const satisfies Schema;
const addressSchema = { address: 'string', gateway: 'string' } as const satisfies Schema;
const routeSchema = {
  dst: 'string',
  gw: 'string',
  mtu: 'integer',
  advmss: 'integer',
  priority: 'integer',
  table: 'integer',
  scope: 'integer',
} as const satisfies Schema;

/** Guards against hostile configs; real ones are far below. */
export const limits = { ranges: 128, addresses: 256, routes: 1024, requested: 128 } as const;

/**
 * The allocations one IPPool is trusted to hold. Every allocation of an unsliced range is an entry of one
 * object, and etcd refuses an object over its 1.5 MiB request limit: measured on kube-apiserver 1.37, a pool
 * holds about 1,572,000 / (108 + length of the pod ref) entries — 11,150 with 32-character pod refs
 * (docs/slices.md). 10,000 leaves room for pod refs (`namespace/pod-name`) up to 49 characters.
 */
export const poolAllocationLimit = 10_000;

const invalid = (details: string): Result<never> => fail(ipamError(CniCode.InvalidConfig, details));
const familyName = (family: Family): string => (family === 4 ? 'IPv4' : 'IPv6');

/** Everything besides the IPAM keys that shapes the config of one invocation. */
export type Context = {
  readonly cniName: string;
  readonly cniVersion: string;
  readonly args: CniArgs;
  /** `runtimeConfig.ips` as given. */
  readonly requestedIps: readonly string[];
  /** Whether key values may be quoted in errors (not when a file supplied them). */
  readonly quoteValues: boolean;
};

export type Validated = { readonly config: IpamConfig; readonly warnings: readonly string[] };

function ranges(fields: Fields, quoteValues: boolean, warnings: string[]): Result<RangeConfig[]> {
  const list: RangeConfig[] = [];
  const top = stringField(fields, 'range') ?? '';
  if (top !== '') {
    const entry = new Map(
      [...fields].filter(([k]) =>
        ['range', 'range_start', 'range_end', 'exclude', 'pick_addresses'].includes(k),
      ),
    );
    const parsed = parseRangeEntry(entry, 'ipam');
    if (!parsed.ok) return parsed;
    list.push(parsed.value);
  } else {
    for (const key of ['range_start', 'range_end', 'exclude', 'pick_addresses']) {
      const value = fields.get(key);
      if (value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0)) {
        warnings.push(
          `ipam.${key} is ignored because there is no top-level ipam.range (it does not apply to ipRanges)`,
        );
      }
    }
  }
  const items = (fields.get('ipRanges') as unknown[] | undefined) ?? [];
  if (list.length + items.length > limits.ranges) {
    return invalid(`ipam lists ${list.length + items.length} ranges; at most ${limits.ranges} are allowed`);
  }
  const extra = parseIpRanges(items, quoteValues);
  if (!extra.ok) return extra;
  list.push(...extra.value);

  // Two entries with one subnet would share one IPPool and so one allocation per pod; refuse that.
  const seen = new Map<string, string>();
  for (const [i, r] of list.entries()) {
    const name = formatCidr(r.range.subnet);
    const where = top !== '' && i === 0 ? 'ipam.range' : `ipam.ipRanges[${top !== '' ? i - 1 : i}]`;
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      return invalid(
        `${where} (${r.text}) has the same subnet ${name} as ${earlier}; they would share one IPPool`,
      );
    }
    seen.set(name, where);
  }
  return ok(list);
}

function gateway(fields: Fields, list: readonly RangeConfig[], warnings: string[]): Result<IP | undefined> {
  const text = stringField(fields, 'gateway') ?? '';
  if (text === '') return ok(undefined);
  const ip = parseIP(text.trim());
  if (ip === undefined) return invalid(`ipam.gateway: ${quoteText(text)} is not an IP address`);
  if (list.length === 0) {
    warnings.push(`ipam.gateway ${formatIP(ip)} is ignored: there is no range to apply it to`);
    return ok(ip);
  }
  if (!list.some((r) => r.range.subnet.family === ip.family)) {
    return invalid(
      `ipam.gateway: ${formatIP(ip)} is ${familyName(ip.family)} but no range is ${familyName(ip.family)}`,
    );
  }
  return ok(ip);
}

/** The gateway `exclude_gateway` keeps from pods: the `gateway` when the key is true. */
const excludedGateway = (fields: Fields, gw: IP | undefined): IP | undefined =>
  fields.get('exclude_gateway') === true ? gw : undefined;

/**
 * `exclude_gateway` (whereabouts#681): every range that holds the gateway never hands it out — a bridge
 * with `isGateway` takes that address. As upstream, it does nothing without a `gateway` (an L3 network has
 * none, and a flat file may set the key for every network); a warning says so, and when no range holds it.
 */
function withGatewayExcluded(
  fields: Fields,
  list: readonly RangeConfig[],
  gw: IP | undefined,
  warnings: string[],
): RangeConfig[] {
  if (fields.get('exclude_gateway') !== true) return [...list];
  if (gw === undefined) {
    warnings.push('ipam.exclude_gateway has no effect: there is no ipam.gateway to exclude');
    return [...list];
  }
  const holding = list.filter((r) => cidrContains(r.range.subnet, gw));
  if (holding.length === 0 && list.length > 0) {
    warnings.push(`ipam.exclude_gateway has no effect: the gateway ${formatIP(gw)} lies in no range`);
  }
  return list.map((r) =>
    cidrContains(r.range.subnet, gw) ? { ...r, range: withoutAddress(r.range, gw.value) } : r,
  );
}

function parseGatewayFor(text: string, address: Cidr, where: string): Result<IP> {
  const ip = parseIP(text.trim());
  if (ip === undefined) return invalid(`${where}: gateway ${quoteText(text)} is not an IP address`);
  if (ip.family !== address.family) {
    return invalid(
      `${where}: gateway ${formatIP(ip)} is ${familyName(ip.family)} but the address is ${familyName(address.family)}`,
    );
  }
  return ok(ip);
}

function staticAddresses(
  fields: Fields,
  args: CniArgs,
  quoteValues: boolean,
  warnings: string[],
): Result<StaticAddress[]> {
  const list: StaticAddress[] = [];
  const items = (fields.get('addresses') as unknown[] | undefined) ?? [];
  for (const [i, item] of items.entries()) {
    const where = `ipam.addresses[${i}]`;
    const entry = readFields(item, addressSchema, { where, quoteValues });
    if (!entry.ok) return entry;
    const text = stringField(entry.value, 'address') ?? '';
    const address = parseCidr(text.trim());
    if (address === undefined)
      return invalid(
        `${where}.address: ${quoteText(text)} is not an address with a prefix length, such as 10.10.0.1/24`,
      );
    const gwText = stringField(entry.value, 'gateway');
    if (gwText === undefined || gwText === '') {
      list.push({ address });
    } else {
      const gw = parseGatewayFor(gwText, address, where);
      if (!gw.ok) return gw;
      list.push({ address, gateway: gw.value });
    }
  }
  // CNI_ARGS IP=<cidr>[,<cidr>] and GATEWAY=<ip>[,<ip>]: each gateway goes to every address whose subnet holds it.
  const fromArgs: Cidr[] = [];
  for (const text of (args.ip ?? '').split(',').filter((t) => t.trim() !== '')) {
    const address = parseCidr(text.trim());
    if (address === undefined) {
      return fail(
        ipamError(
          CniCode.InvalidEnvironment,
          `CNI_ARGS: IP entry ${quoteText(text)} is not an address with a prefix length`,
        ),
      );
    }
    fromArgs.push(address);
  }
  const gateways: IP[] = [];
  for (const text of (args.gateway ?? '').split(',').filter((t) => t.trim() !== '')) {
    const ip = parseIP(text.trim());
    if (ip === undefined)
      return fail(
        ipamError(
          CniCode.InvalidEnvironment,
          `CNI_ARGS: GATEWAY entry ${quoteText(text)} is not an IP address`,
        ),
      );
    if (!fromArgs.some((a) => cidrContains(normalise(a), ip))) {
      warnings.push(`CNI_ARGS GATEWAY ${formatIP(ip)} is ignored: it is in the subnet of no IP= address`);
    }
    gateways.push(ip);
  }
  for (const address of fromArgs) {
    const gw = gateways.filter((g) => cidrContains(normalise(address), g)).at(-1);
    list.push(gw === undefined ? { address } : { address, gateway: gw });
  }
  if (list.length > limits.addresses)
    return invalid(`ipam lists ${list.length} static addresses; at most ${limits.addresses} are allowed`);
  return ok(list);
}

function route(item: unknown, where: string, quoteValues: boolean): Result<Route> {
  const entry = readFields(item, routeSchema, { where, quoteValues });
  if (!entry.ok) return entry;
  const dstText = stringField(entry.value, 'dst') ?? '';
  const dst = parseCidr(dstText.trim());
  if (dst === undefined) return invalid(`${where}.dst: ${quoteText(dstText)} is not a CIDR`);
  let result: Route = { dst };
  const gwText = stringField(entry.value, 'gw');
  if (gwText !== undefined && gwText !== '') {
    const gw = parseGatewayFor(gwText, dst, where);
    if (!gw.ok) return gw;
    result = { ...result, gw: gw.value };
  }
  for (const key of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
    const value = entry.value.get(key);
    if (typeof value === 'number') result = { ...result, [key]: value };
  }
  return ok(result);
}

/** The routes; an error for each bad entry, in order. */
function routes(fields: Fields, quoteValues: boolean): { list: Route[]; errors: IpamError[] } {
  const items = (fields.get('routes') as unknown[] | undefined) ?? [];
  if (items.length > limits.routes) {
    const tooMany = ipamError(
      CniCode.InvalidConfig,
      `ipam.routes lists ${items.length} routes; at most ${limits.routes} are allowed`,
    );
    return { list: [], errors: [tooMany] };
  }
  const list: Route[] = [];
  const errors: IpamError[] = [];
  for (const [i, item] of items.entries()) {
    const one = route(item, `ipam.routes[${i}]`, quoteValues);
    if (one.ok) list.push(one.value);
    else errors.push(one.error);
  }
  return { list, errors };
}

function dns(fields: Fields, quoteValues: boolean): Result<Dns> {
  const raw = fields.get('dns');
  if (raw === undefined) return ok({});
  const entry = readFields(raw, dnsSchema, { where: 'ipam.dns', quoteValues });
  if (!entry.ok) return entry;
  const result: { -readonly [K in keyof Dns]: Dns[K] } = {};
  for (const key of ['nameservers', 'search', 'options'] as const) {
    if (entry.value.has(key)) result[key] = stringsField(entry.value, key);
  }
  const domain = stringField(entry.value, 'domain');
  if (domain !== undefined) result.domain = domain;
  return ok(result);
}

/**
 * `node_slice_size` is a prefix length of the range's family. In a dual-stack config the ranges of the
 * other family are cut into as many slices (10.0.0.0/16 in /26 slices gives 2001:db8::/64 /74 slices):
 * "as many addresses" would cut a /64 into 2^58 slices, while equal counts keep every range's
 * NodeSlicePool as small as the first one's.
 */
function sliceRanges(
  fields: Fields,
  list: readonly RangeConfig[],
): Result<{ size?: number; ranges: RangeConfig[] }> {
  const text = stringField(fields, 'node_slice_size') ?? '';
  if (text === '') return ok({ ranges: [...list] });
  const match = /^\/?([0-9]{1,3})$/.exec(text.trim());
  if (match?.[1] === undefined)
    return invalid(`ipam.node_slice_size: ${quoteText(text)} must be a prefix length such as "/26" or "26"`);
  const size = Number(match[1]);
  if (list.length === 0) return invalid('ipam.node_slice_size is set but there is no range to slice');
  const fits = (prefix: number, subnet: Cidr): boolean =>
    prefix >= subnet.prefix && prefix <= addressBits(subnet.family);
  // The size is written for one family (Whereabouts sliced IPv4 only): the first range it fits sets the
  // number of slices for the ranges of the other family.
  const reference = list.find((r) => fits(size, r.range.subnet));
  const bits = reference === undefined ? 0 : size - reference.range.subnet.prefix;
  const sliced: RangeConfig[] = [];
  for (const r of list) {
    const { subnet } = r.range;
    const sameFamily = subnet.family === reference?.range.subnet.family;
    const slicePrefix = sameFamily ? size : subnet.prefix + bits;
    if (reference === undefined || !fits(slicePrefix, subnet)) {
      return invalid(
        reference === undefined || sameFamily
          ? `ipam.node_slice_size /${size} does not fit the range ${formatCidr(subnet)}: it must be between /${subnet.prefix} and /${addressBits(subnet.family)}`
          : `ipam.node_slice_size /${size} cuts ${formatCidr(reference.range.subnet)} into 2^${bits} slices, and ${formatCidr(subnet)} is too small to be cut into as many`,
      );
    }
    if (slicePrefix - subnet.prefix > Math.log2(maxSlices)) {
      return invalid(
        `ipam.node_slice_size /${slicePrefix} divides ${formatCidr(subnet)} into 2^${slicePrefix - subnet.prefix} slices; at most ${maxSlices} are supported (one NodeSlicePool entry each): choose a larger slice`,
      );
    }
    sliced.push({ ...r, slicePrefix });
  }
  return ok({ size, ranges: sliced });
}

/** The longest `network_name`: it prefixes object names (at most 253 characters) with a range after it. */
const maxNetworkName = 200;

/**
 * `network_name` prefixes Kubernetes object names (`<network_name>-10.0.0.0-24`), so it must be a valid
 * object name itself — a DNS-1123 subdomain: no `..`, no `.-` — or the API server refuses every pool.
 */
function networkName(fields: Fields): Result<string> {
  const name = stringField(fields, 'network_name') ?? '';
  if (name !== '' && (name.length > maxNetworkName || !isDns1123Subdomain(name))) {
    return invalid(
      `ipam.network_name: ${quoteText(name)} must be lower-case letters, digits, '-' and '.', with a letter or digit at the start, at the end and on both sides of every '.', at most ${maxNetworkName} characters (it becomes part of object names)`,
    );
  }
  return ok(name);
}

function logLevel(fields: Fields, warnings: string[]): LogLevel {
  const text = (stringField(fields, 'log_level') ?? '').toLowerCase();
  if (text === '') return 'verbose';
  if ((logLevels as readonly string[]).includes(text)) return text as LogLevel;
  warnings.push(`ipam.log_level ${quoteText(text)} is not one of ${logLevels.join(', ')}; using verbose`);
  return 'verbose';
}

/**
 * Gives each address of `runtimeConfig.ips` to the first range that contains it and has none yet. The
 * gateway that `exclude_gateway` keeps from pods cannot be requested either.
 */
function withRequested(
  texts: readonly string[],
  list: readonly RangeConfig[],
  gateway?: IP,
): Result<RangeConfig[]> {
  if (texts.length > limits.requested) {
    return invalid(
      `runtimeConfig.ips lists ${texts.length} addresses; at most ${limits.requested} are allowed`,
    );
  }
  const ranges = [...list];
  for (const text of texts) {
    // An address, or one with a prefix length ("10.1.2.3/24", as Multus passes `ips`): nothing else.
    const trimmed = text.trim();
    const cidr = parseCidr(trimmed);
    const ip = parseIP(trimmed) ?? (cidr === undefined ? undefined : ipOf(cidr.family, cidr.address));
    if (ip === undefined) {
      return invalid(
        `runtimeConfig.ips: ${quoteText(text)} is not an IP address or an address with a prefix length`,
      );
    }
    const index = ranges.findIndex((r) => r.requested === undefined && cidrContains(r.range.subnet, ip));
    const range = ranges[index];
    if (range === undefined) {
      return invalid(
        `runtimeConfig.ips: ${formatIP(ip)} is not inside any configured range that is not already given a requested address`,
      );
    }
    // Decided here, before any pool is read or created: the network and broadcast address are never given.
    const usable = usableAddresses(range.range.subnet);
    if (ip.value < usable.lo || ip.value > usable.hi) {
      return invalid(
        `runtimeConfig.ips: requested address ${formatIP(ip)} is not a usable address of ${formatCidr(range.range.subnet)} (it is the network or broadcast address)`,
      );
    }
    if (gateway !== undefined && gateway.family === ip.family && gateway.value === ip.value) {
      return invalid(
        `runtimeConfig.ips: requested address ${formatIP(ip)} is the gateway, which ipam.exclude_gateway keeps from pods`,
      );
    }
    ranges[index] = { ...range, requested: ip.value };
  }
  return ok(ranges);
}

function ignoredKeys(fields: Fields, warnings: string[]): void {
  const datastore = stringField(fields, 'datastore');
  if (datastore !== undefined && datastore !== '' && datastore !== 'kubernetes') {
    warnings.push(
      `ipam.datastore ${quoteText(datastore)} is ignored: the Kubernetes API is the only datastore`,
    );
  }
  if ([...fields.keys()].some((k) => k.startsWith('etcd_'))) {
    warnings.push('ipam.etcd_* keys are ignored: the Kubernetes API is the only datastore');
  }
  if (((fields.get('sleep_for_race') as number | undefined) ?? 0) > 0) {
    warnings.push('ipam.sleep_for_race is ignored');
  }
}

/** Checks the merged IPAM fields of one invocation and builds its config: the first error, as the plugin says. */
export function validate(fields: Fields, context: Context): Result<Validated> {
  const all = validateAll(fields, context);
  return all.ok ? all : fail(all.errors[0]);
}

/**
 * Every error of the merged IPAM fields, in the order `validate` meets them (a check that needs the ranges
 * is skipped when the ranges are invalid, rather than reporting what follows from that), or the config.
 */
export function validateAll(
  fields: Fields,
  context: Context,
):
  | { readonly ok: true; readonly value: Validated }
  | { readonly ok: false; readonly errors: readonly [IpamError, ...IpamError[]] } {
  const warnings: string[] = [];
  const errors: IpamError[] = [];
  /** The value of a check, or undefined with its error recorded. */
  const check = <T>(result: Result<T>): T | undefined => {
    if (result.ok) return result.value;
    errors.push(result.error);
    return undefined;
  };
  const type = stringField(fields, 'type');
  if (type !== 'whereabouts') {
    const wrongType = ipamError(
      CniCode.InvalidConfig,
      `ipam.type is ${type === undefined ? 'missing' : quoteText(type)}; this plugin only handles "whereabouts"`,
    );
    return { ok: false, errors: [wrongType] };
  }
  const parsedRanges = check(ranges(fields, context.quoteValues, warnings));
  // Without valid ranges the gateway is still parsed (its family is then not compared with theirs).
  const gw = check(gateway(fields, parsedRanges ?? [], warnings));
  const list =
    parsedRanges === undefined ? undefined : withGatewayExcluded(fields, parsedRanges, gw, warnings);
  const addresses = check(staticAddresses(fields, context.args, context.quoteValues, warnings));
  const routeList = routes(fields, context.quoteValues);
  errors.push(...routeList.errors);
  const dnsConfig = check(dns(fields, context.quoteValues));
  const sliced = list === undefined ? undefined : check(sliceRanges(fields, list));
  const network = check(networkName(fields));
  const wanted =
    sliced === undefined
      ? undefined
      : check(withRequested(context.requestedIps, sliced.ranges, excludedGateway(fields, gw)));
  const kubernetes = fields.get('kubernetes');
  let kubeconfig: string | undefined;
  if (kubernetes !== undefined) {
    const k8s = check(
      readFields(kubernetes, kubernetesSchema, {
        where: 'ipam.kubernetes',
        quoteValues: context.quoteValues,
      }),
    );
    if (k8s !== undefined) kubeconfig = stringField(k8s, 'kubeconfig');
  }
  const [first, ...rest] = errors;
  if (first !== undefined) return { ok: false, errors: [first, ...rest] };
  if (
    list === undefined ||
    addresses === undefined ||
    dnsConfig === undefined ||
    sliced === undefined ||
    network === undefined ||
    wanted === undefined
  )
    throw new Error('validateAll: a check failed without an error');
  if (list.length === 0 && addresses.length === 0) {
    warnings.push('ipam has no range and no static address: every ADD fails (code 7)');
  }
  for (const r of sliced.ranges) {
    const capacity = rangeCapacity(r.range);
    if (capacity === 0n) {
      warnings.push(
        `range ${r.text} can hand out no address by itself (all are excluded): ADD succeeds only with a requested address (runtimeConfig.ips)`,
      );
    }
    // A slice pool holds one node's pods, far fewer than the limit: only an unsliced range can reach it.
    if (r.slicePrefix === undefined && capacity > BigInt(poolAllocationLimit)) {
      warnings.push(
        `range ${r.text} has more addresses than one IPPool can hold (about ${poolAllocationLimit.toLocaleString('en-US')} allocations, under the API server's object size limit): past that, every ADD in it fails; set node_slice_size, or split the range into smaller ipRanges`,
      );
    }
  }
  ignoredKeys(fields, warnings);

  const optional = <K extends string, V>(key: K, value: V | undefined | ''): { [P in K]?: V } =>
    (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: V };
  const config: IpamConfig = {
    cniName: context.cniName,
    cniVersion: context.cniVersion,
    networkName: network,
    ranges: wanted,
    ...optional('gateway', gw),
    routes: routeList.list,
    dns: dnsConfig,
    addresses,
    overlappingRanges: (fields.get('enable_overlapping_ranges') as boolean | undefined) ?? true,
    stickyIps: (fields.get('sticky_ips') as boolean | undefined) ?? false,
    ...optional('nodeSliceSize', sliced.size),
    ...optional('kubeconfig', kubeconfig),
    ...optional('configurationPath', stringField(fields, 'configuration_path')),
    agentSocket:
      (stringField(fields, 'agent_socket') ?? '') === ''
        ? defaultAgentSocket
        : (stringField(fields, 'agent_socket') as string),
    ...optional('logFile', stringField(fields, 'log_file')),
    logLevel: logLevel(fields, warnings),
  };
  return ok({ config, warnings });
}
