// POST of a new object: named (or generateName'd) as kube-apiserver names it, 409 AlreadyExists for a
// taken name, server-set identity (uid, creationTimestamp, generation 1), status reset for kinds with a
// status subresource, then validation, managedFields and the size limit before it is stored.

import { randomUUID } from 'node:crypto';
import { checkSize, validate } from '../admission.ts';
import { builtInCauses } from '../built-in-validation.ts';
import { managedFieldsAfter, type Writer } from '../managed-fields.ts';
import { apiVersionOf, type ResourceDef } from '../resources.ts';
import * as status from '../status.ts';
import { raise } from '../status.ts';
import { keyOf, type Obj, type Storage } from '../storage.ts';

/** The object's name: metadata.name, or generateName plus a random suffix; 422 when neither is valid. */
function nameOf(def: ResourceDef, meta: Obj): string {
  let name = meta.name as string | undefined;
  if ((name === undefined || name === '') && typeof meta.generateName === 'string')
    name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
  if (name === undefined || name === '')
    raise(
      status.invalid(def, '', [
        { field: 'metadata.name', message: 'Required value: name or generateName is required' },
      ]),
    );
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name as string) || (name as string).length > 253) {
    raise(
      status.invalid(def, name as string, [
        {
          field: 'metadata.name',
          message: `Invalid value: "${name as string}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
        },
      ]),
    );
  }
  return name as string;
}

export function create(
  storage: Storage,
  def: ResourceDef,
  namespace: string | undefined,
  body: unknown,
  writer: Writer,
): Obj {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    raise(status.badRequest('the body must be an object'));
  const o = structuredClone(body) as Obj;
  const meta = (o.metadata ?? {}) as Obj;
  const name = nameOf(def, meta);
  if (storage.objectsOf(def).has(keyOf(namespace, name))) raise(status.alreadyExists(def, name));
  o.apiVersion = apiVersionOf(def);
  o.kind = def.kind;
  // A kind with a status subresource starts without the status its creator wrote; a pod starts Pending.
  if (def.statusSubresource === true) {
    delete o.status;
    if (def.group === '' && def.plural === 'pods') o.status = { phase: 'Pending' };
  }
  o.metadata = {
    ...meta,
    name,
    ...(def.namespaced ? { namespace } : {}),
    uid: randomUUID(),
    creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    generation: 1,
  };
  validate(def, o, name);
  if (!def.custom) {
    const causes = builtInCauses(def.plural, o);
    if (causes.length > 0) raise(status.invalid(def, name, causes));
  }
  (o.metadata as Obj).managedFields = managedFieldsAfter(
    undefined,
    o,
    writer.manager,
    apiVersionOf(def),
    new Date(),
  );
  checkSize(o);
  return storage.put(def, o, 'ADDED');
}
