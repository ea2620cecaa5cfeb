// One informer for every long-running reader of the API (the agent's pools and pods, the exporter, the
// slice controller): list, then watch from the list's resourceVersion with bookmarks, and resume from the
// last resourceVersion seen whenever the watch ends — kube-apiserver ends every watch after
// --min-request-timeout, and a restarted server ends them all. A 410 (Expired/Gone: the resourceVersion was
// compacted away, or a continue token expired) starts over with a full list, whose difference from the cache
// is delivered as changes, deletions included. Every other failure — connection refused or reset, 5xx, 429
// "storage is (re)initializing" — is retried with jittered exponential backoff, never less than the server's
// Retry-After. It never stops by itself (client-node's ListWatch stops for good after its first error that is
// not a 410 or a timeout, and waits up to 30 s before re-opening a quiet watch the server ended).
//
// `fresh()` says whether the cache can be trusted now: true from a complete list, and while the watch is
// open or being re-opened after a normal end; false from the first failure until a list or watch succeeds
// again. `synced` resolves after the first complete list only — never on a failure.
//
// The watch is the connection's own, passed in as `watch`: our own over node:http for the lean connection
// (src/kube-api/http-api.ts), client-node's Watch for client-node's (src/kube-api/kube.ts `clientNodeWatch`).

import { fieldOf, isObject, objectAt, stringAt } from '../codecs/decode.ts';
import type { JsonObject } from '../codecs/decode.ts';
import { decodeList } from '../codecs/list.ts';
import { keyOf, metaOf } from '../codecs/object-meta.ts';

export type Change = 'added' | 'modified' | 'deleted';

export type InformerFailure = {
  readonly stage: 'list' | 'watch';
  /** The HTTP status, when the server answered. */
  readonly code?: number;
  readonly message: string;
  /** How long until the next try. */
  readonly retryInMs: number;
};

/**
 * One watch, with the calling convention of client-node's `Watch.watch`: `onEvent` for every event (ERROR
 * and BOOKMARK included), `onDone` once when it ends (null: the server ended it; else the error, a
 * `TimeoutError` after a quiet spell, an error with `statusCode` for a status other than 200). Resolves
 * once the request is sent, with what aborts it.
 */
export type WatchFunction = (
  path: string,
  query: Readonly<Record<string, string | boolean | undefined>>,
  onEvent: (type: string, object: JsonObject) => void,
  onDone: (error: unknown) => void,
) => Promise<{ abort(): void }>;

export type InformerOptions = {
  /** The connection's watch (a KubeConnection's `watch`). */
  readonly watch: WatchFunction;
  /** The collection's REST path (`/api/v1/pods`, `/apis/<group>/<version>/namespaces/<ns>/<plural>`). */
  readonly path: string;
  /**
   * One page of the same collection, with the same selectors: client-node's list call, whose answer (typed
   * for core kinds, plain JSON for custom ones) is decoded here (src/codecs/list.ts).
   */
  readonly list: (page: { readonly limit: number; readonly _continue?: string }) => Promise<unknown>;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** Objects per list page. */
  readonly pageSize?: number;
  /** First and longest pause between failed tries (a Retry-After may ask for longer). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Every change of the cache, in the order the server reported it; `previous` as the cache held it. */
  readonly onChange?: (change: Change, object: JsonObject, previous: JsonObject | undefined) => void;
  /** Every failure, before the pause that follows it. */
  readonly onFailure?: (failure: InformerFailure) => void;
  /** Every list and every watch the server accepted. */
  readonly onOpen?: (what: 'list' | 'watch') => void;
};

export type Informer = {
  /** Resolves after the first complete list. */
  readonly synced: Promise<void>;
  /** Whether the cache follows the server now (see the top of this file). */
  fresh(): boolean;
  /** Resolves with true once fresh (at once if it is), with false if stopped first. */
  whenFresh(): Promise<boolean>;
  /** An object by `namespace/name` (cluster-scoped: `/name`). */
  get(key: string): JsonObject | undefined;
  list(): JsonObject[];
  /** The resourceVersion the next watch resumes from ('' before the first list, and after a 410). */
  resourceVersion(): string;
  stop(): void;
};

