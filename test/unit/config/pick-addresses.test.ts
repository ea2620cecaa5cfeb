// `pick_addresses` and `exclude_gateway` as the plugin reads them: where each key is accepted, what every
// wrong entry answers (code 7 naming the entry, nothing written), and what the resulting ranges hand out.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkNad } from '../../../src/config/check-nad.ts';
import { checkForAdd, loadConfig, type Loaded } from '../../../src/config/load.ts';
import type { IpamError, Result } from '../../../src/errors.ts';
import { formatIP, ipOf } from '../../../src/ip/address.ts';
import { rangeCapacity, rangeOffers, type Range } from '../../../src/ip/range.ts';
import { withinSlice } from '../../../src/slices/layout.ts';
import { cidr, ip } from '../../support/ip.ts';

function load(ipam: Record<string, unknown>, runtimeIps?: string[]): Result<Loaded> {
  return loadConfig({
    stdin: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'mynet',
      type: 'macvlan',
      ...(runtimeIps === undefined ? {} : { runtimeConfig: { ips: runtimeIps } }),
      ipam: { type: 'whereabouts', ...ipam },
    }),
    cniArgs: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a',
    flatFilePaths: [],
  });
}

function loaded(ipam: Record<string, unknown>, runtimeIps?: string[]): Loaded {
  const result = load(ipam, runtimeIps);
  if (!result.ok) throw new Error(`expected success, got ${JSON.stringify(result.error)}`);
  return result.value;
}

function failure(ipam: Record<string, unknown>, runtimeIps?: string[]): IpamError {
  const result = load(ipam, runtimeIps);
  if (result.ok) throw new Error('expected an error');
  return result.error;
}

const rangeOf = (l: Loaded, i = 0): Range => {
  const r = l.config.ranges[i];
  if (r === undefined) throw new Error(`no range ${i}`);
  return r.range;
};

/** The picks of a range as text, in order of preference. */
const picksOf = (r: Range): string[] =>
  (r.picks ?? []).map(({ lo, hi }) => {
    const text = (v: bigint) => formatIP(ipOf(r.subnet.family, v));
    return lo === hi ? text(lo) : `${text(lo)}-${text(hi)}`;
  });

