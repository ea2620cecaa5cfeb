// The checks kube-apiserver makes on built-in kinds that a client of this project can get wrong, with its
// field paths and messages — what the custom resources' schemas are to CRDs (schema.ts).

import type { Cause } from './status.ts';

type Obj = Record<string, unknown>;
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * An Event's namespace against its involved object's (ValidateEventCreate): an old-style event (no
 * eventTime) must live in its object's namespace — `default` for a cluster-scoped object; a new-style one
 * about a cluster-scoped object may live in `default` or `kube-system` only.
 */
function eventCauses(o: Obj): Cause[] {
  const namespace = text((o.metadata as Obj | undefined)?.namespace);
  const involved = text((o.involvedObject as Obj | undefined)?.namespace);
  const newStyle = o.eventTime !== undefined && o.eventTime !== null;
  const allowed = involved !== '' ? [involved] : newStyle ? ['default', 'kube-system'] : ['default'];
  if (allowed.includes(namespace)) return [];
  return [
    {
      field: 'involvedObject.namespace',
      message: `Invalid value: "${involved}": does not match event.namespace`,
    },
  ];
}

/** The violations of `o`, a new object of the built-in kind `plural` (none for kinds not checked here). */
export function builtInCauses(plural: string, o: Obj): Cause[] {
  return plural === 'events' ? eventCauses(o) : [];
}