class Failure extends Error {
  readonly code: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, code?: number, retryAfterMs?: number) {
    super(message);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The number at `key` of an object; undefined when absent or of another type. */
const numberAt = (value: unknown, key: string): number | undefined => {
  const field = fieldOf(value, key);
  return typeof field === 'number' ? field : undefined;
};

/** Retry-After, else the Status body's `details.retryAfterSeconds`, in milliseconds. */
const retryAfterOf = (headers: unknown, body: unknown): number | undefined => {
  const header = stringAt(headers, 'retry-after');
  const seconds =
    header !== undefined && /^\d+$/.test(header)
      ? Number(header)
      : numberAt(objectAt(body, 'details'), 'retryAfterSeconds');
  return seconds !== undefined && seconds > 0 ? seconds * 1000 : undefined;
};

/** What went wrong, from whatever client-node threw: an ApiException, a watch's HTTP error, a fetch error. */
function failureOf(e: unknown): Failure {
  if (e instanceof Failure) return e;
  const name = fieldOf(e, 'name');
  if (name === 'TimeoutError' || name === 'AbortError') return new Failure('timeout');
  const code = numberAt(e, 'code') ?? numberAt(e, 'statusCode');
  let body: unknown = fieldOf(e, 'body');
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  if (code !== undefined) {
    const detail = stringAt(body, 'message') ?? (e instanceof Error ? e.message : '');
    return new Failure(
      `${code}${detail === '' ? '' : ` ${detail}`}`,
      code,
      retryAfterOf(fieldOf(e, 'headers'), body),
    );
  }
  for (let cause: unknown = e; isObject(cause); cause = cause.cause) {
    const c = stringAt(cause, 'code');
    if (c !== undefined) return new Failure(c);
  }
  return new Failure(e instanceof Error ? e.message : String(e));
}

type WatchOutcome =
  | { readonly kind: 'ended' }
  | { readonly kind: 'expired' }
  | { readonly kind: 'failed'; readonly failure: Failure };

type WatchEnd = { readonly events: number; readonly lastedMs: number } & WatchOutcome;

/** An informer's state: its cache, where the next watch resumes, whether it is fresh or stopped. */
type InformerState = {
  readonly options: InformerOptions;
  readonly objects: Map<string, JsonObject>;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly pageSize: number;
  resourceVersion: string;
  stopped: boolean;
  fresh: boolean;
  /** What aborts the open watch. */
  controller: { abort(): void } | undefined;
  /** Ends the pause under way early. */
  wake: (() => void) | undefined;
  freshWaiters: ((fresh: boolean) => void)[];
  readonly resolveSynced: () => void;
};

export function startInformer(options: InformerOptions): Informer {
  let resolveSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (resolveSynced = resolve));
  const state: InformerState = {
    options,
    objects: new Map<string, JsonObject>(),
    initialMs: options.backoff?.initialMs ?? 250,
    maxMs: options.backoff?.maxMs ?? 30_000,
    pageSize: options.pageSize ?? 500,
    resourceVersion: '',
    stopped: false,
    fresh: false,
    controller: undefined,
    wake: undefined,
    freshWaiters: [],
    resolveSynced,
  };
  void run(state);

  return {
    synced,
    fresh: () => state.fresh && !state.stopped,
    whenFresh: () =>
      state.stopped
        ? Promise.resolve(false)
        : state.fresh
          ? Promise.resolve(true)
          : new Promise((resolve) => state.freshWaiters.push(resolve)),
    get: (key) => state.objects.get(key),
    list: () => [...state.objects.values()],
    resourceVersion: () => state.resourceVersion,
    stop: () => {
      stop(state);
    },
  };
}

/** `Informer.stop`: the watch or pause under way ended, every `whenFresh` answered false. */
function stop(state: InformerState): void {
  state.stopped = true;
  state.fresh = false;
  state.controller?.abort();
  state.controller = undefined;
  state.wake?.();
  const waiters = state.freshWaiters;
  state.freshWaiters = [];
  for (const w of waiters) w(false);
}

