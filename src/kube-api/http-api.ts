// KubeApi over node:http / node:https with kept-alive connections and a timeout on every request. Used by the
// plugin: it loads in a few milliseconds, where the full client takes a few hundred on every pod. And by
// the node agent and the slice controller (`httpConnection` below): their reads, lists and watches need
// nothing more, and client-node's tree (undici, openid-client, jose, ws, the generated models) would be most
// of an idle agent's memory (docs/agent.md, "Memory").

import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import {
  networkCode,
  pathOf,
  statusFailure,
  type ApiOutcome,
  type KubeApi,
  type ListOptions,
  type ListPage,
  type ObjectRef,
} from './api.ts';
import { readUntrustedFile } from '../config/untrusted-file.ts';
import { objectAt, objectOf, stringAt, type JsonObject } from '../codecs/decode.ts';
import { decodeList } from '../codecs/list.ts';
import type { WatchFunction } from './informer.ts';
import { redactServer, type Credentials } from './kubeconfig.ts';
import type { KubeConnection } from './kube.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

const headerText = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value;

type Client = {
  readonly request: typeof import('node:http').request;
  /** Requests: kept-alive connections, at most `requestConnections` of them. */
  readonly agent: HttpAgent;
  /** Watches, each holding its connection for minutes: never counted against the requests' connections. */
  readonly watchAgent: HttpAgent;
};

/**
 * Connections of a client's requests at most (watches aside): a burst of 100 concurrent calls from the agent
 * waits its turn on these instead of opening 100 TLS connections (CPU for the handshakes, memory for each),
 * as client-node's pool does.
 */
export const requestConnections = 8;

/** A token file (the kubelet rotates a projected one) is read again when its copy is older than this, as
 *  client-go does. */
const tokenFileRefreshMs = 60_000;

/** The server's answer to one request: its status, its body parsed as JSON (undefined if none or not JSON). */
export type RawAnswer = {
  readonly code: number;
  readonly text: string;
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
};

/** One HTTP client for a kubeconfig's server: requests on a few kept-alive connections, and watches. */
export type HttpClient = {
  /** One request; a failure to get an answer rejects with the network error. */
  request(method: Method, path: string, body?: unknown, contentType?: string): Promise<RawAnswer>;
  /** A watch, with the calling convention of client-node's `Watch.watch` (src/kube-api/informer.ts). */
  readonly watch: WatchFunction;
};

/**
 * How long an open watch may stay silent before it is taken for half-open and ended (the informer opens it
 * again): client-node's Watch waits as long.
 */
export const watchQuietMs = 30_000;

/** A client's state: its server, the bearer token it sends, its connections (made on the first request). */
type ClientState = {
  readonly credentials: Credentials;
  readonly url: URL;
  /** The server URL's path, every request's path under it. */
  readonly prefix: string;
  readonly requestTimeoutMs: number;
  readonly quietMs: number;
  client: Promise<Client> | undefined;
  token: string | undefined;
  tokenReadAt: number;
};

export function httpClient(
  credentials: Credentials,
  requestTimeoutMs = 10_000,
  quietMs = watchQuietMs,
): HttpClient {
  // Userinfo in the URL is never sent (only host and port are used below) and never shown.
  const url = new URL(credentials.server);
  const state: ClientState = {
    credentials,
    url,
    prefix: url.pathname.replace(/\/$/, ''),
    requestTimeoutMs,
    quietMs,
    client: undefined,
    token: credentials.token,
    tokenReadAt: Date.now(),
  };
  return {
    request: (method, path, body, contentType) => requestAnswer(state, method, path, body, contentType),
    watch: (path, query, onEvent, onDone) => startWatch(state, path, query, onEvent, onDone),
  };
}

/**
 * The request and watch agents of a server. node:https drags in TLS and crypto: loaded only for an https
 * server, on the first request.
 */
async function connect(credentials: Credentials, secure: boolean): Promise<Client> {
  if (!secure) {
    const http = await import('node:http');
    return {
      request: http.request,
      agent: new http.Agent({ keepAlive: true, maxSockets: requestConnections }),
      watchAgent: new http.Agent(),
    };
  }
  const https = await import('node:https');
  const tls = {
    ...(credentials.ca === undefined ? {} : { ca: credentials.ca }),
    ...(credentials.cert === undefined ? {} : { cert: credentials.cert }),
    ...(credentials.key === undefined ? {} : { key: credentials.key }),
    ...(credentials.tlsServerName === undefined ? {} : { servername: credentials.tlsServerName }),
    rejectUnauthorized: !credentials.insecure,
  };
  return {
    request: https.request,
    agent: new https.Agent({ keepAlive: true, maxSockets: requestConnections, ...tls }),
    watchAgent: new https.Agent(tls),
  };
}

