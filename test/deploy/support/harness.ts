// Runs components as they run in a cluster — real processes with their own kubeconfig, each with its own
// bearer token — against an API server that records every request by whose token it carried: the embedded
// one (its authorizer records and allows), or a real kube-apiserver behind a recording proxy, where each
// identity is a ServiceAccount of deploy/ with a token from the TokenRequest API and the real RBAC
// authorizer decides.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFor } from '../../../src/dev-apiserver/kubeconfig.ts';
import { startApiServer } from '../../../src/dev-apiserver/server.ts';
import type { Obj } from '../../../src/kube-api/api.ts';
import { connect, type KubeConnection } from '../../../src/kube-api/kube.ts';
import { renderKubeconfig } from '../../../src/kube-api/kubeconfig.ts';
import type { ControlPlane } from '../../../kube/control-plane.ts';
import { crdDirectory, ipamClaimCrd } from '../../support/cluster.ts';
import type { Call } from './rbac.ts';
import { startRecorder } from './recorder.ts';
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
  readonly kind: 'embedded' | 'real';
  /** The API server's address as the components reach it. */
  readonly url: string;
  /** The CA of `url`'s certificate (PEM); undefined where it speaks plain http. */
  readonly ca: string | undefined;
  /** The calls made with each identity's token. */
  readonly calls: Map<string, Call[]>;
  /** The requests the server refused (403) to each identity; on the embedded server, none. */
  readonly refused: Map<string, string[]>;
  /** Every error answer (404 and 409 included) to each identity's requests; on the embedded server, none kept. */
  readonly errors: Map<string, string[]>;
  /** A kubeconfig file carrying `identity`'s token. */
  kubeconfig(identity: string): string;
  token(identity: string): string;
  /** A connection of the test itself, with full rights (not recorded as any identity's). */
  readonly admin: KubeConnection;
  /** The stored objects of one kind in `namespace` (cluster-scoped kinds: all), by name. */
  objects(plural: string, group?: string): Promise<Map<string, Obj>>;
  tempDir(name: string): string;
  /** `whereabouts-ts <args>` as a process. */
  run(args: readonly string[], env?: Record<string, string>): Process;
  close(): Promise<void>;
};

/** Each identity, by the ServiceAccount of deploy/ (in `namespace`) it is on the real server. */
export type Identities = Readonly<Record<string, string>>;

type Backend = {
  readonly url: string;
  readonly ca: string | undefined;
  readonly calls: Map<string, Call[]>;
  readonly refused: Map<string, string[]>;
  readonly errors: Map<string, string[]>;
  readonly tokens: ReadonlyMap<string, string>;
  /** A kubeconfig (text) with full rights. */
  readonly adminKubeconfig: string;
  objects(plural: string, group: string): Promise<Map<string, Obj>>;
  close(): Promise<void>;
};

async function embedded(identities: readonly string[]): Promise<Backend> {
  const admin = 'token-of-the-test';
  const tokens = new Map(identities.map((i) => [i, `token-of-${i}`]));
  const calls = new Map<string, Call[]>(identities.map((i) => [i, []]));
  const server = await startApiServer({
    crdDirectories: [crdDirectory, ipamClaimCrd],
    users: { [admin]: 'harness', ...Object.fromEntries(identities.map((i) => [`token-of-${i}`, i])) },
    authorize: (request) => {
      if (request.user !== undefined)
        calls.get(request.user)?.push({
          verb: request.verb,
          group: request.def.group,
          resource:
            request.subresource === undefined
              ? request.def.plural
              : `${request.def.plural}/${request.subresource}`,
          namespace: request.namespace,
          name: request.name,
        });
      return true; // record only: the test compares the calls with the manifests' RBAC afterwards
    },
  });
  return {
    url: server.url,
    ca: undefined,
    calls,
    refused: new Map(identities.map((i) => [i, []])),
    errors: new Map(identities.map((i) => [i, []])),
    tokens,
    adminKubeconfig: kubeconfigFor(server.url, { namespace, token: admin }),
    objects: (plural, group) =>
      Promise.resolve(
        new Map(
          [...server.objects(plural, group)]
            .filter(([key]) => key.startsWith('/') || key.startsWith(`${namespace}/`))
            .map(([key, o]) => [key.slice(key.indexOf('/') + 1), o]),
        ),
      ),
    close: () => server.close(),
  };
}

