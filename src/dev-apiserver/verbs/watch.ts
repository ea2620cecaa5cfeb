// WATCH of one kind: a chunked stream of JSON events. From "now" it starts with the selected objects as
// ADDED (and a bookmark marking their end, when the client allows bookmarks); from a resourceVersion it
// replays the recorded changes after it, or answers an ERROR event with 410 Expired when that history is
// gone. It ends after timeoutSeconds (else the server's --min-request-timeout), or when the client leaves.

import type { ServerResponse } from 'node:http';
import { apiVersionOf, type ResourceDef } from '../resources.ts';
import { selectionOf } from '../selection.ts';
import * as status from '../status.ts';
import type { Storage } from '../storage.ts';
import type { Watcher, WatchHub } from '../watch-hub.ts';

export function watch(
  storage: Storage,
  hub: WatchHub,
  watchTimeoutSeconds: number,
  def: ResourceDef,
  namespace: string | undefined,
  url: URL,
  res: ServerResponse,
): void {
  const selected = selectionOf(def, namespace, url);
  const rvParam = url.searchParams.get('resourceVersion');
  const since = rvParam === null || rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
  const oldest = storage.oldestKnown();
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  // As the real server does: the client learns at once that the watch is open, before any event.
  res.flushHeaders();
  hub.opened(res);
  const write = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
  if (since !== undefined && (Number.isNaN(since) || since < oldest - 1)) {
    write('ERROR', status.expired(`too old resource version: ${rvParam ?? ''} (${oldest - 1})`).status);
    res.end();
    hub.closed(res);
    return;
  }
  const watcher: Watcher = {
    def,
    send: (event) => {
      if (selected(event.object)) write(event.type, event.object);
    },
  };
  if (since === undefined) {
    for (const o of storage.objectsOf(def).values()) if (selected(o)) write('ADDED', o);
    // As kube-apiserver does for a watch from "now" that allows bookmarks: one marking the end of the
    // initial events.
    if (url.searchParams.get('allowWatchBookmarks') === 'true')
      write('BOOKMARK', {
        apiVersion: apiVersionOf(def),
        kind: def.kind,
        metadata: {
          resourceVersion: String(storage.resourceVersion()),
          annotations: { 'k8s.io/initial-events-end': 'true' },
        },
      });
  } else {
    for (const event of storage.changesAfter(def, since)) watcher.send(event);
  }
  hub.subscribe(watcher);
  const finish = () => {
    hub.unsubscribe(watcher);
    hub.closed(res);
    if (!res.writableEnded) res.end();
  };
  const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
  setTimeout(finish, (timeout > 0 ? timeout : watchTimeoutSeconds) * 1000).unref();
  res.on('close', finish);
}