/** The bearer token now: a token file's newest content, at most a minute old. */
function currentToken(state: ClientState): string | undefined {
  const file = state.credentials.tokenFile;
  if (file !== undefined && Date.now() - state.tokenReadAt >= tokenFileRefreshMs) {
    state.tokenReadAt = Date.now();
    // Unreadable for a moment (the kubelet swaps the projected volume's files): the last one read.
    const read = readUntrustedFile(file);
    const text = read.ok ? read.value.toString('utf8').trim() : '';
    if (text !== '') state.token = text;
  }
  return state.token;
}

type Opened = { readonly response: IncomingMessage; readonly abort: () => void };

/** Sends a request and resolves with the response once its headers arrived; rejects on a network error. */
async function open(
  state: ClientState,
  method: Method,
  path: string,
  payload: string | undefined,
  contentType: string,
  timeoutMs: number,
  watch = false,
): Promise<Opened> {
  const { url } = state;
  state.client ??= connect(state.credentials, url.protocol === 'https:');
  const { request: send, agent, watchAgent } = await state.client;
  const bearer = currentToken(state);
  return new Promise((resolve, reject) => {
    const request = send(
      {
        agent: watch ? watchAgent : agent,
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? undefined : url.port,
        method,
        path: `${state.prefix}${path}`,
        timeout: timeoutMs,
        headers: {
          Accept: 'application/json',
          'User-Agent': 'whereabouts-ts',
          ...(bearer === undefined ? {} : { Authorization: `Bearer ${bearer}` }),
          ...(payload === undefined
            ? {}
            : { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) }),
        },
      },
      (response) => {
        resolve({ response, abort: () => request.destroy() });
      },
    );
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    request.on('error', reject);
    request.end(payload);
  });
}

/** `HttpClient.request`: one request, its whole answer. */
async function requestAnswer(
  state: ClientState,
  method: Method,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<RawAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const { response } = await open(state, method, path, payload, contentType, state.requestTimeoutMs);
  return new Promise<RawAnswer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      resolve({ code: response.statusCode ?? 0, text, body: parsed, headers: response.headers });
    });
    response.on('error', reject);
  });
}

/** One watch while it runs: whether it ended, what aborts its request, its inactivity timer. */
type WatchRun = {
  readonly quietMs: number;
  readonly onDone: (error: unknown) => void;
  done: boolean;
  abort: () => void;
  timer: NodeJS.Timeout | undefined;
};

/** Ends the watch, once: its timer stopped, its request aborted, `onDone` told. */
function finishWatch(run: WatchRun, error: unknown): void {
  if (run.done) return;
  run.done = true;
  clearTimeout(run.timer);
  run.abort();
  run.onDone(error);
}

/** (Re)starts the inactivity timer: no byte for `quietMs` ends the watch with a TimeoutError. */
function quiet(run: WatchRun): void {
  clearTimeout(run.timer);
  run.timer = setTimeout(() => {
    finishWatch(run, Object.assign(new Error('watch timed out'), { name: 'TimeoutError' }));
  }, run.quietMs);
  run.timer.unref();
}

/**
 * A watch as client-node's Watch runs one: `onEvent` per line, `onDone` once (null: the server ended it;
 * an error: it failed, or no byte came for `quietMs` — a TimeoutError, as client-node names it).
 * A status other than 200 ends it with an error that carries the status, its Status body and headers.
 */
