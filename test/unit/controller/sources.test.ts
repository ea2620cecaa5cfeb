// What a running slice controller decides on (src/controller/sources.ts): the informers' caches, and a
// NodeSlicePool it has written is `pending` until its watch delivers a later state than the one written
// against — so that no pass decides on the state from before its own write.

import type { KubeConnection } from '../../../src/kube-api/kube.ts';
import type { WatchFunction } from '../../../src/kube-api/informer.ts';
import { watchSources } from '../../../src/controller/sources.ts';

type Obj = Record<string, unknown>;
const slicePool = (resourceVersion: string, nodeName: string): Obj => ({
  metadata: { name: 'fast', namespace: 'ns', resourceVersion },
  spec: { range: '10.0.0.0/24', sliceSize: '/26' },
  status: { allocations: [{ nodeName, sliceRange: '10.0.0.0/26' }] },
});

/** A connection whose lists answer `listed` and whose watches stay open, their events sent by `send`. */
function fakeConnection(listed: Record<string, Obj[]>) {
  const watching = new Map<string, (type: string, object: Obj) => void>();
  const list = (items: Obj[] = []) => Promise.resolve({ items, metadata: { resourceVersion: '1' } });
  const watch: WatchFunction = (path, _query, onEvent) => {
    watching.set(path, onEvent);
    return Promise.resolve({ abort: () => undefined });
  };
  const connection = {
    watch,
    core: { listNode: () => list(listed.nodes) },
    custom: {
      listClusterCustomObject: () => list(listed.nads),
      listNamespacedCustomObject: () => list(listed.nodeslicepools),
    },
  } as unknown as KubeConnection;
  const send = (pathEnd: string, type: string, object: Obj) => {
    const [, onEvent] = [...watching].find(([path]) => path.endsWith(pathEnd)) ?? [];
    onEvent?.(type, object);
  };
  return { connection, send, watching };
}

test('a NodeSlicePool written is pending until its watch delivers a later state; the others answer from the cache', async () => {
  const { connection, send, watching } = fakeConnection({
    nads: [{ metadata: { name: 'net', namespace: 'default' }, spec: { config: '{}' } }],
    nodes: [{ metadata: { name: 'node-a' } }],
    nodeslicepools: [slicePool('5', 'node-a')],
  });
  let changes = 0;
  const watched = watchSources(connection, 'ns', {
    onChange: () => changes++,
    onFailure: () => undefined,
  });
  try {
    await watched.synced;
    expect(watched.isSynced()).toBe(true);
    const nodes = await watched.sources.nodes();
    expect(nodes.ok && nodes.value.length).toBe(1);
    expect(await watched.sources.slicePool('fast')).toEqual({ ok: true, value: slicePool('5', 'node-a') });
    expect(await watched.sources.slicePool('other')).toEqual({ ok: true, value: undefined });

    watched.sources.moved('fast', '5');
    expect(await watched.sources.slicePool('fast')).toEqual({ ok: true, value: 'pending' });
    // Once the watches are open, the write's own event arrives: the cache answers again, with it.
    await new Promise<void>((resolve) => {
      const check = () => {
        if (watching.size === 3) resolve();
        else setImmediate(check);
      };
      check();
    });
    const before = changes;
    send('/nodeslicepools', 'MODIFIED', slicePool('6', 'node-b'));
    expect(changes).toBe(before + 1);
    expect(await watched.sources.slicePool('fast')).toEqual({ ok: true, value: slicePool('6', 'node-b') });
    expect(watched.notReady()).toBeUndefined();
  } finally {
    watched.stop();
  }
  expect(watched.notReady()).toBe('the watch of network-attachment-definitions is failing');
});
