// The node agent's allocation service: plugin invocations arrive on a unix socket (mode 0600, size-limited,
// with timeouts) and run through the same protocol code as the standalone plugin, against one warm,
// long-lived connection to the API server instead of a new process and new connections per pod.

import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { runPlugin } from '../cni/plugin.ts';
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
  /** Told about every request served. */
  readonly observe?: (served: Served) => void;
};

/** A request served: its CNI environment (`CNI_*` only), exit code and duration. */
export type Served = {
  readonly env: Readonly<Record<string, string>>;
  readonly exitCode: number;
  readonly seconds: number;
};

export type AgentStats = { requests: number; byCommand: Record<string, number>; failures: number };

export type Agent = { readonly stats: AgentStats; close(): Promise<void> };

/** A request is an environment and a network configuration: anything near this is hostile. */
const maxRequestBytes = 2 << 20;
/** The longest verb deadline (ADD, GC: 60 s) and some room. */
const requestTimeoutMs = 90_000;

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

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const stats: AgentStats = { requests: 0, byCommand: {}, failures: 0 };
  // The requests of one attachment (container, interface) run one after another, as the runtime sends
  // them: a DEL or a repeated ADD never runs beside the ADD it follows.
  const lanes = new Map<string, Promise<unknown>>();
  const inLane = <T>(key: string, work: () => Promise<T>): Promise<T> => {
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
  };
  const answer = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url !== '/v1/cni') {
      answer(res, 404, { error: 'POST /v1/cni' });
      return;
    }
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
      answer(res, 400, {
        error: `the body must be {"env": {...}, "stdin": "..."} and at most ${maxRequestBytes} bytes`,
      });
      return;
    }
    const env = Object.fromEntries(
      Object.entries(request.env as Record<string, unknown>).filter(
        (e): e is [string, string] => e[0].startsWith('CNI_') && typeof e[1] === 'string',
      ),
    );
    stats.requests++;
    const command = env.CNI_COMMAND ?? '';
    stats.byCommand[command] = (stats.byCommand[command] ?? 0) + 1;
    const started = performance.now();
    const stdin = request.stdin;
    const run = () =>
      runPlugin({
        env: { ...env, NODENAME: options.nodeName },
        stdin,
        openStore: () => ok(options.store),
        writeLog: (line) => process.stderr.write(line),
        logFile: 'ignore',
        ...(options.flatFilePaths === undefined ? {} : { flatFilePaths: options.flatFilePaths }),
      });
    const attachment =
      env.CNI_CONTAINERID === undefined ? undefined : `${env.CNI_CONTAINERID}/${env.CNI_IFNAME ?? ''}`;
    const output = await (attachment === undefined ? run() : inLane(attachment, run));
    if (output.exitCode !== 0) stats.failures++;
    options.observe?.({ env, exitCode: output.exitCode, seconds: (performance.now() - started) / 1000 });
    answer(res, 200, output);
  }

  const server: Server = createServer(
    { requestTimeout: requestTimeoutMs, headersTimeout: 10_000 },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        options.log.error('agent request failed', { error: e instanceof Error ? e.message : String(e) });
        if (!res.headersSent) answer(res, 500, { error: 'internal error' });
      });
    },
  );
  mkdirSync(dirname(options.socketPath), { recursive: true, mode: 0o700 });
  clearStaleSocket(options.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      resolve();
    });
  });
  chmodSync(options.socketPath, 0o600);
  options.log.verbose('agent listening', { socket: options.socketPath, node: options.nodeName });

  return {
    stats,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      clearStaleSocket(options.socketPath);
    },
  };
}