async function startWatch(
  state: ClientState,
  path: string,
  query: Readonly<Record<string, string | boolean | undefined>>,
  onEvent: (type: string, object: JsonObject) => void,
  onDone: (error: unknown) => void,
): Promise<{ abort(): void }> {
  const search = new URLSearchParams({ watch: 'true' });
  for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value));
  const run: WatchRun = {
    quietMs: state.quietMs,
    onDone,
    done: false,
    abort: () => undefined,
    timer: undefined,
  };
  // Aborted by the caller: ended as client-node ends it, with an AbortError.
  const controller = new AbortController();
  controller.signal.addEventListener('abort', () => {
    finishWatch(run, Object.assign(new Error('watch aborted'), { name: 'AbortError' }));
  });
  try {
    const target = `${path}?${search.toString()}`;
    const opened = await open(state, 'GET', target, undefined, '', state.requestTimeoutMs, true);
    run.abort = opened.abort;
    const { response } = opened;
    if (run.done) {
      run.abort();
      return controller;
    }
    if (response.statusCode !== 200) {
      // Ended before it resolves, as client-node's: the caller never takes a refused watch for an open one.
      const body = await bodyText(response);
      finishWatch(
        run,
        Object.assign(new Error(`watch answered ${String(response.statusCode)}`), {
          statusCode: response.statusCode,
          body,
          headers: response.headers,
        }),
      );
      return controller;
    }
    // The request's own timeout covered the connection; from here on, an inactivity timeout.
    response.socket.setTimeout(0);
    quiet(run);
    readEvents(run, response, onEvent);
  } catch (e) {
    finishWatch(run, e);
  }
  return controller;
}

/** A response's body as text; what arrived of it if it fails. */
function bodyText(response: IncomingMessage): Promise<string> {
  return new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    response.on('error', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** An open watch's events, one JSON line each, to `onEvent` until it ends. */
function readEvents(
  run: WatchRun,
  response: IncomingMessage,
  onEvent: (type: string, object: JsonObject) => void,
): void {
  let pending = '';
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    quiet(run);
    pending += chunk;
    let newline: number;
    while (!run.done && (newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() === '') continue;
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch {
        continue; // as client-node: a line that is not JSON is skipped
      }
      const type = stringAt(event, 'type');
      if (type !== undefined) onEvent(type, objectAt(event, 'object'));
    }
  });
  response.on('end', () => {
    finishWatch(run, null);
  });
  response.on('close', () => {
    finishWatch(run, null);
  });
  response.on('error', (error) => {
    finishWatch(run, error);
  });
}

/** The KubeApi of `credentials`, on `http` (one connection pool with a caller's other requests) if given. */
export function httpApi(
  credentials: Credentials,
  requestTimeoutMs = 10_000,
  http: HttpClient = httpClient(credentials, requestTimeoutMs),
): KubeApi {
  async function send<T>(
    method: Method,
    path: string,
    body: unknown,
    contentType: string,
    decode: (body: unknown) => T,
  ): Promise<ApiOutcome<T>> {
    try {
      const answer = await http.request(method, path, body, contentType);
      return answer.code >= 200 && answer.code < 300
        ? { ok: true, value: decode(answer.body) }
        : {
            ok: false,
            error: statusFailure(answer.code, answer.body, headerText(answer.headers['retry-after'])),
          };
    } catch (e) {
      return { ok: false, error: { kind: 'network', code: networkCode(e) } };
    }
  }

  return {
    server: redactServer(credentials.server),
    namespace: credentials.namespace,
    get: (ref) => send('GET', pathOf(ref), undefined, '', objectOf),
    create: (ref, body) => send('POST', pathOf(ref), body, 'application/json', objectOf),
    jsonPatch: (ref, operations) =>
      send('PATCH', pathOf(ref), operations, 'application/json-patch+json', objectOf),
    delete: (ref, resourceVersion) =>
      send(
        'DELETE',
        pathOf(ref),
        resourceVersion === undefined ? undefined : { preconditions: { resourceVersion } },
        'application/json',
        () => undefined,
      ),
    warm: async () => {
      await send('GET', '/version', undefined, '', () => undefined);
    },
    list: (ref: ObjectRef, options: ListOptions = {}) => {
      const query = new URLSearchParams();
      // Every selector and option the caller gives (labelSelector too), under the API's own names.
      for (const [key, value] of Object.entries(options as Record<string, unknown>))
        if (typeof value === 'string' || typeof value === 'number') query.set(key, String(value));
      const suffix = query.size === 0 ? '' : `?${query.toString()}`;
      return send('GET', `${pathOf(ref)}${suffix}`, undefined, '', (body): ListPage => decodeList(body));
    },
  };
}

/** What client-node throws for an answer that is not 2xx (its ApiException): the status, body and headers. */
class ApiAnswerError extends Error {
  readonly code: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  constructor(answer: RawAnswer) {
    const message = stringAt(answer.body, 'message');
    super(`HTTP ${String(answer.code)}${message === undefined ? '' : `: ${message}`}`);
    this.code = answer.code;
    this.body = answer.text;
    this.headers = answer.headers;
  }
}

