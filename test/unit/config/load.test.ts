import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadForRelease, type Loaded } from '../../../src/config/load.ts';
import type { IpamError, Result } from '../../../src/errors.ts';
import { formatIP, ipOf } from '../../../src/ip/address.ts';
import { formatCidr } from '../../../src/ip/cidr.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wb-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Options = { args?: string; flat?: unknown; extra?: Record<string, unknown>; flatPaths?: string[] };

function load(ipam: unknown, options: Options = {}): Result<Loaded> {
  const flatPath = join(dir, 'whereabouts.conf');
  if (options.flat !== undefined) {
    writeFileSync(flatPath, typeof options.flat === 'string' ? options.flat : JSON.stringify(options.flat));
  }
  return loadConfig({
    stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'mynet', type: 'macvlan', ...options.extra, ipam }),
    cniArgs: options.args ?? 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a',
    flatFilePaths: options.flatPaths ?? [join(dir, 'absent.conf'), flatPath],
  });
}

function loaded(ipam: unknown, options: Options = {}): Loaded {
  const result = load(ipam, options);
  if (!result.ok) throw new Error(`expected success, got ${JSON.stringify(result.error)}`);
  return result.value;
}

function failure(ipam: unknown, options: Options = {}): IpamError {
  const result = load(ipam, options);
  if (result.ok) throw new Error('expected an error');
  return result.error;
}

const ranges = (l: Loaded) =>
  l.config.ranges.map(({ range }) => {
    const f = range.subnet.family;
    return `${formatCidr(range.subnet)} ${formatIP(ipOf(f, range.first))}-${formatIP(ipOf(f, range.last))}`;
  });

describe('defaults and every key', () => {
  test('a minimal config has Whereabouts defaults; the flat file is optional', () => {
    const l = loaded({ type: 'whereabouts', range: '192.168.2.225/28' });
    expect(ranges(l)).toEqual(['192.168.2.224/28 192.168.2.225-192.168.2.238']);
    expect(l.config).toMatchObject({
      cniName: 'mynet',
      cniVersion: '1.1.0',
      networkName: '',
      overlappingRanges: true,
      logLevel: 'verbose',
      routes: [],
      dns: {},
      addresses: [],
    });
    expect(l.config.ranges[0]?.requested).toBeUndefined();
    expect(l.config.gateway).toBeUndefined();
    expect(l.config.nodeSliceSize).toBeUndefined();
    expect(l.flatFile).toBeUndefined();
    expect(l.warnings).toEqual([]);
  });

  test('all keys together', () => {
    const l = loaded({
      type: 'whereabouts',
      range: '10.0.0.0/24',
      range_start: '10.0.0.10',
      range_end: '10.0.0.20',
      exclude: ['10.0.0.12', '10.0.0.16/30'],
      ipRanges: [{ range: '2001:db8::/64', range_start: '2001:db8::100', exclude: ['2001:db8::100/126'] }],
      gateway: '10.0.0.1',
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.254', mtu: 1400 }, { dst: '2001:db8:1::/48' }],
      dns: {
        nameservers: ['10.0.0.53'],
        domain: 'example.org',
        search: ['example.org'],
        options: ['ndots:2'],
      },
      addresses: [{ address: '10.10.0.1/24', gateway: '10.10.0.254' }],
      enable_overlapping_ranges: false,
      network_name: 'blue-net',
      node_slice_size: '/26',
      log_file: '/var/log/whereabouts.log',
      log_level: 'DEBUG',
      kubernetes: {
        kubeconfig: '/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig',
        k8s_api_root: 'ignored',
      },
      configuration_path: join(dir, 'absent-dir'),
      leader_lease_duration: 1500,
      leader_renew_deadline: 1000,
      leader_retry_period: 500,
      datastore: 'kubernetes',
      reconciler_cron_expression: '30 4 * * *',
    });
    expect(ranges(l)).toEqual([
      '10.0.0.0/24 10.0.0.10-10.0.0.20',
      '2001:db8::/64 2001:db8::100-2001:db8::ffff:ffff:ffff:fffe',
    ]);
    expect(l.config.ranges[0]?.range.exclusions).toHaveLength(2);
    expect(l.config.ranges[1]?.range.exclusions).toEqual([
      { lo: 0x20010db8000000000000000000000100n, hi: 0x20010db8000000000000000000000103n },
    ]);
    expect(l.config).toMatchObject({
      networkName: 'blue-net',
      overlappingRanges: false,
      nodeSliceSize: 26,
      logFile: '/var/log/whereabouts.log',
      logLevel: 'debug',
      kubeconfig: '/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig',
      dns: {
        nameservers: ['10.0.0.53'],
        domain: 'example.org',
        search: ['example.org'],
        options: ['ndots:2'],
      },
    });
    expect(l.config.gateway).toEqual(ipOf(4, 0x0a000001n));
    expect(l.config.routes).toHaveLength(2);
    expect(l.config.routes[0]?.mtu).toBe(1400);
    expect(l.config.addresses).toHaveLength(1);
    expect(l.warnings).toEqual([]);
  });

  test('keys match case-insensitively, as Go decoded them', () => {
    const l = loaded({ Type: 'whereabouts', RANGE: '10.0.0.0/24', Range_Start: '10.0.0.5' });
    expect(ranges(l)).toEqual(['10.0.0.0/24 10.0.0.5-10.0.0.254']);
  });

  test('null means absent, as in Go', () => {
    const l = loaded({ type: 'whereabouts', range: '10.0.0.0/24', gateway: null, exclude: null });
    expect(l.config.gateway).toBeUndefined();
  });
});

