// Kubernetes Status bodies exactly as the API server writes them (apimachinery errors.go), so clients see
// the same codes, reasons and messages as against a real cluster; and `Failure`, which request handling
// throws (`raise`) to answer with one.

export type Status = {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly details?: Record<string, unknown>;
  readonly code: number;
};

/** An error the server answers with; `retryAfter` adds the Retry-After header (seconds). */
export type HttpError = { readonly status: Status; readonly retryAfter?: number };

export type Resource = { readonly group: string; readonly plural: string; readonly kind: string };

const qualified = (r: Resource): string => (r.group === '' ? r.plural : `${r.plural}.${r.group}`);

const failure = (
  code: number,
  reason: string | undefined,
  message: string,
  details?: Record<string, unknown>,
): HttpError => ({
  status: {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    ...(reason === undefined ? {} : { reason }),
    ...(details === undefined ? {} : { details }),
    code,
  },
});

const nameDetails = (r: Resource, name: string) => ({ name, group: r.group, kind: r.plural });

export const notFound = (r: Resource, name: string): HttpError =>
  failure(404, 'NotFound', `${qualified(r)} "${name}" not found`, nameDetails(r, name));

export const alreadyExists = (r: Resource, name: string): HttpError =>
  failure(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, nameDetails(r, name));

export const optimisticLockMessage =
  'the object has been modified; please apply your changes to the latest version and try again';

export const conflict = (r: Resource, name: string, why: string): HttpError =>
  failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`,
    nameDetails(r, name),
  );

export type Cause = { readonly field: string; readonly message: string };

export const invalid = (r: Resource, name: string, causes: readonly Cause[]): HttpError =>
  failure(
    422,
    'Invalid',
    `${r.kind}${r.group === '' ? '' : `.${r.group}`} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
    {
      name,
      group: r.group,
      kind: r.kind,
      causes: causes.map((c) => ({
        reason: c.message.startsWith('Required value') ? 'FieldValueRequired' : 'FieldValueInvalid',
        message: c.message,
        field: c.field,
      })),
    },
  );

/** What a JSON patch that cannot be applied (a failed `test`, a missing path) is answered with. */
export const unprocessablePatch = (): HttpError =>
  failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {});

export const badRequest = (message: string): HttpError => failure(400, 'BadRequest', message);

export const unauthorized = (): HttpError => failure(401, 'Unauthorized', 'Unauthorized');

export const forbidden = (
  r: Resource,
  name: string,
  verb: string,
  namespace: string | undefined,
): HttpError =>
  failure(
    403,
    'Forbidden',
    `${qualified(r)}${name === '' ? '' : ` "${name}"`} is forbidden: User "system:serviceaccount:test:whereabouts" cannot ${verb} resource "${r.plural}" in API group "${r.group}"${namespace === undefined ? ' at the cluster scope' : ` in the namespace "${namespace}"`}`,
    { name, group: r.group, kind: r.plural },
  );

export const methodNotAllowed = (): HttpError =>
  failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');

export const tooLarge = (message: string): HttpError => failure(413, 'RequestEntityTooLarge', message);

export const unsupportedMediaType = (accepted: readonly string[]): HttpError =>
  failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );

export const expired = (message: string): HttpError => failure(410, 'Expired', message);

/** kube-apiserver's answer to a continue token from before a compaction. */
export const continueExpiredMessage =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

export const internalError = (message: string): HttpError => failure(500, 'InternalError', message);

/** What etcd refuses (an object over its request limit) reaches the client as a 500 without a reason. */
export const storageError = (message: string): HttpError => failure(500, undefined, message);

export const serviceUnavailable = (): HttpError =>
  failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');

export const tooManyRequests = (retryAfter: number): HttpError => ({
  ...failure(
    429,
    'TooManyRequests',
    'the server has received too many requests and has asked us to try again later',
    {
      retryAfterSeconds: retryAfter,
    },
  ),
  retryAfter,
});

export const success = (r: Resource, name: string, uid: string): Status => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Success',
  details: { name, group: r.group, kind: r.plural, uid },
  code: 200,
});

/** Thrown inside request handling to answer with an error; caught in one place, turned into the response. */
export class Failure extends Error {
  readonly error: HttpError;
  constructor(error: HttpError) {
    super(error.status.message);
    this.error = error;
  }
}

export const raise = (error: HttpError): never => {
  throw new Failure(error);
};
