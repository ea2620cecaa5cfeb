// What every role of the store answers — a value, or a StoreError whose `retry` says whether the same call
// may succeed later — and the one read the roles share: a GET whose 404 is an answer (the object does not
// exist), not a failure.

import { fail, ok, type Result } from '../errors.ts';
import type { KubeApi, Obj, ObjectRef } from '../kube-api/api.ts';
import { classify, isObjectNotFound, type StoreError } from './errors.ts';

export type StoreResult<T> = Result<T, StoreError>;

/** GET of one object: undefined when it does not exist. */
export async function getIfExists(
  api: KubeApi,
  ref: ObjectRef,
  what: string,
): Promise<StoreResult<Obj | undefined>> {
  const result = await api.get(ref);
  if (result.ok) return ok(result.value);
  return isObjectNotFound(result.error) ? ok(undefined) : fail(classify(result.error, what, api.server));
}