describe('ranges', () => {
  test.each([
    // start-end/prefix form, leading zeros decimal (Whereabouts' config test)
    ['00192.00168.1.5-000000192.168.1.25/24', '192.168.1.0/24 192.168.1.5-192.168.1.25'],
    ['192.168.1.5-192.168.1.25/24', '192.168.1.0/24 192.168.1.5-192.168.1.25'],
    ['2001:db8::10-2001:db8::20/64', '2001:db8::/64 2001:db8::10-2001:db8::20'],
    ['10.0.0.0/30', '10.0.0.0/30 10.0.0.1-10.0.0.2'],
    ['10.0.0.0/31', '10.0.0.0/31 10.0.0.0-10.0.0.1'],
    ['10.0.0.9/32', '10.0.0.9/32 10.0.0.9-10.0.0.9'],
    ['0.0.0.0/0', '0.0.0.0/0 0.0.0.1-255.255.255.254'],
    ['2001:db8::/64', '2001:db8::/64 2001:db8::1-2001:db8::ffff:ffff:ffff:fffe'],
    ['::/0', '::/0 ::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'],
  ])('%s', (text, expected) => {
    expect(ranges(loaded({ type: 'whereabouts', range: text }))).toEqual([expected]);
  });

  test('the top-level range comes first, then ipRanges in order', () => {
    const l = loaded({ type: 'whereabouts', ipRanges: [{ range: '192.168.10.1/24' }], range: 'abcd::1/64' });
    expect(l.config.ranges.map((r) => formatCidr(r.range.subnet))).toEqual(['abcd::/64', '192.168.10.0/24']);
  });

  test('range_start and range_end equal to the network and broadcast address are clamped, not refused', () => {
    const l = loaded({
      type: 'whereabouts',
      range: '10.0.0.0/24',
      range_start: '10.0.0.0',
      range_end: '10.0.0.255',
    });
    expect(ranges(l)).toEqual(['10.0.0.0/24 10.0.0.1-10.0.0.254']);
  });

  test('no range at all loads, with a warning (ADD then refuses with code 7); static addresses alone are fine', () => {
    const l = loaded({ type: 'whereabouts', addresses: [{ address: '10.10.0.1/24' }] });
    expect(l.config.ranges).toEqual([]);
    const empty = loaded({ type: 'whereabouts' });
    expect(empty.warnings).toEqual(['ipam has no range and no static address: every ADD fails (code 7)']);
  });

  test('top-level exclude/range_start/range_end without a top-level range are ignored with a warning', () => {
    const l = loaded({
      type: 'whereabouts',
      ipRanges: [{ range: '10.0.0.0/24' }],
      exclude: ['10.0.0.1'],
      range_start: '10.0.0.5',
    });
    expect(ranges(l)).toEqual(['10.0.0.0/24 10.0.0.1-10.0.0.254']);
    expect(l.warnings).toEqual([
      'ipam.range_start is ignored because there is no top-level ipam.range (it does not apply to ipRanges)',
      'ipam.exclude is ignored because there is no top-level ipam.range (it does not apply to ipRanges)',
    ]);
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['bad CIDR', { range: '10.0.0.0/33' }, 'ipam.range: "10.0.0.0/33" is not a CIDR'],
    ['not an address', { range: 'banana' }, 'ipam.range: "banana" is not a CIDR'],
    [
      'start outside the CIDR',
      { range: '192.168.1.5-192.168.2.25/28' },
      'ipam.range: start 192.168.1.5 is not inside 192.168.2.16/28',
    ],
    [
      'inverted start-end',
      { range: '192.168.1.25-192.168.1.5/24' },
      'ipam.range: start 192.168.1.25 is after end 192.168.1.5',
    ],
    [
      'start-end without prefix',
      { range: '192.168.1.5-192.168.1.25' },
      'must be the last address with the prefix length',
    ],
    [
      'range_start outside',
      { range: '10.0.0.0/24', range_start: '10.0.1.5' },
      'ipam.range_start: 10.0.1.5 is outside the range 10.0.0.0/24',
    ],
    [
      'range_end not an IP',
      { range: '10.0.0.0/24', range_end: '10.0.0' },
      'ipam.range_end: "10.0.0" is not an IP address',
    ],
    [
      'range_start after range_end',
      { range: '10.0.0.0/24', range_start: '10.0.0.50', range_end: '10.0.0.10' },
      'ipam: range_start 10.0.0.50 is after range_end 10.0.0.10',
    ],
    [
      'mixed families',
      { range: '10.0.0.0/24', range_start: '2001:db8::1' },
      'ipam.range_start: 2001:db8::1 is IPv6 but the range 10.0.0.0/24 is IPv4',
    ],
    [
      'mixed families in start-end',
      { range: '10.0.0.1-2001:db8::5/64' },
      'ipam.range: start 10.0.0.1 is not inside 2001:db8::/64',
    ],
    [
      'start-end conflicting with range_start',
      { range: '10.0.0.5-10.0.0.25/24', range_start: '10.0.0.6' },
      'ipam.range_start: 10.0.0.6 conflicts with 10.0.0.5',
    ],
    [
      'bad exclusion',
      { range: '10.0.0.0/24', exclude: ['10.0.0.0/40'] },
      'ipam.exclude: "10.0.0.0/40" is neither a CIDR nor an IP address',
    ],
    [
      'exclusion of the other family',
      { range: '10.0.0.0/24', exclude: ['2001:db8::1'] },
      'ipam.exclude: 2001:db8::1 is IPv6 but the range 10.0.0.0/24 is IPv4',
    ],
    [
      'exclusion outside the range',
      { range: '10.0.0.0/24', exclude: ['10.0.1.0/28'] },
      'ipam.exclude: 10.0.1.0/28 lies entirely outside the range 10.0.0.0/24',
    ],
    [
      'ipRanges entry without range',
      { ipRanges: [{ range_start: '10.0.0.1' }] },
      'ipam.ipRanges[0].range is missing or empty',
    ],
    [
      'ipRanges entry bad exclusion',
      { ipRanges: [{ range: '10.0.0.0/24' }, { range: '10.1.0.0/24', exclude: ['x'] }] },
      'ipam.ipRanges[1].exclude: "x"',
    ],
    [
      'two ranges with one subnet',
      { range: '10.0.0.0/24', ipRanges: [{ range: '10.0.0.7/24' }] },
      'ipam.ipRanges[0] (10.0.0.7/24) has the same subnet 10.0.0.0/24 as ipam.range',
    ],
    ['IPv4-mapped IPv6', { range: '::ffff:10.0.0.0/120' }, 'is an IPv4-mapped IPv6 range'],
    [
      'too many exclusions',
      { range: '10.0.0.0/8', exclude: Array.from({ length: 10_001 }, () => '10.0.0.1') },
      'at most 10000 are allowed',
    ],
  ])('%s is a precise error that names the key', (_, keys, message) => {
    const error = failure({ type: 'whereabouts', ...keys });
    expect(error.code).toBe(7);
    expect(error.details).toContain(message);
  });
});