describe('pick_addresses', () => {
  test('per ipRanges entry and at the top level for range, in the order written', () => {
    const l = loaded({
      range: '10.0.0.0/24',
      pick_addresses: ['10.0.0.50', '10.0.0.16/30', ' 10.0.0.3 '],
      ipRanges: [{ range: '2001:db8::/64', pick_addresses: ['2001:db8::a', '2001:db8::5/128'] }],
    });
    expect(picksOf(rangeOf(l))).toEqual(['10.0.0.50', '10.0.0.16-10.0.0.19', '10.0.0.3']);
    expect(rangeCapacity(rangeOf(l))).toBe(6n);
    expect(picksOf(rangeOf(l, 1))).toEqual(['2001:db8::a', '2001:db8::5']);
    expect(l.warnings).toEqual([]);
  });

  test('absent, null or empty: the range as before', () => {
    for (const pick of [undefined, null, []]) {
      const r = rangeOf(loaded({ range: '10.0.0.0/24', pick_addresses: pick }));
      expect(r.picks).toBeUndefined();
      expect(rangeCapacity(r)).toBe(254n);
    }
  });

  test('with range_start/range_end: entries must lie between them; a block is cut to them', () => {
    const r = rangeOf(
      loaded({
        range: '10.0.0.0/24',
        range_start: '10.0.0.10',
        range_end: '10.0.0.20',
        pick_addresses: ['10.0.0.20', '10.0.0.0/28'],
      }),
    );
    expect(picksOf(r)).toEqual(['10.0.0.20', '10.0.0.10-10.0.0.15']);
  });

  test('exclusions still apply, and a list that is wholly excluded fails ADD before anything is written', () => {
    const l = loaded({
      range: '10.0.0.0/24',
      pick_addresses: ['10.0.0.5', '10.0.0.6'],
      exclude: ['10.0.0.5'],
    });
    expect(rangeOffers(rangeOf(l), ip('10.0.0.5'))).toBe(false);
    expect(rangeCapacity(rangeOf(l))).toBe(1n);
    const none = loaded({ range: '10.0.0.0/24', pick_addresses: ['10.0.0.5'], exclude: ['10.0.0.0/29'] });
    expect(none.warnings).toEqual([
      'range 10.0.0.0/24 can hand out no address by itself (all are excluded): ADD succeeds only with a requested address (runtimeConfig.ips)',
    ]);
    const add = checkForAdd(none);
    expect(add.ok || add.error.code).toBe(7);
  });

  test.each<[string, Record<string, unknown>, string]>([
    [
      'an address outside the range',
      { range: '10.0.0.0/24', pick_addresses: ['10.0.0.5', '10.0.1.5'] },
      'ipam.pick_addresses[1]: 10.0.1.5 is outside the range 10.0.0.0/24',
    ],
    [
      'a block reaching outside the range',
      { ipRanges: [{ range: '10.0.0.0/24', pick_addresses: ['10.0.0.0/23'] }] },
      'ipam.ipRanges[0].pick_addresses[0]: 10.0.0.0/23 is outside the range 10.0.0.0/24',
    ],
    [
      'the network address',
      { range: '10.0.0.0/24', pick_addresses: ['10.0.0.0'] },
      'ipam.pick_addresses[0]: 10.0.0.0 is not an address the range hands out: those are 10.0.0.1 to 10.0.0.254 (never the network or broadcast address, nor outside range_start/range_end)',
    ],
    [
      'an address before range_start',
      { range: '10.0.0.0/24', range_start: '10.0.0.100', pick_addresses: ['10.0.0.150', '10.0.0.99'] },
      'ipam.pick_addresses[1]: 10.0.0.99 is not an address the range hands out: those are 10.0.0.100 to 10.0.0.254',
    ],
    [
      'the other family',
      { range: '10.0.0.0/24', pick_addresses: ['2001:db8::1'] },
      'ipam.pick_addresses[0]: 2001:db8::1 is IPv6 but the range 10.0.0.0/24 is IPv4',
    ],
    [
      'host bits in a block',
      { range: '10.0.0.0/24', pick_addresses: ['10.0.0.5/30'] },
      'ipam.pick_addresses[0]: 10.0.0.5/30 has host bits set: write 10.0.0.5 for the one address or 10.0.0.4/30 for the block',
    ],
    [
      'not an address',
      { range: '10.0.0.0/24', pick_addresses: ['10.0.0.x'] },
      'ipam.pick_addresses[0]: "10.0.0.x" is neither an IP address nor a CIDR',
    ],
    [
      'too many entries',
      { range: '10.0.0.0/16', pick_addresses: Array.from({ length: 10_001 }, () => '10.0.0.1') },
      'ipam.pick_addresses lists 10001 entries; at most 10000 are allowed',
    ],
  ])('%s: code 7 naming the entry', (_, ipam, details) => {
    const error = failure(ipam);
    expect(error.code).toBe(7);
    expect(error.details).toContain(details);
  });

  test('not a list of strings: code 7', () => {
    expect(failure({ range: '10.0.0.0/24', pick_addresses: '10.0.0.5' })).toMatchObject({
      code: 7,
      details: 'ipam.pick_addresses must be a list of strings, got a string',
    });
  });

  test('top-level pick_addresses without a top-level range is dropped with a warning', () => {
    const l = loaded({ ipRanges: [{ range: '10.0.0.0/24' }], pick_addresses: ['10.0.0.5'] });
    expect(rangeOf(l).picks).toBeUndefined();
    expect(l.warnings).toContain(
      'ipam.pick_addresses is ignored because there is no top-level ipam.range (it does not apply to ipRanges)',
    );
  });

  test('node slices: each slice hands out the entries inside it, in list order', () => {
    const l = loaded({
      range: '10.0.0.0/24',
      node_slice_size: '/26',
      pick_addresses: ['10.0.0.70', '10.0.0.5', '10.0.0.66'],
    });
    const r = rangeOf(l);
    expect(picksOf(withinSlice(r, cidr('10.0.0.64/26')) as Range)).toEqual(['10.0.0.70', '10.0.0.66']);
    expect(picksOf(withinSlice(r, cidr('10.0.0.0/26')) as Range)).toEqual(['10.0.0.5']);
    expect(withinSlice(r, cidr('10.0.0.128/26'))).toBeUndefined();
  });
});

