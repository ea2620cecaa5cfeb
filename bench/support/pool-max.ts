// The most allocations one IPPool holds before the API server refuses a write, with managedFields as our
// writes leave them. Filling a pool one conditional patch at a time costs a write per allocation, and a
// real API server's write of a large custom resource takes longer the larger it is (about a second at
// 8,000 entries on a small machine), so each bound is found in two steps:
//
// 1. bisection on whole objects: the pool created with n realistic entries, built the way our writes build
//    them (`entryOf`), by the same client our writes use, so that managedFields hold the same manager
//    entry listing the same fields as n claims of that client leave;
// 2. confirmation through the product's own path: the pool created a few entries below the bound, then
//    `allocate()` (the transaction: read, reservation, conditional patch) one attachment after another
//    until the bound is passed.
//
// There are two bounds. managedFields (about 56 bytes per entry) count toward etcd's limit only until the
// object with them would pass it: kube-apiserver then drops them and writes the object without (its create
// and update handlers retry a "request is too large" without managedFields). The pool keeps growing without
// them until the object alone reaches the limit; that write is refused. What the server answered, what the
// store makes of it (`classify`) and what the plugin answers are reported.

import type { Owner } from '../../src/allocator/allocation.ts';
import type { IpamError } from '../../src/errors.ts';
import type { Family } from '../../src/ip/address.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import type { ApiFailure, KubeApi, Obj, ObjectRef } from '../../src/kube-api/api.ts';
import { classify, type StoreError } from '../../src/store/errors.ts';
import { apiVersion, entryOf, group, version } from '../../src/codecs/ippool.ts';
import { connect } from '../../src/kube-api/kube.ts';
import { poolName } from '../../src/codecs/names.ts';
import { kubeStore } from '../../src/store/store.ts';
import { result, seededRandom } from '../report.ts';
import { burstConfig } from './inprocess-burst.ts';

export const poolMaxRanges: Readonly<Record<Family, string>> = {
  4: '10.64.0.0/16',
  6: '2001:db8:64::/64',
};

/** etcd's default --max-request-bytes: the bound on one stored object, its key and a little framing. */
const etcdLimitBytes = 1_572_864;
/** How far below a bisected bound the confirmation through the transaction starts. */
const confirmMargin = 6;

/** What one attachment after another through the transaction did near a bound. */
type Growth = {
  /** The pool right after it was created, and before the write that passed the bound. */
  readonly first: Obj;
  readonly last: Obj;
  /** The time of the last allocation that succeeded. */
  readonly allocationMs: number;
  /** The plugin's answer when an allocation failed. */
  readonly answered?: IpamError;
  /** The last attachment that got an address. */
  readonly lastOwner?: Owner;
};

export type PoolMax = {
  readonly range: string;
  /** Entries the pool held when the server refused the next write through the transaction. */
  readonly max: number;
  /** The same bound by bisection on whole objects. */
  readonly bisectedMax: number;
  /** The largest pool, grown through the transaction, that still carried managedFields; and by bisection. */
  readonly managedUpTo: number;
  readonly bisectedManagedUpTo: number;
  /** JSON bytes of one entry with its key; of managedFields per entry, on created and on written pools. */
  readonly entryBytes: number;
  readonly managedFieldsPerEntry: number;
  readonly managedFieldsPerWrittenEntry: number;
  /** The field managers of the pool our writes grew, while it had managedFields. */
  readonly managers: string;
  /** The stored object's JSON at the limit. */
  readonly objectBytes: number;
  /** The time of one allocation through the transaction just under each bound. */
  readonly managedAllocationMs: number;
  readonly allocationMs: number;
  /** The server's answer to a claim past the limit, the store's reading of it, the plugin's answer. */
  readonly refused: ApiFailure | undefined;
  readonly classified: StoreError | undefined;
  readonly answered: IpamError | undefined;
  /** How a release through the transaction went on the full pool. */
  readonly releaseAtLimit: string;
  readonly seconds: number;
};

const podNameLetters = 'bcdfghjklmnpqrstvwxz2456789';

/** Owners as a cluster has them: 64-hex sandbox IDs, Deployment pods `<ns>/<name>-<hash>-<xxxxx>`, net1. */
export function realisticOwners(count: number, seed: number): Owner[] {
  const random = seededRandom(seed);
  const pick = (alphabet: string, n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)] ?? '').join('');
  return Array.from({ length: count }, () => ({
    containerId: pick('0123456789abcdef', 64),
    podRef: `team-a/frontend-${pick(podNameLetters, 10)}-${pick(podNameLetters, 5)}`,
    ifName: 'net1',
  }));
}

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value ?? null));
const managedFieldsOf = (o: Obj): unknown[] =>
  (o.metadata as { managedFields?: unknown[] } | undefined)?.managedFields ?? [];