describe('gateway, static addresses, routes', () => {
  test("Whereabouts' static parameters test: allocated range, then static addresses", () => {
    const l = loaded({
      type: 'whereabouts',
      range: '192.168.1.44/28',
      gateway: '192.168.1.1',
      addresses: [
        { address: '10.10.0.1/24', gateway: '10.10.0.254' },
        { address: '3ffe:ffff:0:01ff::1/64', gateway: '3ffe:ffff:0::1' },
      ],
      routes: [
        { dst: '0.0.0.0/0' },
        { dst: '192.168.0.0/16', gw: '10.10.5.1' },
        { dst: '3ffe:ffff:0:01ff::1/64' },
      ],
    });
    expect(ranges(l)).toEqual(['192.168.1.32/28 192.168.1.33-192.168.1.46']);
    expect(
      l.config.addresses.map((a) => `${formatCidr(a.address)} gw ${a.gateway ? formatIP(a.gateway) : '-'}`),
    ).toEqual(['10.10.0.1/24 gw 10.10.0.254', '3ffe:ffff:0:1ff::1/64 gw 3ffe:ffff::1']);
    expect(l.config.routes).toHaveLength(3);
  });

  test('CNI_ARGS IP= and GATEWAY=: each gateway goes to the addresses whose subnet holds it', () => {
    const l = loaded(
      { type: 'whereabouts', range: '10.0.0.0/24' },
      {
        args: 'IP=192.168.5.10/24, 2001:db8:5::10/64;GATEWAY=192.168.5.1,2001:db8:5::1;K8S_POD_NAME=a;K8S_POD_NAMESPACE=b',
      },
    );
    expect(
      l.config.addresses.map((a) => `${formatCidr(a.address)} gw ${a.gateway ? formatIP(a.gateway) : '-'}`),
    ).toEqual(['192.168.5.10/24 gw 192.168.5.1', '2001:db8:5::10/64 gw 2001:db8:5::1']);
  });

  test('the gateway of a dual-stack config applies to its own family', () => {
    const l = loaded({
      type: 'whereabouts',
      ipRanges: [{ range: '10.0.0.0/24' }, { range: '2001:db8::/64' }],
      gateway: '10.0.0.1',
    });
    expect(l.config.gateway).toEqual(ipOf(4, 0x0a000001n));
  });

  test.each<[string, Record<string, unknown>, string]>([
    [
      'gateway of the wrong family',
      { range: '10.0.0.0/24', gateway: '2001:db8::1' },
      'ipam.gateway: 2001:db8::1 is IPv6 but no range is IPv6',
    ],
    [
      'gateway not an IP',
      { range: '10.0.0.0/24', gateway: '10.0.0.300' },
      'ipam.gateway: "10.0.0.300" is not an IP address',
    ],
    [
      'static address without prefix',
      { addresses: [{ address: '10.10.0.1' }] },
      'ipam.addresses[0].address: "10.10.0.1" is not an address with a prefix length',
    ],
    [
      'static gateway of the wrong family',
      { addresses: [{ address: '10.10.0.1/24', gateway: '::1' }] },
      'ipam.addresses[0]: gateway ::1 is IPv6 but the address is IPv4',
    ],
    [
      'route without dst',
      { range: '10.0.0.0/24', routes: [{ gw: '10.0.0.1' }] },
      'ipam.routes[0].dst: "" is not a CIDR',
    ],
    [
      'route with a bad key',
      { range: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', via: '10.0.0.1' }] },
      'unknown key "via" with value "10.0.0.1" in ipam.routes[0]',
    ],
    [
      'a key whose name says it may hold a secret: its value is not repeated',
      { range: '10.0.0.0/24', kubernetes: { kubeconfig: '/k', bearer_token: 's3cr3t-value' } },
      'unknown key "bearer_token" in ipam.kubernetes',
    ],
  ])('%s', (_, keys, message) => {
    const error = failure({ type: 'whereabouts', ...keys });
    expect([2, 7]).toContain(error.code);
    expect(error.details).toContain(message);
  });
});

describe('other keys', () => {
  test.each([
    ['/22', 22],
    ['22', 22],
    ['/24', 24],
  ])('node_slice_size %s', (text, size) => {
    expect(
      loaded({ type: 'whereabouts', range: '10.0.0.0/16', node_slice_size: text }).config.nodeSliceSize,
    ).toBe(size);
  });

  test('node_slice_size in a dual-stack config cuts the other family into as many slices', () => {
    const l = loaded({
      type: 'whereabouts',
      ipRanges: [{ range: '10.0.0.0/16' }, { range: '2001:db8::/64' }],
      node_slice_size: '/26',
    });
    expect(l.config.ranges.map((r) => r.slicePrefix)).toEqual([26, 74]);
    const v6 = loaded({
      type: 'whereabouts',
      ipRanges: [{ range: '10.0.0.0/16' }, { range: '2001:db8::/112' }],
      node_slice_size: '/120',
    });
    expect(v6.config.ranges.map((r) => r.slicePrefix)).toEqual([24, 120]);
    expect(
      failure({
        type: 'whereabouts',
        ipRanges: [{ range: '10.0.0.0/16' }, { range: '2001:db8::/124' }],
        node_slice_size: '/24',
      }).details,
    ).toContain(
      'ipam.node_slice_size /24 cuts 10.0.0.0/16 into 2^8 slices, and 2001:db8::/124 is too small to be cut into as many',
    );
    expect(
      failure({
        type: 'whereabouts',
        ipRanges: [{ range: '10.0.0.0/16' }, { range: '10.1.0.0/28' }],
        node_slice_size: '/24',
      }).details,
    ).toContain('ipam.node_slice_size /24 does not fit the range 10.1.0.0/28');
    expect(
      failure({ type: 'whereabouts', range: '2001:db8::/64', node_slice_size: '/26' }).details,
    ).toContain(
      'ipam.node_slice_size /26 does not fit the range 2001:db8::/64: it must be between /64 and /128',
    );
  });

  test.each([
    ['abc', 'must be a prefix length such as "/26" or "26"'],
    ['/2a', 'must be a prefix length'],
    ['/8', 'does not fit the range 10.0.0.0/16: it must be between /16 and /32'],
    ['/33', 'does not fit the range 10.0.0.0/16'],
    ['/30', 'divides 10.0.0.0/16 into 2^14 slices; at most 8192 are supported'],
  ])('node_slice_size %s is refused', (text, message) => {
    expect(failure({ type: 'whereabouts', range: '10.0.0.0/16', node_slice_size: text }).details).toContain(
      message,
    );
  });

  test('network_name must be usable in object names', () => {
    expect(
      failure({ type: 'whereabouts', range: '10.0.0.0/24', network_name: 'Blue_Net' }).details,
    ).toContain('ipam.network_name: "Blue_Net" must be lower-case letters');
  });

  test('an unknown log level is accepted with a warning, as Whereabouts kept going', () => {
    const l = loaded({ type: 'whereabouts', range: '10.0.0.0/24', log_level: 'info' });
    expect(l.config.logLevel).toBe('verbose');
    expect(l.warnings).toEqual([
      'ipam.log_level "info" is not one of panic, error, verbose, debug; using verbose',
    ]);
  });

  test('keys that only mattered to removed features are accepted; meaningful ones warn', () => {
    const l = loaded({
      type: 'whereabouts',
      range: '10.0.0.0/24',
      datastore: 'etcd',
      etcd_host: 'x',
      sleep_for_race: 2,
    });
    expect(l.warnings).toEqual([
      'ipam.datastore "etcd" is ignored: the Kubernetes API is the only datastore',
      'ipam.etcd_* keys are ignored: the Kubernetes API is the only datastore',
      'ipam.sleep_for_race is ignored',
    ]);
  });
});

describe('malformed input', () => {
  test('an unknown key is refused with code 2, naming key and value, with a suggestion', () => {
    const error = failure({ type: 'whereabouts', range: '10.0.0.0/24', rnage_start: '10.0.0.5' });
    expect(error).toEqual({
      code: 2,
      msg: 'Unsupported field in network configuration',
      details: 'unknown key "rnage_start" with value "10.0.0.5" in ipam (did you mean "range_start"?)',
    });
  });

  test('host-local keys are not silently ignored', () => {
    expect(failure({ type: 'whereabouts', ranges: [[{ subnet: '10.0.0.0/24' }]] }).details).toContain(
      'unknown key "ranges"',
    );
  });

  test('one key spelled twice is a conflict', () => {
    expect(failure({ type: 'whereabouts', range: '10.0.0.0/24', Range: '10.1.0.0/24' }).details).toBe(
      'ipam sets "range" twice, as "range" and as "Range"',
    );
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['string expected', { range: 24 }, 'ipam.range must be a string, got a number'],
    [
      'bool expected',
      { range: '10.0.0.0/24', enable_overlapping_ranges: 'true' },
      'ipam.enable_overlapping_ranges must be true or false, got a string',
    ],
    [
      'list of strings expected',
      { range: '10.0.0.0/24', exclude: '10.0.0.1' },
      'ipam.exclude must be a list of strings, got a string',
    ],
    [
      'integer expected',
      { range: '10.0.0.0/24', leader_lease_duration: 1.5 },
      'ipam.leader_lease_duration must be an integer, got a number',
    ],
    [
      'object expected',
      { range: '10.0.0.0/24', kubernetes: '/path' },
      'ipam.kubernetes must be an object, got a string',
    ],
  ])('wrong type: %s', (_, keys, message) => {
    const error = failure({ type: 'whereabouts', ...keys });
    expect(error.code).toBe(7);
    expect(error.details).toBe(message);
  });

  test('stdin that is not JSON is a decode error (6) that does not echo the input', () => {
    const result = loadConfig({ stdin: '{"ipam": { secret-token }', cniArgs: '' });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(6);
      expect(result.error.details).toBe(
        "the network configuration on stdin is not valid JSON: invalid JSON at line 1 column 12: Expected property name or '}'",
      );
      expect(result.error.details).not.toContain('secret');
    }
  });

  test.each([
    ['', 'the JSON ends too early'],
    ['[1,2]', 'must be a JSON object, got an array'],
    ['"x"', 'must be a JSON object, got a string'],
  ])('stdin %#', (stdin, message) => {
    const result = loadConfig({ stdin, cniArgs: '' });
    expect(!result.ok && result.error.code === 6 && result.error.details.includes(message)).toBe(true);
  });

  test('deeply nested input is refused cleanly', () => {
    const deep = `{"ipam":${'['.repeat(500_000)}${']'.repeat(500_000)}}`;
    const result = loadConfig({ stdin: deep, cniArgs: '' });
    expect(!result.ok && result.error.details).toBe('ipam must be an object, got an array');
  });

  test('a config without ipam, or for another IPAM type, is refused', () => {
    const missing = loadConfig({ stdin: '{"cniVersion":"1.0.0","name":"x"}', cniArgs: '' });
    expect(!missing.ok && missing.error.details).toBe('the network configuration has no "ipam" key');
    expect(failure({ type: 'host-local', subnet: '10.0.0.0/24' }).details).toContain('unknown key "subnet"');
    expect(failure({ type: 'host-local' }).details).toBe(
      'ipam.type is "host-local"; this plugin only handles "whereabouts"',
    );
    expect(failure({ range: '10.0.0.0/24' }).details).toBe(
      'ipam.type is missing; this plugin only handles "whereabouts"',
    );
  });
});

