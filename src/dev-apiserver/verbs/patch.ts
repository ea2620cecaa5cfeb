// PATCH, applied to the latest stored object as kube-apiserver applies it: a JSON patch (a failed `test`
// is 422, too many operations 413), or a merge patch (strategic merge for built-in kinds is served as a
// plain merge, enough for the maps this project patches), whose resourceVersion, when it carries one, is
// a precondition (409).

import { applyJsonPatch, applyMergePatch } from '../json-patch.ts';
import type { Writer } from '../managed-fields.ts';
import type { ResourceDef } from '../resources.ts';
import * as status from '../status.ts';
import { raise } from '../status.ts';
import { metadataOf, type Obj, type Storage } from '../storage.ts';
import { get } from './get.ts';
import { replaceWith } from './replace.ts';

/** The API server's maxJSONPatchOperations. */
const maxJsonPatchOperations = 10_000;

function patched(def: ResourceDef, current: Obj, name: string, contentType: string, body: unknown): unknown {
  if (contentType === 'application/json-patch+json') {
    const result = applyJsonPatch(current, body, maxJsonPatchOperations);
    switch (result.kind) {
      case 'malformed':
        return raise(status.badRequest(result.message));
      case 'tooLarge':
        return raise(status.tooLarge(result.message));
      case 'failed':
        return raise(status.unprocessablePatch());
      case 'applied':
        return result.document;
    }
  }
  if (
    contentType === 'application/merge-patch+json' ||
    (!def.custom && contentType === 'application/strategic-merge-patch+json')
  ) {
    const patchRv = metadataOf((body ?? {}) as Obj).resourceVersion;
    if (patchRv !== undefined && patchRv !== metadataOf(current).resourceVersion)
      raise(status.conflict(def, name, status.optimisticLockMessage));
    return applyMergePatch(current, body);
  }
  return raise(
    status.unsupportedMediaType([
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/apply-patch+yaml',
    ]),
  );
}

export function patch(
  storage: Storage,
  def: ResourceDef,
  namespace: string | undefined,
  name: string,
  contentType: string,
  body: unknown,
  writer: Writer,
): Obj {
  const current = get(storage, def, namespace, name);
  const next = patched(def, current, name, contentType, body);
  if (typeof next !== 'object' || next === null || Array.isArray(next))
    return raise(status.badRequest('the patched object is not an object'));
  return replaceWith(storage, def, current, next as Obj, writer);
}
