import fc from 'fast-check';
import {
  firstFreeIn,
  freeCount,
  freeIntervals,
  freeSetOf,
  nthFree,
  pickAmongLowest,
  take,
  type FreeSet,
} from '../../../src/ip/free-set.ts';
import { rangeOffers, type Range } from '../../../src/ip/range.ts';
import { ip, range, show } from '../../support/ip.ts';

/** The lowest free address of the set (of any family): the first free one anywhere. */
const lowestFree = (free: FreeSet): bigint | undefined => firstFreeIn(free, 0n, (1n << 128n) - 1n);
const isFree = (free: FreeSet, address: bigint): boolean => firstFreeIn(free, address, address) === address;
const lowest = (r: Range, taken: bigint[]) => show(r.subnet.family, lowestFree(freeSetOf(r, taken)));

describe('free set', () => {
  test('lowest free skips allocations and exclusions', () => {
    const r = range('192.168.1.0/24', { exclude: ['192.168.1.1', '192.168.1.4/30'] });
    expect(lowest(r, [])).toBe('192.168.1.2');
    expect(lowest(r, [ip('192.168.1.2'), ip('192.168.1.3')])).toBe('192.168.1.8');
    expect(lowest(r, [ip('10.0.0.1'), ip('192.168.1.200')])).toBe('192.168.1.2'); // outside entries are ignored
  });

  test('a full range has no free address', () => {
    const r = range('10.0.0.0/30');
    expect(lowestFree(freeSetOf(r, [ip('10.0.0.1'), ip('10.0.0.2')]))).toBeUndefined();
    const excluded = range('10.0.0.0/24', { exclude: ['10.0.0.0/24'] });
    expect(lowestFree(freeSetOf(excluded, []))).toBeUndefined();
  });

  test('IPv6 addresses ending in :: are assignable, as in Whereabouts', () => {
    const r = range('2001:db8:480:603d:304:403::/112', { start: '2001:db8:480:603d:304:403::' });
    expect(lowest(r, [])).toBe('2001:db8:480:603d:304:403:0:1');
    const wide = range('2001:db8:480:603d::/64');
    const free = freeSetOf(wide, []);
    expect(take(free, ip('2001:db8:480:603d:304:403::'))).toBe(true);
    expect(isFree(free, ip('2001:db8:480:603d:304:403::'))).toBe(false);
  });

  test('the far end of a /64 is reachable', () => {
    const r = range('2001:db8::/64', { start: '2001:db8::ffff:ffff:ffff:fff0' });
    expect(lowest(r, [])).toBe('2001:db8::ffff:ffff:ffff:fff0');
    expect(freeCount(freeSetOf(r, []))).toBe(15n);
  });

  test('take keeps the intervals exact', () => {
    const r = range('10.0.0.0/28');
    const free = freeSetOf(r, []);
    expect(take(free, ip('10.0.0.5'))).toBe(true);
    expect(take(free, ip('10.0.0.5'))).toBe(false);
    expect([...freeIntervals(free)]).toEqual([
      { lo: ip('10.0.0.1'), hi: ip('10.0.0.4') },
      { lo: ip('10.0.0.6'), hi: ip('10.0.0.14') },
    ]);
    expect(take(free, ip('10.0.0.0'))).toBe(false); // the network address is never offered
    expect(isFree(free, ip('10.0.0.5'))).toBe(false);
    expect(isFree(free, ip('10.0.0.3'))).toBe(true);
  });

  test('pickAmongLowest chooses only among the lowest free addresses', () => {
    const r = range('10.0.0.0/24', { exclude: ['10.0.0.3'] });
    const free = freeSetOf(r, [ip('10.0.0.1')]);
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 400; i++) seen.add(show(4, pickAmongLowest(free, 4, Math.random)));
    expect([...seen].sort()).toEqual(['10.0.0.2', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect(
      show(
        4,
        pickAmongLowest(free, 4, () => 0.999999),
      ),
    ).toBe('10.0.0.6');
    expect(
      pickAmongLowest(freeSetOf(range('10.0.0.0/30'), [ip('10.0.0.1'), ip('10.0.0.2')]), 8, Math.random),
    ).toBeUndefined();
  });
});

// A model of the free set: every address of a small range, checked one by one.
const arbitrarySmallRange = fc
  .record({
    v6: fc.boolean(),
    base: fc.bigInt({ min: 0n, max: (1n << 24n) - 1n }),
    prefix: fc.integer({ min: 0, max: 8 }), // host bits: ranges of 1 to 256 addresses
    start: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    span: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    exclusions: fc.array(
      fc.record({ offset: fc.integer({ min: -8, max: 263 }), bits: fc.integer({ min: 0, max: 4 }) }),
      {
        maxLength: 12,
      },
    ),
  })
  .map(({ v6, base, prefix, start, span, exclusions }) => {
    const family = v6 ? 6 : 4;
    const bits = family === 4 ? 32 : 128;
    const network = (v6 ? (0x20010db8n << 96n) | (base << 40n) : base << 8n) & ~((1n << BigInt(prefix)) - 1n);
    const text = (value: bigint) => show(family, value) as string;
    const subnet = `${text(network)}/${bits - prefix}`;
    const size = 1n << BigInt(prefix);
    const first = start === undefined ? undefined : network + (BigInt(start) % size);
    const last = first === undefined || span === undefined ? undefined : first + BigInt(span);
    const excluded = exclusions.map(({ offset, bits: b }) => {
      const value = (network + BigInt(offset)) & ~((1n << BigInt(b)) - 1n);
      return `${text(value < 0n ? 0n : value)}/${bits - b}`;
    });
    const options: { start?: string; end?: string; exclude: string[] } = { exclude: excluded };
    if (first !== undefined) options.start = text(first);
    if (last !== undefined && last < network + size) options.end = text(last);
    return range(subnet, options);
  });

const addressesOf = (r: Range): bigint[] => {
  const all: bigint[] = [];
  for (let a = r.first; a <= r.last; a++) all.push(a);
  return all;
};

// A release is never returned to a set: the transaction's next read builds a new one (`freeSetOf`).
test('property: the free set agrees with an address-by-address model under any sequence of takes and re-reads', () => {
  fc.assert(
    fc.property(
      arbitrarySmallRange,
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: -4, max: 300 })), { maxLength: 80 }),
      (r, ops) => {
        const network = r.first;
        const taken = new Set<bigint>();
        let free = freeSetOf(r, []);
        for (const [isTake, offset] of ops) {
          const address = network + BigInt(offset);
          if (isTake) {
            const wasFree = rangeOffers(r, address) && !taken.has(address);
            expect(take(free, address)).toBe(wasFree);
            if (wasFree) taken.add(address);
          } else {
            taken.delete(address);
            free = freeSetOf(r, taken);
          }
          const model = addressesOf(r).filter((a) => rangeOffers(r, a) && !taken.has(a));
          expect(lowestFree(free)).toBe(model[0]);
          expect(freeCount(free)).toBe(BigInt(model.length));
          expect(nthFree(free, 3n)).toBe(model[3]);
          const intervals = [...freeIntervals(free)];
          for (let i = 1; i < intervals.length; i++)
            expect(intervals[i]!.lo > intervals[i - 1]!.hi + 1n).toBe(true); // disjoint, not touching
        }
        // Building from scratch gives the same set as the sequence of operations.
        expect(freeSetOf(r, taken)).toEqual(free);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: a heavily fragmented set (many blocks) stays exact under takes and re-reads', () => {
  const r = range('10.0.0.0/22'); // 1022 usable addresses
  const modelIntervals = (isTaken: boolean[]) => {
    const out: { lo: bigint; hi: bigint }[] = [];
    for (let i = 0; i < isTaken.length; i++) {
      if (isTaken[i]) continue;
      const address = r.first + BigInt(i);
      const last = out.at(-1);
      if (last !== undefined && last.hi + 1n === address) last.hi = address;
      else out.push({ lo: address, hi: address });
    }
    return out;
  };
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 1021 })), { minLength: 50, maxLength: 400 }),
      (ops) => {
        // Every other address taken: about 511 one-address intervals, several blocks.
        const isTaken = Array.from({ length: 1022 }, (_, i) => i % 2 === 1);
        const takenOf = () => isTaken.flatMap((t, i) => (t ? [r.first + BigInt(i)] : []));
        let free = freeSetOf(r, takenOf());
        for (const [isTake, offset] of ops) {
          const address = r.first + BigInt(offset);
          if (isTake) expect(take(free, address)).toBe(!isTaken[offset]);
          isTaken[offset] = isTake;
          if (!isTake) free = freeSetOf(r, takenOf());
        }
        expect([...freeIntervals(free)]).toEqual(modelIntervals(isTaken));
        expect(lowestFree(free)).toBe(modelIntervals(isTaken)[0]?.lo);
      },
    ),
    { numRuns: 200 },
  );
});