describe('CNI_ARGS', () => {
  const ipam = { type: 'whereabouts', range: '10.0.0.0/24' };
  test('pod identity and the Kubernetes keys runtimes send', () => {
    const l = loaded(ipam, {
      args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234;FOO=bar',
    });
    expect(l.args).toEqual({ podNamespace: 'ns', podName: 'web-0', infraContainerId: 'abc', podUid: '1234' });
  });

  test.each([
    ['K8S_POD_NAME=a;FOO=bar', 'CNI_ARGS: unknown keys "FOO" (set IgnoreUnknown=1 to ignore them)'],
    ['IgnoreUnknown=0;FOO=bar', 'CNI_ARGS: unknown keys "FOO"'],
    ['IgnoreUnknown=yes', 'CNI_ARGS: IgnoreUnknown must be 1, 0, true or false, got "yes"'],
    ['K8S_POD_NAME', 'CNI_ARGS: "K8S_POD_NAME" is not a KEY=VALUE pair'],
    ['A=b=c;IgnoreUnknown=1', 'CNI_ARGS: "A=b=c" is not a KEY=VALUE pair'],
    ['IgnoreUnknown=1;IP=10.0.0.1', 'CNI_ARGS: IP entry "10.0.0.1" is not an address with a prefix length'],
    ['IgnoreUnknown=1;IP=10.0.0.1/24;GATEWAY=x', 'CNI_ARGS: GATEWAY entry "x" is not an IP address'],
  ])('%s → code 4', (args, message) => {
    const error = failure(ipam, { args });
    expect(error.code).toBe(4);
    expect(error.details).toContain(message);
  });

  test('keys are case-sensitive, as in libcni', () => {
    expect(failure(ipam, { args: 'k8s_pod_name=a' }).details).toContain('unknown keys "k8s_pod_name"');
  });
});

