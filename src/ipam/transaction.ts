// The IPAM transaction: allocate and release an attachment's addresses over all ranges of a config. No
// lock: read the pool, choose, write conditionally, and on a collision choose again — all within a
// deadline. Every outcome of every call is handled here, in one place.
//
// Per range, allocation is: read the pool (create it on first use) → if the (pod, interface) holds an
// address, return it (idempotent ADD) → else choose a free address → take its cluster-wide reservation
// (when overlapping ranges are on) → claim its offset in the pool with `test null` + `add`. With node
// slices the same happens in the pool of one of the node's slices (`places.ts`), the next one when a slice
// is full, and a newly taken slice when all are; a slice pool is created with its node's labels, and one
// found without them gets them.

import type { Allocation, Owner } from '../allocator/allocation.ts';
import {
  assign,
  assignRequested,
  initialWindow,
  maxWindow,
  releasable,
  spread,
  type Assignment,
} from '../allocator/assign.ts';
import { isClaimed, retainedId } from '../allocator/keeper.ts';
import { heldBy, holderOf, indexPool, recordBlocked, type PoolIndex } from '../allocator/pool-index.ts';
import type { IpamConfig, RangeConfig } from '../config/ipam-config.ts';
import { CniCode, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { formatIP, ipOf, type Family } from '../ip/address.ts';
import { cidrContains, type Cidr } from '../ip/cidr.ts';
import type { Logger } from '../log.ts';
import { storeFailure, type StoreError } from '../store/errors.ts';
import { entryOf, offsetKey, type PoolSnapshot } from '../codecs/ippool.ts';
import { hasLabels, type PoolLabels } from '../codecs/pool-labels.ts';
import { reservationName } from '../codecs/names.ts';
import type { PoolStore } from '../store/pool-store.ts';
import type { ReservationStore } from '../store/reservation-store.ts';
import type { SliceStore } from '../store/slice-store.ts';
import { placesOf, takeSlice, type Place, type PlaceContext } from './places.ts';
import { dropReservation, reservedFor, takeReservation } from './reservations.ts';
import { deadlineIn, remaining, retrying, type Deadline } from './retry.ts';

/** The roles of the store the transaction uses: nothing of pods, owners or probing. */
export type TransactionStore = PoolStore & ReservationStore & SliceStore;

export type TransactionContext = Omit<PlaceContext, 'store'> & {
  readonly store: TransactionStore;
  readonly log: Logger;
  readonly random?: () => number;
};

/** What a release in known pools uses (`releaseAt`): no slices, since the pools are named already. */
export type ReleaseContext = Pick<TransactionContext, 'log' | 'deadline'> & {
  readonly store: PoolStore & ReservationStore;
};

export type Allocated = { readonly range: RangeConfig; readonly pool: string; readonly address: bigint };

/** Time a rollback of partial work gets when the transaction's own deadline has run out. */
const rollbackMs = 10_000;

const text = (range: RangeConfig, address: bigint): string =>
  formatIP(ipOf(range.range.subnet.family, address));

/**
 * Gives a slice pool read without its labels, or with a wrong value, its labels: a patch of those labels
 * only (Whereabouts made the pool, or an older whereabouts-ts). False when the pool is gone meanwhile.
 */
async function label(
  ctx: TransactionContext,
  pool: string,
  labels: PoolLabels | undefined,
  snapshot: PoolSnapshot,
): Promise<Result<boolean, StoreError>> {
  if (labels === undefined || hasLabels(snapshot.labels, labels)) return ok(true);
  const labelled = await retrying(ctx.deadline, () => ctx.store.labelPool(pool, labels));
  if (!labelled.ok) return labelled;
  if (labelled.value === 'missing') return ok(false);
  ctx.log.debug('labelled IPPool', { pool });
  return ok(true);
}

/** Reads the pool, creating it on first use: a slice pool with its labels, added once if it lacks them. */
async function readOrCreate(
  ctx: TransactionContext,
  a: RangeAttempt,
): Promise<Result<PoolSnapshot, StoreError>> {
  const { pool, subnet, labels } = a;
  for (;;) {
    const read = await retrying(ctx.deadline, () =>
      a.fullSeen ? (ctx.store.readPoolCurrent?.(pool) ?? ctx.store.readPool(pool)) : ctx.store.readPool(pool),
    );
    if (!read.ok) return read;
    const snapshot = read.value;
    if (snapshot !== undefined) {
      if (a.labelled) return ok(snapshot);
      const labelled = await label(ctx, pool, labels, snapshot);
      if (!labelled.ok) return labelled;
      a.labelled = labelled.value;
      if (labelled.value) return ok(snapshot);
      continue; // deleted meanwhile: created next round
    }
    const created = await retrying(ctx.deadline, () => ctx.store.createPool(pool, subnet, labels));
    if (!created.ok) return created;
    ctx.log.debug('created IPPool', { pool });
  }
}

type RangeAttempt = {
  readonly config: IpamConfig;
  /** The range as this pool sees it (with node slices: its part inside the slice). */
  readonly range: RangeConfig;
  readonly pool: string;
  /** The pool's `spec.range`. */
  readonly subnet: Cidr;
  /** A slice pool's labels, and whether this attempt found or wrote them (a cache may lag behind). */
  readonly labels?: PoolLabels;
  labelled: boolean;
  /**
   * Whether a read showed the pool full: from then on it is read from the API server, since a store that
   * reads from a cache (the agent's) may not have seen the releases of the last seconds.
   */
  fullSeen: boolean;
  readonly owner: Owner;
  /** Reservations this transaction created and no pool entry of ours confirms yet. */
  readonly pending: Set<bigint>;
  /** Whether a pool write was sent: only then can a failure leave something to roll back. */
  wrote: boolean;
};

const reservationOf = (a: RangeAttempt, address: bigint): string =>
  reservationName(ipOf(a.range.range.subnet.family, address), a.config.networkName);

/** Drops a pending reservation; a failure only leaves it for GC. */
async function dropPending(
  ctx: TransactionContext,
  a: RangeAttempt,
  address: bigint,
  deadline: Deadline = ctx.deadline,
): Promise<void> {
  a.pending.delete(address);
  const dropped = await dropReservation(ctx.store, reservationOf(a, address), a.owner, deadline);
  if (!dropped.ok)
    ctx.log.error('could not drop a reservation; GC will', {
      address: text(a.range, address),
      error: dropped.error.message,
    });
}

const storedAt = (snapshot: PoolSnapshot, address: bigint): unknown =>
  snapshot.allocations.find((s) => s.address === address)?.stored;

/**
 * The address the attachment holds already, after making sure its reservation and container ID agree;
 * `none` when it holds nothing, `again` when the pool changed under us.
 */
async function confirmHeld(
  ctx: TransactionContext,
  a: RangeAttempt,
  index: PoolIndex,
  snapshot: PoolSnapshot,
): Promise<Result<bigint | 'none' | 'again'>> {
  const held = heldBy(index, a.owner);
  if (held === undefined) return ok('none');
  if (a.config.overlappingRanges) {
    const name = reservationOf(a, held.address);
    const taken = await takeReservation(ctx.store, name, a.owner, true, ctx.deadline);
    if (!taken.ok) return fail(storeFailure(taken.error));
    if (taken.value === 'theirs') {
      // The pool may have come from the agent's watch cache, which may not have seen this entry released and
      // the address given to the reservation's owner: fail only if the API server's pool still shows it ours.
      const { store } = ctx;
      if (store.readPoolCurrent !== undefined) {
        const current = await retrying(
          ctx.deadline,
          () => store.readPoolCurrent?.(a.pool) ?? store.readPool(a.pool),
        );
        if (!current.ok) return fail(storeFailure(current.error));
        const now = current.value?.allocations.find((s) => s.address === held.address);
        if (now?.podRef !== a.owner.podRef || now.ifName !== a.owner.ifName) return ok('again');
      }
      return fail(
        ipamError(
          CniCode.Internal,
          `${a.owner.podRef} interface ${a.owner.ifName} holds ${text(a.range, held.address)} in IPPool ${a.pool}, but the cluster-wide reservation ${name} belongs to another attachment; release one of them`,
        ),
      );
    }
  }
  if (held.containerId !== a.owner.containerId) {
    // A new sandbox of the same pod: the entry moves to it, so the old sandbox's DEL no longer matches.
    const key = offsetKey(held.address, snapshot.base);
    a.wrote = true;
    const moved = await retrying(ctx.deadline, () =>
      ctx.store.reassignOffset(a.pool, key, storedAt(snapshot, held.address), entryOf(a.owner)),
    );
    if (!moved.ok) return fail(storeFailure(moved.error));
    if (moved.value === 'changed') {
      // The entry changed under us: most likely the old sandbox's DEL or the agent released it. The
      // reservation taken over above must not outlive the entry (nothing else would drop it).
      const dropped = await dropStaleReservation(ctx, a, held.address);
      if (!dropped.ok) return dropped;
      return ok('again');
    }
  }
  return ok(held.address);
}

/**
 * Drops the reservation of `address` that this attempt took over, unless the API server's pool still shows
 * the address held by the attachment's pod and interface.
 */
async function dropStaleReservation(
  ctx: TransactionContext,
  a: RangeAttempt,
  address: bigint,
): Promise<Result<void>> {
  if (!a.config.overlappingRanges) return ok(undefined);
  const { store } = ctx;
  const current = await retrying(
    ctx.deadline,
    () => store.readPoolCurrent?.(a.pool) ?? store.readPool(a.pool),
  );
  if (!current.ok) return fail(storeFailure(current.error));
  const now = current.value?.allocations.find((s) => s.address === address);
  if (now?.podRef === a.owner.podRef && now.ifName === a.owner.ifName) return ok(undefined);
  const dropped = await dropReservation(store, reservationOf(a, address), a.owner, ctx.deadline);
  return dropped.ok ? ok(undefined) : fail(storeFailure(dropped.error));
}

/**
 * An IPAMClaim's address can be asked for by two pods at once (the source and the target of a live
 * migration), each of which may have claimed an offset before seeing the other's. A writer that reads back
 * another entry of the claim beside its own gives way: the other may have been returned already (its writer
 * read before this claim committed). It releases its own entry (the usual conditional release) and takes the
 * other's over in its next round. When both read both, both give way and choose again. Pods are never
 * concurrent with themselves, so other owners skip this.
 */
async function settleClaimed(
  ctx: TransactionContext,
  a: RangeAttempt,
  address: bigint,
  key: string,
): Promise<Result<'kept' | 'lost'>> {
  if (!isClaimed(a.owner)) return ok('kept');
  const read = await retrying(
    ctx.deadline,
    () => ctx.store.readPoolCurrent?.(a.pool) ?? ctx.store.readPool(a.pool),
  );
  if (!read.ok) return fail(storeFailure(read.error));
  const others = (read.value?.allocations ?? []).filter(
    (h) => h.podRef === a.owner.podRef && h.ifName === a.owner.ifName && h.address !== address,
  );
  if (others.length === 0) return ok('kept');
  const released = await retrying(ctx.deadline, () => ctx.store.releaseOffset(a.pool, key, entryOf(a.owner)));
  if (!released.ok) return fail(storeFailure(released.error));
  ctx.log.debug('another pod of the IPAMClaim took an address first; taking that one', {
    pool: a.pool,
    address: text(a.range, address),
  });
  return ok('lost');
}

/** What one pool gave: an address, or nothing because every address it may hand out is taken. */
type Claimed =
  { readonly kind: 'address'; readonly address: bigint } | { readonly kind: 'full'; readonly reason: string };

async function allocateRange(ctx: TransactionContext, a: RangeAttempt): Promise<Result<Claimed>> {
  const random = ctx.random ?? Math.random;
  let window = initialWindow(a.range.range);
  let collisions = 0;
  for (;;) {
    if (remaining(ctx.deadline) === 0) {
      return fail(
        ipamError(
          CniCode.TryAgainLater,
          `no address could be claimed in IPPool ${a.pool} before the deadline (${collisions} collisions with concurrent writers)`,
        ),
      );
    }
    const snapshot = await readOrCreate(ctx, a);
    if (!snapshot.ok) return fail(storeFailure(snapshot.error));
    const index = indexPool(a.range.range, snapshot.value.allocations);
    // A pending reservation of an address that someone else now holds in the pool is not needed any more.
    for (const address of a.pending) {
      const holder = holderOf(index, address);
      if (holder !== undefined && !reservedFor({ podref: holder.podRef, ifname: holder.ifName }, a.owner)) {
        await dropPending(ctx, a, address);
      }
    }
    const held = await confirmHeld(ctx, a, index, snapshot.value);
    if (!held.ok) return held;
    if (held.value === 'again') continue;
    if (held.value !== 'none') return ok({ kind: 'address', address: held.value });

    // Choose, and take the reservation; a reservation held by someone else only blocks that address.
    let choice: Assignment;
    for (;;) {
      choice =
        a.range.requested !== undefined
          ? assignRequested(index, a.owner, a.range.requested)
          : assign(index, a.owner, spread(window, random));
      if (choice.kind !== 'free' || !a.config.overlappingRanges) break;
      // A reservation could be our own only after a create whose answer was lost, or for a requested
      // address a crashed earlier ADD reserved; otherwise "exists" means another writer's.
      const mayBeOurs = a.pending.has(choice.address) || a.range.requested !== undefined;
      const taken = await takeReservation(
        ctx.store,
        reservationOf(a, choice.address),
        a.owner,
        mayBeOurs,
        ctx.deadline,
      );
      if (!taken.ok) return fail(storeFailure(taken.error));
      a.pending.add(choice.address);
      if (taken.value === 'ours') break;
      a.pending.delete(choice.address);
      collisions++;
      if (a.range.requested !== undefined) {
        return fail(
          ipamError(
            CniCode.TryAgainLater,
            `requested address ${text(a.range, choice.address)} is reserved cluster-wide by another attachment`,
          ),
        );
      }
      recordBlocked(index, choice.address);
      window = Math.min(window * 2, maxWindow);
    }
    if (choice.kind === 'unavailable') {
      if (!a.fullSeen && ctx.store.readPoolCurrent !== undefined && a.range.requested === undefined) {
        a.fullSeen = true;
        continue;
      }
      return a.range.requested !== undefined
        ? fail(ipamError(CniCode.InvalidConfig, choice.reason))
        : ok({ kind: 'full', reason: choice.reason });
    }
    if (choice.kind === 'held') continue;
    const address = choice.address;
    a.wrote = true;
    const claimed = await retrying(ctx.deadline, () =>
      ctx.store.claimOffset(a.pool, offsetKey(address, snapshot.value.base), entryOf(a.owner)),
    );
    if (!claimed.ok) return fail(storeFailure(claimed.error));
    if (claimed.value === 'claimed') {
      const settled = await settleClaimed(ctx, a, address, offsetKey(address, snapshot.value.base));
      if (!settled.ok) return settled;
      if (settled.value === 'kept') return ok({ kind: 'address', address });
      continue; // another pod of the claim won: the next round takes its address over
    }
    // Taken (another writer, or our own write whose answer was lost — the next read tells) or pool gone.
    collisions++;
    window = Math.min(window * 2, maxWindow);
    ctx.log.debug('offset taken, choosing again', {
      pool: a.pool,
      address: text(a.range, address),
      collisions,
    });
  }
}

type RangeOutcome = {
  readonly result: Result<Allocated>;
  /** Pools this call wrote to: what a rollback must release. */
  readonly written: Place[];
  /** Reservations of a failed attempt: dropped only after the rollback released the pool (the order of docs/datastore.md). */
  readonly pending?: PendingReservation[];
};

/** A reservation this call created whose pool entry may or may not have been committed. */
type PendingReservation = { readonly attempt: RangeAttempt; readonly address: bigint };

/** The one of `places` where the attachment holds an address already, if any. */
async function holding(
  ctx: TransactionContext,
  places: readonly Place[],
  owner: Owner,
): Promise<Result<Place | undefined>> {
  for (const place of places) {
    const read = await retrying(ctx.deadline, () => ctx.store.readPool(place.pool));
    if (!read.ok) return fail(storeFailure(read.error));
    if (read.value === undefined) continue;
    const labelled = await label(ctx, place.pool, place.labels, read.value);
    if (!labelled.ok) return fail(storeFailure(labelled.error));
    if (read.value.allocations.some((h) => h.podRef === owner.podRef && h.ifName === owner.ifName))
      return ok(place);
  }
  return ok(undefined);
}

/**
 * The places to try, in order. With several (a node's slices), a re-ADD must get the address it holds in
 * any of them, not a new one in the first with room; a requested address only in the slice containing it.
 */
async function candidates(
  ctx: TransactionContext,
  range: RangeConfig,
  places: readonly Place[],
  owner: Owner,
  node: string,
): Promise<Result<readonly Place[]>> {
  if (range.slicePrefix === undefined) return ok(places);
  const held = places.length > 1 ? await holding(ctx, places, owner) : ok(undefined);
  if (!held.ok) return held;
  if (held.value !== undefined) return ok([held.value]);
  const requested = range.requested;
  if (requested === undefined) return ok(places);
  const family = range.range.subnet.family;
  const inSlice = places.filter((p) => cidrContains(p.subnet, ipOf(family, requested)));
  if (inSlice.length > 0) return ok(inSlice);
  return fail(
    ipamError(
      CniCode.InvalidConfig,
      `requested address ${text(range, requested)} is not in a slice of node ${node} (${places.map((p) => p.pool).join(', ') || 'none yet'}): with node_slice_size, a pod can only get an address of its node's slices`,
    ),
  );
}

/** One address of the range for the attachment: from the range's pool, or from one of the node's slices. */
async function allocateIn(
  ctx: TransactionContext,
  config: IpamConfig,
  index: number,
  owner: Owner,
): Promise<RangeOutcome> {
  const range = config.ranges[index] as RangeConfig;
  const written: Place[] = [];
  const failed = (error: IpamError): RangeOutcome => ({ result: fail(error), written });
  const places = await placesOf(ctx, config, index);
  if (!places.ok) return failed(places.error);
  const first = await candidates(ctx, range, places.value, owner, ctx.node ?? '');
  if (!first.ok) return failed(first.error);
  const tried = new Set<string>();
  let next = first.value;
  for (;;) {
    let full: string | undefined;
    for (const place of next) {
      tried.add(place.pool);
      const attempt: RangeAttempt = {
        config,
        range: place.range,
        pool: place.pool,
        subnet: place.subnet,
        ...(place.labels === undefined ? {} : { labels: place.labels }),
        labelled: false,
        fullSeen: false,
        owner,
        pending: new Set(),
        wrote: false,
      };
      const claimed = await allocateRange(ctx, attempt);
      // A failure after a write may hide a committed claim whose answer was lost: released on rollback,
      // and its reservation dropped only after that — never while the pool may still hold the address.
      if (attempt.wrote) written.push(place);
      if (!claimed.ok)
        return {
          ...failed(claimed.error),
          pending: [...attempt.pending].map((address) => ({ attempt, address })),
        };
      const kept = claimed.value.kind === 'address' ? claimed.value.address : undefined;
      for (const extra of attempt.pending) if (extra !== kept) await dropPending(ctx, attempt, extra);
      if (claimed.value.kind === 'address') {
        if (!attempt.wrote) written.push(place); // held already: a rollback still releases it
        ctx.log.verbose('allocated', {
          pool: place.pool,
          address: text(range, claimed.value.address),
          pod: owner.podRef,
          ifname: owner.ifName,
        });
        return { result: ok({ range, pool: place.pool, address: claimed.value.address }), written };
      }
      full = claimed.value.reason;
    }
    if (range.slicePrefix === undefined || range.requested !== undefined)
      return failed(ipamError(CniCode.TryAgainLater, full ?? `no pool for ${range.text}`));
    // Every slice of the node is full (or it has none yet): take another.
    const more = await takeSlice(ctx, config, index, tried);
    if (!more.ok) return failed(more.error);
    ctx.log.verbose('took a node slice', { pools: more.value.map((p) => p.pool).join(', ') });
    next = more.value;
  }
}

/** Allocates one address from every range of the config for the attachment, or none at all. */
export async function allocate(
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
): Promise<Result<Allocated[]>> {
  const done: Allocated[] = [];
  const written: Place[] = [];
  for (const index of config.ranges.keys()) {
    const outcome = await allocateIn(ctx, config, index, owner);
    written.push(...outcome.written);
    if (!outcome.result.ok) {
      // Whatever this call wrote so far — earlier ranges, and pools of this one where a lost answer may
      // hide a write — is released before failing, so a failed ADD holds nothing.
      await rollback(config, owner, ctx, written, outcome.pending ?? []);
      return outcome.result;
    }
    done.push(outcome.result.value);
  }
  return ok(done);
}

/**
 * Undoes a failed ADD: releases what it may have written, then drops the reservations it made — after,
 * so that no pool holds an address without its reservation. It gets time of its own when the transaction's
 * deadline has run out (that is often why it failed). A release that fails leaves the reservations too.
 */
async function rollback(
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
  places: readonly Place[],
  pending: readonly PendingReservation[],
): Promise<void> {
  if (places.length === 0 && pending.length === 0) return;
  const deadline = remaining(ctx.deadline) > rollbackMs ? ctx.deadline : deadlineIn(rollbackMs);
  const released = await releasePlaces(config, owner, { ...ctx, deadline }, places);
  if (!released.ok) {
    ctx.log.error('could not release the partial allocation; GC will', { error: released.error.details });
    return;
  }
  for (const { attempt, address } of pending) await dropPending(ctx, attempt, address, deadline);
}

export type Released = { readonly pool: string; readonly family: Family; readonly address: bigint };

/**
 * One pool a release looks in: the family of its addresses, and the network name their cluster-wide
 * reservations carry — absent when the addresses have none (overlapping ranges off).
 */
export type ReleaseSite = { readonly pool: string; readonly family: Family; readonly network?: string };

/** Where a release looks for what was allocated in `place` (or an `Allocated` of it). */
export const siteOf = (config: IpamConfig, { pool, range }: Pick<Place, 'pool' | 'range'>): ReleaseSite => ({
  pool,
  family: range.range.subnet.family,
  ...(config.overlappingRanges ? { network: config.networkName } : {}),
});

/**
 * What a release does with each entry it finds: removes it, or — for a StatefulSet member whose set still
 * wants it (`sticky_ips`) — keeps it for the member, marked as retained (src/allocator/keeper.ts).
 */
export type Disposition = 'release' | 'retain';

async function releaseIn(
  ctx: ReleaseContext,
  { pool, family, network }: ReleaseSite,
  owner: Owner,
  disposition: Disposition,
): Promise<Result<Released[]>> {
  const released: Released[] = [];
  // Every entry a release was sent for: its reservation goes once the pool no longer has the entry — also
  // when the release committed but its answer was lost, and the retry found the entry already gone.
  const touched = new Map<bigint, Allocation>();
  // "Nothing held" is decided on the API server's pool: a store that reads from a watch cache (the agent's)
  // offers `readPoolCurrent`, since the cache may not have seen an entry committed elsewhere yet.
  for (;;) {
    const read = await retrying(
      ctx.deadline,
      () => ctx.store.readPoolCurrent?.(pool) ?? ctx.store.readPool(pool),
    );
    if (!read.ok) return fail(storeFailure(read.error));
    const snapshot = read.value; // undefined: no pool, nothing held; DEL creates nothing
    // An IPAMClaim's entry is the claim's, whichever pod's container it names now: only the claim's deletion
    // releases it (the agent, GC, which release as the claim's owner), never a pod's DEL.
    const target =
      snapshot === undefined
        ? undefined
        : releasable(snapshot.allocations, owner).find((a) => isClaimed(owner) || !isClaimed(a));
    if (snapshot === undefined || target === undefined) {
      for (const [address, was] of touched) {
        const stillHeld =
          snapshot?.allocations.some(
            (a) => a.address === address && a.podRef === was.podRef && a.ifName === was.ifName,
          ) ?? false;
        if (stillHeld || network === undefined) continue;
        const dropped = await dropReservation(
          ctx.store,
          reservationName(ipOf(family, address), network),
          was,
          ctx.deadline,
        );
        if (!dropped.ok) return fail(storeFailure(dropped.error));
      }
      return ok(released);
    }
    touched.set(target.address, target);
    const key = offsetKey(target.address, snapshot.base);
    const current = storedAt(snapshot, target.address);
    // Retained: the same conditional replace a re-ADD uses to move an entry; the entry stays the pod's and
    // interface's, so its reservation stays too (the `stillHeld` test above).
    const result = await retrying(ctx.deadline, () =>
      disposition === 'retain'
        ? ctx.store.reassignOffset(pool, key, current, entryOf({ ...target, containerId: retainedId }))
        : ctx.store.releaseOffset(pool, key, current),
    );
    if (!result.ok) return fail(storeFailure(result.error));
    if (result.value === 'done') {
      ctx.log.verbose('retained for the StatefulSet member', {
        pool,
        address: formatIP(ipOf(family, target.address)),
        pod: target.podRef,
        ifname: target.ifName,
      });
    } else if (result.value === 'released') {
      ctx.log.verbose('released', {
        pool,
        address: formatIP(ipOf(family, target.address)),
        pod: target.podRef,
        ifname: target.ifName,
      });
      released.push({ pool, family, address: target.address });
    }
  }
}

/**
 * Releases what the container's interface holds in each pool — every entry of its container ID and
 * interface, each with a write that applies only while the entry is still the one read — and then drops
 * each released address's reservation if it still names the entry's pod and interface. Every pool is
 * tried even when one fails, so one unreachable pool does not strand the others. Idempotent.
 */
export async function releaseAt(
  ctx: ReleaseContext,
  sites: readonly ReleaseSite[],
  owner: Owner,
  disposition: Disposition = 'release',
): Promise<Result<Released[]>> {
  const released: Released[] = [];
  let firstError: IpamError | undefined;
  for (const site of sites) {
    const result = await releaseIn(ctx, site, owner, disposition);
    if (result.ok) released.push(...result.value);
    else firstError ??= result.error;
  }
  return firstError === undefined ? ok(released) : fail(firstError);
}

const releasePlaces = (
  config: IpamConfig,
  owner: Owner,
  ctx: ReleaseContext,
  places: readonly Place[],
  disposition: Disposition = 'release',
): Promise<Result<Released[]>> =>
  releaseAt(
    ctx,
    places.map((place) => siteOf(config, place)),
    owner,
    disposition,
  );

/**
 * Releases what the container's interface holds in every range of the config — with node slices, in
 * every slice the node holds — or, with `retain`, keeps it for the pod's StatefulSet member. Idempotent.
 */
export async function release(
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
  disposition: Disposition = 'release',
): Promise<Result<Released[]>> {
  const places: Place[] = [];
  let firstError: IpamError | undefined;
  for (const index of config.ranges.keys()) {
    const found = await placesOf(ctx, config, index);
    if (found.ok) places.push(...found.value);
    // A range whose pool name Kubernetes refuses never held anything: nothing to release there.
    else if (found.error.code !== CniCode.InvalidConfig) firstError ??= found.error;
  }
  const released = await releasePlaces(config, owner, ctx, places, disposition);
  return firstError === undefined || !released.ok ? released : fail(firstError);
}
