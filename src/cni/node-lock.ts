// Why this file: the standalone plugin (no node agent) is one process per pod, and a burst of them writing
// one IPPool at once live-locks a real kube-apiserver: each JSON patch is retried inside the server on every
// etcd compare-and-swap conflict, re-applied to an object that grows with every entry, until the request
// times out (measured in docs/decisions.md: 121 of 225 PATCHes answered 504, 43 s for 100 ADDs). So the
// plugin processes of one node take turns per network, as host-local does with its file lock: one writer
// per node reaches the API server at a time. The lock is only about load — every write stays conditional,
// so an address is never held twice with or without it — which is why a lock that cannot be had in time
// (a hung holder, a foreign process holding the name) is given up on and the work done unlocked.
//
// The lock is a listening unix socket in Linux's abstract namespace: binding the name is taking the lock,
// and the kernel frees it the moment its holder exits, however it dies — no stale file to detect, no PID
// reused. A waiter connects to the holder and is woken when that connection closes (the holder released or
// died); then it tries to bind again. Abstract names are per network namespace: plugins run in the host's.

import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

export type NodeLock =
  | { readonly kind: 'held'; release(): void }
  /** Not had within the wait (`why` says what was in the way): the caller goes on without it. */
  | { readonly kind: 'skipped'; readonly why: string };

const lockName = (key: string): string =>
  `\0whereabouts-ts/lock/${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;

/** Binds the name: the server when it is ours, the error code when not (EADDRINUSE: someone holds it). */
function bind(name: string): Promise<Server | string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code ?? e.message);
    });
    server.listen(name, () => {
      resolve(server);
    });
  });
}

/** Waits until the holder of `name` lets go (or dies), at most `ms`; false when the time ran out. */
function released(name: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(name);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    // Refused: released between our bind and our connect (or bound and not listening: the wait bounds it).
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Binds the first of `names` that is free, from `first` on: the server and its index, or an error code. */
async function bindAny(names: readonly string[], first: number): Promise<[Server, number] | string> {
  let error = 'EADDRINUSE';
  for (let n = 0; n < names.length; n++) {
    const at = (first + n) % names.length;
    const bound = await bind(names[at] as string);
    if (typeof bound !== 'string') return [bound, at];
    if (bound !== 'EADDRINUSE') error = bound;
  }
  return error;
}

/**
 * Takes one of the `slots` turns of the node-wide lock named by `key`, waiting at most `waitMs` (`onWait` is
 * called each time it has to wait): at most `slots` processes hold it at once. Hold it across the whole read-and-write of a verb; release it before
 * the process answers. A waiter watches one slot, so a release wakes about 1/`slots` of the waiters.
 */
export async function nodeLock(
  key: string,
  waitMs: number,
  onWait: () => void = () => undefined,
  slots = 1,
): Promise<NodeLock> {
  const base = lockName(key);
  const names = Array.from({ length: slots }, (_, i) => (i === 0 ? base : `${base}/${i}`));
  const until = Date.now() + waitMs;
  let watched = Math.floor(Math.random() * slots);
  for (let refused = 0; ;) {
    const bound = await bindAny(names, watched);
    if (typeof bound !== 'string') {
      const [server] = bound;
      const waiters = new Set<Socket>();
      server.on('error', () => undefined); // a waiter's connection failing is the waiter's business
      server.on('connection', (s: Socket) => {
        s.on('error', () => undefined);
        waiters.add(s);
      });
      return {
        kind: 'held',
        release: () => {
          server.close();
          for (const s of waiters) s.destroy();
        },
      };
    }
    if (bound !== 'EADDRINUSE') return { kind: 'skipped', why: `cannot bind the node lock (${bound})` };
    const left = until - Date.now();
    if (left <= 0) break;
    onWait();
    watched = Math.floor(Math.random() * slots);
    const before = Date.now();
    if (!(await released(names[watched] as string, left))) break;
    // Woken at once again and again: the name is bound but nobody accepts; pause a little each time.
    refused = Date.now() - before < 2 ? refused + 1 : 0;
    if (refused > 0) await new Promise((r) => setTimeout(r, Math.min(refused, 20) + Math.random() * 5));
  }
  return { kind: 'skipped', why: `other plugin processes of this node held the lock for ${waitMs} ms` };
}