describe('runtimeConfig.ips (the ips capability)', () => {
  const ipam = { type: 'whereabouts', ipRanges: [{ range: '10.0.0.0/24' }, { range: '2001:db8::/64' }] };
  test('each requested address is taken from the range that contains it', () => {
    const l = loaded(ipam, { extra: { runtimeConfig: { ips: ['2001:db8::42/64', '10.0.0.42'] } } });
    expect(l.config.ranges.map((r) => r.requested)).toEqual([
      0x0a00002an,
      0x20010db8000000000000000000000042n,
    ]);
  });

  test.each<[unknown, string]>([
    [['10.9.0.1'], 'runtimeConfig.ips: 10.9.0.1 is not inside any configured range'],
    [
      ['10.0.0.1', '10.0.0.2'],
      'runtimeConfig.ips: 10.0.0.2 is not inside any configured range that is not already given',
    ],
    [['nope'], 'runtimeConfig.ips: "nope" is not an IP address'],
    ['10.0.0.1', 'runtimeConfig.ips must be a list of IP addresses'],
  ])('%j is refused', (ips, message) => {
    expect(failure(ipam, { extra: { runtimeConfig: { ips } } }).details).toContain(message);
  });

  test('other runtimeConfig capabilities belong to other plugins and are left alone', () => {
    const l = loaded(ipam, { extra: { runtimeConfig: { portMappings: [], bandwidth: {} } } });
    expect(l.config.ranges.map((r) => r.requested)).toEqual([undefined, undefined]);
  });
});