function setFresh(state: InformerState, value: boolean): void {
  state.fresh = value;
  if (!value) return;
  const waiters = state.freshWaiters;
  state.freshWaiters = [];
  for (const w of waiters) w(true);
}

/** One change the watch reported, applied to the cache. */
function apply(state: InformerState, type: string, object: JsonObject): void {
  const key = keyOf(object);
  const previous = state.objects.get(key);
  if (type === 'DELETED') {
    state.objects.delete(key);
    state.options.onChange?.('deleted', object, previous);
  } else {
    state.objects.set(key, object);
    state.options.onChange?.(previous === undefined ? 'added' : 'modified', object, previous);
  }
}

/** A complete list, every page; the cache becomes exactly what it holds. */
async function relist(state: InformerState): Promise<void> {
  const { options, objects } = state;
  const items: JsonObject[] = [];
  let token: string | undefined;
  let version = '';
  do {
    let answer: unknown;
    try {
      answer = await options.list({
        limit: state.pageSize,
        ...(token === undefined ? {} : { _continue: token }),
      });
    } catch (e) {
      throw failureOf(e);
    }
    const page = decodeList(answer);
    items.push(...page.items);
    version = page.resourceVersion ?? version;
    token = page.continue;
  } while (token !== undefined && !state.stopped);
  if (state.stopped) return;
  const listed = new Map(items.map((o) => [keyOf(o), o] as const));
  for (const [key, held] of [...objects]) {
    if (listed.has(key)) continue;
    objects.delete(key);
    options.onChange?.('deleted', held, held);
  }
  for (const [key, o] of listed) {
    const held = objects.get(key);
    if (held !== undefined && metaOf(held).resourceVersion === metaOf(o).resourceVersion) continue;
    objects.set(key, o);
    options.onChange?.(held === undefined ? 'added' : 'modified', o, held);
  }
  state.resourceVersion = version;
  options.onOpen?.('list');
  setFresh(state, true);
  state.resolveSynced();
}

/** One watch while it runs: whether it ended, the events it carried, what aborts it once it is open. */
type OpenWatch = {
  settled: boolean;
  events: number;
  readonly opened: number;
  own: { abort(): void } | undefined;
  readonly resolve: (end: WatchEnd) => void;
};

/** One watch from `resourceVersion`, until the server or the network ends it. */
function watchOnce(state: InformerState): Promise<WatchEnd> {
  const { options } = state;
  return new Promise((resolve) => {
    const watch: OpenWatch = { settled: false, events: 0, opened: Date.now(), own: undefined, resolve };
    const query = {
      resourceVersion: state.resourceVersion,
      allowWatchBookmarks: true,
      ...(options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector }),
      ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
    };
    Promise.resolve()
      .then(() =>
        options.watch(
          options.path,
          query,
          (type: string, object: JsonObject) => {
            onWatchEvent(state, watch, type, object);
          },
          (err: unknown) => {
            onWatchDone(state, watch, err);
          },
        ),
      )
      .then(
        (c) => {
          onWatchOpen(state, watch, c);
        },
        (e: unknown) => {
          finishWatch(state, watch, { kind: 'failed', failure: failureOf(e) });
        },
      );
  });
}

/** Settles the watch, once: aborted, no longer the informer's. */
function finishWatch(state: InformerState, watch: OpenWatch, end: WatchOutcome): void {
  if (watch.settled) return;
  watch.settled = true;
  watch.own?.abort();
  if (state.controller === watch.own) state.controller = undefined;
  watch.resolve({ ...end, events: watch.events, lastedMs: Date.now() - watch.opened });
}

/** The server accepted the watch: it is the informer's now, and the cache fresh (unless it ended already). */
function onWatchOpen(state: InformerState, watch: OpenWatch, c: { abort(): void }): void {
  watch.own = c;
  if (watch.settled || state.stopped) {
    c.abort();
    return;
  }
  state.controller = c;
  state.options.onOpen?.('watch');
  setFresh(state, true);
}

