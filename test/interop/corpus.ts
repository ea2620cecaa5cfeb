// Why: the configurations users actually run — every example of docs/configuration.md, the NADs of the common
// CNI plugins, dual-stack, exclusions, IPv6 ranges, named networks, static addresses, CNI_ARGS and mistakes —
// in one list that configs.test.ts runs through Whereabouts v0.9.4 and through ours. Each case says what we
// expect of ours, which addresses each plugin may hand out, and every way Whereabouts is known to differ,
// naming the row of the "Where this differs" table of docs/configuration.md that documents it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const configurationDoc = join(import.meta.dirname, '..', '..', 'docs', 'configuration.md');

export type Case = {
  readonly name: string;
  /** Why this case is in the corpus. */
  readonly why: string;
  /** The network config on the IPAM plugin's stdin, as the runtime builds it; a string goes as it is. */
  readonly config: Record<string, unknown> | string;
  /** CNI_ARGS instead of the runtime's usual ones (`$NS`: the pod's namespace, `$POD`: its name). */
  readonly cniArgs?: string;
  /** Appended to the runtime's usual CNI_ARGS. */
  readonly extraArgs?: string;
  /** How our ADD ends. Whereabouts' ADD ends the same unless `differs` has `add.outcome`. */
  readonly expect: 'ok' | 'error';
  /**
   * The addresses each entry of the ADD result may hold, as `first-last` spans (one address: exactly it).
   * Whereabouts, on an empty pool, must hand out the first address of the first span; ours any of them.
   */
  readonly allowed?: readonly (readonly string[])[];
  /** Where ours may hand out other addresses than Whereabouts (a difference `differs` lists). */
  readonly oursAllowed?: readonly (readonly string[])[];
  /**
   * Every known difference: the comparison's key (configs.test.ts) → the first cell of the row of the
   * "Where this differs" table that documents it. Any other difference fails the test.
   */
  readonly differs?: Readonly<Record<string, string>>;
};

/** The JSON examples of docs/configuration.md's "Examples" section, by their network `name`. */
export function docExamples(): Map<string, Record<string, unknown>> {
  const text = readFileSync(configurationDoc, 'utf8');
  const section = text.slice(text.indexOf('## Examples'), text.indexOf('## Addresses and ranges'));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => JSON.parse(m[1] ?? '') as Record<string, unknown>,
  );
  return new Map(blocks.map((b) => [String(b.name), b]));
}

/** The config a runtime gives a conflist's plugin: the plugin with the list's name and cniVersion. */
export function pluginOfList(list: Record<string, unknown>, index = 0): Record<string, unknown> {
  const plugins = list.plugins as Record<string, unknown>[];
  return { cniVersion: list.cniVersion, name: list.name, ...plugins[index] };
}

function fromDoc(name: string): Record<string, unknown> {
  const config = docExamples().get(name);
  if (config === undefined) throw new Error(`docs/configuration.md has no example named ${name}`);
  return 'plugins' in config ? pluginOfList(config) : config;
}

/** A NAD of `type` with these IPAM keys. */
const nad = (ipam: Record<string, unknown>, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: '1.0.0',
  name: 'net',
  type: 'macvlan',
  master: 'eth1',
  ...more,
  ipam: { type: 'whereabouts', ...ipam },
});

