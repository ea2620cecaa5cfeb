// The node agent's allocation service: plugin invocations arrive on a unix socket (mode 0600, size-limited,
// with timeouts) and run through the same protocol code as the standalone plugin, against one warm,
// long-lived connection to the API server instead of a new process and new connections per pod.

import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { runPlugin, type PluginOutput } from '../cni/plugin.ts';
import type { Held } from '../cni/verbs.ts';
import { loadConfig, loadForRelease } from '../config/load.ts';
import { deadlines } from '../cni/verbs.ts';
import { ok } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { IpamStore } from '../store/store.ts';

export type AgentOptions = {
  readonly socketPath: string;
  readonly store: IpamStore;
  readonly log: Logger;
  /** The agent's node, for GC's "pods on this node". */
  readonly nodeName: string;
  /** Where the flat file is, as seen from the agent (its host mount). */
  readonly flatFilePaths?: readonly string[];
  /**
   * The kubeconfig by which plugins name the agent's own store (the one it installed). A network whose
   * config names another is declined before anything is done — the plugin then serves it standalone, with
   * that kubeconfig — so that one attachment always has one store. Unset: every network is served.
   */
  readonly kubeconfig?: string;
  /** Told about every request served, in its attachment's turn (before the next request of it runs). */
  readonly observe?: (served: Served) => void;
  /** How long a stop waits for the requests under way: `drainTimeoutMs` below unless a test says otherwise. */
  readonly drainTimeoutMs?: number;
};

/** A request served: its CNI environment (`CNI_*` only), exit code and duration; what a successful ADD holds. */
export type Served = {
  readonly env: Readonly<Record<string, string>>;
  readonly exitCode: number;
  readonly seconds: number;
  readonly held?: Held;
};

export type AgentStats = { requests: number; byCommand: Record<string, number>; failures: number };

export type Agent = {
  readonly stats: AgentStats;
  /**
   * Stops gracefully: from the call on, every request (new, or queued behind another of its attachment) is
   * answered `stopping` — 503 and `{"busy": "..."}`, which the plugin answers with code 11 — while the
   * requests already running finish and get their real answers; then the socket is closed and removed.
   */
  close(): Promise<void>;
};

/** A request is an environment and a network configuration: anything near this is hostile. */
const maxRequestBytes = 2 << 20;
/** The longest verb deadline (ADD, GC: 60 s) and some room. */
const requestTimeoutMs = 90_000;
/**
 * How long a stop waits for the requests already running: each ends by its verb's deadline (at most 60 s)
 * and some room. Shorter than the plugin's own wait for an answer (75 s, cni-plugin/main.ts), so that every
 * plugin still waiting gets an answer from the agent; shorter than the DaemonSet's grace period (90 s,
 * deploy/core/agent.yaml), so that the kubelet's SIGKILL never cuts a transaction off.
 */
export const drainTimeoutMs = Math.max(...Object.values(deadlines)) + 5_000;
/** The answer to a request the agent will not run because it is stopping. */
const stoppingAnswer = {
  busy: 'the node agent is stopping; not run, try again (the next agent, or the plugin itself once no agent is left, will)',
};
const notRun = Symbol('not run: stopping');
/** How long a stop waits, once nothing runs any more, for the last answers to go out. */
const closeTimeoutMs = 2_000;

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxRequestBytes) {
        resolve(undefined);
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', () => {
      resolve(undefined);
    });
  });
}

/** Removes a socket left by an earlier agent — only a socket, never anything else at that path. */
function clearStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) rmSync(path);
  } catch {
    // nothing there
  }
}

