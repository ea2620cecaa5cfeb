// A real Kubernetes control plane on loopback, for the tests and benchmarks: etcd, then kube-apiserver
// configured the way clusters run it — TLS with a serving certificate from a CA made here (the kubeconfigs
// carry that CA, so the clients' TLS code runs), service-account signing keys, RBAC authorization, a static
// admin token — with a short --min-request-timeout so that the server ends watches during a test. The CRDs
// of crds/ are applied with kubectl, as an operator would. No controller-manager, scheduler or kubelet run:
// tests create what those would (namespaces' default ServiceAccount, pod status, deletions of Terminating pods).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderKubeconfig } from '../src/kube-api/kubeconfig.ts';
import { findBinaries, type Binaries } from './binaries.ts';

export const crdDirectory = join(import.meta.dirname, '..', 'crds');
/** CRDs a cluster with Multus has besides ours. */
const fixtureDirectory = join(import.meta.dirname, 'fixtures');

export type ControlPlaneOptions = {
  /** kube-apiserver's --min-request-timeout: a watch ends after between this and twice this. */
  readonly minRequestTimeoutSeconds?: number;
};

export type Answer = { readonly status: number; readonly body: unknown };

export type ControlPlane = {
  readonly url: string;
  /** The CA that signed the serving certificate, PEM. */
  readonly ca: string;
  readonly binaries: Binaries;
  /** A kubeconfig file of the cluster admin (group system:masters), context namespace kube-system. */
  readonly adminKubeconfig: string;
  /** A kubeconfig (text) for this server with the given token (the admin's by default). */
  kubeconfig(options?: { readonly token?: string; readonly namespace?: string }): string;
  /** One request as the admin. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<Answer>;
  /** Runs the kubectl that was built with the server, as the admin unless `kubeconfig` says otherwise. */
  kubectl(
    args: readonly string[],
    options?: { readonly kubeconfig?: string; readonly input?: string },
  ): Promise<{
    code: number;
    stdout: string;
    stderr: string;
  }>;
  /** A new namespace with its `default` ServiceAccount (no controller-manager makes it here). */
  namespace(prefix: string): Promise<string>;
  /** Compacts etcd to its current revision, as kube-apiserver does every 5 minutes, and restarts
   *  kube-apiserver so that its watch cache forgets too: older continue tokens and resourceVersions answer
   *  410 Expired from then on. */
  compact(): Promise<void>;
  /** Stops kube-apiserver and starts it again on the same port and etcd: every watch and connection ends. */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
};

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });

function run(command: string, args: readonly string[], input?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(command, args, { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
        stdout,
        stderr,
      });
    });
    child.stdin?.end(input);
  });
}

async function openssl(...args: string[]): Promise<void> {
  const result = await run('openssl', args);
  if (result.code !== 0) throw new Error(`openssl ${args[0] ?? ''} failed: ${result.stderr.trim()}`);
}

/** A CA, a serving certificate for loopback signed by it, and a service-account signing key. */
async function makeKeys(dir: string): Promise<void> {
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=whereabouts-ts test CA',
  );
  await openssl(
    'req',
    ...ec,
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
    '-subj',
    '/CN=kube-apiserver',
  );
  writeFileSync(
    p('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.crt'),
    '-days',
    '2',
    '-extfile',
    p('server.ext'),
  );
  await openssl(
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-out',
    p('sa.key'),
  );
  await openssl('pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub'));
}

/** Resolves when `child` exits; rejects never. */
const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) =>
        child.once('exit', () => {
          resolve();
        }),
      );

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited(child);
  clearTimeout(timer);
}

/** Polls `ready` until it says yes, the process exits (the log's tail in the error) or the time is up. */
async function waitFor(
  what: string,
  child: ChildProcess,
  log: string,
  ready: () => Promise<boolean>,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      const tail = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(
        `${what} did not become ready (${child.exitCode ?? child.signalCode ?? 'timeout'}):\n${tail}`,
      );
    }
    if (await ready().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** A descriptor appending to `path` for a child's output; the child keeps its own copy. */
function logFile(path: string): number {
  const fd = openSync(path, 'a');
  setImmediate(() => {
    closeSync(fd);
  });
  return fd;
}

const running = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHook) {
    exitHook = true;
    // A test process that dies must not leave an API server and etcd behind: on exit, and when it is
    // stopped (Jest stops its workers with a signal when a run is forced to end).
    const killAll = () => {
      for (const c of running) c.kill('SIGKILL');
    };
    process.once('exit', killAll);
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      process.once(signal, () => {
        killAll();
        process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
      });
  }
  return child;
}

