// Every failure of a call to the API server, sorted once into "retry" (the same call may well succeed
// soon) and "fail now" (it will not, and the message says what a person has to do).

import { CniCode, ipamError, type IpamError } from '../errors.ts';
import type { ApiFailure } from '../kube-api/api.ts';

export type StoreError = {
  readonly retry: boolean;
  /** HTTP status, or undefined when no answer came (connection refused or reset, timeout). */
  readonly status?: number;
  readonly reason?: string;
  readonly message: string;
  /** How long the server asked us to wait before the next try (429 and 503 with retryAfterSeconds). */
  readonly retryAfterMs?: number;
  /** Nothing listens at the server's address (connection refused): no API server there at all, for now. */
  readonly refused?: boolean;
};

/** A store failure as the CNI error the plugin answers with: 11 (try again later) or 999 (internal). */
export const storeFailure = (error: StoreError): IpamError =>
  ipamError(error.retry ? CniCode.TryAgainLater : CniCode.Internal, error.message);

/**
 * A 404 about a named object that does not exist. A resource type the server does not serve (the CRDs not
 * installed) is a 404 too, but without a Status naming an object: kube-apiserver answers a plain
 * "404 page not found" for an unknown group or plural.
 */
export const isObjectNotFound = (f: ApiFailure): boolean =>
  f.kind === 'status' && f.code === 404 && f.reason === 'NotFound' && f.subject !== undefined;

/**
 * A JSON patch that could not be applied: a failed `test`, or a `remove` of a key that is gone. The server
 * answers 422 Invalid with neither an object nor field causes — what tells it from a schema violation
 * (422 Invalid naming the object and the field).
 */
export const isFailedTest = (f: ApiFailure): boolean =>
  f.kind === 'status' && f.code === 422 && f.subject === undefined && f.causes !== true;

export const isStatus = (f: ApiFailure, code: number): boolean => f.kind === 'status' && f.code === code;

/**
 * etcd refused the object as larger than its request limit (--max-request-bytes, 1.5 MiB by default).
 * kube-apiserver 1.37 answers a create, update or patch of such an object with 500, no reason and no details,
 * message "etcdserver: request is too large" — after it tried the object without managedFields. Retrying
 * does not help until the object shrinks. Of our objects only an IPPool grows that large (every allocation
 * of an unsliced range is an entry of one pool).
 */
export const isTooLarge = (f: ApiFailure): boolean =>
  f.kind === 'status' && f.code === 500 && f.message.includes('request is too large');

/**
 * The codes Node gives a TLS connection whose server certificate failed verification (OpenSSL's verify
 * results, and the host name check). The server answered, and the same kubeconfig will never trust it:
 * retrying until the deadline only hides the cause behind "unreachable".
 */
const untrustedCertificate = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Sorts a failure. `what` names the call for the message, e.g. `claim offset 5 in IPPool kube-system/10.0.0.0-24`. */
export function classify(f: ApiFailure, what: string, server: string): StoreError {
  if (f.kind === 'network' && untrustedCertificate.has(f.code))
    return {
      retry: false,
      message: `${what}: the API server ${server} presented a TLS certificate that the kubeconfig does not trust (${f.code}); check the server address and its CA (certificate-authority-data) in the kubeconfig`,
    };
  if (f.kind === 'network')
    return {
      retry: true,
      ...(f.code === 'ECONNREFUSED' ? { refused: true } : {}),
      message: `${what}: the API server ${server} is unreachable (${f.code})`,
    };
  const { code, reason, message } = f;
  const base = {
    status: code,
    ...(reason === undefined ? {} : { reason }),
    ...(f.retryAfterSeconds === undefined ? {} : { retryAfterMs: f.retryAfterSeconds * 1000 }),
  };
  if (code === 401) {
    return {
      ...base,
      retry: false,
      message: `${what}: the API server ${server} refused the credentials (401 Unauthorized); check the token or certificate in the kubeconfig`,
    };
  }
  if (code === 403) {
    return {
      ...base,
      retry: false,
      message: `${what}: forbidden by RBAC (403): ${message || 'access denied'}; grant the service account the verbs of the whereabouts ClusterRole`,
    };
  }
  if (code === 404 && !isObjectNotFound(f)) {
    return {
      ...base,
      retry: false,
      message: `${what}: the API server does not serve this resource (404): the whereabouts CRDs are not installed; apply the manifests in crds/`,
    };
  }
  if (code === 422 && !isFailedTest(f)) {
    return { ...base, retry: false, message: `${what}: the API server refused the object: ${message}` };
  }
  if (isTooLarge(f)) {
    return {
      ...base,
      retry: false,
      message: `${what}: the object is larger than the API server's limit (${message}): the pool holds as many allocations as one object can; set node_slice_size so that each node allocates from pools of its own, or split the range into smaller ipRanges`,
    };
  }
  // 410 Expired: a continue token or resourceVersion too old — the same call from the start succeeds.
  const retry = code === 409 || code === 410 || code === 422 || code === 429 || code >= 500;
  return {
    ...base,
    retry,
    message: `${what}: ${code} ${reason ?? ''} ${message}`.replace(/\s+/g, ' ').trim(),
  };
}