/** The rows of the docs' table, by their first cell; the differences below must name one of them. */
export const rows = {
  // These five hold for every case: configs.test.ts checks them on every run (the address against
  // `allowed`, Leases and containerid in checkRun, codes and `dns: {}` in compare.ts).
  randomLowest: 'the address chosen in a range',
  lease: 'every ADD and DEL',
  errorCode: 'every error of the plugin itself',
  emptyDns: 'an ADD result with no DNS settings',
  reservationContainer: 'every OverlappingRangeIPReservation',
  unknownKey: 'unknown key in `ipam`',
  duplicateKey: 'one key spelled twice (`range` and `Range`)',
  startEndOutside: '`range_start`/`range_end` outside the range, not an IP, or inverted',
  formAndStart: 'start-end form with a different `range_start`/`range_end`',
  badExclude: 'bad `exclude` entry',
  excludeOtherFamily: '`exclude` entry of the other family',
  excludeOutside: '`exclude` entry entirely outside the range',
  gatewayOtherFamily: '`gateway` of a family no range has',
  gatewayDualStack: '`gateway` in dual-stack',
  sameSubnet: 'two ranges with the same subnet',
  tiny: '`/31`, `/32`, `/127`, `/128`',
  mappedV6: 'IPv4-mapped IPv6 range (`::ffff:10.0.0.0/120`)',
  oldVersion: '`cniVersion` 0.1.0 or 0.2.0, or none (read as 0.1.0)',
  badNetworkName: '`network_name` not valid in object names (`Blue`, `a..b`)',
  noRange: 'no range at all (`range` empty or null, no `ipRanges`, no `addresses`)',
  allExcluded: 'every address of a range excluded',
  badPodName: 'a pod name or namespace Kubernetes does not allow in `CNI_ARGS`',
  requestedIps: '`runtimeConfig.ips` (Multus `ips`, the `ips` capability)',
  extensions: '`pick_addresses`, `exclude_gateway`',
  delBadConfig: 'DEL with a config ADD refuses',
} as const;

const v4 = (from: number, to: number, prefix = '192.168.1') => `${prefix}.${from}-${prefix}.${to}`;

