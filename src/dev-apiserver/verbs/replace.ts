// The write that update (PUT) and patch share once they have the proposed object: it keeps the identity
// fields the server owns, honours the status subresource, bumps generation when the spec changed, and
// passes admission before it is stored as the new state.

import { checkSize, validate } from '../admission.ts';
import { jsonEqual } from '../json-patch.ts';
import { managedFieldsAfter, type Writer } from '../managed-fields.ts';
import { apiVersionOf, type ResourceDef } from '../resources.ts';
import { metadataOf, type Obj, type Storage } from '../storage.ts';

/** Metadata only the server sets: a write keeps the stored values, whatever it proposes. */
const identityFields = [
  'name',
  'namespace',
  'uid',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

/**
 * Stores `proposed` as the new state of `current`, keeping identity fields; bumps generation on spec changes.
 * Through the status subresource only `status` changes; elsewhere `status` of a kind with that
 * subresource does not.
 */
export function replaceWith(
  storage: Storage,
  def: ResourceDef,
  current: Obj,
  proposed: Obj,
  writer: Writer,
): Obj {
  const before = metadataOf(current);
  const name = before.name as string;
  const next: Obj =
    writer.subresource === 'status'
      ? { ...current, ...(proposed.status === undefined ? {} : { status: proposed.status }) }
      : def.statusSubresource === true
        ? { ...proposed, ...(current.status === undefined ? {} : { status: current.status }) }
        : proposed;
  if (def.statusSubresource === true && writer.subresource === undefined && current.status === undefined)
    delete next.status;
  const after = {
    ...(writer.subresource === 'status'
      ? before
      : typeof next.metadata === 'object' && next.metadata !== null
        ? (next.metadata as Obj)
        : {}),
  };
  for (const k of identityFields)
    if (before[k] === undefined) Reflect.deleteProperty(after, k);
    else after[k] = before[k];
  next.metadata = after;
  next.apiVersion = apiVersionOf(def);
  next.kind = def.kind;
  validate(def, next, name);
  const specChanged = !jsonEqual(
    { ...next, metadata: undefined, status: undefined },
    { ...current, metadata: undefined, status: undefined },
  );
  after.generation = ((before.generation as number | undefined) ?? 1) + (specChanged ? 1 : 0);
  after.managedFields = managedFieldsAfter(
    current,
    next,
    writer.manager,
    apiVersionOf(def),
    new Date(),
    writer.subresource,
  );
  checkSize(next);
  return storage.put(def, next, 'MODIFIED');
}