/** One event of the watch: a change applied, or an ERROR that ends it; every resourceVersion kept. */
function onWatchEvent(state: InformerState, watch: OpenWatch, type: string, object: JsonObject): void {
  if (watch.settled || state.stopped) return;
  if (type === 'ERROR') {
    // A Status: its code and message.
    const code = fieldOf(object, 'code');
    if (code === 410) finishWatch(state, watch, { kind: 'expired' });
    else
      finishWatch(state, watch, {
        kind: 'failed',
        failure: new Failure(
          `watch error ${String(code)}: ${String(fieldOf(object, 'message'))}`,
          typeof code === 'number' ? code : undefined,
        ),
      });
    return;
  }
  const version = metaOf(object).resourceVersion;
  if (type !== 'BOOKMARK') {
    watch.events++;
    apply(state, type, object);
  }
  if (version !== '') state.resourceVersion = version;
}

/** The watch's end, as its `onDone` tells it. */
function onWatchDone(state: InformerState, watch: OpenWatch, err: unknown): void {
  const name = fieldOf(err, 'name');
  // A normal end, or the client's inactivity timeout on an open watch (the connection may be
  // half-open): resume. A timeout before the server answered at all is a failure.
  if (err === null || err === undefined || (name === 'TimeoutError' && watch.own !== undefined))
    finishWatch(state, watch, { kind: 'ended' });
  else {
    const failure = failureOf(err);
    finishWatch(state, watch, failure.code === 410 ? { kind: 'expired' } : { kind: 'failed', failure });
  }
}

/** Waits `ms`, or until `stop()` wakes it. */
function pause(state: InformerState, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      state.wake = undefined;
      resolve();
    }, ms);
    state.wake = () => {
      clearTimeout(timer);
      state.wake = undefined;
      resolve();
    };
  });
}

function backoffMs(state: InformerState, attempt: number, failure?: Failure): number {
  const base = Math.min(state.maxMs, state.initialMs * 2 ** Math.min(attempt, 30));
  const jittered = base * (0.8 + Math.random() * 0.4);
  const asked = failure?.retryAfterMs ?? (failure?.code === 429 ? 1_000 : 0);
  return Math.max(jittered, asked);
}

/** List when there is no resourceVersion to resume from, then watch; again and again until stopped. */
async function run(state: InformerState): Promise<void> {
  const { options } = state;
  let attempt = 0;
  // Read through a call: `stop()` changes it while this loop awaits.
  const isStopped = () => state.stopped;
  while (!isStopped()) {
    let failure: { stage: 'list' | 'watch'; failure: Failure } | undefined;
    if (state.resourceVersion === '') {
      try {
        await relist(state);
      } catch (e) {
        failure = { stage: 'list', failure: failureOf(e) };
      }
    }
    if (failure === undefined && !isStopped()) {
      const end = await watchOnce(state);
      // A watch that ran a while or carried events: whatever ended it, the last tries went well.
      const lasted = end.events > 0 || end.lastedMs >= 1_000;
      if (lasted) attempt = 0;
      if (end.kind === 'expired') {
        state.resourceVersion = '';
        setFresh(state, false); // until the list: what happened in the window it missed is not known yet
        // A full list at once (nothing is wrong with the server), unless that keeps happening.
        if (!lasted) await pause(state, backoffMs(state, attempt++));
        continue;
      }
      if (end.kind === 'failed') failure = { stage: 'watch', failure: end.failure };
      else {
        // The server ended it, as it does every few minutes: resume from where it was — at once, unless
        // it keeps ending at once without an event (not a failure, but no reason to spin either).
        if (!lasted) await pause(state, backoffMs(state, attempt++));
        continue;
      }
    }
    if (isStopped() || failure === undefined) break;
    if (failure.failure.code === 410) state.resourceVersion = '';
    setFresh(state, false);
    const retryInMs = backoffMs(state, attempt++, failure.failure);
    options.onFailure?.({
      stage: failure.stage,
      ...(failure.failure.code === undefined ? {} : { code: failure.failure.code }),
      message: failure.failure.message,
      retryInMs,
    });
    await pause(state, retryInMs);
  }
}
