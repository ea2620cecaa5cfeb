// The IPPool role of the store: read a pool, list them, create one, label it, and the three conditional
// writes of one offset's entry — claim, reassign, release. The transaction allocates and releases through
// it, the agent's group commit batches its writes. None of the writes carries a resourceVersion: each
// states its own precondition (a claim tests that the offset is still free, a reassign or a release that
// the entry is still the one read), so the API server applies it to the latest object and writers of
// different offsets never conflict; labelling a slice pool sets our own label keys and no other. The
// writes and the sorting of their answers are the conditional-write protocol's (conditional-write.ts);
// this file names each answer in the role's words.

import { fail, ok } from '../errors.ts';
import type { Cidr } from '../ip/cidr.ts';
import type { KubeApi, ObjectRef } from '../kube-api/api.ts';
import {
  claimOffsetWrite,
  ipPoolRef,
  labelWrites,
  reassignWrite,
  releaseWrite,
  send,
} from './conditional-write.ts';
import { classify, isStatus } from './errors.ts';
import {
  decodePool,
  group,
  newPool,
  version,
  type AllocationEntry,
  type PoolSnapshot,
} from '../codecs/ippool.ts';
import { listEvery } from './paging.ts';
import type { PoolLabels } from '../codecs/pool-labels.ts';
import { getIfExists, type StoreResult } from './result.ts';

/** One IPPool of a listing: its `spec.range` as written (for its network name) and its decoded contents. */
export type PoolListing = { readonly range: string; readonly snapshot: PoolSnapshot };

export type PoolStore = {
  /** The namespace of the pools. */
  readonly namespace: string;
  readPool(name: string): Promise<StoreResult<PoolSnapshot | undefined>>;
  /** A store whose `readPool` may answer from a cache (the agent's watch cache) also reads from the API server. */
  readPoolCurrent?(name: string): Promise<StoreResult<PoolSnapshot | undefined>>;
  /** Every IPPool of the namespace, every page of them; pools without a valid `spec.range` are left out. */
  listPools(): Promise<StoreResult<PoolListing[]>>;
  /** Creates the IPPool, empty, with `labels` (a node's slice pool: `slicePoolLabels`). */
  createPool(name: string, subnet: Cidr, labels?: PoolLabels): Promise<StoreResult<'created' | 'exists'>>;
  /** Sets `labels` on the IPPool, keeping its other labels: `missing` when the pool is gone. */
  labelPool(name: string, labels: PoolLabels): Promise<StoreResult<'labelled' | 'missing'>>;
  /** Adds the entry at `key` if that offset is free: `taken` when it is not, `missing` when the pool is gone. */
  claimOffset(
    pool: string,
    key: string,
    entry: AllocationEntry,
  ): Promise<StoreResult<'claimed' | 'taken' | 'missing'>>;
  /** Replaces the entry at `key` if it is still exactly `current` (a new sandbox of the same pod, a retained entry). */
  reassignOffset(
    pool: string,
    key: string,
    current: unknown,
    entry: AllocationEntry,
  ): Promise<StoreResult<'done' | 'changed'>>;
  /** Removes the entry at `key` if it is still exactly `current`: `changed` when it is not (or is gone). */
  releaseOffset(pool: string, key: string, current: unknown): Promise<StoreResult<'released' | 'changed'>>;
};

/** The IPPools of a namespace, as a collection (for a list or a create). */
export const ipPools = (namespace: string): ObjectRef => ({ group, version, plural: 'ippools', namespace });

async function readPool(api: KubeApi, name: string): Promise<StoreResult<PoolSnapshot | undefined>> {
  const what = `get IPPool ${api.namespace}/${name}`;
  const result = await getIfExists(api, ipPoolRef({ namespace: api.namespace, name }), what);
  if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
  const snapshot = decodePool(result.value);
  return snapshot.ok
    ? snapshot
    : fail({ retry: false, message: `${snapshot.error}; fix or delete the object` });
}

async function listPools(api: KubeApi): Promise<StoreResult<PoolListing[]>> {
  const { namespace } = api;
  // Pools are large (up to the object size limit each): a few per page.
  const listed = await listEvery(api, ipPools(namespace), `list IPPools in ${namespace}`, { limit: 20 });
  if (!listed.ok) return listed;
  const found: PoolListing[] = [];
  for (const item of listed.value) {
    const snapshot = decodePool(item);
    if (snapshot.ok) found.push({ range: snapshot.value.range, snapshot: snapshot.value });
  }
  return ok(found);
}

async function createPool(
  api: KubeApi,
  name: string,
  subnet: Cidr,
  labels: PoolLabels | undefined,
): Promise<StoreResult<'created' | 'exists'>> {
  const { namespace } = api;
  const result = await api.create(ipPools(namespace), newPool(name, subnet, labels));
  if (result.ok) return ok('created');
  return isStatus(result.error, 409)
    ? ok('exists')
    : fail(classify(result.error, `create IPPool ${namespace}/${name}`, api.server));
}

async function labelPool(
  api: KubeApi,
  name: string,
  labels: PoolLabels,
): Promise<StoreResult<'labelled' | 'missing'>> {
  // One of the two forms applies (see labelWrites); labels that appeared or vanished meanwhile make the
  // other one apply, so each is tried twice.
  const { whole, each } = labelWrites({ namespace: api.namespace, name }, labels);
  for (const write of [whole, each, whole, each]) {
    const result = await send(api, write);
    if (!result.ok) return result;
    if (result.value !== 'changed') return ok(result.value === 'done' ? 'labelled' : 'missing');
  }
  return fail({ retry: true, message: `${whole.what}: its labels kept changing under the patch` });
}

/** The pools of the API's namespace on the API server. */
export function kubePools(api: KubeApi): PoolStore {
  const { namespace } = api;
  const target = (name: string) => ({ namespace, name });
  return {
    namespace,
    readPool: (name) => readPool(api, name),
    listPools: () => listPools(api),
    createPool: (name, subnet, labels) => createPool(api, name, subnet, labels),
    labelPool: (name, labels) => labelPool(api, name, labels),
    async claimOffset(pool, key, entry) {
      const result = await send(api, claimOffsetWrite(target(pool), key, entry));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'claimed' : result.value === 'gone' ? 'missing' : 'taken');
    },
    async reassignOffset(pool, key, current, entry) {
      const result = await send(api, reassignWrite(target(pool), key, current, entry));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'done' : 'changed');
    },
    async releaseOffset(pool, key, current) {
      const result = await send(api, releaseWrite(target(pool), key, current));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'released' : 'changed');
    },
  };
}
