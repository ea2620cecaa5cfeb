import fc from 'fast-check';
import type { Allocation, Owner } from '../../../src/allocator/allocation.ts';
import { assign, assignRequested, releasable, spread } from '../../../src/allocator/assign.ts';
import { heldBy, indexPool, recordBlocked, type PoolIndex } from '../../../src/allocator/pool-index.ts';
import { rangeOffers } from '../../../src/ip/range.ts';
import { ip, range, show } from '../../support/ip.ts';

const owner = (pod: string, ifName = 'net1', containerId = `c-${pod}`): Owner => ({
  containerId,
  podRef: `default/${pod}`,
  ifName,
});
const held = (address: string, o: Owner): Allocation => ({ ...o, address: ip(address) });

/** The lowest free address: a spread over one address. */
const lowest = spread(1);

/** The index of the pool's next read, as the transaction builds it: the allocations changed, nothing kept. */
const reread = (
  index: PoolIndex,
  change: { add?: Allocation; remove?: bigint },
  blocked: readonly bigint[] = [],
): PoolIndex =>
  indexPool(
    index.range,
    [...index.allocations, ...(change.add === undefined ? [] : [change.add])].filter(
      (a) => a.address !== change.remove,
    ),
    blocked,
  );

describe('assign', () => {
  const r = range('192.168.2.0/24', { exclude: ['192.168.2.1'] });

  test('takes the lowest free address', () => {
    const index = indexPool(r, [held('192.168.2.2', owner('a'))]);
    const result = assign(index, owner('b'), lowest);
    expect(result).toEqual({ kind: 'free', address: ip('192.168.2.3') });
  });

  test('is idempotent per (pod, interface): a retry returns the address already held', () => {
    const index = indexPool(r, [held('192.168.2.7', owner('a', 'net1', 'old-sandbox'))]);
    expect(assign(index, owner('a', 'net1', 'new-sandbox'), lowest)).toEqual({
      kind: 'held',
      allocation: held('192.168.2.7', owner('a', 'net1', 'old-sandbox')),
    });
    // Another interface of the same pod is another attachment.
    expect(assign(index, owner('a', 'net2'), lowest)).toEqual({ kind: 'free', address: ip('192.168.2.2') });
  });

  test('a damaged pool holding one attachment twice returns the lowest of its addresses', () => {
    const index = indexPool(r, [held('192.168.2.9', owner('a')), held('192.168.2.4', owner('a'))]);
    expect(heldBy(index, owner('a'))?.address).toBe(ip('192.168.2.4'));
    expect(heldBy(reread(index, { remove: ip('192.168.2.4') }), owner('a'))?.address).toBe(ip('192.168.2.9'));
  });

  test('an exhausted range says so, with the numbers', () => {
    const tiny = range('10.0.0.0/30');
    const index = indexPool(tiny, [held('10.0.0.1', owner('a')), held('10.0.0.2', owner('b'))]);
    const result = assign(index, owner('c'), lowest);
    expect(result.kind).toBe('unavailable');
    if (result.kind === 'unavailable') {
      expect(result.reason).toBe(
        'no free address in 10.0.0.0/30 between 10.0.0.1 and 10.0.0.2: all 2 assignable addresses are taken (2 allocations in the pool)',
      );
    }
  });

  test('blocked addresses (reserved by an overlapping range) are skipped', () => {
    const index = indexPool(r, [], [ip('192.168.2.2')]);
    recordBlocked(index, ip('192.168.2.3'));
    expect(assign(index, owner('a'), lowest)).toEqual({ kind: 'free', address: ip('192.168.2.4') });
  });

  test('spread picks among the lowest free addresses', () => {
    const index = indexPool(r, []);
    const picks = new Set<string | undefined>();
    for (let i = 0; i < 300; i++) {
      const result = assign(index, owner(`p${i}`), spread(8));
      if (result.kind === 'free') picks.add(show(4, result.address));
    }
    expect(picks.size).toBe(8);
    expect(
      [...picks].every((p) => p !== undefined && ip(p) >= ip('192.168.2.2') && ip(p) <= ip('192.168.2.9')),
    ).toBe(true);
  });
});

describe('assignRequested (a requested address)', () => {
  const r = range('10.1.0.0/24', { start: '10.1.0.100', exclude: ['10.1.0.0/28'] });

  test('may lie outside range_start or inside an exclusion, which only steer automatic choice', () => {
    const index = indexPool(r, []);
    expect(assignRequested(index, owner('a'), ip('10.1.0.5'))).toEqual({
      kind: 'free',
      address: ip('10.1.0.5'),
    });
  });

  test('is refused when someone else holds it, or when it is not a usable address', () => {
    const index = indexPool(r, [held('10.1.0.5', owner('a'))]);
    expect(assignRequested(index, owner('b'), ip('10.1.0.5'))).toEqual({
      kind: 'unavailable',
      reason: 'requested address 10.1.0.5 is held by default/a interface net1',
    });
    expect(assignRequested(index, owner('b'), ip('10.1.0.255')).kind).toBe('unavailable');
    expect(assignRequested(index, owner('b'), ip('10.1.1.1')).kind).toBe('unavailable');
  });

  test('returns the held address again, and refuses a different one for the same attachment', () => {
    const index = indexPool(r, [held('10.1.0.5', owner('a'))]);
    expect(assignRequested(index, owner('a'), ip('10.1.0.5')).kind).toBe('held');
    expect(assignRequested(index, owner('a'), ip('10.1.0.6'))).toEqual({
      kind: 'unavailable',
      reason: 'default/a interface net1 already holds 10.1.0.5 in 10.1.0.0/24, not the requested 10.1.0.6',
    });
  });
});

