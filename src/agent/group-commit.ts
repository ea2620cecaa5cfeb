// The agent's pools (the store's `PoolStore` role, the only one it wraps; the other roles pass through):
// reads from what the agent knows of the pools (src/agent/pool-cache.ts: its node's slice pools watched,
// copies of the pools it writes), and group commit for writes. While one patch of
// a pool is in flight, the claims and releases of that pool that arrive queue up; when it returns, they all
// go as one JSON patch — each still with its own `test` — so a burst of N allocations on a node costs a few
// writes instead of N. If the combined patch fails its tests (some offset was taken meanwhile), each item is
// retried on its own, so every caller gets exactly the answer the plain store would have given.
//
// During a burst — changes of the pool arrived while others were still pending, `burstChanges` times within
// the last window — a change that finds nothing in flight also waits, up to the window, for company: a
// node's pods start a few at a time, and without the wait most batches would hold one. Changes that come
// one after another (each after the last one's answer) are never held.
//
// Reads show the claims still queued or in flight as taken (by no one in particular): a writer choosing
// again after a collision must not pick an offset another caller is already claiming — without any I/O
// in between, such a choice would loop on the queue's own "taken" answer and starve the event loop.
//
// The cache may lag behind the API server (a write by the standalone plugin, another node or GC that the
// watch has not delivered yet, or that came after the copy). Two rules keep that from misleading a caller:
// - A write that answers "changed"/"taken" (or no answer) proves the cache may be older than the pool: the
//   pool's reads go to the API server until one of them is back in the cache. Only forgetting the pool is not
//   enough — a lagging watch's next event (older than the write that failed) would put the stale state back,
//   and a new sandbox's ADD would loop reassign → changed → same stale read until the deadline. A read put
//   into the cache is kept by resourceVersion, so later late events cannot undo it.
// - A DEL decides that nothing is held only on a read from the API server (`readPoolCurrent`, which the
//   release transaction prefers): the cache not having seen an entry does not mean the pool has none, and a
//   DEL that misses it answers success while the address waits for GC.
//
// `reassignOffset` (a new sandbox of the same pod) goes through the same rules as claims: written through to
// the cache when done, the pool distrusted otherwise.

import { ok } from '../errors.ts';
import type { KubeApi } from '../kube-api/api.ts';
import {
  answerOf,
  claimOffsetWrite,
  combine,
  ipPoolRef,
  releaseWrite,
  request,
} from '../store/conditional-write.ts';
import { isTooLarge } from '../store/errors.ts';
import {
  decodePool,
  type AllocationEntry,
  type PoolSnapshot,
  type StoredAllocation,
} from '../codecs/ippool.ts';
import type { PoolStore } from '../store/pool-store.ts';
import { getIfExists, type StoreResult } from '../store/result.ts';

/** The pools as the agent last knew them, by name; `undefined` for a pool the cache cannot vouch for. */
export type PoolCache = {
  get(name: string): Record<string, unknown> | undefined;
  /** Records our own committed write before the watch reports it, so our next read sees it. */
  update(name: string, change: (allocations: Record<string, unknown>) => void): void;
  /** Forgets a pool until the next event or read: after a conflict the cache may be stale. */
  invalidate(name: string): void;
  put(name: string, object: Record<string, unknown>): void;
};

type Item =
  | {
      kind: 'claimOffset';
      key: string;
      entry: AllocationEntry;
      done: (r: StoreResult<'claimed' | 'taken' | 'missing'>) => void;
    }
  | {
      kind: 'releaseOffset';
      key: string;
      current: unknown;
      done: (r: StoreResult<'released' | 'changed'>) => void;
    };

export type GroupCommitStats = { patches: number; items: number; fallbacks: number };

export type GroupCommitOptions = {
  /** How long a change waits for others during a burst, in ms (0: only what arrives in one event-loop turn). */
  readonly windowMs: number;
  /** A batch this large goes at once. */
  readonly maxBatch: number;
  /** This many changes that found others pending, within the last window, make a burst. */
  readonly burstChanges: number;
};

/** The snapshot with every offset in `claiming` that it does not hold shown as held, by no owner. */
function withClaiming(snapshot: PoolSnapshot, claiming: ReadonlySet<string>): PoolSnapshot {
  if (claiming.size === 0) return snapshot;
  const held = new Set(snapshot.allocations.map((a) => a.key));
  const more: StoredAllocation[] = [...claiming]
    .filter((key) => !held.has(key))
    .map((key) => ({
      address: snapshot.base + BigInt(key),
      key,
      stored: undefined,
      containerId: '',
      podRef: '',
      ifName: '',
    }));
  return { ...snapshot, allocations: [...snapshot.allocations, ...more] };
}

