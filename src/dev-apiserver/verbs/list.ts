// LIST of one kind: the selected objects in key order, a page at a time when the client sets `limit`. The
// continue token carries where the page ended and the resourceVersion it was listed at; one from before a
// compaction answers 410 Expired, as kube-apiserver does.

import { apiVersionOf, type ResourceDef } from '../resources.ts';
import { selectionOf } from '../selection.ts';
import * as status from '../status.ts';
import { raise } from '../status.ts';
import { keyOf, metadataOf, type Obj, type Storage } from '../storage.ts';

/** The key after which a continued list starts; '' for the first page. */
function startAfter(storage: Storage, token: string | null): string {
  if (token === null || token === '') return '';
  let decoded: { start?: unknown; rv?: unknown } = {};
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as typeof decoded;
  } catch {
    raise(status.badRequest('continue key is not valid'));
  }
  if (typeof decoded.start !== 'string' || typeof decoded.rv !== 'number')
    raise(status.badRequest('continue key is not valid'));
  if ((decoded.rv as number) < storage.compactedAt()) raise(status.expired(status.continueExpiredMessage));
  return decoded.start as string;
}

const lastKey = (items: Obj[]): [string | undefined, string] => {
  const meta = metadataOf(items[items.length - 1] as Obj);
  return [meta.namespace as string | undefined, meta.name as string];
};

export function list(storage: Storage, def: ResourceDef, namespace: string | undefined, url: URL): Obj {
  const selected = selectionOf(def, namespace, url);
  const limit = Number(url.searchParams.get('limit') ?? '0');
  const after = startAfter(storage, url.searchParams.get('continue'));
  const objects = storage.objectsOf(def);
  const keys = [...objects.keys()].filter((k) => k > after).sort();
  const items: Obj[] = [];
  let next: string | undefined;
  for (const key of keys) {
    const o = objects.get(key) as Obj;
    if (!selected(o)) continue;
    if (limit > 0 && items.length === limit) {
      next = Buffer.from(
        JSON.stringify({ start: keyOf(...lastKey(items)), rv: storage.resourceVersion() }),
      ).toString('base64');
      break;
    }
    items.push(o);
  }
  return {
    apiVersion: apiVersionOf(def),
    kind: `${def.kind}List`,
    metadata: {
      resourceVersion: String(storage.resourceVersion()),
      ...(next === undefined ? {} : { continue: next }),
    },
    items,
  };
}