describe('the flat file', () => {
  const nad = { type: 'whereabouts', range: '10.0.0.0/24' };
  const kubeconfig = '/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig';
  const installerFile = {
    datastore: 'kubernetes',
    configuration_path: '/etc/cni/net.d/whereabouts.d',
    kubernetes: { kubeconfig },
    reconciler_cron_expression: '30 4 * * *',
  };

  test('fills what the NAD leaves empty', () => {
    const l = loaded(nad, { flat: installerFile });
    expect(l.flatFile).toBe(join(dir, 'whereabouts.conf'));
    expect(l.config.kubeconfig).toBe(kubeconfig);
    expect(l.config.configurationPath).toBe('/etc/cni/net.d/whereabouts.d');
  });

  test('the NAD wins; nested objects are filled key by key; empty NAD values are filled', () => {
    const l = loaded(
      {
        ...nad,
        log_level: 'debug',
        kubernetes: { kubeconfig: '' },
        dns: { domain: 'nad.example' },
        gateway: '',
      },
      {
        flat: {
          log_level: 'error',
          gateway: '10.0.0.1',
          dns: { domain: 'flat.example', nameservers: ['1.1.1.1'] },
          ...installerFile,
        },
      },
    );
    expect(l.config.logLevel).toBe('debug');
    expect(l.config.kubeconfig).toBe(kubeconfig);
    expect(l.config.dns).toEqual({ domain: 'nad.example', nameservers: ['1.1.1.1'] });
    expect(l.config.gateway).toEqual(ipOf(4, 0x0a000001n));
  });

  test('may even supply the range', () => {
    expect(ranges(loaded({ type: 'whereabouts' }, { flat: { range: '10.5.0.0/16' } }))).toEqual([
      '10.5.0.0/16 10.5.0.1-10.5.255.254',
    ]);
  });

  test.each([
    [true, false, true],
    [false, true, false],
    [undefined, false, true],
  ])('enable_overlapping_ranges is never taken from it (NAD %s, file %s → %s)', (inNad, inFile, expected) => {
    const ipam = inNad === undefined ? nad : { ...nad, enable_overlapping_ranges: inNad };
    expect(loaded(ipam, { flat: { enable_overlapping_ranges: inFile } }).config.overlappingRanges).toBe(
      expected,
    );
  });

  test('the first existing file in the search order wins', () => {
    const first = join(dir, 'first.conf');
    const second = join(dir, 'second.conf');
    writeFileSync(second, JSON.stringify({ log_level: 'error' }));
    expect(loaded(nad, { flatPaths: [first, second] }).config.logLevel).toBe('error');
    writeFileSync(first, JSON.stringify({ log_level: 'debug' }));
    expect(loaded(nad, { flatPaths: [first, second] }).config.logLevel).toBe('debug');
  });

  test("the NAD's configuration_path comes first and may name the file or its directory", () => {
    const own = join(dir, 'own');
    mkdirSync(own);
    writeFileSync(join(own, 'whereabouts.conf'), JSON.stringify({ log_level: 'panic' }));
    expect(
      loaded({ ...nad, configuration_path: own }, { flat: { log_level: 'error' } }).config.logLevel,
    ).toBe('panic');
    expect(loaded({ ...nad, configuration_path: join(own, 'whereabouts.conf') }).config.logLevel).toBe(
      'panic',
    );
  });

  test('a file that is not JSON is refused without quoting it', () => {
    const error = failure(nad, { flat: 'token: super-secret-token\n' });
    expect(error.code).toBe(6);
    expect(error.details).toBe(`the flat file ${join(dir, 'whereabouts.conf')} is not valid: invalid JSON`);
    expect(error.details).not.toContain('secret');
  });

  test('unknown keys in it are named, without their values', () => {
    const error = failure(nad, { flat: { password: 'hunter2' } });
    expect(error.details).toBe(`unknown key "password" in the flat file ${join(dir, 'whereabouts.conf')}`);
  });

  test('a file named by the NAD never has its values quoted in errors', () => {
    const target = join(dir, 'target.json');
    writeFileSync(target, JSON.stringify({ range: 'my-secret-value' }));
    const error = failure({ type: 'whereabouts', configuration_path: target });
    expect(error.details).not.toContain('my-secret-value');
    expect(error.details).toContain('named by ipam.configuration_path');
    // Errors in the NAD's own keys are still shown in full.
    writeFileSync(target, JSON.stringify({ log_level: 'debug' }));
    expect(failure({ ...nad, configuration_path: target, gateway: 'bad-gw' }).details).toBe(
      'ipam.gateway: "bad-gw" is not an IP address',
    );
  });

  test('a huge file is refused unread', () => {
    const error = failure(nad, { flat: `{"x":"${'a'.repeat(2 << 20)}"}` });
    expect(error.details).toContain('is larger than 1048576 bytes');
  });
});