export const corpus: readonly Case[] = [
  // ---- the examples of docs/configuration.md -------------------------------------------------------
  {
    name: 'docs: macvlan storage network (range_start, exclude, gateway, routes)',
    why: 'the first example users copy',
    config: fromDoc('storage'),
    expect: 'ok',
    allowed: [
      ['192.168.20.10-192.168.20.63', '192.168.20.80-192.168.20.199', '192.168.20.201-192.168.20.254'],
    ],
  },
  {
    name: 'docs: ipvlan, a start-end range',
    why: 'the start-end form of `range`',
    config: fromDoc('trading'),
    expect: 'ok',
    allowed: [['10.77.0.100-10.77.0.199']],
  },
  {
    name: 'docs: bridge in a conflist with tuning',
    why: 'a conflist: the runtime hands the bridge its plugin config, the bridge hands it to IPAM',
    config: fromDoc('lab'),
    expect: 'ok',
    allowed: [['172.30.0.2-172.30.3.254']],
  },
  {
    name: 'docs: dual-stack with a gateway and an IPv6 exclusion',
    why: 'dual-stack: two pools, a gateway of one family',
    config: fromDoc('dual'),
    expect: 'ok',
    allowed: [['192.168.30.2-192.168.30.254'], ['2001:db8:30::100-2001:db8:30::ffff:ffff:ffff:fffe']],
    differs: { 'add.ips[1].gateway': rows.gatewayDualStack },
  },
  {
    name: 'docs: named network blue',
    why: '`network_name` prefixes pool and reservation names',
    config: fromDoc('blue'),
    expect: 'ok',
    allowed: [['10.9.0.1-10.9.0.254']],
  },
  {
    name: 'docs: named network red',
    why: 'the second NAD of the named-network example',
    config: fromDoc('red'),
    expect: 'ok',
    allowed: [['10.9.0.1-10.9.0.254']],
  },
  {
    name: 'docs: a fixed address through Multus ips (runtimeConfig.ips)',
    why: 'the docs example of a fixed address; Whereabouts has no `ips` capability',
    config: {
      ...fromDoc('storage'),
      capabilities: { ips: true },
      runtimeConfig: { ips: ['192.168.20.50/24'] },
    },
    expect: 'ok',
    allowed: [
      ['192.168.20.10-192.168.20.63', '192.168.20.80-192.168.20.199', '192.168.20.201-192.168.20.254'],
    ],
    oursAllowed: [['192.168.20.50']],
    differs: { 'add.ips[0].chosen': rows.requestedIps },
  },
  {
    name: 'pick_addresses and exclude_gateway at the top level (whereabouts-ts extensions)',
    why: 'Whereabouts ignores keys it does not know: the NAD still allocates there, from the whole range',
    config: nad({
      range: '10.79.0.0/24',
      gateway: '10.79.0.1',
      exclude_gateway: true,
      pick_addresses: ['10.79.0.1', '10.79.0.50'],
    }),
    expect: 'ok',
    allowed: [['10.79.0.1-10.79.0.254']],
    oursAllowed: [['10.79.0.50']],
    differs: { 'add.ips[0].chosen': rows.extensions },
  },
  {
    name: 'pick_addresses in an ipRanges entry, plain addresses (the form whereabouts#674 reads)',
    why: 'the portable form of a pick list',
    config: nad({ ipRanges: [{ range: '10.78.0.0/24', pick_addresses: ['10.78.0.9', '10.78.0.3'] }] }),
    expect: 'ok',
    allowed: [['10.78.0.1-10.78.0.254']],
    oursAllowed: [['10.78.0.9']],
    differs: { 'add.ips[0].chosen': rows.extensions },
  },
  {
    name: 'docs: a fixed address through CNI_ARGS IP=',
    why: 'CNI_ARGS IP= adds a static address after the allocated one, in both',
    config: fromDoc('storage'),
    extraArgs: 'IP=192.168.20.50/24',
    expect: 'ok',
    allowed: [
      ['192.168.20.10-192.168.20.63', '192.168.20.80-192.168.20.199', '192.168.20.201-192.168.20.254'],
      ['192.168.20.50'],
    ],
  },

  // ---- typical NADs ------------------------------------------------------------------------------------
  {
    name: 'macvlan, CNI 0.3.1 (a version on each address)',
    why: 'older runtimes and NADs still say 0.3.1',
    config: nad({ range: '192.168.1.0/24' }, { cniVersion: '0.3.1' }),
    expect: 'ok',
    allowed: [[v4(1, 254)]],
  },
  {
    name: 'macvlan, CNI 0.4.0',
    why: 'the last version before 1.0.0',
    config: nad({ range: '192.168.1.0/24', gateway: '192.168.1.254' }, { cniVersion: '0.4.0' }),
    expect: 'ok',
    allowed: [[v4(1, 254)]],
  },
  {
    name: 'ipvlan L3, CNI 1.1.0, routes with 1.1.0 fields and DNS',
    why: 'routes and dns are returned as given; 1.1.0 routes carry mtu/table/scope',
    config: nad(
      {
        range: '10.1.0.0/24',
        routes: [
          { dst: '0.0.0.0/0', gw: '10.1.0.1' },
          { dst: '10.2.0.0/16', gw: '10.1.0.1', mtu: 1400, table: 100, scope: 0 },
        ],
        dns: {
          nameservers: ['10.1.0.53'],
          domain: 'example.org',
          search: ['example.org'],
          options: ['ndots:2'],
        },
      },
      { cniVersion: '1.1.0', type: 'ipvlan', mode: 'l3' },
    ),
    expect: 'ok',
    allowed: [['10.1.0.1-10.1.0.254']],
  },
  {
    name: 'SR-IOV NAD with a gateway',
    why: 'SR-IOV network operator NADs: type sriov, a deviceID the runtime adds',
    config: nad(
      { range: '10.56.217.0/24', gateway: '10.56.217.1' },
      { type: 'sriov', master: undefined, vlan: 100, deviceID: '0000:3b:02.1', cniVersion: '0.3.1' },
    ),
    expect: 'ok',
    allowed: [['10.56.217.1-10.56.217.254']],
  },
  {
    name: 'storage network narrowed with range_start and range_end',
    why: 'a /16 of which a team may use a slice',
    config: nad({ range: '10.20.0.0/16', range_start: '10.20.5.10', range_end: '10.20.5.50' }),
    expect: 'ok',
    allowed: [['10.20.5.10-10.20.5.50']],
  },
  {
    name: 'a large range: addresses ending in .0 are handed out, offsets above 255',
    why: 'offset format of a /16, and .0 inside the range is usable in both',
    config: nad({ range: '10.30.0.0/16', exclude: ['10.30.0.0/24'] }),
    expect: 'ok',
    allowed: [['10.30.1.0-10.30.255.254']],
  },
  {
    name: 'range with host bits set',
    why: '`192.168.2.225/28` names the pool after its network, `192.168.2.224-28`',
    config: nad({ range: '192.168.2.225/28' }),
    expect: 'ok',
    allowed: [['192.168.2.225-192.168.2.238']],
  },
  {
    name: 'a /30',
    why: 'the smallest range both accept: two addresses',
    config: nad({ range: '10.40.0.4/30' }),
    expect: 'ok',
    allowed: [['10.40.0.5-10.40.0.6']],
  },
  {
    name: 'leading zeros in a start-end range',
    why: 'Go parses them as decimal; so must we',
    config: nad({ range: '00192.00168.1.5-000000192.168.1.25/24' }),
    expect: 'ok',
    allowed: [[v4(5, 25)]],
  },
  {
    name: 'keys in another case (Range_Start)',
    why: 'Go decodes keys case-insensitively',
    config: nad({ Range: '10.50.0.0/24', Range_Start: '10.50.0.100' }),
    expect: 'ok',
    allowed: [['10.50.0.100-10.50.0.254']],
  },
  {
    name: 'enable_overlapping_ranges false: no reservations',
    why: 'the switch users set for speed',
    config: nad({ range: '10.60.0.0/24', enable_overlapping_ranges: false }),
    expect: 'ok',
    allowed: [['10.60.0.1-10.60.0.254']],
  },
  {
    name: 'keys of features that are gone (leader election, datastore, etcd)',
    why: 'old NADs carry them; both accept them',
    config: nad({
      range: '10.61.0.0/24',
      datastore: 'kubernetes',
      leader_lease_duration: 1500,
      leader_renew_deadline: 1000,
      leader_retry_period: 500,
      log_level: 'error',
    }),
    expect: 'ok',
    allowed: [['10.61.0.1-10.61.0.254']],
  },

  // ---- IPv6 ------------------------------------------------------------------------------------------
  {
    name: 'IPv6 /64',
    why: 'single-stack IPv6, pool name with `--`',
    config: nad({ range: 'fd00:10::/64', gateway: 'fd00:10::1' }),
    expect: 'ok',
    allowed: [['fd00:10::1-fd00:10::ffff:ffff:ffff:fffe']],
  },
  {
    name: 'IPv6 start-end range',
    why: 'the start-end form in IPv6',
    config: nad({ range: '2001:db8:1::10-2001:db8:1::ff/64' }),
    expect: 'ok',
    allowed: [['2001:db8:1::10-2001:db8:1::ff']],
  },
  {
    name: 'IPv6 range_start/range_end and a bare-address exclusion',
    why: 'IPv6 narrowed, an excluded single address at the start',
    config: nad({
      range: '2001:db8:2::/112',
      range_start: '2001:db8:2::a',
      range_end: '2001:db8:2::1f',
      exclude: ['2001:db8:2::a', '2001:db8:2::c/127'],
    }),
    expect: 'ok',
    allowed: [['2001:db8:2::b', '2001:db8:2::e-2001:db8:2::1f']],
  },
  {
    name: 'IPv6 address ending in :: is handed out',
    why: 'reservation name `…--0`, as Whereabouts spells it',
    config: nad({ range: '2001:db8:3::/96', exclude: ['2001:db8:3::/112'] }),
    expect: 'ok',
    allowed: [['2001:db8:3::1:0-2001:db8:3::ffff:fffe']],
  },

  // ---- dual-stack and multiple ranges -----------------------------------------------------------------------
  {
    name: 'dual-stack without a gateway, IPv6 first',
    why: 'top-level range first, then ipRanges, whatever the family',
    config: nad({ range: 'fd00:20::/120', ipRanges: [{ range: '10.70.0.0/24' }] }),
    expect: 'ok',
    allowed: [['fd00:20::1-fd00:20::fe'], ['10.70.0.1-10.70.0.254']],
  },
  {
    name: 'ipRanges only, with range_start and exclude inside entries',
    why: 'no top-level range; each entry narrowed',
    config: nad({
      ipRanges: [
        { range: '10.71.0.0/24', range_start: '10.71.0.20', exclude: ['10.71.0.20/30'] },
        { range: 'fd00:71::/64', range_end: 'fd00:71::9' },
      ],
    }),
    expect: 'ok',
    allowed: [['10.71.0.24-10.71.0.254'], ['fd00:71::1-fd00:71::9']],
  },
  {
    name: 'two IPv4 ranges (multi-IP)',
    why: 'one address from each range',
    config: nad({ range: '10.72.0.0/24', ipRanges: [{ range: '10.73.0.0/24' }], gateway: '10.72.0.1' }),
    expect: 'ok',
    allowed: [['10.72.0.1-10.72.0.254'], ['10.73.0.1-10.73.0.254']],
  },

  // ---- exclusions ------------------------------------------------------------------------------------------
  {
    name: 'overlapping, unsorted exclusions',
    why: 'an excluded CIDR is excluded whole, in any order',
    config: nad({
      range: '10.80.0.0/24',
      exclude: ['10.80.0.8/29', '10.80.0.0/28', '10.80.0.16', '10.80.0.12/30'],
    }),
    expect: 'ok',
    allowed: [['10.80.0.17-10.80.0.254']],
  },

  // ---- static addresses and CNI_ARGS -------------------------------------------------------------------------
  {
    name: 'static addresses after the allocated one',
    why: 'Whereabouts test "can still assign static parameters"',
    config: nad({
      range: '192.168.1.44/28',
      gateway: '192.168.1.1',
      addresses: [
        { address: '10.10.0.1/24', gateway: '10.10.0.254' },
        { address: '3ffe:ffff:0:01ff::1/64', gateway: '3ffe:ffff:0::1' },
      ],
      routes: [{ dst: '0.0.0.0/0' }],
    }),
    expect: 'ok',
    allowed: [['192.168.1.33-192.168.1.46'], ['10.10.0.1'], ['3ffe:ffff:0:1ff::1']],
  },
  {
    name: 'static addresses only, no range',
    why: 'a NAD that only passes fixed addresses',
    config: nad({ addresses: [{ address: '10.11.0.7/24' }] }),
    expect: 'ok',
    allowed: [['10.11.0.7']],
  },
  {
    name: 'CNI_ARGS IP= and GATEWAY= with two addresses',
    why: 'each gateway goes to the address whose subnet holds it',
    config: nad({ range: '10.12.0.0/24' }),
    extraArgs: 'IP=10.13.0.5/24,fd00:13::5/64;GATEWAY=10.13.0.1,fd00:13::1',
    expect: 'ok',
    allowed: [['10.12.0.1-10.12.0.254'], ['10.13.0.5'], ['fd00:13::5']],
  },

  {
    name: 'top-level exclude without a top-level range',
    why: 'both drop it (ours with a warning): the ipRanges entry is used whole',
    config: nad({ exclude: ['10.74.0.0/28'], ipRanges: [{ range: '10.74.0.0/24' }] }),
    expect: 'ok',
    allowed: [['10.74.0.1-10.74.0.254']],
  },
  {
    name: 'an unknown log_level',
    why: 'a typo that must not stop allocation',
    config: nad({ range: '10.75.0.0/24', log_level: 'loud' }),
    expect: 'ok',
    allowed: [['10.75.0.1-10.75.0.254']],
  },
  {
    name: 'no cniVersion (0.1.0)',
    why: 'a config from before versions; the CNI library reads it as 0.1.0',
    config: { name: 'net', type: 'macvlan', ipam: { type: 'whereabouts', range: '10.76.0.0/24' } },
    expect: 'error',
    allowed: [['10.76.0.1-10.76.0.254']],
    differs: { 'add.outcome': rows.oldVersion },
  },

  // ---- configurations one of the two refuses ---------------------------------------------------------------------
  {
    name: 'stdin that is not JSON',
    why: 'a broken NAD: both must refuse with a decode error',
    config: '{"cniVersion": "1.0.0", "ipam": ',
    expect: 'error',
  },
  {
    name: 'no ipam key',
    why: 'a NAD without IPAM',
    config: { cniVersion: '1.0.0', name: 'net', type: 'macvlan' },
    expect: 'error',
  },
  {
    name: 'ipam type of another plugin',
    why: 'the wrong IPAM type reaching this plugin',
    config: nad({ type: 'host-local', range: '10.90.0.0/24' }),
    expect: 'error',
  },
  {
    name: 'a range that is not a CIDR',
    why: 'a typo in the range',
    config: nad({ range: '10.91.0.0/33' }),
    expect: 'error',
    // Whereabouts' DEL fails like its ADD (it parses the whole config); ours releases what the pod holds.
    differs: { 'del.outcome': rows.delBadConfig },
  },
  {
    name: 'a gateway that is not an IP',
    why: 'a typo in the gateway',
    config: nad({ range: '10.92.0.0/24', gateway: '10.92.0.256' }),
    expect: 'error',
    // Whereabouts' DEL fails like its ADD (it parses the whole config); ours releases what the pod holds.
    differs: { 'del.outcome': rows.delBadConfig },
  },
  {
    name: 'unsupported cniVersion',
    why: 'a version neither speaks',
    config: nad({ range: '10.93.0.0/24' }, { cniVersion: '9.9.9' }),
    expect: 'error',
  },
  {
    name: 'an unknown CNI_ARGS key without IgnoreUnknown',
    why: 'a runtime that does not send IgnoreUnknown',
    config: nad({ range: '10.94.0.0/24' }),
    cniArgs: 'K8S_POD_NAMESPACE=$NS;K8S_POD_NAME=$POD;FOO=bar',
    expect: 'error',
  },
  {
    name: 'CNI_ARGS IP= that is not a CIDR',
    why: 'a bad static address from the runtime',
    config: nad({ range: '10.95.0.0/24' }),
    extraArgs: 'IP=10.95.0.5',
    expect: 'error',
    // Whereabouts' DEL fails like its ADD (it parses the whole config); ours releases what the pod holds.
    differs: { 'del.outcome': rows.delBadConfig },
  },
  {
    name: 'no pod name in CNI_ARGS',
    why: 'a runtime that is not Kubernetes',
    config: nad({ range: '10.96.0.0/24' }),
    cniArgs: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=$NS',
    expect: 'error',
  },
  {
    name: 'a typo in a key (rnage)',
    why: 'Whereabouts ignores unknown keys, so the range is missing',
    config: nad({ rnage: '10.97.0.0/24' }),
    expect: 'error',
    differs: { 'add.outcome': rows.unknownKey },
  },
  {
    name: 'one key spelled twice',
    why: 'Go keeps the last',
    config:
      '{"cniVersion":"1.0.0","name":"net","type":"macvlan","ipam":{"type":"whereabouts","range":"10.98.0.0/24","Range":"10.99.0.0/24"}}',
    expect: 'error',
    allowed: [['10.99.0.1-10.99.0.254']],
    differs: { 'add.outcome': rows.duplicateKey },
  },
  {
    name: 'range_start outside the range',
    why: 'Whereabouts ignores it silently',
    config: nad({ range: '10.100.0.0/24', range_start: '10.101.0.10' }),
    expect: 'error',
    allowed: [['10.100.0.1-10.100.0.254']],
    differs: { 'add.outcome': rows.startEndOutside },
  },
  {
    name: 'range_end before range_start',
    why: 'Whereabouts keeps the start and ignores the end',
    config: nad({ range: '10.102.0.0/24', range_start: '10.102.0.50', range_end: '10.102.0.10' }),
    expect: 'error',
    allowed: [['10.102.0.50-10.102.0.254']],
    differs: { 'add.outcome': rows.startEndOutside },
  },
  {
    name: 'start-end form and a different range_start',
    why: 'the form wins silently in Whereabouts',
    config: nad({ range: '10.103.0.10-10.103.0.20/24', range_start: '10.103.0.15' }),
    expect: 'error',
    allowed: [['10.103.0.10-10.103.0.20']],
    differs: { 'add.outcome': rows.formAndStart },
  },
  {
    name: 'an exclude entry that is not a CIDR',
    why: 'Whereabouts finds out only while allocating',
    config: nad({ range: '10.104.0.0/24', exclude: ['10.104.0.0/33'] }),
    expect: 'error',
    differs: { 'add.pools': rows.badExclude, 'del.pools': rows.badExclude },
  },
  {
    name: 'an exclude entry of the other family',
    why: 'Whereabouts ignores it',
    config: nad({ range: '10.105.0.0/24', exclude: ['fd00::/64'] }),
    expect: 'error',
    allowed: [['10.105.0.1-10.105.0.254']],
    differs: { 'add.outcome': rows.excludeOtherFamily },
  },
  {
    name: 'an exclude entry outside the range',
    why: 'Whereabouts ignores it',
    config: nad({ range: '10.106.0.0/24', exclude: ['10.107.0.0/24'] }),
    expect: 'error',
    allowed: [['10.106.0.1-10.106.0.254']],
    differs: { 'add.outcome': rows.excludeOutside },
  },
  {
    name: 'a gateway of a family no range has',
    why: 'Whereabouts returns it with the IPv4 address',
    config: nad({ range: '10.108.0.0/24', gateway: 'fd00::1' }),
    expect: 'error',
    allowed: [['10.108.0.1-10.108.0.254']],
    differs: { 'add.outcome': rows.gatewayOtherFamily },
  },
  {
    name: 'two ranges with the same subnet',
    why: 'Whereabouts gives one address twice',
    config: nad({ range: '10.109.0.0/24', ipRanges: [{ range: '10.109.0.0/24' }] }),
    expect: 'error',
    allowed: [['10.109.0.1-10.109.0.254'], ['10.109.0.1-10.109.0.254']],
    differs: { 'add.outcome': rows.sameSubnet },
  },
  {
    name: 'a value of the wrong type',
    why: 'enable_overlapping_ranges as a string',
    config: nad({ range: '10.116.0.0/24', enable_overlapping_ranges: 'false' }),
    expect: 'error',
    // Whereabouts' DEL fails like its ADD (it parses the whole config); ours releases what the pod holds.
    differs: { 'del.outcome': rows.delBadConfig },
  },
  {
    name: 'an IPv4-mapped IPv6 range',
    why: 'Go reads it as an IPv4 range',
    config: nad({ range: '::ffff:10.117.0.0/120' }),
    expect: 'error',
    allowed: [['10.117.0.1-10.117.0.254']],
    differs: { 'add.outcome': rows.mappedV6 },
  },
  {
    name: 'a /32 range',
    why: 'Whereabouts cannot hand out a /32',
    config: nad({ range: '10.110.0.7/32' }),
    expect: 'ok',
    allowed: [['10.110.0.7']],
    differs: { 'add.outcome': rows.tiny },
  },
  {
    name: 'a /31 range',
    why: 'point-to-point links',
    config: nad({ range: '10.111.0.0/31' }),
    expect: 'ok',
    allowed: [['10.111.0.0-10.111.0.1']],
    differs: { 'add.outcome': rows.tiny },
  },
  {
    name: 'network_name with capitals',
    why: 'the API server refuses the names Whereabouts makes from it',
    config: nad({ range: '10.112.0.0/24', network_name: 'Blue' }),
    expect: 'error',
  },
  {
    name: 'no range at all',
    why: 'Whereabouts answers with no address',
    config: nad({ gateway: '10.113.0.1' }),
    expect: 'error',
    differs: { 'add.outcome': rows.noRange },
  },
  {
    name: 'every address excluded',
    why: 'Whereabouts creates the pool, then fails',
    config: nad({ range: '10.114.0.0/30', exclude: ['10.114.0.0/30'] }),
    expect: 'error',
    differs: { 'add.pools': rows.allExcluded, 'del.pools': rows.allExcluded },
  },
  {
    name: 'a pod name Kubernetes does not allow',
    why: 'Whereabouts stores it as the podref',
    config: nad({ range: '10.115.0.0/24' }),
    cniArgs: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=$NS;K8S_POD_NAME=Not_A_Pod',
    expect: 'error',
    allowed: [['10.115.0.1-10.115.0.254']],
    differs: { 'add.outcome': rows.badPodName },
  },
];
