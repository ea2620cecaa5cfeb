// IPAMClaims (`ipamclaims.k8s.cni.cncf.io/v1alpha1`, k8snetworkplumbingwg/ipamclaims) as the keeper of an
// address needs them (src/allocator/keeper.ts): the network and interface a claim is for, read and decoded
// here once; its `status.ips` and `status.ownerPod` written through the status subresource; and the pod's
// network-selection annotation the claim reference comes from.

import { fail, ok, type Result } from '../errors.ts';
import type { KubeApi, ObjectRef } from '../kube-api/api.ts';
import { objectAt, textAt } from '../codecs/decode.ts';
import { classify, isObjectNotFound, type StoreError } from './errors.ts';
import { metaOf } from '../codecs/object-meta.ts';

/** The pod annotation whose network-selection elements name claims (src/cni/network-selection.ts). */
export const networksAnnotation = 'k8s.v1.cni.cncf.io/networks';

export const claimGroup = 'k8s.cni.cncf.io';
export const claimVersion = 'v1alpha1';

export const claimRef = (namespace?: string, name?: string): ObjectRef => ({
  group: claimGroup,
  version: claimVersion,
  plural: 'ipamclaims',
  ...(namespace === undefined ? {} : { namespace }),
  ...(name === undefined ? {} : { name }),
});

/**
 * An IPAMClaim: the network (a CNI config's `name`) and the pod interface it was made for (its spec), and the
 * pod that last got its address (`status.ownerPod`, '' when none yet).
 */
export type Claim = { readonly network: string; readonly interface: string; readonly ownerPod: string };

/** Never fails: a field of another type than a string reads as absent (''), as for a claim without it. */
export function decodeClaim(object: unknown): Claim {
  const [spec, status] = [objectAt(object, 'spec'), objectAt(object, 'status')];
  return {
    network: textAt(spec, 'network'),
    interface: textAt(spec, 'interface'),
    ownerPod: textAt(status, 'ownerPod'),
  };
}

/** The claim, or undefined when it does not exist. */
export async function readClaim(
  api: KubeApi,
  namespace: string,
  name: string,
): Promise<Result<Claim | undefined, StoreError>> {
  const got = await api.get(claimRef(namespace, name));
  if (got.ok) return ok(decodeClaim(got.value));
  return isObjectNotFound(got.error)
    ? ok(undefined)
    : fail(classify(got.error, `get IPAMClaim ${namespace}/${name}`, api.server));
}

/** Writes the claim's status: the addresses it holds and the pod that last got them. */
export async function writeClaimStatus(
  api: KubeApi,
  namespace: string,
  name: string,
  status: { readonly ips: readonly string[]; readonly ownerPod: string },
): Promise<Result<'written' | 'gone', StoreError>> {
  const patched = await api.jsonPatch({ ...claimRef(namespace, name), subresource: 'status' }, [
    { op: 'add', path: '/status', value: { ips: status.ips, ownerPod: status.ownerPod } },
  ]);
  if (patched.ok) return ok('written');
  return isObjectNotFound(patched.error)
    ? ok('gone')
    : fail(classify(patched.error, `write the status of IPAMClaim ${namespace}/${name}`, api.server));
}

/** The pod's `k8s.v1.cni.cncf.io/networks` annotation; undefined when the pod or the annotation is absent. */
export async function readPodNetworks(
  api: KubeApi,
  namespace: string,
  name: string,
  annotation: string,
): Promise<Result<string | undefined, StoreError>> {
  const got = await api.get({ group: '', version: 'v1', plural: 'pods', namespace, name });
  if (!got.ok)
    return isObjectNotFound(got.error)
      ? ok(undefined)
      : fail(classify(got.error, `get pod ${namespace}/${name}`, api.server));
  return ok(metaOf(got.value).annotations?.[annotation]);
}
