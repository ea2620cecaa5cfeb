// The embedded server's etcd: the objects of every kind by `namespace/name`, one resourceVersion counter
// for all of them, and the history of changes that watches resume from. The history is bounded, and
// `compact()` forgets it as etcd's compaction does, so older resourceVersions and continue tokens answer
// 410 Expired. Stored objects are never changed in place: every write stores a new one.

import type { ResourceDef } from './resources.ts';

export type Obj = Record<string, unknown>;

export type WatchEvent = {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly def: ResourceDef;
  readonly object: Obj;
};

export type Storage = {
  /** The resourceVersion of the last write: what a list answered now is consistent with. */
  resourceVersion(): number;
  /** The resourceVersion of the last compaction: nothing older can be listed or watched from. */
  compactedAt(): number;
  /** The first resourceVersion whose event is still known; after a compaction, only what comes next. */
  oldestKnown(): number;
  /** The objects of one kind, by `namespace/name`: the live map, for reads and assertions. */
  objectsOf(def: ResourceDef): Map<string, Obj>;
  /** Stores `o` at the next resourceVersion (written into its metadata) and records the change. */
  put(def: ResourceDef, o: Obj, type: 'ADDED' | 'MODIFIED'): Obj;
  /** Removes the object under `namespace/name`; records its deletion at the next resourceVersion. */
  remove(def: ResourceDef, namespace: string | undefined, name: string, current: Obj): void;
  /** The recorded changes of one kind after `rv`, oldest first. */
  changesAfter(def: ResourceDef, rv: number): WatchEvent[];
  compact(): void;
};

/** Watch events kept for watches that resume from a resourceVersion; older ones answer 410 Expired. */
const historyLength = 100_000;

export const metadataOf = (o: Obj): Obj => (o.metadata ?? {}) as Obj;
export const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;
const defKey = (def: ResourceDef): string => `${def.group}/${def.plural}`;

/** A storage for `defs`; `onChange` hears every change as it is recorded (the watch hub). */
export function createStorage(defs: readonly ResourceDef[], onChange: (event: WatchEvent) => void): Storage {
  const objects = new Map<string, Map<string, Obj>>(defs.map((d) => [defKey(d), new Map()]));
  const history: WatchEvent[] = [];
  let resourceVersion = 1;
  let compactedAt = 0;

  const objectsOf = (def: ResourceDef): Map<string, Obj> => objects.get(defKey(def)) as Map<string, Obj>;

  function record(def: ResourceDef, type: WatchEvent['type'], object: Obj): void {
    // Stored objects are never changed in place (every write builds a new one), so events can share them.
    const event: WatchEvent = { rv: resourceVersion, type, def, object };
    history.push(event);
    if (history.length > historyLength) history.splice(0, history.length - historyLength);
    onChange(event);
  }

  return {
    resourceVersion: () => resourceVersion,
    compactedAt: () => compactedAt,
    oldestKnown: () => history[0]?.rv ?? resourceVersion + 1,
    objectsOf,
    put: (def, o, type) => {
      resourceVersion++;
      const meta = metadataOf(o);
      meta.resourceVersion = String(resourceVersion);
      objectsOf(def).set(keyOf(meta.namespace as string | undefined, meta.name as string), o);
      record(def, type, o);
      return o;
    },
    remove: (def, namespace, name, current) => {
      objectsOf(def).delete(keyOf(namespace, name));
      resourceVersion++;
      const meta = metadataOf(current);
      record(def, 'DELETED', { ...current, metadata: { ...meta, resourceVersion: String(resourceVersion) } });
    },
    changesAfter: (def, rv) => history.filter((event) => event.rv > rv && event.def === def),
    compact: () => {
      compactedAt = resourceVersion;
      history.splice(0, history.length);
    },
  };
}