describe('releasable', () => {
  test('matches on container ID and interface, not on the pod', () => {
    const allocations = [
      held('10.0.0.1', owner('a', 'net1', 'c1')),
      held('10.0.0.2', owner('a', 'net2', 'c1')),
      held('10.0.0.3', owner('a', 'net1', 'c2')),
    ];
    expect(
      releasable(allocations, { containerId: 'c1', ifName: 'net1' }).map((a) => show(4, a.address)),
    ).toEqual(['10.0.0.1']);
    expect(releasable(allocations, { containerId: 'c3', ifName: 'net1' })).toEqual([]);
  });
});

test('property: any sequence of ADD and DEL never hands out an address twice, outside the range or excluded', () => {
  const scenario = fc.record({
    subnet: fc.constantFrom(
      '10.0.0.0/27',
      '10.0.0.0/30',
      '10.0.0.0/31',
      '2001:db8::/123',
      '2001:db8::ff00/120',
    ),
    exclude: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 6 }),
    ops: fc.array(
      fc.record({
        add: fc.boolean(),
        pod: fc.integer({ min: 0, max: 40 }),
        width: fc.integer({ min: 1, max: 6 }),
      }),
      {
        maxLength: 120,
      },
    ),
    seed: fc.integer(),
  });
  fc.assert(
    fc.property(scenario, ({ subnet, exclude, ops, seed }) => {
      const base = range(subnet);
      const family = base.subnet.family;
      const r = range(subnet, {
        exclude: exclude.map((o) => show(family, base.first + BigInt(o)) as string),
      });
      let index = indexPool(r, []);
      let state = seed;
      const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
      const holding = new Map<string, bigint>();
      for (const op of ops) {
        const o = owner(`p${op.pod}`);
        if (op.add) {
          const result = assign(index, o, spread(op.width, random));
          if (result.kind === 'held') {
            expect(result.allocation.address).toBe(holding.get(o.podRef));
          } else if (result.kind === 'free') {
            expect(holding.has(o.podRef)).toBe(false);
            expect(rangeOffers(r, result.address)).toBe(true);
            expect([...holding.values()]).not.toContain(result.address);
            index = reread(index, { add: { ...o, address: result.address } });
            holding.set(o.podRef, result.address);
          } else {
            // Exhaustion is only reported when every offered address is held.
            const offered = [...Array(Number(r.last - r.first + 1n)).keys()]
              .map((i) => r.first + BigInt(i))
              .filter((a) => rangeOffers(r, a));
            expect(offered.every((a) => [...holding.values()].includes(a))).toBe(true);
          }
        } else {
          for (const a of releasable(index.allocations, o)) index = reread(index, { remove: a.address });
          holding.delete(o.podRef);
        }
        expect(index.allocations.length).toBe(holding.size);
      }
    }),
    { numRuns: 300 },
  );
});

describe('assign with a pick list (pick_addresses)', () => {
  const r = range('10.0.0.0/24', { pick: ['10.0.0.40', '10.0.0.8/30', '10.0.0.3'], exclude: ['10.0.0.9'] });

  test('takes the first free address in list order, whatever the picker, skipping excluded and blocked ones', () => {
    let index = indexPool(r, [held('10.0.0.40', owner('a'))], [ip('10.0.0.8')]);
    // `spread` would choose at random among the lowest: a pick list is taken strictly in order.
    expect(
      assign(
        index,
        owner('b'),
        spread(64, () => 0.99),
      ),
    ).toEqual({ kind: 'free', address: ip('10.0.0.10') });
    index = reread(index, { add: held('10.0.0.10', owner('b')) }, [ip('10.0.0.8')]);
    expect(assign(index, owner('c'), lowest)).toEqual({ kind: 'free', address: ip('10.0.0.11') });
    recordBlocked(index, ip('10.0.0.11'));
    expect(assign(index, owner('c'), lowest)).toEqual({ kind: 'free', address: ip('10.0.0.3') });
    // A released address earlier in the list is preferred again.
    index = reread(index, { remove: ip('10.0.0.40') }, [ip('10.0.0.8'), ip('10.0.0.11')]);
    expect(assign(index, owner('c'), lowest)).toEqual({ kind: 'free', address: ip('10.0.0.40') });
    // Idempotent as ever.
    expect(assign(index, owner('b'), lowest)).toMatchObject({ kind: 'held' });
  });

  test('exhausted: the usual answer, naming the pick list', () => {
    const index = indexPool(
      r,
      ['10.0.0.40', '10.0.0.8', '10.0.0.10', '10.0.0.11', '10.0.0.3'].map((a, i) => held(a, owner(`p${i}`))),
    );
    const result = assign(index, owner('z'), lowest);
    expect(result).toEqual({
      kind: 'unavailable',
      reason:
        'no free address in 10.0.0.0/24 among its pick_addresses (10.0.0.3 to 10.0.0.40): all 5 assignable addresses are taken (5 allocations in the pool)',
    });
  });
});
