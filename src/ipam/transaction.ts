// The IPAM transaction: allocate and release an attachment's addresses over all ranges of a config. No
// lock: read the pool, choose, write conditionally, and on a collision choose again — all within a
// deadline. Every outcome of every call is handled here, in one place.
//
// Per range, allocation is: read the pool (create it on first use) → if the (pod, interface) holds an
// address, return it (idempotent ADD) → else choose a free address → take its cluster-wide reservation
// (when overlapping ranges are on) → claim its offset in the pool with `test null` + `add`.

import type { Allocation, Owner } from '../allocator/allocation.ts';
import { assign, claim, releasable, spread, type Assignment } from '../allocator/assign.ts';
import { heldBy, indexPool, recordBlocked, type PoolIndex } from '../allocator/pool-index.ts';
import type { IpamConfig, RangeConfig } from '../config/ipam-config.ts';
import { CniCode, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { formatIP, ipOf } from '../ip/address.ts';
import { rangeCapacity } from '../ip/range.ts';
import type { Logger } from '../log.ts';
import { unsupportedSlices } from '../slices/support.ts';
import type { StoreError } from '../store/errors.ts';
import { entryOf, offsetKey, type PoolSnapshot } from '../store/ippool.ts';
import { isValidObjectName, poolName, reservationName } from '../store/names.ts';
import type { IpamStore } from '../store/store.ts';
import { dropReservation, reservedFor, takeReservation } from './reservations.ts';
import { deadlineIn, remaining, retrying, type Deadline } from './retry.ts';

export type TransactionContext = {
  readonly store: IpamStore;
  readonly log: Logger;
  readonly deadline: Deadline;
  readonly random?: () => number;
};

export type Allocated = { readonly range: RangeConfig; readonly pool: string; readonly address: bigint };

/** Time a rollback of partial work gets when the transaction's own deadline has run out. */
const rollbackMs = 10_000;

const storeFailure = (error: StoreError): IpamError =>
  ipamError(error.retry ? CniCode.TryAgainLater : CniCode.Internal, error.message);

const text = (range: RangeConfig, address: bigint): string =>
  formatIP(ipOf(range.range.subnet.family, address));

/**
 * How many of the lowest free addresses a writer chooses among at first: wide enough in large pools that
 * a burst of concurrent writers rarely collides, a sixteenth of the pool so that it stays compact.
 */
function initialWindow(range: RangeConfig): number {
  const sixteenth = rangeCapacity(range.range) / 16n;
  return sixteenth < 64n ? 64 : sixteenth > 4096n ? 4096 : Number(sixteenth);
}

const maxWindow = 65_536;

function poolNameOf(config: IpamConfig, range: RangeConfig): Result<string> {
  const name = poolName(range.range.subnet, config.networkName);
  if (!isValidObjectName(name)) {
    return fail(
      ipamError(
        CniCode.InvalidConfig,
        `range ${range.text} gives the IPPool name "${name}", which Kubernetes does not accept`,
      ),
    );
  }
  return ok(name);
}

/** Reads the pool, creating it on first use. */
async function readOrCreate(
  ctx: TransactionContext,
  name: string,
  range: RangeConfig,
): Promise<Result<PoolSnapshot, StoreError>> {
  for (;;) {
    const read = await retrying(ctx.deadline, () => ctx.store.readPool(name));
    if (!read.ok || read.value !== undefined) return read as Result<PoolSnapshot, StoreError>;
    const created = await retrying(ctx.deadline, () => ctx.store.createPool(name, range.range.subnet));
    if (!created.ok) return created;
    ctx.log.debug('created IPPool', { pool: name });
  }
}

type RangeAttempt = {
  readonly config: IpamConfig;
  readonly range: RangeConfig;
  readonly pool: string;
  readonly owner: Owner;
  /** Reservations this transaction created and no pool entry of ours confirms yet. */
  readonly pending: Set<bigint>;
  /** Whether a pool write was sent: only then can a failure leave something to roll back. */
  wrote: boolean;
};

const reservationOf = (a: RangeAttempt, address: bigint): string =>
  reservationName(ipOf(a.range.range.subnet.family, address), a.config.networkName);

/** Drops a pending reservation; a failure only leaves it for GC. */
async function dropPending(ctx: TransactionContext, a: RangeAttempt, address: bigint): Promise<void> {
  a.pending.delete(address);
  const dropped = await dropReservation(ctx.store, reservationOf(a, address), a.owner, ctx.deadline);
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
      ctx.store.reassign(a.pool, key, storedAt(snapshot, held.address), entryOf(a.owner)),
    );
    if (!moved.ok) return fail(storeFailure(moved.error));
    if (moved.value === 'changed') return ok('again');
  }
  return ok(held.address);
}