/** A running agent's state, shared by its requests and its stop. */
type AgentState = {
  readonly options: AgentOptions;
  readonly stats: AgentStats;
  /** The tail of each attachment's lane (see `inLane`). */
  readonly lanes: Map<string, Promise<unknown>>;
  /** Set by close(): nothing starts any more. */
  stopping: boolean;
  /** The requests being handled, each settled once it has been answered. */
  readonly underWay: Map<ServerResponse, Promise<void>>;
};

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const state: AgentState = {
    options,
    stats: { requests: 0, byCommand: {}, failures: 0 },
    lanes: new Map(),
    stopping: false,
    underWay: new Map(),
  };
  const server: Server = createServer(
    { requestTimeout: requestTimeoutMs, headersTimeout: 10_000 },
    (req, res) => {
      const handled = handle(state, req, res)
        .catch((e: unknown) => {
          options.log.error('agent request failed', { error: e instanceof Error ? e.message : String(e) });
          answer(res, 500, { error: 'internal error' });
        })
        .finally(() => state.underWay.delete(res));
      state.underWay.set(res, handled);
    },
  );
  await listen(server, options.socketPath);
  options.log.verbose('agent listening', { socket: options.socketPath, node: options.nodeName });
  let stopped: Promise<void> | undefined;

  return {
    stats: state.stats,
    close: () => (stopped ??= stop(state, server)),
  };
}

/** Listens on the socket, 0600, in place of a stale one. */
async function listen(server: Server, socketPath: string): Promise<void> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  clearStaleSocket(socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
}

/**
 * Runs `work` in the lane of `key`. The requests of one attachment (container, interface) run one after
 * another, as the runtime sends them: a DEL or a repeated ADD never runs beside the ADD it follows.
 */
function inLane<T>(lanes: Map<string, Promise<unknown>>, key: string, work: () => Promise<T>): Promise<T> {
  const run = (lanes.get(key) ?? Promise.resolve()).then(work, work);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  lanes.set(key, tail);
  void tail.then(() => {
    if (lanes.get(key) === tail) lanes.delete(key);
  });
  return run;
}

function answer(res: ServerResponse, code: number, body: unknown): void {
  // Answered already: a stop that could not wait for this request any longer said `stopping`.
  if (res.headersSent || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Why the agent will not serve this network (its config names a store other than the agent's), if so. */
function declines(options: AgentOptions, stdin: string, cniArgs: string | undefined): string | undefined {
  if (options.kubeconfig === undefined) return undefined;
  const flatFiles = options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths };
  const loaded = loadConfig({ stdin, cniArgs, ...flatFiles });
  // A config that does not load is answered by the plugin's own checks, which write nothing — except a
  // DEL, which releases all the same where the config's kubeconfig can be read: the same rule applies.
  const lenient = loaded.ok ? undefined : loadForRelease({ stdin, cniArgs, ...flatFiles });
  const named = loaded.ok
    ? loaded.value.config.kubeconfig
    : lenient?.ok
      ? lenient.value.kubeconfig
      : undefined;
  return named === undefined || named === options.kubeconfig
    ? undefined
    : `the network names the kubeconfig ${named}, not the node agent's ${options.kubeconfig}`;
}

/** The request's body, if it is `{"env": {...}, "stdin": "..."}` within the size limit. */
async function readRequest(req: IncomingMessage): Promise<{ env: object; stdin: string } | undefined> {
  const text = await readBody(req);
  let request: { env?: unknown; stdin?: unknown } | undefined;
  try {
    request = text === undefined ? undefined : (JSON.parse(text) as { env?: unknown; stdin?: unknown });
  } catch {
    request = undefined;
  }
  if (
    request === undefined ||
    typeof request.stdin !== 'string' ||
    typeof request.env !== 'object' ||
    request.env === null
  ) {
    return undefined;
  }
  return { env: request.env, stdin: request.stdin };
}

async function handle(state: AgentState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST' || req.url !== '/v1/cni') {
    answer(res, 404, { error: 'POST /v1/cni' });
    return;
  }
  const request = await readRequest(req);
  if (request === undefined) {
    answer(res, 400, {
      error: `the body must be {"env": {...}, "stdin": "..."} and at most ${maxRequestBytes} bytes`,
    });
    return;
  }
  if (state.stopping) {
    answer(res, 503, stoppingAnswer);
    return;
  }
  const env = Object.fromEntries(
    Object.entries(request.env as Record<string, unknown>).filter(
      (e): e is [string, string] => e[0].startsWith('CNI_') && typeof e[1] === 'string',
    ),
  );
  const declined = declines(state.options, request.stdin, env.CNI_ARGS);
  if (declined !== undefined) {
    answer(res, 421, { declined });
    return;
  }
  const { stats } = state;
  stats.requests++;
  const command = env.CNI_COMMAND ?? '';
  stats.byCommand[command] = (stats.byCommand[command] ?? 0) + 1;
  const started = performance.now();
  const stdin = request.stdin;
  const run = () => runRequest(state, env, stdin, started);
  const attachment =
    env.CNI_CONTAINERID === undefined ? undefined : `${env.CNI_CONTAINERID}/${env.CNI_IFNAME ?? ''}`;
  const output = await (attachment === undefined ? run() : inLane(state.lanes, attachment, run));
  if (output === notRun) {
    answer(res, 503, stoppingAnswer);
    return;
  }
  answer(res, 200, output);
}

/**
 * Runs one request through the plugin's code. Checked again when the request's turn comes: a request
 * queued behind another of its attachment when the stop began does not start. Observed in the
 * attachment's lane, so that what an ADD holds is recorded before its DEL runs.
 */
async function runRequest(
  state: AgentState,
  env: Record<string, string>,
  stdin: string,
  started: number,
): Promise<PluginOutput | typeof notRun> {
  const { options } = state;
  if (state.stopping) return notRun;
  let held: Held | undefined;
  const output = await runPlugin({
    env: { ...env, NODENAME: options.nodeName },
    stdin,
    openStore: () => ok(options.store),
    writeLog: (line) => process.stderr.write(line),
    logFile: 'ignore',
    onHeld: (h) => (held = h),
    ...(options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths }),
  });
  if (output.exitCode !== 0) state.stats.failures++;
  const seconds = (performance.now() - started) / 1000;
  options.observe?.({ env, exitCode: output.exitCode, seconds, ...(held === undefined ? {} : { held }) });
  return output;
}