const entriesOf = (o: Obj): string[] =>
  Object.keys((o.spec as { allocations?: object } | undefined)?.allocations ?? {});
const managersOf = (o: Obj): string =>
  managedFieldsOf(o)
    .map((m) => {
      const { manager, operation } = m as { manager?: string; operation?: string };
      return `${manager ?? '?'}/${operation ?? '?'}`;
    })
    .join(', ') || 'none';

/** The largest n for which `holds(n)` (true up to some n, false after), searched from a guess. */
async function largest(guess: number, holds: (n: number) => Promise<boolean>): Promise<number> {
  let step = 16;
  let low = guess - step;
  let high = guess + step;
  while (!(await holds(low))) [high, low, step] = [low, Math.max(0, low - step * 2), step * 2];
  while (await holds(high)) [low, high, step] = [high, high + step * 2, step * 2];
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await holds(middle)) low = middle;
    else high = middle;
  }
  return low;
}

export async function poolMax(kubeconfig: string, family: Family): Promise<PoolMax> {
  const started = performance.now();
  const range = poolMaxRanges[family];
  const config = burstConfig(range);
  const rangeConfig = config.ranges[0];
  if (rangeConfig === undefined) throw new Error('no range');
  const connection = connect({ kubeconfig, requestTimeoutMs: 120_000 });
  if (!connection.ok) throw new Error(connection.error.details);
  const api: KubeApi = connection.value;
  const store = kubeStore(api);
  const name = poolName(rangeConfig.range.subnet, config.networkName);
  const collection: ObjectRef = { group, version, plural: 'ippools', namespace: api.namespace };
  const ref: ObjectRef = { ...collection, name };
  const owners = realisticOwners(20_000, family);

  const body = (n: number): Obj => ({
    apiVersion,
    kind: 'IPPool',
    metadata: { name },
    spec: {
      range,
      allocations: Object.fromEntries(owners.slice(0, n).map((o, i) => [String(i + 1), entryOf(o)])),
    },
  });
  const read = async (): Promise<Obj> => {
    const got = await api.get(ref);
    if (!got.ok) throw new Error(`get IPPool ${name}: ${JSON.stringify(got.error)}`);
    return got.value;
  };
  const remove = async () => {
    const removed = await api.delete(ref);
    if (!removed.ok) throw new Error(`delete IPPool ${name}: ${JSON.stringify(removed.error)}`);
  };
  /**
   * Creates the pool with n entries: true when the server stored it (then it is left in place), false when
   * it refused it as too large; any other answer ends the measurement.
   */
  const create = async (n: number): Promise<boolean> => {
    const created = await api.create(collection, body(n));
    if (created.ok) return true;
    const f = created.error;
    if (f.kind === 'status' && f.code === 500 && f.message.includes('request is too large')) return false;
    throw new Error(`create IPPool with ${n} entries: ${JSON.stringify(f)}`);
  };

  // 1. Two sizes give the bytes per entry with and without managedFields, so a first guess of each bound;
  // bisection on whole objects finds each.
  const probes: { all: number; managed: number }[] = [];
  for (const n of [500, 1500]) {
    if (!(await create(n))) throw new Error(`the server refused an IPPool of ${n} entries`);
    const o = await read();
    probes.push({ all: bytes(o), managed: bytes(managedFieldsOf(o)) });
    await remove();
  }
  const [small = { all: 0, managed: 0 }, large = { all: 0, managed: 0 }] = probes;
  const guess = (at500: number, at1500: number) => {
    const perEntry = (at1500 - at500) / 1000;
    return Math.floor((etcdLimitBytes - (at500 - 500 * perEntry)) / perEntry);
  };
  const bisectedManagedUpTo = await largest(guess(small.all, large.all), async (n) => {
    if (!(await create(n))) return false;
    const carries = managedFieldsOf(await read()).length > 0;
    await remove();
    return carries;
  });
  const bisectedMax = await largest(
    guess(small.all - small.managed, large.all - large.managed),
    async (n) => {
      const stored = await create(n);
      if (stored) await remove();
      return stored;
    },
  );

  const context = () => ({ store, log: silentLogger, deadline: deadlineIn(60_000) });

  // 2. Through the transaction: the pool created `confirmMargin` entries below a bound, then one attachment
  // after another until `passed` says the bound is behind, an allocation fails, or far too many succeeded.
  const grow = async (from: number, passed: (o: Obj) => boolean): Promise<Growth> => {
    if (!(await create(from))) throw new Error(`the server refused an IPPool of ${from} entries`);
    const first = await read();
    let last = first;
    let allocationMs = Number.NaN;
    let lastOwner: Owner | undefined;
    for (let next = from; next <= from + 4 * confirmMargin; next++) {
      const t0 = performance.now();
      const owner = owners[next] as Owner;
      const allocated = await allocate(config, owner, context());
      if (!allocated.ok)
        return { first, last, allocationMs, answered: allocated.error, ...(lastOwner && { lastOwner }) };
      allocationMs = performance.now() - t0;
      lastOwner = owner;
      const now = await read();
      if (passed(now)) break;
      last = now;
    }
    return { first, last, allocationMs, ...(lastOwner && { lastOwner }) };
  };
  const managed = await grow(bisectedManagedUpTo - confirmMargin, (o) => managedFieldsOf(o).length === 0);
  await remove();
  const written = entriesOf(managed.last).length - entriesOf(managed.first).length;
  const limit = await grow(bisectedMax - confirmMargin, () => false);
  const full = limit.last;

  // The server's own answer to one more claim, and the store's reading of it.
  const key = String(Math.max(...entriesOf(full).map(Number)) + 1);
  const path = `/spec/allocations/${key}`;
  const claimed = await api.jsonPatch(ref, [
    { op: 'test', path, value: null },
    { op: 'add', path, value: entryOf(owners[owners.length - 1] as Owner) },
  ]);
  const refused = claimed.ok ? undefined : claimed.error;
  const classified =
    refused === undefined
      ? undefined
      : classify(refused, `claim offset ${key} in IPPool ${api.namespace}/${name}`, api.server);
  // A full pool must still release.
  let releaseAtLimit = 'not tried';
  if (limit.lastOwner !== undefined) {
    const t0 = performance.now();
    const released = await release(config, limit.lastOwner, context());
    const ms = (performance.now() - t0).toFixed(0);
    releaseAtLimit = released.ok
      ? `released ${released.value.length} address in ${ms} ms`
      : `failed after ${ms} ms: ${released.error.details}`;
  }
  await remove();

  return {
    range,
    max: entriesOf(full).length,
    bisectedMax,
    managedUpTo: entriesOf(managed.last).length,
    bisectedManagedUpTo,
    entryBytes: bytes(body(1000).spec) / 1000,
    managedFieldsPerEntry: (large.managed - small.managed) / 1000,
    managedFieldsPerWrittenEntry:
      written > 0
        ? (bytes(managedFieldsOf(managed.last)) - bytes(managedFieldsOf(managed.first))) / written
        : Number.NaN,
    managers: managersOf(managed.last),
    objectBytes: bytes(full),
    managedAllocationMs: managed.allocationMs,
    allocationMs: limit.allocationMs,
    refused,
    classified,
    answered: limit.answered,
    releaseAtLimit,
    seconds: (performance.now() - started) / 1000,
  };
}

