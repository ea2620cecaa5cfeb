// A range with a pick list (`pick_addresses`): what it hands out, in which order, what it counts as
// capacity, and how slices and `exclude_gateway` cut it — checked against a model that walks every address.

import fc from 'fast-check';
import { inPickOrder } from '../../../src/allocator/assign.ts';
import { firstFreeIn, freeCount, freeSetOf, take } from '../../../src/ip/free-set.ts';
import type { Interval } from '../../../src/ip/interval.ts';
import { preferenceOrder, unpicked } from '../../../src/ip/pick-list.ts';
import { clipRange, rangeCapacity, rangeOffers, withoutAddress, type Range } from '../../../src/ip/range.ts';
import { ip, range, show } from '../../support/ip.ts';

const iv = (lo: number, hi = lo): Interval => ({ lo: BigInt(lo), hi: BigInt(hi) });
const shown = (r: Range, values: readonly bigint[]) => values.map((v) => show(r.subnet.family, v));

/** Every address the range hands out, in the order it hands them out on an empty pool. */
function handOutAll(r: Range): bigint[] {
  const free = freeSetOf(r, []);
  const order: bigint[] = [];
  for (let a = inPickOrder(free, r.picks ?? []); a !== undefined; a = inPickOrder(free, r.picks ?? [])) {
    order.push(a);
    take(free, a);
  }
  return order;
}

describe('preference order', () => {
  test('blocks keep their order; an address named twice stays where it was named first', () => {
    expect(preferenceOrder([iv(50), iv(10, 20), iv(15), iv(5, 60)])).toEqual([
      iv(50),
      iv(10, 20),
      iv(5, 9),
      iv(21, 49),
      iv(51, 60),
    ]);
    expect(preferenceOrder([iv(1, 4), iv(3, 8), iv(1, 8)])).toEqual([iv(1, 4), iv(5, 8)]);
    expect(preferenceOrder([])).toEqual([]);
  });

  test('the unpicked addresses are the gaps between the picked ones', () => {
    expect(unpicked([iv(50), iv(10, 20), iv(21, 22), iv(30)])).toEqual([iv(23, 29), iv(31, 49)]);
    expect(unpicked([iv(3)])).toEqual([]);
  });
});

describe('a range with a pick list', () => {
  test('hands out only the listed addresses, in the order listed, blocks lowest first', () => {
    const r = range('10.0.0.0/24', { pick: ['10.0.0.50', '10.0.0.8/30', '10.0.0.9', '10.0.0.3'] });
    expect(shown(r, handOutAll(r))).toEqual([
      '10.0.0.50',
      '10.0.0.8',
      '10.0.0.9',
      '10.0.0.10',
      '10.0.0.11',
      '10.0.0.3',
    ]);
    expect(rangeCapacity(r)).toBe(6n);
    expect([show(4, r.first), show(4, r.last)]).toEqual(['10.0.0.3', '10.0.0.50']);
    expect(rangeOffers(r, ip('10.0.0.4'))).toBe(false);
    expect(rangeOffers(r, ip('10.0.0.50'))).toBe(true);
  });

  test('exclusions still apply: excluded entries are skipped and not counted', () => {
    const r = range('10.0.0.0/24', {
      pick: ['10.0.0.7', '10.0.0.5', '10.0.0.16/29'],
      exclude: ['10.0.0.7', '10.0.0.16/30'],
    });
    expect(shown(r, handOutAll(r))).toEqual(['10.0.0.5', '10.0.0.20', '10.0.0.21', '10.0.0.22', '10.0.0.23']);
    expect(rangeCapacity(r)).toBe(5n);
  });

  test('a block is cut to the usable addresses and to range_start/range_end', () => {
    const r = range('10.0.0.0/24', {
      start: '10.0.0.2',
      end: '10.0.0.200',
      pick: ['10.0.0.0/30', '10.0.0.192/26'],
    });
    expect(shown(r, handOutAll(r))).toEqual([
      '10.0.0.2',
      '10.0.0.3',
      ...Array.from({ length: 9 }, (_, i) => `10.0.0.${192 + i}`),
    ]);
    // With nothing of the list inside the range it hands out nothing.
    const none = range('10.0.0.0/24', { end: '10.0.0.10', pick: ['10.0.0.100'] });
    expect(rangeCapacity(none)).toBe(0n);
    expect(handOutAll(none)).toEqual([]);
  });

  test('IPv6: a /64 block costs what one address costs', () => {
    const r = range('2001:db8::/48', { pick: ['2001:db8:0:5::/64', '2001:db8::7'] });
    expect(rangeCapacity(r)).toBe((1n << 64n) + 1n);
    const free = freeSetOf(r, [ip('2001:db8:0:5::')]);
    expect(show(6, inPickOrder(free, r.picks ?? []))).toBe('2001:db8:0:5::1');
  });

  test('exhaustion: once every picked address is taken there is none, though the subnet has room', () => {
    const r = range('10.0.0.0/24', { pick: ['10.0.0.9', '10.0.0.4'] });
    const free = freeSetOf(r, [ip('10.0.0.9'), ip('10.0.0.4')]);
    expect(inPickOrder(free, r.picks ?? [])).toBeUndefined();
    expect(freeCount(free)).toBe(0n);
  });
});