describe('exclude_gateway', () => {
  test('the gateway is never handed out by the range holding it, also when it is picked', () => {
    const l = loaded({
      range: '10.0.0.0/24',
      gateway: '10.0.0.1',
      exclude_gateway: true,
      ipRanges: [{ range: '2001:db8::/64' }],
    });
    expect(rangeOffers(rangeOf(l), ip('10.0.0.1'))).toBe(false);
    expect(rangeCapacity(rangeOf(l))).toBe(253n);
    expect(rangeCapacity(rangeOf(l, 1))).toBe((1n << 64n) - 2n);
    expect(l.config.gateway).toEqual({ family: 4, value: ip('10.0.0.1') });
    const picked = loaded({
      range: '10.0.0.0/24',
      gateway: '10.0.0.1',
      exclude_gateway: true,
      pick_addresses: ['10.0.0.1', '10.0.0.2'],
    });
    expect(rangeCapacity(rangeOf(picked))).toBe(1n);
    expect(rangeOffers(rangeOf(picked), ip('10.0.0.2'))).toBe(true);
  });

  test('false or absent: the gateway is handed out, as in Whereabouts', () => {
    for (const exclude_gateway of [false, undefined]) {
      const l = loaded({ range: '10.0.0.0/24', gateway: '10.0.0.1', exclude_gateway });
      expect(rangeOffers(rangeOf(l), ip('10.0.0.1'))).toBe(true);
    }
  });

  test('no gateway, or one in no range: no effect, with a warning', () => {
    const none = loaded({ range: '10.0.0.0/24', exclude_gateway: true });
    expect(rangeCapacity(rangeOf(none))).toBe(254n);
    expect(none.warnings).toEqual([
      'ipam.exclude_gateway has no effect: there is no ipam.gateway to exclude',
    ]);
    const outside = loaded({ range: '10.0.0.0/24', gateway: '10.9.0.1', exclude_gateway: true });
    expect(rangeCapacity(rangeOf(outside))).toBe(254n);
    expect(outside.warnings).toEqual([
      'ipam.exclude_gateway has no effect: the gateway 10.9.0.1 lies in no range',
    ]);
  });

  test('the gateway cannot be requested through runtimeConfig.ips either', () => {
    const error = failure({ range: '10.0.0.0/24', gateway: '10.0.0.1', exclude_gateway: true }, [
      '10.0.0.1/24',
    ]);
    expect(error).toMatchObject({
      code: 7,
      details:
        'runtimeConfig.ips: requested address 10.0.0.1 is the gateway, which ipam.exclude_gateway keeps from pods',
    });
    expect(
      loaded({ range: '10.0.0.0/24', gateway: '10.0.0.1' }, ['10.0.0.1']).config.ranges[0]?.requested,
    ).toBe(ip('10.0.0.1'));
  });

  test('a top-level key only, as upstream: in an ipRanges entry it is an unknown key (code 2)', () => {
    expect(failure({ ipRanges: [{ range: '10.0.0.0/24', exclude_gateway: true }] })).toMatchObject({
      code: 2,
      details: expect.stringContaining('unknown key "exclude_gateway"') as unknown,
    });
    expect(failure({ range: '10.0.0.0/24', exclude_gateway: 'yes' })).toMatchObject({
      code: 7,
      details: 'ipam.exclude_gateway must be true or false, got a string',
    });
  });
});

test('the example of docs/configuration.md loads without a warning and hands out what the text says', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Extensions: `pick_addresses`'), doc.indexOf('## The flat file'));
  const example = /```json\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const config = JSON.parse(example) as { ipam: Record<string, unknown> };
  const checks = checkNad(
    {
      metadata: { name: 'doc' },
      spec: {
        config: JSON.stringify({ ...config, ipam: { ...config.ipam, kubernetes: { kubeconfig: '/k' } } }),
      },
    },
    [],
  );
  expect(checks).toEqual([expect.objectContaining({ ok: true, warnings: [] })]);
  const l = loaded(config.ipam);
  expect(picksOf(rangeOf(l))).toEqual(['192.168.40.25', '192.168.40.10', '192.168.40.64-192.168.40.71']);
  expect(rangeCapacity(rangeOf(l))).toBe(9n);
  expect(rangeOffers(rangeOf(l), ip('192.168.40.66'))).toBe(false);
});
