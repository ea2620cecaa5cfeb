// Every failure of a call to the API server, sorted once into "retry" (the same call may well succeed
// soon) and "fail now" (it will not, and the message says what a person has to do).

import { CniCode, ipamError, type IpamError } from '../errors.ts';
import type { ApiFailure } from './api.ts';

export type StoreError = {
  readonly retry: boolean;
  /** HTTP status, or undefined when no answer came (connection refused or reset, timeout). */
  readonly status?: number;
  readonly reason?: string;
  readonly message: string;
};

/** A store failure as the CNI error the plugin answers with: 11 (try again later) or 999 (internal). */
export const storeFailure = (error: StoreError): IpamError =>
  ipamError(error.retry ? CniCode.TryAgainLater : CniCode.Internal, error.message);

const missingResourceMessage = 'the server could not find the requested resource';
const failedTestMessage = 'the server rejected our request due to an error in our request';

/** A 404 for a named object that does not exist — not for a resource type the server lacks (CRD missing). */
export const isObjectNotFound = (f: ApiFailure): boolean =>
  f.kind === 'status' && f.code === 404 && f.message !== missingResourceMessage;

/** A generic 422: a JSON patch `test` that failed (the API server cannot tell it from a missing path). */
export const isFailedTest = (f: ApiFailure): boolean =>
  f.kind === 'status' && f.code === 422 && f.message === failedTestMessage;

export const isStatus = (f: ApiFailure, code: number): boolean => f.kind === 'status' && f.code === code;

/** Sorts a failure. `what` names the call for the message, e.g. `claim offset 5 in IPPool kube-system/10.0.0.0-24`. */
export function classify(f: ApiFailure, what: string, server: string): StoreError {
  if (f.kind === 'network')
    return { retry: true, message: `${what}: the API server ${server} is unreachable (${f.code})` };
  const { code, reason, message } = f;
  const base = { status: code, ...(reason === undefined ? {} : { reason }) };
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
  if (code === 404 && message === missingResourceMessage) {
    return {
      ...base,
      retry: false,
      message: `${what}: the API server does not serve this resource (404): the whereabouts CRDs are not installed; apply the manifests in crds/`,
    };
  }
  if (code === 422 && message !== failedTestMessage) {
    return { ...base, retry: false, message: `${what}: the API server refused the object: ${message}` };
  }
  if (code === 500 && message.includes('request is too large')) {
    return {
      ...base,
      retry: false,
      message: `${what}: the object is larger than the API server's limit (${message}); split the range or use node slices`,
    };
  }
  const retry = code === 409 || code === 422 || code === 429 || code >= 500;
  return {
    ...base,
    retry,
    message: `${what}: ${code} ${reason ?? ''} ${message}`.replace(/\s+/g, ' ').trim(),
  };
}