describe('slices and the gateway', () => {
  test('a slice hands out the entries inside it, in list order; a slice with none of them is no part', () => {
    const r = range('10.0.0.0/24', { pick: ['10.0.0.70', '10.0.0.5', '10.0.0.66', '10.0.0.200'] });
    const second = clipRange(r, ip('10.0.0.64'), ip('10.0.0.127'));
    expect(second?.picks).toEqual([
      { lo: ip('10.0.0.70'), hi: ip('10.0.0.70') },
      { lo: ip('10.0.0.66'), hi: ip('10.0.0.66') },
    ]);
    expect(second === undefined ? [] : shown(second, handOutAll(second))).toEqual(['10.0.0.70', '10.0.0.66']);
    expect(second === undefined ? 0n : rangeCapacity(second)).toBe(2n);
    expect(clipRange(r, ip('10.0.0.128'), ip('10.0.0.191'))).toBeUndefined();
    // Without a pick list a slice is cut as before.
    expect(clipRange(range('10.0.0.0/24'), ip('10.0.0.64'), ip('10.0.0.127'))).toEqual({
      subnet: r.subnet,
      first: ip('10.0.0.64'),
      last: ip('10.0.0.127'),
      exclusions: [],
    });
  });

  test('withoutAddress removes one address the range hands out, and leaves others alone', () => {
    const r = range('10.0.0.0/24', { pick: ['10.0.0.1', '10.0.0.2'] });
    const gatewayless = withoutAddress(r, ip('10.0.0.1'));
    expect(shown(gatewayless, handOutAll(gatewayless))).toEqual(['10.0.0.2']);
    expect(rangeCapacity(gatewayless)).toBe(1n);
    expect(withoutAddress(r, ip('10.0.0.3'))).toBe(r);
    const plain = withoutAddress(range('10.0.0.0/29'), ip('10.0.0.1'));
    expect(rangeCapacity(plain)).toBe(5n);
    expect(rangeOffers(plain, ip('10.0.0.1'))).toBe(false);
  });
});

test('firstFreeIn finds the lowest free address of a span', () => {
  const free = freeSetOf(range('10.0.0.0/24', { exclude: ['10.0.0.16/28'] }), [ip('10.0.0.10')]);
  const first = (lo: string, hi: string) => show(4, firstFreeIn(free, ip(lo), ip(hi)));
  expect(first('10.0.0.10', '10.0.0.12')).toBe('10.0.0.11');
  expect(first('10.0.0.10', '10.0.0.10')).toBeUndefined();
  expect(first('10.0.0.16', '10.0.0.31')).toBeUndefined();
  expect(first('10.0.0.16', '10.0.0.40')).toBe('10.0.0.32');
  expect(first('10.0.0.0', '10.0.0.0')).toBeUndefined();
  expect(first('10.0.0.255', '10.0.0.255')).toBeUndefined();
  expect(
    firstFreeIn(freeSetOf(range('10.0.0.0/30'), [ip('10.0.0.1'), ip('10.0.0.2')]), 0n, ip('10.0.0.3')),
  ).toBeUndefined();
});

// The model: walk the entries in order, address by address, skipping what is outside [first, last] of the
// range without a pick list, excluded, taken, or handed out already.
test('hands out exactly what a walk over the list would, in its order, and counts it as capacity', () => {
  const entry = fc.record({ offset: fc.integer({ min: -4, max: 70 }), bits: fc.integer({ min: 0, max: 3 }) });
  fc.assert(
    fc.property(
      fc.array(entry, { minLength: 1, maxLength: 10 }),
      fc.array(entry, { maxLength: 4 }),
      fc.array(fc.integer({ min: 0, max: 63 }), { maxLength: 20 }),
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 40, max: 63 }),
      (picks, excluded, taken, start, end) => {
        const text = (offset: number, bits: number) =>
          `10.1.0.${Math.min(Math.max(offset, 0), 63) & ~((1 << bits) - 1)}/${32 - bits}`;
        const base = range('10.1.0.0/26', { start: `10.1.0.${start}`, end: `10.1.0.${end}` });
        const r = range('10.1.0.0/26', {
          start: `10.1.0.${start}`,
          end: `10.1.0.${end}`,
          pick: picks.map((p) => text(p.offset, p.bits)),
          exclude: excluded.map((e) => text(e.offset, e.bits)),
        });
        const takenSet = new Set(taken.map((t) => ip(`10.1.0.${t}`)));
        const walk: bigint[] = [];
        for (const p of picks) {
          const lo = ip(text(p.offset, p.bits).split('/')[0] as string);
          for (let a = lo; a < lo + (1n << BigInt(p.bits)); a++) {
            const offered = a >= base.first && a <= base.last;
            const excludedHere = excluded.some((e) => {
              const elo = ip(text(e.offset, e.bits).split('/')[0] as string);
              return a >= elo && a < elo + (1n << BigInt(e.bits));
            });
            if (offered && !excludedHere && !walk.includes(a)) walk.push(a);
          }
        }
        expect(rangeCapacity(r)).toBe(BigInt(walk.length));
        for (const a of walk) expect(rangeOffers(r, a)).toBe(true);
        const free = freeSetOf(r, takenSet);
        const expected = walk.find((a) => !takenSet.has(a));
        expect(inPickOrder(free, r.picks ?? [])).toBe(expected);
      },
    ),
  );
});
