// Runs components as they run in a cluster — real processes with their own kubeconfig, each with its own
// bearer token — against one embedded API server that records every request by whose token it carried.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFor } from '../../../src/apiserver/kubeconfig.ts';
import { startApiServer, type ApiServer } from '../../../src/apiserver/server.ts';
import { connect, type KubeConnection } from '../../../src/store/kube.ts';
import { crdDirectory } from '../../support/cluster.ts';
import type { Call } from './rbac.ts';
import { root } from './render.ts';

/** The namespace of the pools and reservations, as in deploy/. */
export const namespace = 'kube-system';
const cli = join(root, 'src', 'cli', 'main.ts');

export type Process = {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  /** Resolves with the exit code when the process ends by itself. */
  readonly exited: Promise<number | null>;
};

export type Harness = {
  readonly server: ApiServer;
  /** The calls made with each identity's token. */
  readonly calls: Map<string, Call[]>;
  /** A kubeconfig file carrying `identity`'s token. */
  kubeconfig(identity: string): string;
  token(identity: string): string;
  /** A connection of the test itself (its calls are recorded apart, as `harness`). */
  readonly admin: KubeConnection;
  tempDir(name: string): string;
  /** `whereabouts-ts <args>` as a process. */
  run(args: readonly string[], env?: Record<string, string>): Process;
  close(): Promise<void>;
};

export async function startHarness(identities: readonly string[]): Promise<Harness> {
  const all = ['harness', ...identities];
  const tokenOf = (identity: string) => `token-of-${identity}`;
  const calls = new Map<string, Call[]>(all.map((i) => [i, []]));
  const server = await startApiServer({
    crdDirectories: [crdDirectory],
    users: Object.fromEntries(all.map((i) => [tokenOf(i), i])),
    authorize: (request) => {
      if (request.user !== undefined)
        calls.get(request.user)?.push({
          verb: request.verb,
          group: request.def.group,
          resource: request.def.plural,
          namespace: request.namespace,
          name: request.name,
        });
      return true; // record only: the test compares the calls with the manifests' RBAC afterwards
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'wb-deploy-'));
  const kubeconfigs = new Map<string, string>();
  for (const identity of all) {
    const path = join(dir, `${identity}.kubeconfig`);
    writeFileSync(path, kubeconfigFor(server.url, { namespace, token: tokenOf(identity) }), { mode: 0o600 });
    kubeconfigs.set(identity, path);
  }
  const admin = connect({ kubeconfig: kubeconfigs.get('harness') });
  if (!admin.ok) throw new Error(admin.error.details);
  const processes = new Set<Process>();

  const run = (args: readonly string[], env: Record<string, string> = {}): Process => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        resolve(code);
      }),
    );
    const handle: Process = {
      child,
      output: () => output,
      exited,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const code = await exited;
        processes.delete(handle);
        return code;
      },
    };
    processes.add(handle);
    return handle;
  };

  return {
    server,
    calls,
    kubeconfig: (identity) => kubeconfigs.get(identity) ?? '',
    token: tokenOf,
    admin: admin.value,
    tempDir: (name) => {
      const path = join(dir, name);
      mkdirSync(path, { recursive: true });
      return path;
    },
    run,
    close: async () => {
      await Promise.all([...processes].map((p) => p.stop()));
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

/** Polls until `check` is true, or throws `what` (with the process's output) after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  process?: Process,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process !== undefined && process.child.exitCode !== null)
      throw new Error(
        `${what}: the process exited with code ${process.child.exitCode}:\n${process.output()}`,
      );
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${what}: not within ${timeoutMs} ms${process === undefined ? '' : `:\n${process.output()}`}`,
  );
}

/** Whether GET url answers 200. */
export const answers200 = async (url: string): Promise<boolean> => {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
};

/** The metric names a Prometheus text exposition declares (histograms with their series suffixes). */
export function metricNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = match;
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

/** A stand-in Pushgateway: keeps what is pushed to it. */
export async function fakePushgateway(): Promise<{ url: string; pushed: string[]; close(): Promise<void> }> {
  const pushed: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      pushed.push(body);
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pushed,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}
