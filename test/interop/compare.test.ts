// Why: configs.test.ts trusts compare.ts to hide only what may differ (the address chosen, the namespace)
// and to report everything else; a normaliser that hid too much would let a real difference pass. These
// checks need no server: made-up runs with one known difference each.

import {
  compareRuns,
  formatAddr,
  inSpans,
  parseAddr,
  reservationName,
  type Answer,
  type Run,
  type Writes,
} from './compare.ts';

const ok = (result: Record<string, unknown>): Answer => ({ exit: 0, result, raw: JSON.stringify(result) });
const failed = (code: number): Answer => ({ exit: 1, error: { code, msg: 'x' }, raw: '{}' });
const done: Answer = { exit: 0, raw: '' };
const empty: Writes = { pools: {}, reservations: {}, leases: [] };

/** A run that got `address` (offset `offset` of 10.0.0.0/24) in namespace `ns`. */
function run(ns: string, address: string, offset = address.split('.')[3] ?? '', gateway?: string): Run {
  const entry = { id: 'c1', podref: `${ns}/pod`, ifname: 'net1' };
  return {
    namespace: ns,
    containerId: 'c1',
    add: ok({
      cniVersion: '1.0.0',
      ips: [{ address: `${address}/24`, ...(gateway === undefined ? {} : { gateway }) }],
    }),
    afterAdd: {
      pools: { '10.0.0.0-24': { range: '10.0.0.0/24', allocations: { [offset]: entry } } },
      reservations: { [address]: { podref: `${ns}/pod`, ifname: 'net1' } },
      leases: [],
    },
    del: done,
    afterDel: { ...empty, pools: { '10.0.0.0-24': { range: '10.0.0.0/24', allocations: {} } } },
  };
}

test('different addresses in different namespaces, stored alike, are no difference', () => {
  expect(compareRuns(run('wb-1', '10.0.0.1'), run('ts-1', '10.0.0.9'), '')).toEqual([]);
});

test('an offset that is not the returned address is a difference of the pool', () => {
  const keys = compareRuns(run('wb-1', '10.0.0.1'), run('ts-1', '10.0.0.9', '10'), '').map((d) => d.key);
  expect(keys).toEqual(['add.pools']);
});

test('a gateway, a prefix length and a result key are differences', () => {
  const theirs = run('wb', '10.0.0.1', '1', '10.0.0.254');
  const ours = run('ts', '10.0.0.2');
  ours.add = ok({
    cniVersion: '1.0.0',
    ips: [{ address: '10.0.0.2/25' }],
    dns: { nameservers: ['1.1.1.1'] },
  });
  expect(compareRuns(theirs, ours, '').map((d) => d.key)).toEqual([
    'add.dns',
    'add.ips[0].address',
    'add.ips[0].gateway',
  ]);
});

test("Whereabouts' 999 matches our codes of config errors, not other codes", () => {
  const with_ = (w: Answer, o: Answer): string[] =>
    compareRuns({ ...run('a', '10.0.0.1'), add: w }, { ...run('b', '10.0.0.1'), add: o }, '')
      .map((d) => d.key)
      .filter((key) => key.startsWith('add.') && key !== 'add.pools' && key !== 'add.reservations');
  expect(with_(failed(999), failed(7))).toEqual([]);
  expect(with_(failed(6), failed(6))).toEqual([]);
  expect(with_(failed(999), failed(100))).toEqual(['add.code']);
  expect(with_(failed(1), failed(7))).toEqual(['add.code']);
  expect(with_(ok({ cniVersion: '1.0.0' }), failed(7))).toEqual(['add.outcome']);
});

test.each([
  ['10.1.2.3', '10.1.2.3', ''],
  ['2001:db8::1', '2001-db8--1', ''],
  ['2001::', '2001--0', ''],
  ['2001:db8:3::1:0', '2001-db8-3--1-0', ''],
  ['2001:0db8:0:0:1:0:0:1', '2001-db8--1-0-0-1', 'blue'],
])('%s: printed as Go prints it, its reservation named as Whereabouts names it', (text, name, net) => {
  const addr = parseAddr(text);
  expect(addr).toBeDefined();
  if (addr === undefined) return;
  expect(parseAddr(formatAddr(addr))).toEqual(addr);
  expect(reservationName(addr, net)).toBe(net === '' ? name : `${net}-${name}`);
});

test('spans: inclusive bounds, one family', () => {
  expect(inSpans('10.0.0.5', ['10.0.0.5-10.0.0.9'])).toBe(true);
  expect(inSpans('10.0.0.10', ['10.0.0.5-10.0.0.9'])).toBe(false);
  expect(inSpans('fd00::5', ['fd00::1-fd00::ff'])).toBe(true);
  expect(inSpans('10.0.0.7', ['10.0.0.7'])).toBe(true);
});
