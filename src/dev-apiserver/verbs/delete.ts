// DELETE of one object, with its uid and resourceVersion preconditions (409). A pod bound to a node is
// deleted gracefully, as kube-apiserver does: it gets a deletionTimestamp and stays (Terminating) until its
// kubelet — or a delete with grace period 0 — removes it. Unbound and finished pods go at once.

import type { ResourceDef } from '../resources.ts';
import * as status from '../status.ts';
import { raise, type Status } from '../status.ts';
import { metadataOf, type Obj, type Storage } from '../storage.ts';
import { get } from './get.ts';

type DeleteOptions = {
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
};

const numberOrUndefined = (text: string | null): number | undefined =>
  text === null || text === '' || Number.isNaN(Number(text)) ? undefined : Number(text);

/** The grace period a DELETE gets: pods bound to a node and still running get one, nothing else does. */
function gracePeriodOf(def: ResourceDef, o: Obj, requested: number | undefined): number {
  if (def.group !== '' || def.plural !== 'pods') return 0;
  const spec = (o.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
  const phase = ((o.status ?? {}) as { phase?: string }).phase;
  if (spec.nodeName === undefined || spec.nodeName === '' || phase === 'Succeeded' || phase === 'Failed')
    return 0;
  return Math.max(0, requested ?? spec.terminationGracePeriodSeconds ?? 30);
}

function checkPreconditions(def: ResourceDef, name: string, meta: Obj, options: DeleteOptions): void {
  const preconditions = options.preconditions;
  if (preconditions?.uid !== undefined && preconditions.uid !== meta.uid) {
    raise(
      status.conflict(
        def,
        name,
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${String(meta.uid)}`,
      ),
    );
  }
  if (
    preconditions?.resourceVersion !== undefined &&
    preconditions.resourceVersion !== meta.resourceVersion
  ) {
    raise(
      status.conflict(
        def,
        name,
        `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${String(meta.resourceVersion)}`,
      ),
    );
  }
}

/** Deletes the object (a Success Status), or marks a bound pod Terminating (the pod). */
export function remove(
  storage: Storage,
  def: ResourceDef,
  namespace: string | undefined,
  name: string,
  body: unknown,
  gracePeriodParam: string | null,
): Obj | Status {
  const current = get(storage, def, namespace, name);
  const meta = metadataOf(current);
  const options = (body ?? {}) as DeleteOptions;
  checkPreconditions(def, name, meta, options);
  const grace = gracePeriodOf(
    def,
    current,
    options.gracePeriodSeconds ?? numberOrUndefined(gracePeriodParam),
  );
  if (grace > 0) {
    if (meta.deletionTimestamp !== undefined) return current;
    const deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    return storage.put(
      def,
      { ...current, metadata: { ...meta, deletionTimestamp, deletionGracePeriodSeconds: grace } },
      'MODIFIED',
    );
  }
  storage.remove(def, namespace, name, current);
  return status.success(def, name, meta.uid as string);
}