/**
 * Stops as `Agent.close` says. The socket keeps listening meanwhile: a plugin that found no agent (no
 * socket, connection refused) would work standalone, beside a transaction of its attachment that may still
 * be running here — so it is told `stopping` (code 11: try again) until nothing is running any more.
 */
async function stop(state: AgentState, server: Server): Promise<void> {
  const { options, underWay } = state;
  state.stopping = true;
  const drainFor = options.drainTimeoutMs ?? drainTimeoutMs;
  const timers: NodeJS.Timeout[] = [];
  const after = (ms: number) =>
    new Promise<false>((resolve) => {
      timers.push(
        setTimeout(() => {
          resolve(false);
        }, ms),
      );
    });
  const drained = await Promise.race([drain(underWay), after(drainFor)]);
  if (!drained) {
    // Past every verb's deadline: answered `stopping` rather than dropped, so that the plugin tries again
    // later instead of working beside them (the process ends right after, and they with it).
    options.log.error('agent stopping: requests still running after the drain bound, answered busy', {
      running: underWay.size,
      drainTimeoutMs: drainFor,
    });
    for (const res of underWay.keys()) answer(res, 503, stoppingAnswer);
  }
  // Stops listening and removes the socket file (libuv unlinks it on close): from now on a plugin finds no
  // agent and works standalone — nothing of this agent's work is left running. The connections end once
  // their answers are out (`Connection: close`); one whose request is still arriving is cut off after a
  // moment.
  await Promise.race([
    new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    ),
    after(closeTimeoutMs),
  ]);
  for (const timer of timers) clearTimeout(timer);
  server.closeAllConnections();
  clearStaleSocket(options.socketPath);
  options.log.verbose('agent stopped serving', { socket: options.socketPath, drained });
}

/**
 * Resolves once nothing is under way: requests that arrive while others finish are answered at once,
 * and awaited too.
 */
async function drain(underWay: Map<ServerResponse, Promise<void>>): Promise<true> {
  while (underWay.size > 0) await Promise.all(underWay.values());
  return true;
}
