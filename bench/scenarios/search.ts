// Free-address search: the cost of one allocation must follow the number of allocations and exclusions,
// not the size of the range. Three pools — an IPv4 /8 and /16 with 50,000 allocations and 1,000
// exclusions each, an IPv6 /64 with 50,000 allocations — are indexed once (as the agent's watch cache
// does), then 5,000 more addresses are allocated one by one, each a spread choice among the lowest free
// addresses followed by recording it, as a committed write does. The figure is the median over batches of
// 500; the time to index a snapshot of 50,000 allocations is printed as well.

import type { Allocation } from '../../src/allocator/allocation.ts';
import { assign, spread } from '../../src/allocator/assign.ts';
import { indexPool, recordAllocated } from '../../src/allocator/pool-index.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { freeIntervals, lowestFree } from '../../src/ip/free-set.ts';
import { normalise, parseCidr, type Cidr } from '../../src/ip/cidr.ts';
import { makeRange, rangeOffers, usableAddresses } from '../../src/ip/range.ts';
import { peakRssMiB, result, seededRandom } from '../report.ts';

const allocationsHeld = 50_000;
const batches = 10;
const batchSize = 500;
const allocationsMeasured = batches * batchSize;

type Case = { readonly subnet: string; readonly exclusions: number };

function measure(
  { subnet, exclusions }: Case,
  random: () => number,
): { perAllocationMs: number; indexMs: number } {
  const parsed = parseCidr(subnet) as Cidr;
  const network = normalise(parsed);
  const usable = usableAddresses(network);
  const span = Number(
    usable.hi - usable.lo < BigInt(Number.MAX_SAFE_INTEGER)
      ? usable.hi - usable.lo
      : BigInt(Number.MAX_SAFE_INTEGER),
  );
  const at = (fraction: number): bigint => usable.lo + BigInt(Math.floor(fraction * span));

  // Exclusions: a mix of single addresses and /30s, scattered over the whole range.
  const excluded: Cidr[] = [];
  for (let i = 0; i < exclusions; i++) {
    excluded.push({
      family: network.family,
      address: at(random()),
      prefix: (network.family === 4 ? 32 : 128) - (i % 2 === 0 ? 0 : 2),
    });
  }
  const range = makeRange(network, excluded);

  // Allocations: 50,000 distinct addresses scattered over the range — the most fragmented free set.
  const held = new Map<bigint, Allocation>();
  while (held.size < allocationsHeld) {
    const address = at(random());
    if (rangeOffers(range, address) && !held.has(address)) {
      held.set(address, {
        address,
        containerId: `c${held.size}`,
        podRef: `ns/pod-${held.size}`,
        ifName: 'net1',
      });
    }
  }

  const indexStart = performance.now();
  const index = indexPool(range, held.values());
  const indexMs = performance.now() - indexStart;

  // The median batch, so that a garbage collection pause in one batch does not count as search cost.
  const pick = spread(16, random);
  const batchMs: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = performance.now();
    for (let i = b * batchSize; i < (b + 1) * batchSize; i++) {
      const owner = { containerId: `new${i}`, podRef: `ns/new-${i}`, ifName: 'net1' };
      const assignment = assign(index, owner, pick);
      if (assignment.kind !== 'free') throw new Error(`unexpected ${assignment.kind} in ${subnet}`);
      recordAllocated(index, { ...owner, address: assignment.address });
    }
    batchMs.push((performance.now() - start) / batchSize);
  }
  const perAllocationMs = batchMs.sort((x, y) => x - y)[batches / 2] as number;
  if (index.byAddress.size !== allocationsHeld + allocationsMeasured)
    throw new Error('an allocation was lost');
  console.log(
    `# ${subnet}: ${exclusions} exclusions, ${allocationsHeld} allocations; free intervals ${[...freeIntervals(index.free)].length}; ` +
      `lowest free now ${formatIP(ipOf(network.family, lowestFree(index.free) ?? 0n))}`,
  );
  return { perAllocationMs, indexMs };
}

export async function run(): Promise<void> {
  const random = seededRandom(42);
  // Warm the JIT on a small pool so the first measured case is not penalised.
  measure({ subnet: '172.16.0.0/12', exclusions: 100 }, random);

  const v4Wide = measure({ subnet: '10.0.0.0/8', exclusions: 1_000 }, random);
  const v6 = measure({ subnet: '2001:db8:1:2::/64', exclusions: 0 }, random);
  const v4Narrow = measure({ subnet: '10.20.0.0/16', exclusions: 1_000 }, random);

  result('search_v4_8_ms', v4Wide.perAllocationMs, 'ms');
  result('search_v6_64_ms', v6.perAllocationMs, 'ms');
  result('search_v4_16_ms', v4Narrow.perAllocationMs, 'ms');
  result('search_size_ratio', v4Wide.perAllocationMs / v4Narrow.perAllocationMs, 'ratio');
  result('search_v4_8_index_ms', v4Wide.indexMs, 'ms');
  result('search_v6_64_index_ms', v6.indexMs, 'ms');
  result('search_v4_16_index_ms', v4Narrow.indexMs, 'ms');
  result('search_peak_rss_mib', peakRssMiB(), 'MiB');
  await Promise.resolve();
}
