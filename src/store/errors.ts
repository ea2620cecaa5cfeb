// Every failure of a call to the API server, sorted once into "retry" (the same call may well succeed
// soon) and "fail now" (it will not, and the message says what a person has to do).

import { ApiException } from '@kubernetes/client-node';

export type StoreError = {
  readonly retry: boolean;
  /** HTTP status, or undefined when no answer came (connection refused or reset, timeout). */
  readonly status?: number;
  readonly reason?: string;
  readonly message: string;
};

/** The parts of a Kubernetes Status body we read. client-node 2 hands the body over as a string. */
type StatusBody = { reason?: string; message?: string; details?: { name?: string; kind?: string } };

/** The HTTP status and Status body of an error the API server answered with; undefined for other errors. */
export function apiStatus(e: unknown): { code: number; reason?: string; message: string } | undefined {
  if (!(e instanceof ApiException)) return undefined;
  let body: unknown = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = {};
    }
  }
  const { reason, message = '' } = typeof body === 'object' && body !== null ? (body as StatusBody) : {};
  return { code: e.code, ...(reason === undefined ? {} : { reason }), message };
}

const missingResourceMessage = 'the server could not find the requested resource';

/** A 404 for a named object that does not exist — not for a resource type the server lacks (CRD missing). */
export const isObjectNotFound = (e: unknown): boolean => {
  const s = apiStatus(e);
  return s?.code === 404 && s.message !== missingResourceMessage;
};

const networkCode = (e: unknown): string | undefined => {
  for (
    let cause: unknown = e;
    typeof cause === 'object' && cause !== null;
    cause = (cause as { cause?: unknown }).cause
  ) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (cause as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return 'timeout';
  }
  return undefined;
};

/** Sorts a thrown error. `what` names the call for the message, e.g. `patch IPPool 10.0.0.0-24`. */
export function classify(e: unknown, what: string, server: string): StoreError {
  const answered = apiStatus(e);
  if (answered !== undefined) {
    const { code, reason, message } = answered;
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
    if (
      code === 422 &&
      reason === 'Invalid' &&
      message !== 'the server rejected our request due to an error in our request'
    ) {
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
    return { ...base, retry, message: `${what}: ${code} ${reason ?? ''} ${message}`.trim() };
  }
  const network = networkCode(e);
  if (network !== undefined) {
    return { retry: true, message: `${what}: the API server ${server} is unreachable (${network})` };
  }
  return { retry: false, message: `${what}: ${e instanceof Error ? e.message : String(e)}` };
}
