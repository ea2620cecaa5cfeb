// Free-address search, through the functions an ADD runs. Every ADD reads its pool and, each time it reads
// it, decodes the object (src/codecs/ippool.ts `decodePool`, in the store's or the agent's `readPool`),
// indexes the snapshot (src/allocator/pool-index.ts `indexPool`) and chooses an address
// (src/allocator/assign.ts `assign` with `spread` over the transaction's window; src/ipam/transaction.ts
// `allocateRange`). Nothing keeps an index between reads, so that is the cost of one ADD's choice.
//
// - `search_add_path_ms`: the whole of it — decode, index, choose — per ADD, on an IPPool object as the API
//   server returns it (parsed), holding 10,000 allocations as ADDs leave them (filled from the bottom, with
//   the holes of releases). The median over batches; each ADD is a new pod.
// - `search_v4_8_ms`, `search_v6_64_ms`, `search_v4_16_ms`: the choice alone (whether the attachment holds an
//   address already, then a free one) on the index of a pool of 50,000 allocations scattered over the whole
//   range (the most fragmented free set) and, for IPv4, 1,000 exclusions — an IPv4 /8 and /16 and an IPv6
//   /64. Its cost must follow the number of allocations and exclusions, not the size of the range
//   (`search_size_ratio`, /8 over /16). The median over batches.
// - `search_*_index_ms`: indexing each of those snapshots of 50,000 allocations once.

import type { Allocation, Owner } from '../../src/allocator/allocation.ts';
import { assign, initialWindow, spread } from '../../src/allocator/assign.ts';
import { heldBy, indexPool } from '../../src/allocator/pool-index.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { firstFreeIn, freeIntervals } from '../../src/ip/free-set.ts';
import { normalise, parseCidr, type Cidr } from '../../src/ip/cidr.ts';
import { makeRange, rangeOffers, usableAddresses, type Range } from '../../src/ip/range.ts';
import { decodePool, entryOf, newPool, offsetKey } from '../../src/codecs/ippool.ts';
import { peakRssMiB, result, seededRandom } from '../report.ts';

const allocationsHeld = 50_000;
const batches = 10;
const batchSize = 500;

/** The median of per-item times over `batches` batches of `size` calls of `one(i)`, in ms. */
function medianPerItem(batchCount: number, size: number, one: (i: number) => void): number {
  const batchMs: number[] = [];
  for (let b = 0; b < batchCount; b++) {
    const start = performance.now();
    for (let i = b * size; i < (b + 1) * size; i++) one(i);
    batchMs.push((performance.now() - start) / size);
  }
  // The median batch, so that a garbage collection pause in one batch does not count as search cost.
  return batchMs.sort((x, y) => x - y)[Math.floor(batchCount / 2)] as number;
}

const newOwner = (i: number): Owner => ({ containerId: `new${i}`, podRef: `ns/new-${i}`, ifName: 'net1' });

type Case = { readonly subnet: string; readonly exclusions: number };

function measureSearch(
  { subnet, exclusions }: Case,
  random: () => number,
): { perChoiceMs: number; indexMs: number } {
  const network = normalise(parseCidr(subnet) as Cidr);
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

  // One read's index serves one choice; the pool does not change between the choices measured here.
  const pick = spread(initialWindow(range), random);
  const perChoiceMs = medianPerItem(batches, batchSize, (i) => {
    const choice = assign(index, newOwner(i), pick);
    if (choice.kind !== 'free') throw new Error(`unexpected ${choice.kind} in ${subnet}`);
  });
  console.log(
    `# ${subnet}: ${exclusions} exclusions, ${allocationsHeld} allocations; free intervals ${[...freeIntervals(index.free)].length}; ` +
      `lowest free ${formatIP(ipOf(network.family, firstFreeIn(index.free, range.first, range.last) ?? 0n))}; window ${initialWindow(range)}`,
  );
  return { perChoiceMs, indexMs };
}

const addPathAllocations = 10_000;
const addPathBatches = 10;
const addPathBatchSize = 50;

/** 64-hex container IDs and pod names as a Deployment's pods have them. */
function realisticOwner(random: () => number): Owner {
  const pick = (alphabet: string, n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)] ?? '').join('');
  const letters = 'bcdfghjklmnpqrstvwxz2456789';
  return {
    containerId: pick('0123456789abcdef', 64),
    podRef: `team-a/frontend-${pick(letters, 10)}-${pick(letters, 5)}`,
    ifName: 'net1',
  };
}

/**
 * An IPPool object of `count` allocations as ADDs leave them — the lowest addresses, with about one in ten
 * released again — with the metadata the API server returns (managedFields left out).
 */