describe('loadForRelease: what DEL of a refused config still reads', () => {
  const release = (ipam: unknown, options: Options & { stdin?: string } = {}) => {
    const flatPath = join(dir, 'whereabouts.conf');
    if (options.flat !== undefined) writeFileSync(flatPath, JSON.stringify(options.flat));
    return loadForRelease({
      stdin: options.stdin ?? JSON.stringify({ cniVersion: '1.1.0', name: 'mynet', ipam }),
      cniArgs: options.args ?? 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=Not_A_Pod',
      flatFilePaths: [flatPath],
    });
  };

  test('the pod and the kubeconfig of a config loadConfig refuses: the NAD wins, else the flat file', () => {
    const refused = { type: 'whereabouts', rnage: '10.0.0.0/24', Kubernetes: { KubeConfig: '/nad/kc' } };
    expect(failure(refused).code).toBe(2);
    expect(
      release(refused, { flat: { kubernetes: { kubeconfig: '/flat/kc' }, log_level: 'DEBUG' } }),
    ).toEqual({
      ok: true,
      value: {
        podRef: 'default/Not_A_Pod',
        kubeconfig: '/nad/kc',
        flatFile: join(dir, 'whereabouts.conf'),
        logLevel: 'debug',
      },
    });
    const fromFlat = release(
      { type: 'whereabouts', range_start: 5 },
      { flat: { kubernetes: { kubeconfig: '/flat/kc' } } },
    );
    expect(fromFlat.ok && fromFlat.value.kubeconfig).toBe('/flat/kc');
  });

  test.each<[string, unknown, { stdin?: string; args?: string }, number]>([
    ['stdin that is not JSON', {}, { stdin: '{"ipam": ' }, 7],
    ['another IPAM type', { type: 'host-local' }, {}, 7],
    [
      'CNI_ARGS naming no pod',
      { type: 'whereabouts' },
      { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default' },
      7,
    ],
    ['CNI_ARGS that cannot be read', { type: 'whereabouts' }, { args: 'K8S_POD_NAME=a;FOO=bar' }, 4],
  ])('%s: nothing to release with', (_, ipam, options, code) => {
    const result = release(ipam, options);
    expect(result.ok ? undefined : result.error.code).toBe(code);
  });
});
