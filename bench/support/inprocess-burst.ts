// The in-process burst that `burst-inprocess` (embedded API server) and `real` (kube-apiserver) share:
// 1000 allocations at once from 10 simulated nodes (100 concurrent each, one store and so one connection
// pool per node) into one /16 with the default config (overlapping-range reservations on), through the
// product's own transaction. A first allocation creates the pool and is not counted: pools are created once
// per network, not per burst.

import type { Owner } from '../../src/allocator/allocation.ts';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { loadConfig } from '../../src/config/load.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { offsetKey } from '../../src/codecs/ippool.ts';
import { connect } from '../../src/kube-api/kube.ts';
import { kubeStore, type IpamStore } from '../../src/store/store.ts';

export const burstRange = '10.128.0.0/16';

/** The NAD of the burst: one range, everything else as defaulted. */
export function burstConfig(range = burstRange): IpamConfig {
  const loaded = loadConfig({
    stdin: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'bench',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range },
    }),
    cniArgs: 'IgnoreUnknown=1',
    flatFilePaths: [],
  });
  if (!loaded.ok) throw new Error(loaded.error.details);
  return loaded.value.config;
}

export type BurstOptions = {
  readonly nodes?: number;
  readonly perNode?: number;
  /** Each allocation's deadline, as the plugin's. */
  readonly deadlineMs?: number;
  /** Runs after the warm-up allocation, right before the burst: reset counters, switch on latency. */
  readonly beforeBurst?: () => Promise<void> | void;
};

export type InprocessBurst = {
  readonly count: number;
  readonly seconds: number;
  /** Per allocation, ascending. */
  readonly latencies: number[];
  /** What each allocation was told, by owner; failed allocations are missing. */
  readonly handedOut: Map<Owner, bigint>;
  /** Why allocations failed, one line each. */
  readonly failures: string[];
  /** The pool's name, and a store (node 0's) to read it with. */
  readonly pool: string;
  readonly store: IpamStore;
};

const burstOwner = (i: number): Owner => ({ containerId: `c${i}`, podRef: `bench/pod-${i}`, ifName: 'net1' });

export async function inprocessBurst(
  kubeconfig: string,
  options: BurstOptions = {},
): Promise<InprocessBurst> {
  const nodes = options.nodes ?? 10;
  const perNode = options.perNode ?? 100;
  const config = burstConfig();
  const stores: IpamStore[] = Array.from({ length: nodes }, () => {
    const c = connect({ kubeconfig });
    if (!c.ok) throw new Error(c.error.details);
    return kubeStore(c.value);
  });
  const store = stores[0] as IpamStore;
  const context = (s: IpamStore) => ({
    store: s,
    log: silentLogger,
    deadline: deadlineIn(options.deadlineMs ?? 120_000),
  });

  const warmUp = await allocate(
    config,
    { containerId: 'warm', podRef: 'bench/warm', ifName: 'net1' },
    context(store),
  );
  if (!warmUp.ok) throw new Error(warmUp.error.details);
  const pool = warmUp.value[0]?.pool ?? '';
  await options.beforeBurst?.();

  const latencies: number[] = [];
  const handedOut = new Map<Owner, bigint>();
  const failures: string[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: nodes * perNode }, async (_, i) => {
      const owner = burstOwner(i);
      const t0 = performance.now();
      const allocated = await allocate(config, owner, context(stores[i % nodes] as IpamStore));
      latencies.push(performance.now() - t0);
      if (!allocated.ok) failures.push(`code ${allocated.error.code}: ${allocated.error.details}`);
      else for (const a of allocated.value) handedOut.set(owner, a.address);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { count: nodes * perNode, seconds, latencies, handedOut, failures, pool, store };
}

export type Held = {
  /** Entries the server stores in the pool. */
  readonly stored: number;
  /**
   * Addresses held twice: handed to two owners, or handed to an owner while the server stores another
   * owner's entry at that offset.
   */
  readonly duplicates: number;
  /** Allocations that succeeded but whose entry the server does not store. */
  readonly missing: number;
};

/** Checks what a burst handed out against the pool as the server stores it. */
export async function checkStored(burst: InprocessBurst): Promise<Held> {
  const read = await burst.store.readPool(burst.pool);
  if (!read.ok || read.value === undefined)
    throw new Error(`cannot read IPPool ${burst.pool}: ${read.ok ? 'gone' : read.error.message}`);
  const snapshot = read.value;
  const byKey = new Map(snapshot.allocations.map((a) => [a.key, a]));
  const addresses = [...burst.handedOut.values()];
  let duplicates = addresses.length - new Set(addresses).size;
  let missing = 0;
  for (const [owner, address] of burst.handedOut) {
    const entry = byKey.get(offsetKey(address, snapshot.base));
    if (entry === undefined) missing++;
    else if (entry.containerId !== owner.containerId || entry.podRef !== owner.podRef) duplicates++;
  }
  return { stored: snapshot.allocations.length, duplicates, missing };
}
