// What every create, update and patch passes before it is stored: a custom resource is pruned and
// validated against its CRD's schema (422 Invalid), and no object may exceed etcd's request limit (500,
// as etcd's refusal reaches clients) — tried without managedFields first, as kube-apiserver does.

import type { ResourceDef } from './resources.ts';
import { validateAndPrune } from './schema.ts';
import * as status from './status.ts';
import { raise } from './status.ts';
import { metadataOf, type Obj } from './storage.ts';

/** etcd's default request size limit (--max-request-bytes), which bounds a stored object. */
export const maxObjectBytes = 1_572_864;

/** Prunes unknown fields of a custom resource in place; refuses one that breaks its schema. */
export function validate(def: ResourceDef, o: Obj, name: string): void {
  if (!def.custom || def.schema === undefined) return;
  const causes = Object.entries(o)
    .filter(([k]) => !['apiVersion', 'kind', 'metadata'].includes(k))
    .flatMap(([k, v]) => {
      const property = def.schema?.properties?.[k];
      if (property === undefined) {
        Reflect.deleteProperty(o, k);
        return [];
      }
      return validateAndPrune(property, v, k);
    });
  for (const key of def.schema.required ?? [])
    if (!(key in o)) causes.push({ field: key, message: 'Required value' });
  if (causes.length > 0) raise(status.invalid(def, name, causes));
}

/**
 * Refuses an object over etcd's limit — after trying it without managedFields, as kube-apiserver does:
 * an object too large only with them is stored without them.
 */
export function checkSize(o: Obj): void {
  if (Buffer.byteLength(JSON.stringify(o)) <= maxObjectBytes) return;
  const meta = metadataOf(o);
  if (meta.managedFields !== undefined) {
    delete meta.managedFields;
    if (Buffer.byteLength(JSON.stringify(o)) <= maxObjectBytes) return;
  }
  raise(status.storageError('etcdserver: request is too large'));
}