function poolObject(
  subnet: Cidr,
  range: Range,
  count: number,
  random: () => number,
): Record<string, unknown> {
  const pool = newPool('10.128.0.0-16', subnet);
  const allocations: Record<string, unknown> = {};
  let n = 0;
  for (let address = range.first; n < count && address <= range.last; address++) {
    if (!rangeOffers(range, address) || random() < 0.1) continue;
    allocations[offsetKey(address, subnet.address)] = entryOf(realisticOwner(random));
    n++;
  }
  const metadata = pool.metadata as Record<string, unknown>;
  return {
    ...pool,
    metadata: {
      ...metadata,
      namespace: 'kube-system',
      uid: '5b1e8f0c-3f1d-4c1e-9a59-2f5e0f8b9d11',
      resourceVersion: '48151623',
      generation: count + 1,
      creationTimestamp: '2026-12-01T08:00:00Z',
    },
    spec: { ...(pool.spec as object), allocations },
  };
}

function measureAddPath(random: () => number): { perAddMs: number; parseMs: number; window: number } {
  const subnet = normalise(parseCidr('10.128.0.0/16') as Cidr);
  const range = makeRange(subnet, []);
  const object = poolObject(subnet, range, addPathAllocations, random);
  const window = initialWindow(range);
  const pick = spread(window, random);

  const perAddMs = medianPerItem(addPathBatches, addPathBatchSize, (i) => {
    const snapshot = decodePool(object);
    if (!snapshot.ok) throw new Error(snapshot.error);
    const index = indexPool(range, snapshot.value.allocations);
    const owner = newOwner(i);
    if (heldBy(index, owner) !== undefined) throw new Error('a new pod holds an address'); // `confirmHeld`
    const choice = assign(index, owner, pick);
    if (choice.kind !== 'free') throw new Error(`unexpected ${choice.kind}`);
  });

  // The parts, for where the time goes: each step alone on the same pool.
  const decoded = decodePool(object);
  if (!decoded.ok) throw new Error(decoded.error);
  const { allocations } = decoded.value;
  const decodeMs = medianPerItem(addPathBatches, 20, () => void decodePool(object));
  const indexMs = medianPerItem(addPathBatches, 20, () => void indexPool(range, allocations));
  const index = indexPool(range, allocations);
  const chooseMs = medianPerItem(
    addPathBatches,
    addPathBatchSize,
    (i) => void assign(index, newOwner(i), pick),
  );
  // What parsing the response body costs a standalone plugin before the decode (the agent's cache holds
  // the object parsed already).
  const body = JSON.stringify(object);
  const parseMs = medianPerItem(addPathBatches, 5, () => void JSON.parse(body));
  console.log(
    `# add path: 10.128.0.0/16 pool of ${addPathAllocations} allocations (${(body.length / 1024).toFixed(0)} KiB as JSON), window ${window}: ` +
      `decode ${decodeMs.toFixed(2)} ms, index ${indexMs.toFixed(2)} ms, choose ${chooseMs.toFixed(3)} ms; ` +
      `JSON.parse of the body ${parseMs.toFixed(2)} ms more in a standalone plugin`,
  );
  return { perAddMs, parseMs, window };
}

export async function run(): Promise<void> {
  const random = seededRandom(42);
  // Warm the JIT on a small pool so the first measured case is not penalised.
  measureSearch({ subnet: '172.16.0.0/12', exclusions: 100 }, random);

  const v4Wide = measureSearch({ subnet: '10.0.0.0/8', exclusions: 1_000 }, random);
  const v6 = measureSearch({ subnet: '2001:db8:1:2::/64', exclusions: 0 }, random);
  const v4Narrow = measureSearch({ subnet: '10.20.0.0/16', exclusions: 1_000 }, random);
  const addPath = measureAddPath(random);

  result('search_v4_8_ms', v4Wide.perChoiceMs, 'ms');
  result('search_v6_64_ms', v6.perChoiceMs, 'ms');
  result('search_v4_16_ms', v4Narrow.perChoiceMs, 'ms');
  result('search_size_ratio', v4Wide.perChoiceMs / v4Narrow.perChoiceMs, 'ratio');
  result('search_v4_8_index_ms', v4Wide.indexMs, 'ms');
  result('search_v6_64_index_ms', v6.indexMs, 'ms');
  result('search_v4_16_index_ms', v4Narrow.indexMs, 'ms');
  result('search_add_path_ms', addPath.perAddMs, 'ms');
  result('search_peak_rss_mib', peakRssMiB(), 'MiB');
  await Promise.resolve();
}
