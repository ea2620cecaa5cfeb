// Which objects a list or a watch answers with: those in the request's namespace (all, for a request
// without one) that match its labelSelector and fieldSelector (selectors.ts parses them). A selector that
// does not parse, or a field label the kind does not support, is a 400 as kube-apiserver answers it.

import type { ResourceDef } from './resources.ts';
import { matches, parseSelector, type Selector } from './selectors.ts';
import * as status from './status.ts';
import { raise } from './status.ts';
import { metadataOf, type Obj } from './storage.ts';

export type Selection = (o: Obj) => boolean;

function selectorOf(url: URL, parameter: 'labelSelector' | 'fieldSelector'): Selector {
  const parsed = parseSelector(url.searchParams.get(parameter));
  return typeof parsed === 'string' ? raise(status.badRequest(parsed)) : parsed;
}

export function selectionOf(def: ResourceDef, namespace: string | undefined, url: URL): Selection {
  const labels = selectorOf(url, 'labelSelector');
  const fields = selectorOf(url, 'fieldSelector');
  const supported = Object.keys(def.fields({}));
  for (const r of fields) {
    if (!supported.includes(r.key)) raise(status.badRequest(`field label not supported: ${r.key}`));
  }
  return (o) => {
    const meta = metadataOf(o);
    if (namespace !== undefined && meta.namespace !== namespace) return false;
    const objectLabels = (meta.labels ?? {}) as Record<string, string>;
    const values = def.fields(o);
    return matches(labels, (k) => objectLabels[k]) && matches(fields, (k) => values[k]);
  };
}
