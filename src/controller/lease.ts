// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the holder renews
// `renewTime` well within `leaseDurationSeconds`; anyone may take a lease whose holder has not renewed for
// longer than that. Every write is conditional on the resourceVersion read, so of two candidates racing for
// one lease exactly one wins.

import type { KubeApi, Obj, ObjectRef } from '../store/api.ts';

export type LeaseOptions = {
  readonly namespace: string;
  readonly name: string;
  /** Who we are: the pod name, unique among the candidates. */
  readonly identity: string;
  readonly leaseSeconds: number;
  readonly now?: () => number;
};

type LeaseSpec = {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
};

const leases = (namespace: string): ObjectRef => ({
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  namespace,
});

/** MicroTime, as the API server writes it. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** One round: acquire or renew the lease. True while we hold it. */
export async function holdLease(api: KubeApi, options: LeaseOptions): Promise<boolean> {
  const now = (options.now ?? Date.now)();
  const ref: ObjectRef = { ...leases(options.namespace), name: options.name };
  const ours: LeaseSpec = {
    holderIdentity: options.identity,
    leaseDurationSeconds: options.leaseSeconds,
    renewTime: microTime(now),
  };
  const read = await api.get(ref);
  if (!read.ok) {
    if (read.failure.kind !== 'status' || read.failure.code !== 404) return false;
    const created = await api.create(leases(options.namespace), {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: options.name, namespace: options.namespace },
      spec: { ...ours, acquireTime: microTime(now), leaseTransitions: 0 },
    });
    return created.ok;
  }
  const lease = read.value;
  const spec = (lease.spec ?? {}) as LeaseSpec;
  const rv = (lease.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? '';
  const renewed = spec.renewTime === undefined ? 0 : new Date(spec.renewTime).getTime();
  const expired = now > renewed + (spec.leaseDurationSeconds ?? options.leaseSeconds) * 1000;
  const held = spec.holderIdentity === options.identity;
  if (!held && !expired && spec.holderIdentity !== undefined && spec.holderIdentity !== '') return false;
  const next: LeaseSpec = held
    ? { ...spec, ...ours }
    : { ...ours, acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
  const patched = await api.jsonPatch(ref, [
    { op: 'test', path: '/metadata/resourceVersion', value: rv },
    { op: 'replace', path: '/spec', value: next },
  ]);
  return patched.ok;
}

/** Gives the lease up at shutdown, so another candidate need not wait for it to expire. */
export async function releaseLease(api: KubeApi, options: LeaseOptions): Promise<void> {
  const ref: ObjectRef = { ...leases(options.namespace), name: options.name };
  const read = await api.get(ref);
  if (!read.ok) return;
  const lease: Obj = read.value;
  const spec = (lease.spec ?? {}) as LeaseSpec;
  if (spec.holderIdentity !== options.identity) return;
  const rv = (lease.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? '';
  await api.jsonPatch(ref, [
    { op: 'test', path: '/metadata/resourceVersion', value: rv },
    { op: 'replace', path: '/spec/holderIdentity', value: '' },
  ]);
}
