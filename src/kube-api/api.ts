// The handful of Kubernetes API calls the store makes, as one small interface with two implementations:
// `client-node-api.ts` (@kubernetes/client-node: every kubeconfig feature, for the long-running
// components) and `http-api.ts` (node:http with a minimal kubeconfig reader, for the plugin, which starts
// once per pod and cannot afford to load the full client). The store's logic is written once, against this.

import type { Result } from '../errors.ts';
import { objectAt, objectOf, type JsonObject } from '../codecs/decode.ts';

export type ObjectRef = {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespace?: string;
  readonly name?: string;
  /** The object's status subresource (an IPAMClaim's status is written only there). */
  readonly subresource?: 'status';
};

/** Why a call failed: the server's answer (a Status), or no answer at all. */
export type ApiFailure =
  | {
      readonly kind: 'status';
      readonly code: number;
      /** The Status body's reason; absent when the answer was no Status (a plain "404 page not found"). */
      readonly reason?: string;
      readonly message: string;
      /** The object the Status is about (`details.name`), and whether it lists field causes. */
      readonly subject?: string;
      readonly causes?: boolean;
      /** Retry-After, or the Status' details.retryAfterSeconds, in seconds. */
      readonly retryAfterSeconds?: number;
    }
  | { readonly kind: 'network'; readonly code: string };

/** What an API call gives: the project's one Result shape, with the failure as the API server gave it. */
export type ApiOutcome<T> = Result<T, ApiFailure>;

/** An object as the API server sends it, its fields still to be decoded (src/codecs/decode.ts). */
export type Obj = JsonObject;

export type ListOptions = {
  readonly limit?: number;
  readonly continue?: string;
  readonly fieldSelector?: string;
};
export type ListPage = { readonly items: Obj[]; readonly continue?: string };

export type KubeApi = {
  /** The API server's URL, for messages. */
  readonly server: string;
  /** The namespace of the kubeconfig's current context, or kube-system. */
  readonly namespace: string;
  get(ref: ObjectRef): Promise<ApiOutcome<Obj>>;
  /** POST to the collection `ref` names (its `name` unset). */
  create(ref: ObjectRef, body: Obj): Promise<ApiOutcome<Obj>>;
  jsonPatch(ref: ObjectRef, operations: readonly unknown[]): Promise<ApiOutcome<Obj>>;
  /** DELETE, only if the object is still at `resourceVersion` when given. */
  delete(ref: ObjectRef, resourceVersion?: string): Promise<ApiOutcome<undefined>>;
  list(ref: ObjectRef, options?: ListOptions): Promise<ApiOutcome<ListPage>>;
  /**
   * Opens the connection (TLS handshake included) ahead of the first call, with a request that reads
   * nothing stored (GET /version); a failure is left for the calls that follow to report.
   */
  warm?(): Promise<void>;
};

/** Whereabouts' default namespace when the kubeconfig's context names none. */
export const defaultNamespace = 'kube-system';

/** The REST path of an object or collection. */
export function pathOf(ref: ObjectRef): string {
  const base = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const namespace = ref.namespace === undefined ? '' : `/namespaces/${encodeURIComponent(ref.namespace)}`;
  const name = ref.name === undefined ? '' : `/${encodeURIComponent(ref.name)}`;
  const subresource = ref.subresource === undefined ? '' : `/${ref.subresource}`;
  return `${base}${namespace}/${ref.plural}${name}${subresource}`;
}

/**
 * The parts of a Status body the store reads, decoded from a parsed body of any shape (or none), and the
 * Retry-After header: API Priority and Fairness answers 429 in plain text with only that header.
 */
export function statusFailure(code: number, body: unknown, retryAfterHeader?: string): ApiFailure {
  const status = objectOf(body);
  const details = status.kind === 'Status' ? objectAt(status, 'details') : {};
  const header = Number(retryAfterHeader);
  const retry =
    typeof details.retryAfterSeconds === 'number'
      ? details.retryAfterSeconds
      : retryAfterHeader !== undefined && Number.isFinite(header)
        ? header
        : undefined;
  return {
    kind: 'status',
    code,
    ...(status.kind === 'Status' && typeof status.reason === 'string' ? { reason: status.reason } : {}),
    message: typeof status.message === 'string' ? status.message : '',
    ...(typeof details.name === 'string' && details.name !== '' ? { subject: details.name } : {}),
    ...(Array.isArray(details.causes) && details.causes.length > 0 ? { causes: true } : {}),
    ...(typeof retry === 'number' && retry > 0 ? { retryAfterSeconds: retry } : {}),
  };
}

/** The error code of a failed connection (ECONNREFUSED, ECONNRESET, …), looking through causes. */
export function networkCode(e: unknown): string {
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
  return e instanceof Error ? e.message : 'unknown error';
}
