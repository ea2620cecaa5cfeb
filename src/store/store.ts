// The datastore of IPPools and OverlappingRangeIPReservations. Every write states its own precondition
// and needs no lock: a claim tests that the offset is still free, a release that the entry is still the
// one read; neither carries a resourceVersion, so the API server applies it to the latest object and
// writers of different offsets never conflict.

import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Cidr } from '../ip/cidr.ts';
import { fail, ok, type Result } from '../errors.ts';
import { apiStatus, classify, isObjectNotFound, type StoreError } from './errors.ts';
import {
  apiVersion,
  decodePool,
  group,
  newPool,
  version,
  type AllocationEntry,
  type PoolSnapshot,
} from './ippool.ts';
import type { KubeConnection } from './kube.ts';

export type StoreResult<T> = Result<T, StoreError>;

/** The spec of an OverlappingRangeIPReservation. Whereabouts never writes `containerid`; we do. */
export type ReservationEntry = { podref: string; ifname?: string; containerid?: string };
export type Reservation = {
  readonly spec: ReservationEntry;
  readonly resourceVersion: string;
  readonly uid: string;
};

export type IpamStore = {
  readonly namespace: string;
  readPool(name: string): Promise<StoreResult<PoolSnapshot | undefined>>;
  createPool(name: string, subnet: Cidr): Promise<StoreResult<'created' | 'exists'>>;
  /** Adds the entry at `key` if that offset is free: `taken` when it is not, `missing` when the pool is gone. */
  claim(
    pool: string,
    key: string,
    entry: AllocationEntry,
  ): Promise<StoreResult<'claimed' | 'taken' | 'missing'>>;
  /** Replaces the entry at `key` if it is still exactly `current`. */
  reassign(
    pool: string,
    key: string,
    current: unknown,
    entry: AllocationEntry,
  ): Promise<StoreResult<'done' | 'changed'>>;
  /** Removes the entry at `key` if it is still exactly `current`: `changed` when it is not (or is gone). */
  release(pool: string, key: string, current: unknown): Promise<StoreResult<'released' | 'changed'>>;
  readReservation(name: string): Promise<StoreResult<Reservation | undefined>>;
  createReservation(name: string, entry: ReservationEntry): Promise<StoreResult<'created' | 'exists'>>;
  /** Deletes the reservation if it is still at `resourceVersion`: `changed` when it moved on, `gone` when absent. */
  deleteReservation(
    name: string,
    resourceVersion: string,
  ): Promise<StoreResult<'deleted' | 'changed' | 'gone'>>;
};

const pools = 'ippools';
const reservations = 'overlappingrangeipreservations';

type Obj = Record<string, unknown>;

const status = (e: unknown): number | undefined => apiStatus(e)?.code;

export function kubeStore(connection: KubeConnection): IpamStore {
  const { custom, namespace, server } = connection;
  const where = { group, version, namespace };
  const failed = (e: unknown, what: string) => fail(classify(e, what, server));

  async function patchPool(name: string, operations: unknown[], what: string) {
    return custom
      .patchNamespacedCustomObject(
        { ...where, plural: pools, name, body: operations },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      )
      .then(
        () => ok('applied' as const),
        (e: unknown) => {
          const code = status(e);
          if (isObjectNotFound(e)) return ok('missing' as const);
          const error = classify(e, what, server);
          // A generic 422 is a failed `test`: the entry is not what we expected any more.
          if (code === 422 && error.retry) return ok('failed' as const);
          return fail(error);
        },
      );
  }

  return {
    namespace,

    async readPool(name) {
      try {
        const object = (await custom.getNamespacedCustomObject({ ...where, plural: pools, name })) as Obj;
        const snapshot = decodePool(object);
        if (snapshot === undefined) {
          return fail({
            retry: false,
            message: `IPPool ${namespace}/${name} has no valid spec.range; fix or delete the object`,
          });
        }
        return ok(snapshot);
      } catch (e) {
        if (isObjectNotFound(e)) return ok(undefined);
        return failed(e, `get IPPool ${namespace}/${name}`);
      }
    },

    async createPool(name, subnet) {
      try {
        await custom.createNamespacedCustomObject({ ...where, plural: pools, body: newPool(name, subnet) });
        return ok('created');
      } catch (e) {
        if (status(e) === 409) return ok('exists');
        return failed(e, `create IPPool ${namespace}/${name}`);
      }
    },

    async claim(pool, key, entry) {
      const path = `/spec/allocations/${key}`;
      const result = await patchPool(
        pool,
        [
          { op: 'test', path, value: null },
          { op: 'add', path, value: entry },
        ],
        `claim offset ${key} in IPPool ${namespace}/${pool}`,
      );
      if (!result.ok) return result;
      return ok(result.value === 'applied' ? 'claimed' : result.value === 'missing' ? 'missing' : 'taken');
    },

    async reassign(pool, key, current, entry) {
      const path = `/spec/allocations/${key}`;
      const result = await patchPool(
        pool,
        [
          { op: 'test', path, value: current },
          { op: 'replace', path, value: entry },
        ],
        `update offset ${key} in IPPool ${namespace}/${pool}`,
      );
      if (!result.ok) return result;
      return ok(result.value === 'applied' ? 'done' : 'changed');
    },

    async release(pool, key, current) {
      const path = `/spec/allocations/${key}`;
      const result = await patchPool(
        pool,
        [
          { op: 'test', path, value: current },
          { op: 'remove', path },
        ],
        `release offset ${key} in IPPool ${namespace}/${pool}`,
      );
      if (!result.ok) return result;
      return ok(result.value === 'applied' ? 'released' : 'changed');
    },

    async readReservation(name) {
      try {
        const object = (await custom.getNamespacedCustomObject({
          ...where,
          plural: reservations,
          name,
        })) as Obj;
        const metadata = (object.metadata ?? {}) as { resourceVersion?: string; uid?: string };
        const spec = (object.spec ?? {}) as Partial<ReservationEntry>;
        return ok({
          spec: {
            podref: spec.podref ?? '',
            ...(spec.ifname === undefined ? {} : { ifname: spec.ifname }),
            ...(spec.containerid === undefined ? {} : { containerid: spec.containerid }),
          },
          resourceVersion: metadata.resourceVersion ?? '',
          uid: metadata.uid ?? '',
        });
      } catch (e) {
        if (isObjectNotFound(e)) return ok(undefined);
        return failed(e, `get OverlappingRangeIPReservation ${namespace}/${name}`);
      }
    },

    async createReservation(name, entry) {
      const body = { apiVersion, kind: 'OverlappingRangeIPReservation', metadata: { name }, spec: entry };
      try {
        await custom.createNamespacedCustomObject({ ...where, plural: reservations, body });
        return ok('created');
      } catch (e) {
        if (status(e) === 409) return ok('exists');
        return failed(e, `create OverlappingRangeIPReservation ${namespace}/${name}`);
      }
    },

    async deleteReservation(name, resourceVersion) {
      try {
        await custom.deleteNamespacedCustomObject({
          ...where,
          plural: reservations,
          name,
          body: { preconditions: { resourceVersion } },
        });
        return ok('deleted');
      } catch (e) {
        if (isObjectNotFound(e)) return ok('gone');
        if (status(e) === 409) return ok('changed');
        return failed(e, `delete OverlappingRangeIPReservation ${namespace}/${name}`);
      }
    },
  };
}

export type { StoreError };