export const defaultGroupCommit: GroupCommitOptions = { windowMs: 500, maxBatch: 256, burstChanges: 2 };

/** What the group commit adds to the pools it wraps. */
export type GroupCommitted = {
  readonly stats: GroupCommitStats;
  readPoolCurrent: NonNullable<PoolStore['readPoolCurrent']>;
};

/** One wrapped store's state: its cache and the trust in it, and the queue of each pool. */
type Committer = {
  readonly inner: PoolStore;
  readonly api: KubeApi;
  readonly cache: PoolCache;
  readonly options: GroupCommitOptions;
  readonly stats: GroupCommitStats;
  readonly queues: Map<string, Item[]>;
  /** The items of the write in flight, by pool: one write at a time per pool. */
  readonly inFlight: Map<string, readonly Item[]>;
  /** When changes of the pool arrived while others were pending, none older than the window. */
  readonly contended: Map<string, number[]>;
  readonly timers: Map<string, ReturnType<typeof setTimeout>>;
  /**
   * Pools the cache may hold older than the API server, each with a count of the times it was distrusted: a
   * read from the API server ends the distrust only if no write failed after that read was sent.
   */
  readonly distrusted: Map<string, number>;
  distrusts: number;
};

function distrust(c: Committer, pool: string): void {
  c.distrusted.set(pool, ++c.distrusts);
  c.cache.invalidate(pool);
}

/** The pool as the API server has it now; put into the cache (by resourceVersion, so never backwards). */
async function readCurrent(c: Committer, name: string): Promise<StoreResult<PoolSnapshot | undefined>> {
  const { inner, api, cache, distrusted } = c;
  const since = distrusted.get(name);
  const target = { namespace: inner.namespace, name };
  const result = await getIfExists(api, ipPoolRef(target), `get IPPool ${inner.namespace}/${name}`);
  if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
  const snapshot = decodePool(result.value);
  // An undecodable pool: the plain store's read gives the error a user can act on.
  if (!snapshot.ok) return inner.readPool(name);
  cache.put(name, result.value);
  if (distrusted.get(name) === since) distrusted.delete(name);
  return ok(snapshot.value);
}

/** The offsets of the pool being claimed: queued, or in the write in flight. */
const claiming = (c: Committer, pool: string): Set<string> =>
  new Set(
    [...(c.queues.get(pool) ?? []), ...(c.inFlight.get(pool) ?? [])].flatMap((item) =>
      item.kind === 'claimOffset' ? [item.key] : [],
    ),
  );

/** The pool from the cache where it vouches for it, else from the API server; offsets being claimed as taken. */
async function readPool(c: Committer, name: string): Promise<StoreResult<PoolSnapshot | undefined>> {
  const cached = c.distrusted.has(name) ? undefined : c.cache.get(name);
  const snapshot = cached === undefined ? undefined : decodePool(cached);
  if (snapshot?.ok === true) return ok(withClaiming(snapshot.value, claiming(c, name)));
  return readPoolCurrent(c, name);
}

async function readPoolCurrent(c: Committer, name: string): Promise<StoreResult<PoolSnapshot | undefined>> {
  const read = await readCurrent(c, name);
  return read.ok && read.value !== undefined ? ok(withClaiming(read.value, claiming(c, name))) : read;
}

/** One item on its own, through the plain store (its answers are the reference). */
async function single(c: Committer, pool: string, item: Item): Promise<void> {
  if (item.kind === 'claimOffset') {
    const r = await c.inner.claimOffset(pool, item.key, item.entry);
    if (r.ok && r.value === 'claimed') c.cache.update(pool, (a) => (a[item.key] = item.entry));
    if (!r.ok || r.value !== 'claimed') distrust(c, pool);
    item.done(r);
  } else {
    const r = await c.inner.releaseOffset(pool, item.key, item.current);
    if (r.ok && r.value === 'released') c.cache.update(pool, (a) => Reflect.deleteProperty(a, item.key));
    else distrust(c, pool);
    item.done(r);
  }
}