async function allocateRange(ctx: TransactionContext, a: RangeAttempt): Promise<Result<bigint>> {
  const random = ctx.random ?? Math.random;
  let window = initialWindow(a.range);
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
    const snapshot = await readOrCreate(ctx, a.pool, a.range);
    if (!snapshot.ok) return fail(storeFailure(snapshot.error));
    const index = indexPool(a.range.range, snapshot.value.allocations);
    // A pending reservation of an address that someone else now holds in the pool is not needed any more.
    for (const address of a.pending) {
      const holder = index.byAddress.get(address);
      if (holder !== undefined && !reservedFor({ podref: holder.podRef, ifname: holder.ifName }, a.owner)) {
        await dropPending(ctx, a, address);
      }
    }
    const held = await confirmHeld(ctx, a, index, snapshot.value);
    if (!held.ok) return held;
    if (held.value === 'again') continue;
    if (held.value !== 'none') return ok(held.value);

    // Choose, and take the reservation; a reservation held by someone else only blocks that address.
    let choice: Assignment;
    for (;;) {
      choice =
        a.range.requested !== undefined
          ? claim(index, a.owner, a.range.requested)
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
      return fail(
        ipamError(
          a.range.requested !== undefined ? CniCode.InvalidConfig : CniCode.TryAgainLater,
          choice.reason,
        ),
      );
    }
    if (choice.kind === 'held') continue;
    const address = choice.address;
    a.wrote = true;
    const claimed = await retrying(ctx.deadline, () =>
      ctx.store.claim(a.pool, offsetKey(address, snapshot.value.base), entryOf(a.owner)),
    );
    if (!claimed.ok) return fail(storeFailure(claimed.error));
    if (claimed.value === 'claimed') return ok(address);
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

/** Allocates one address from every range of the config for the attachment, or none at all. */
export async function allocate(
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
): Promise<Result<Allocated[]>> {
  const sliced = unsupportedSlices(config);
  if (sliced !== undefined) return fail(sliced);
  const done: Allocated[] = [];
  for (const range of config.ranges) {
    const pool = poolNameOf(config, range);
    if (!pool.ok) {
      await rollback(
        config,
        owner,
        ctx,
        done.map((d) => d.range),
      );
      return pool;
    }
    const attempt: RangeAttempt = {
      config,
      range,
      pool: pool.value,
      owner,
      pending: new Set(),
      wrote: false,
    };
    const address = await allocateRange(ctx, attempt);
    for (const extra of attempt.pending)
      if (!address.ok || extra !== address.value) await dropPending(ctx, attempt, extra);
    if (!address.ok) {
      // Whatever this call did so far — earlier ranges, and this one if a lost answer may hide a write —
      // is released before failing, so a failed ADD holds nothing.
      await rollback(config, owner, ctx, [...done.map((d) => d.range), ...(attempt.wrote ? [range] : [])]);
      return address;
    }
    ctx.log.verbose('allocated', {
      pool: pool.value,
      address: text(range, address.value),
      pod: owner.podRef,
      ifname: owner.ifName,
    });
    done.push({ range, pool: pool.value, address: address.value });
  }
  return ok(done);
}

async function rollback(
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
  ranges: readonly RangeConfig[],
): Promise<void> {
  if (ranges.length === 0) return;
  const deadline = remaining(ctx.deadline) > rollbackMs ? ctx.deadline : deadlineIn(rollbackMs);
  const released = await releaseRanges(config, owner, { ...ctx, deadline }, ranges);
  if (!released.ok)
    ctx.log.error('could not release the partial allocation; GC will', { error: released.error.details });
}

export type Released = { readonly range: RangeConfig; readonly pool: string; readonly address: bigint };

async function releaseRange(
  ctx: TransactionContext,
  config: IpamConfig,
  range: RangeConfig,
  pool: string,
  owner: Owner,
): Promise<Result<Released[]>> {
  const released: Released[] = [];
  // Every entry a release was sent for: its reservation goes once the pool no longer has the entry — also
  // when the release committed but its answer was lost, and the retry found the entry already gone.
  const touched = new Map<bigint, Allocation>();
  for (;;) {
    const read = await retrying(ctx.deadline, () => ctx.store.readPool(pool));
    if (!read.ok) return fail(storeFailure(read.error));
    const snapshot = read.value; // undefined: no pool, nothing held; DEL creates nothing
    const target = snapshot === undefined ? undefined : releasable(snapshot.allocations, owner)[0];
    if (snapshot === undefined || target === undefined) {
      for (const [address, was] of touched) {
        const stillHeld =
          snapshot?.allocations.some(
            (a) => a.address === address && a.podRef === was.podRef && a.ifName === was.ifName,
          ) ?? false;
        if (stillHeld || !config.overlappingRanges) continue;
        const dropped = await dropReservation(
          ctx.store,
          reservationName(ipOf(range.range.subnet.family, address), config.networkName),
          was,
          ctx.deadline,
        );
        if (!dropped.ok) return fail(storeFailure(dropped.error));
      }
      return ok(released);
    }
    touched.set(target.address, target);
    const result = await retrying(ctx.deadline, () =>
      ctx.store.release(pool, offsetKey(target.address, snapshot.base), storedAt(snapshot, target.address)),
    );
    if (!result.ok) return fail(storeFailure(result.error));
    if (result.value === 'released') {
      ctx.log.verbose('released', {
        pool,
        address: text(range, target.address),
        pod: target.podRef,
        ifname: target.ifName,
      });
      released.push({ range, pool, address: target.address });
    }
  }
}

async function releaseRanges(
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
  ranges: readonly RangeConfig[],
): Promise<Result<Released[]>> {
  const released: Released[] = [];
  let firstError: IpamError | undefined;
  // Every range is tried even when one fails, so one unreachable pool does not strand the others.
  for (const range of ranges) {
    const pool = poolNameOf(config, range);
    if (!pool.ok) continue;
    const result = await releaseRange(ctx, config, range, pool.value, owner);
    if (result.ok) released.push(...result.value);
    else firstError ??= result.error;
  }
  return firstError === undefined ? ok(released) : fail(firstError);
}

/** Releases what the container's interface holds in every range of the config. Idempotent. */
export const release = (
  config: IpamConfig,
  owner: Owner,
  ctx: TransactionContext,
): Promise<Result<Released[]>> => releaseRanges(config, owner, ctx, config.ranges);