/** A token of `namespace/serviceAccount` from the TokenRequest API, as the kubelet gets one for a pod. */
export async function serviceAccountToken(
  plane: ControlPlane,
  serviceAccount: string,
  accountNamespace = namespace,
): Promise<string> {
  const answer = await plane.request(
    'POST',
    `/api/v1/namespaces/${accountNamespace}/serviceaccounts/${serviceAccount}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  const token = (answer.body as { status?: { token?: string } }).status?.token;
  if (answer.status !== 201 || token === undefined)
    throw new Error(
      `TokenRequest for ${accountNamespace}/${serviceAccount}: ${answer.status} ${JSON.stringify(answer.body)}`,
    );
  return token;
}

async function real(plane: ControlPlane, identities: Identities, dir: string): Promise<Backend> {
  // The scenarios' pods are in `default`, whose ServiceAccount `default` the ServiceAccount admission plugin
  // requires of every pod; no controller-manager runs here to make it.
  const account = await plane.request('POST', '/api/v1/namespaces/default/serviceaccounts', {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default' },
  });
  if (account.status !== 201 && account.status !== 409)
    throw new Error(`cannot create default/default: ${account.status} ${JSON.stringify(account.body)}`);
  const tokens = new Map<string, string>();
  for (const [identity, serviceAccount] of Object.entries(identities))
    tokens.set(identity, await serviceAccountToken(plane, serviceAccount));
  const recorder = await startRecorder({
    upstream: plane.url,
    upstreamCa: plane.ca,
    identities: new Map([...tokens].map(([identity, token]) => [token, identity])),
    dir,
  });
  return {
    url: recorder.url,
    ca: recorder.ca,
    calls: recorder.calls,
    refused: recorder.refused,
    errors: recorder.errors,
    tokens,
    adminKubeconfig: plane.kubeconfig({ namespace }),
    objects: async (plural, group) => {
      // Every kind read here is served at v1, but for Whereabouts' own CRDs.
      const version = group === 'whereabouts.cni.cncf.io' ? 'v1alpha1' : 'v1';
      const scope = ['nodes', 'namespaces'].includes(plural) ? '' : `/namespaces/${namespace}`;
      const path = `${group === '' ? '/api' : `/apis/${group}`}/${version}${scope}/${plural}`;
      const answer = await plane.request('GET', path);
      if (answer.status !== 200)
        throw new Error(`GET ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
      const { items } = answer.body as { items: Obj[] };
      return new Map(items.map((o) => [(o.metadata as { name: string }).name, o] as const));
    },
    close: () => recorder.close(),
  };
}

/**
 * Starts the embedded API server, or (with `plane`) a recorder in front of that real control plane, whose
 * ServiceAccounts of deploy/ must exist already (`kubectl apply -k deploy/core`).
 */
export async function startHarness(identities: Identities, plane?: ControlPlane): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-deploy-'));
  let backend: Backend;
  try {
    backend =
      plane === undefined ? await embedded(Object.keys(identities)) : await real(plane, identities, dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const kubeconfigs = new Map<string, string>();
  for (const [identity, token] of backend.tokens) {
    const path = join(dir, `${identity}.kubeconfig`);
    const text =
      backend.ca === undefined
        ? kubeconfigFor(backend.url, { namespace, token })
        : renderKubeconfig({ server: backend.url, ca: backend.ca, token, namespace });
    writeFileSync(path, text, { mode: 0o600 });
    kubeconfigs.set(identity, path);
  }
  const adminPath = join(dir, 'admin.kubeconfig');
  writeFileSync(adminPath, backend.adminKubeconfig, { mode: 0o600 });
  const admin = connect({ kubeconfig: adminPath });
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
    kind: plane === undefined ? 'embedded' : 'real',
    url: backend.url,
    ca: backend.ca,
    calls: backend.calls,
    refused: backend.refused,
    errors: backend.errors,
    kubeconfig: (identity) => kubeconfigs.get(identity) ?? '',
    token: (identity) => backend.tokens.get(identity) ?? '',
    admin: admin.value,
    objects: (plural, group = '') => backend.objects(plural, group),
    tempDir: (name) => {
      const path = join(dir, name);
      mkdirSync(path, { recursive: true });
      return path;
    },
    run,
    close: async () => {
      await Promise.all([...processes].map((p) => p.stop()));
      await backend.close();
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
