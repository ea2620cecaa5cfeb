// PUT of a whole object: 409 Conflict when its resourceVersion is not the stored one; a kind that allows
// only conditional updates (custom resources, Leases) refuses one without a resourceVersion (422).

import type { Writer } from '../managed-fields.ts';
import type { ResourceDef } from '../resources.ts';
import * as status from '../status.ts';
import { raise } from '../status.ts';
import { metadataOf, type Obj, type Storage } from '../storage.ts';
import { get } from './get.ts';
import { replaceWith } from './replace.ts';

export function update(
  storage: Storage,
  def: ResourceDef,
  namespace: string | undefined,
  name: string,
  body: unknown,
  writer: Writer,
): Obj {
  const current = get(storage, def, namespace, name);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    raise(status.badRequest('the body must be an object'));
  const next = structuredClone(body) as Obj;
  const rv = metadataOf(next).resourceVersion;
  if (rv === undefined || rv === '') {
    if (def.conditionalUpdateOnly)
      raise(
        status.invalid(def, name, [
          {
            field: 'metadata.resourceVersion',
            message: 'Invalid value: 0: must be specified for an update',
          },
        ]),
      );
  } else if (rv !== metadataOf(current).resourceVersion) {
    raise(status.conflict(def, name, status.optimisticLockMessage));
  }
  return replaceWith(storage, def, current, next, writer);
}
