// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the holder renews
// `renewTime` well within `leaseDurationSeconds`; anyone may take a lease whose holder has not renewed for
// longer than that — judged by this candidate's own clock: it notes when it first saw the lease as it is
// now, and takes it only after seeing no change for the lease duration. The holder's `renewTime` comes
// from another machine's clock and is never compared with ours (a replica whose clock is behind would
// otherwise look expired while it renews, and two would lead at once). Every write is conditional on the
// resourceVersion read, so of two candidates racing for one lease exactly one wins. The Lease is decoded by
// its codec (src/codecs/lease.ts); one that does not decode counts as held by a candidate we do not know.

import type { KubeApi, ObjectRef } from '../kube-api/api.ts';
import type { JsonObject } from '../codecs/decode.ts';
import { send, versionedWrite } from '../store/conditional-write.ts';
import { decodeLease, type LeaseSpec } from '../codecs/lease.ts';
import { metaOf } from '../codecs/object-meta.ts';

export type LeaseOptions = {
  readonly namespace: string;
  readonly name: string;
  /** Who we are: the pod name, unique among the candidates. */
  readonly identity: string;
  readonly leaseSeconds: number;
  /** What this candidate last saw of the lease, and when by its own clock: one per candidate, kept across rounds. */
  readonly observed: LeaseObservation;
  readonly now?: () => number;
};

export type LeaseObservation = { record?: string; at: number };

export const newObservation = (): LeaseObservation => ({ at: 0 });

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
    if (read.error.kind !== 'status' || read.error.code !== 404) return false;
    const created = await api.create(leases(options.namespace), {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: options.name, namespace: options.namespace },
      spec: { ...ours, acquireTime: microTime(now), leaseTransitions: 0 },
    });
    return created.ok;
  }
  const lease = decodeLease(read.value);
  const rv = metaOf(read.value).resourceVersion;
  // A Lease that does not decode: held by someone unknown, whose every write changes its resourceVersion.
  const [spec, stored]: [LeaseSpec, JsonObject] = lease.ok
    ? [lease.value.spec, lease.value.storedSpec]
    : [{}, {}];
  const record = lease.ok
    ? JSON.stringify([spec.holderIdentity, spec.renewTime, spec.acquireTime, spec.leaseTransitions])
    : JSON.stringify([lease.error, rv]);
  if (options.observed.record !== record) {
    options.observed.record = record;
    options.observed.at = now;
  }
  const expired = now - options.observed.at >= (spec.leaseDurationSeconds ?? options.leaseSeconds) * 1000;
  const held = lease.ok && spec.holderIdentity === options.identity;
  const vacant = lease.ok && (spec.holderIdentity ?? '') === '';
  if (!held && !expired && !vacant) return false;
  const next: JsonObject = held
    ? { ...stored, ...ours }
    : { ...ours, acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
  const patched = await send(
    api,
    versionedWrite(
      ref,
      rv,
      [{ op: 'replace', path: '/spec', value: next }],
      `write Lease ${options.namespace}/${options.name}`,
    ),
  );
  return patched.ok && patched.value === 'done';
}

/** Gives the lease up at shutdown, so another candidate need not wait for it to expire. */
export async function releaseLease(api: KubeApi, options: LeaseOptions): Promise<void> {
  const ref: ObjectRef = { ...leases(options.namespace), name: options.name };
  const read = await api.get(ref);
  if (!read.ok) return;
  const lease = decodeLease(read.value);
  if (!lease.ok || lease.value.spec.holderIdentity !== options.identity) return;
  const rv = lease.value.meta.resourceVersion;
  await send(
    api,
    versionedWrite(
      ref,
      rv,
      [{ op: 'replace', path: '/spec/holderIdentity', value: '' }],
      `release Lease ${options.namespace}/${options.name}`,
    ),
  );
}