/**
 * Starts etcd and kube-apiserver on free ports. A port is free when chosen and taken only when the child
 * binds it, so on a busy machine another process may take it in between ("bind: address already in use"):
 * that start is cleaned up and the whole control plane started again on new ports, up to three times.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(options);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof Error) || !e.message.includes('address already in use')) throw e;
    }
  }
}

async function startOnFreePorts(options: ControlPlaneOptions): Promise<ControlPlane> {
  const found = findBinaries();
  if (!found.ok) throw new Error(found.why);
  const { binaries } = found;
  // etcd's data on tmpfs where there is one: the tests measure the API server, not the disk.
  const dir = mkdtempSync(join(tmpdir(), 'wb-kube-'));
  const dataDir = mkdtempSync(join(process.platform === 'linux' ? '/dev/shm' : tmpdir(), 'wb-etcd-'));
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    for (const child of children.reverse()) await terminate(child);
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await makeKeys(dir);
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`, {
      mode: 0o600,
    });
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const url = `https://127.0.0.1:${apiPort}`;

    const etcdLog = join(dir, 'etcd.log');
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = track(
      spawn(
        binaries.etcd,
        [
          '--name=test',
          `--data-dir=${dataDir}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=test=${peerUrl}`,
          '--unsafe-no-fsync',
          '--log-level=warn',
        ],
        { stdio: ['ignore', logFile(etcdLog), logFile(etcdLog)] },
      ),
    );
    children.push(etcd);
    await waitFor('etcd', etcd, etcdLog, async () => {
      const response = await fetch(`${etcdUrl}/health`);
      return response.ok && ((await response.json()) as { health?: string }).health === 'true';
    });

    const apiLog = join(dir, 'kube-apiserver.log');
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(dir, 'server.crt')}`,
      `--tls-private-key-file=${join(dir, 'server.key')}`,
      `--client-ca-file=${join(dir, 'ca.crt')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--min-request-timeout=${options.minRequestTimeoutSeconds ?? 30}`,
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--profiling=false',
    ];
    const call = (method: string, path: string, body?: unknown, contentType = 'application/json') =>
      new Promise<Answer>((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = request(
          `${url}${path}`,
          {
            method,
            ca,
            headers: {
              Authorization: `Bearer ${adminToken}`,
              Accept: 'application/json',
              ...(payload === undefined ? {} : { 'Content-Type': contentType }),
            },
            timeout: 30_000,
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: unknown = text;
              try {
                parsed = JSON.parse(text);
              } catch {
                // a plain-text answer such as /readyz's "ok"
              }
              resolve({ status: response.statusCode ?? 0, body: parsed });
            });
            response.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
        req.on('error', reject);
        req.end(payload);
      });

    let apiServer: ChildProcess | undefined;
    const startApiServer = async () => {
      const child = track(
        spawn(binaries.kubeApiserver, apiArgs, {
          stdio: ['ignore', logFile(apiLog), logFile(apiLog)],
        }),
      );
      children.push(child);
      apiServer = child;
      await waitFor(
        'kube-apiserver',
        child,
        apiLog,
        async () => (await call('GET', '/readyz')).status === 200,
      );
    };
    await startApiServer();

    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    const kubeconfig = (o: { token?: string; namespace?: string } = {}) =>
      renderKubeconfig({
        server: url,
        ca,
        token: o.token ?? adminToken,
        namespace: o.namespace ?? 'kube-system',
      });
    writeFileSync(adminKubeconfig, kubeconfig(), { mode: 0o600 });
    const kubectl: ControlPlane['kubectl'] = (args, o = {}) =>
      run(binaries.kubectl, ['--kubeconfig', o.kubeconfig ?? adminKubeconfig, ...args], o.input);

    // The CRDs, as an operator applies them; then wait until each is served (a CRD's watch cache answers
    // 429 "storage is (re)initializing" for a moment after it is established).
    for (const source of [
      ['-k', crdDirectory],
      ['-f', fixtureDirectory],
    ]) {
      const applied = await kubectl(['apply', '--server-side', ...source]);
      if (applied.code !== 0)
        throw new Error(`kubectl apply ${source.join(' ')} failed: ${applied.stderr.trim()}`);
    }
    // Every CRD's collection answers (not 404 while it is not established yet, not 429 "storage is
    // (re)initializing"). Not `kubectl wait --for=condition=Established`: on a CRD whose status has no
    // conditions yet it fails at once (".status.conditions accessor error") instead of waiting.
    const crdsServed = async () => {
      const crds = (await call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions')).body as {
        items: { spec: { group: string; versions: { name: string }[]; names: { plural: string } } }[];
      };
      for (const crd of crds.items) {
        const path = `/apis/${crd.spec.group}/${crd.spec.versions[0]?.name ?? ''}/${crd.spec.names.plural}`;
        await waitFor(
          `the CRD ${crd.spec.names.plural}`,
          apiServer ?? etcd,
          apiLog,
          async () => (await call('GET', path)).status === 200,
        );
      }
    };
    await crdsServed();

    return {
      url,
      ca,
      binaries,
      adminKubeconfig,
      kubeconfig,
      request: call,
      kubectl,
      namespace: async (prefix) => {
        const created = await call('POST', '/api/v1/namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { generateName: `${prefix}-` },
        });
        const name = (created.body as { metadata?: { name?: string } }).metadata?.name;
        if (created.status !== 201 || name === undefined)
          throw new Error(`cannot create a namespace: ${created.status} ${JSON.stringify(created.body)}`);
        const account = await call('POST', `/api/v1/namespaces/${name}/serviceaccounts`, {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'default' },
        });
        if (account.status !== 201) throw new Error(`cannot create ${name}/default: ${account.status}`);
        return name;
      },
      compact: async () => {
        const post = async (path: string, body: unknown) => {
          const response = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
          if (!response.ok) throw new Error(`etcd ${path}: ${response.status} ${await response.text()}`);
          return (await response.json()) as { header?: { revision?: string } };
        };
        // A range read of one key says the current revision in its header.
        const { header } = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
        await post('/v3/kv/compaction', { revision: header?.revision, physical: true });
        // kube-apiserver's watch cache still serves what etcd forgot, until it starts over.
        if (apiServer !== undefined) await terminate(apiServer);
        await startApiServer();
        await crdsServed();
      },
      restartApiServer: async () => {
        if (apiServer !== undefined) await terminate(apiServer);
        await startApiServer();
      },
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