/** The names of a client-node call's parameters that are the path, not the query. */
const pathParameters = new Set(['group', 'version', 'plural', 'namespace', 'name', 'body']);

/** The query of a client-node call's parameters (`_continue` is the API's `continue`). */
function queryOf(parameters: Record<string, unknown>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    if (pathParameters.has(key)) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') continue;
    query.set(key === '_continue' ? 'continue' : key, String(value));
  }
  return query.size === 0 ? '' : `?${query.toString()}`;
}

export type HttpConnectionOptions = {
  readonly requestTimeoutMs?: number;
  /** The namespace of pools and reservations, instead of the kubeconfig's. */
  readonly namespace?: string | undefined;
  /**
   * The full client-node connection, loaded on first use: for the client-node calls the lean one does not
   * implement (none of the agent's; a caller that needs another gets it, at client-node's cost in memory).
   */
  readonly full: () => Promise<KubeConnection>;
};

/**
 * A KubeConnection without client-node, for the node agent and the slice controller: the KubeApi of
 * `httpApi`, the watch of its HTTP client for the informers (src/kube-api/informer.ts), and in place of
 * client-node's objects, lean ones that implement what they call — `core.readNamespacedPod`, the pod, node
 * and custom-object lists. Any other `core` or `custom` call loads client-node and runs there.
 */
export function httpConnection(credentials: Credentials, options: HttpConnectionOptions): KubeConnection {
  const namespace =
    options.namespace !== undefined && options.namespace !== '' ? options.namespace : credentials.namespace;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const http = httpClient(credentials, timeoutMs);
  const api = httpApi({ ...credentials, namespace }, timeoutMs, http);
  /** A GET of `path`, its parsed body; what is not 2xx throws as client-node throws. */
  const read = async (path: string): Promise<unknown> => {
    const answer = await http.request('GET', path);
    if (answer.code < 200 || answer.code > 299) throw new ApiAnswerError(answer);
    return answer.body;
  };
  type P = Record<string, unknown> & { namespace?: string; name?: string };
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const custom = (p: P, withNamespace: boolean, withName = false) =>
    pathOf({
      group: text(p.group),
      version: text(p.version),
      plural: text(p.plural),
      ...(withNamespace ? { namespace: text(p.namespace) } : {}),
      ...(withName ? { name: text(p.name) } : {}),
    });
  const core = (plural: string, p: P, withNamespace: boolean, withName = false) =>
    pathOf({
      group: '',
      version: 'v1',
      plural,
      ...(withNamespace ? { namespace: text(p.namespace) } : {}),
      ...(withName ? { name: text(p.name) } : {}),
    });

  let full: Promise<KubeConnection> | undefined;
  /** `lean`, and for any other method a call of client-node's, loaded on first use. */
  const orFull = (lean: Record<string, (p?: P) => Promise<unknown>>, part: 'core' | 'custom'): unknown =>
    new Proxy(lean, {
      get: (target, property) => {
        if (typeof property !== 'string' || property === 'then') return undefined;
        if (Object.hasOwn(target, property)) return target[property];
        return async (...args: unknown[]) => {
          full ??= options.full();
          const client = (await full)[part] as unknown as Record<string, (...a: unknown[]) => unknown>;
          const method = client[property];
          if (typeof method !== 'function') throw new TypeError(`${part}.${property} is not a function`);
          return method.apply(client, args);
        };
      },
    });

  return {
    ...api,
    watch: http.watch,
    core: orFull(
      {
        readNamespacedPod: (p = {}) => read(core('pods', p, true, true)),
        listPodForAllNamespaces: (p = {}) => read(`${core('pods', p, false)}${queryOf(p)}`),
        listNamespacedPod: (p = {}) => read(`${core('pods', p, true)}${queryOf(p)}`),
        listNode: (p = {}) => read(`${core('nodes', p, false)}${queryOf(p)}`),
      },
      'core',
    ) as KubeConnection['core'],
    custom: orFull(
      {
        getNamespacedCustomObject: (p = {}) => read(custom(p, true, true)),
        listClusterCustomObject: (p = {}) => read(`${custom(p, false)}${queryOf(p)}`),
        listNamespacedCustomObject: (p = {}) => read(`${custom(p, true)}${queryOf(p)}`),
      },
      'custom',
    ) as KubeConnection['custom'],
  };
}
