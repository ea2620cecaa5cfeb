// Who is watching: every change the storage records is handed to the open watches of its kind (each one
// filters by its own namespace and selectors), and the hub knows every open watch response, so that a stop
// or restart of the server can end them all, as a restarted kube-apiserver ends every watch.

import type { ServerResponse } from 'node:http';
import type { ResourceDef } from './resources.ts';
import type { WatchEvent } from './storage.ts';

export type Watcher = {
  readonly def: ResourceDef;
  readonly send: (event: WatchEvent) => void;
};

export type WatchHub = {
  /** Hands a recorded change to every watcher of its kind. */
  publish(event: WatchEvent): void;
  subscribe(watcher: Watcher): void;
  unsubscribe(watcher: Watcher): void;
  /** A watch response now streaming, or no longer. */
  opened(res: ServerResponse): void;
  closed(res: ServerResponse): void;
  /** Ends every open watch response. */
  endAll(): void;
};

export function createWatchHub(): WatchHub {
  const watchers = new Set<Watcher>();
  const openResponses = new Set<ServerResponse>();
  return {
    publish: (event) => {
      for (const watcher of watchers) if (watcher.def === event.def) watcher.send(event);
    },
    subscribe: (watcher) => watchers.add(watcher),
    unsubscribe: (watcher) => watchers.delete(watcher),
    opened: (res) => openResponses.add(res),
    closed: (res) => openResponses.delete(res),
    endAll: () => {
      for (const res of openResponses) res.end();
    },
  };
}