export function printPoolMax(name: string, found: PoolMax): void {
  const f = (n: number) => (Number.isNaN(n) ? 'n/a' : n.toFixed(1));
  console.log(
    `# ${name}: ${found.range}: ${found.entryBytes.toFixed(1)} bytes per entry, managedFields ` +
      `${f(found.managedFieldsPerEntry)} more (${f(found.managedFieldsPerWrittenEntry)} per entry our writes added; ${found.managers})`,
  );
  console.log(
    `#   managedFields kept up to ${found.managedUpTo} entries (bisection on whole objects: ${found.bisectedManagedUpTo}), ` +
      `${found.managedUpTo < found.max ? 'dropped by the server past that' : 'never dropped (the write is refused instead)'}; ` +
      `an allocation there took ${f(found.managedAllocationMs)} ms`,
  );
  console.log(
    `#   a write refused at ${found.max} entries (bisection: ${found.bisectedMax}), object ${found.objectBytes} bytes; ` +
      `an allocation there took ${f(found.allocationMs)} ms; ${found.seconds.toFixed(1)} s in all`,
  );
  const refused = found.refused;
  if (refused !== undefined)
    console.log(
      `#   server: ${refused.kind === 'status' ? `${refused.code} reason=${refused.reason ?? '(none)'} "${refused.message}"` : refused.code}`,
    );
  if (found.classified !== undefined)
    console.log(`#   store: ${found.classified.retry ? 'retry' : 'fail now'}: ${found.classified.message}`);
  if (found.answered !== undefined)
    console.log(`#   plugin: code ${found.answered.code} ${found.answered.msg}: ${found.answered.details}`);
  console.log(`#   a release on the full pool: ${found.releaseAtLimit}`);
  result(name, found.max, 'allocations');
}
