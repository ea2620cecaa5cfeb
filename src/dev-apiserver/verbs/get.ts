// GET of one object: as stored, or 404 NotFound. Update, patch and delete start from it too.

import type { ResourceDef } from '../resources.ts';
import * as status from '../status.ts';
import { raise } from '../status.ts';
import { keyOf, type Obj, type Storage } from '../storage.ts';

export function get(storage: Storage, def: ResourceDef, namespace: string | undefined, name: string): Obj {
  return storage.objectsOf(def).get(keyOf(namespace, name)) ?? raise(status.notFound(def, name));
}