/** Several items as one patch: each item's own write (its test and its change); alone where that fails. */
async function commitBatch(c: Committer, pool: string, items: readonly Item[]): Promise<void> {
  const { inner, api, stats } = c;
  const target = { namespace: inner.namespace, name: pool };
  const batch = combine(
    ipPoolRef(target),
    items.map((item) =>
      item.kind === 'claimOffset'
        ? claimOffsetWrite(target, item.key, item.entry)
        : releaseWrite(target, item.key, item.current),
    ),
    `patch IPPool ${inner.namespace}/${pool} (${items.length} changes)`,
  );
  stats.patches++;
  stats.items += items.length;
  const result = await request(api, batch);
  if (result.ok) {
    c.cache.put(pool, result.value);
    for (const item of items) {
      if (item.kind === 'claimOffset') item.done(ok('claimed'));
      else item.done(ok('released'));
    }
    return;
  }
  const answer = answerOf(batch, result, api.server);
  if (answer.ok) {
    // Some test failed (`changed`) or the pool is gone: settle each item alone, for its exact answer.
    stats.fallbacks++;
    distrust(c, pool);
    await Promise.all(items.map((item) => single(c, pool, item)));
    return;
  }
  if (isTooLarge(result.error)) {
    // The pool would outgrow the API server's object limit (nothing was written): alone, the releases
    // shrink it — so they go first — and each claim gets its own answer, at once, fitting or not.
    stats.fallbacks++;
    for (const item of items) if (item.kind === 'releaseOffset') await single(c, pool, item);
    for (const item of items) if (item.kind === 'claimOffset') await single(c, pool, item);
    return;
  }
  // No answer: the patch may have committed.
  distrust(c, pool);
  for (const item of items) item.done(answer);
}

/** Sends what the pool's queue holds, as one write; then the next batch, if more arrived meanwhile. */
async function flush(c: Committer, pool: string): Promise<void> {
  clearTimeout(c.timers.get(pool));
  c.timers.delete(pool);
  const items = c.queues.get(pool) ?? [];
  c.queues.delete(pool);
  if (items.length === 0) return;
  c.inFlight.set(pool, items);
  try {
    if (items.length === 1) await single(c, pool, items[0] as Item);
    else await commitBatch(c, pool, items);
  } finally {
    c.inFlight.delete(pool);
    if (c.queues.has(pool)) void flush(c, pool);
  }
}

function enqueue(c: Committer, pool: string, item: Item): void {
  const { queues, inFlight, contended, options } = c;
  const queue = queues.get(pool) ?? [];
  // Two claims of one offset in one batch would fail the whole patch: the later one is simply taken.
  if (item.kind === 'claimOffset' && queue.some((q) => q.kind === 'claimOffset' && q.key === item.key)) {
    item.done(ok('taken'));
    return;
  }
  queue.push(item);
  queues.set(pool, queue);
  const now = performance.now();
  const recent = (contended.get(pool) ?? []).filter((t) => now - t < options.windowMs);
  if (queue.length > 1 || inFlight.has(pool)) recent.push(now);
  contended.set(pool, recent);
  const inBurst = recent.length >= options.burstChanges;
  // One write at a time per pool: what arrives meanwhile waits for it to return.
  if (inFlight.has(pool)) return;
  const go = () => void (inFlight.has(pool) ? undefined : flush(c, pool));
  if (queue.length >= options.maxBatch) go();
  else if (queue.length === 1) {
    // Gather what arrives in the same turn of the event loop, or in the window during a burst.
    if (inBurst) c.timers.set(pool, setTimeout(go, options.windowMs));
    else setImmediate(go);
  }
}

/** `inner` with its pool reads and offset writes going through the cache and the group commit. */
export function groupCommitStore<S extends PoolStore>(
  inner: S,
  api: KubeApi,
  cache: PoolCache,
  options: GroupCommitOptions = defaultGroupCommit,
): S & GroupCommitted {
  const c: Committer = {
    inner,
    api,
    cache,
    options,
    stats: { patches: 0, items: 0, fallbacks: 0 },
    queues: new Map(),
    inFlight: new Map(),
    contended: new Map(),
    timers: new Map(),
    distrusted: new Map(),
    distrusts: 0,
  };
  // The pool role's reads and offset writes; its other calls (create, label, list) go to `inner` as they are.
  const pools: Pick<PoolStore, 'readPool' | 'claimOffset' | 'reassignOffset' | 'releaseOffset'> &
    GroupCommitted = {
    stats: c.stats,
    readPool: (name) => readPool(c, name),
    readPoolCurrent: (name) => readPoolCurrent(c, name),
    async reassignOffset(pool, key, current, entry) {
      const r = await inner.reassignOffset(pool, key, current, entry);
      if (r.ok && r.value === 'done') cache.update(pool, (a) => (a[key] = entry));
      else distrust(c, pool);
      return r;
    },
    claimOffset: (pool, key, entry) =>
      new Promise((done) => {
        enqueue(c, pool, { kind: 'claimOffset', key, entry, done });
      }),
    releaseOffset: (pool, key, current) =>
      new Promise((done) => {
        enqueue(c, pool, { kind: 'releaseOffset', key, current, done });
      }),
  };
  return { ...inner, ...pools };
}
