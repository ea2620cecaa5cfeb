// A minimal kubeconfig reader for the plugin: what installers write (a server, a CA, a bearer token or a
// client certificate, a namespace) and the in-cluster service account. The long-running components use
// client-node's KubeConfig instead, which also knows exec plugins, OIDC and the rest.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { dump, load } from 'js-yaml';
import { describeProblem, readUntrustedFile, type FileProblem } from '../config/untrusted-file.ts';
import { CniCode, errnoOf, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { defaultNamespace } from './api.ts';

export type Credentials = {
  readonly server: string;
  readonly namespace: string;
  readonly token?: string;
  /** Where `token` was read: a long-running client reads it again, as the kubelet rotates it. */
  readonly tokenFile?: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecure: boolean;
  readonly tlsServerName?: string;
};

type Named<T> = { name?: string } & T;
type KubeconfigFile = {
  clusters?: Named<{ cluster?: Record<string, unknown> }>[];
  users?: Named<{ user?: Record<string, unknown> }>[];
  contexts?: Named<{ context?: { cluster?: string; user?: string; namespace?: string } }>[];
  'current-context'?: string;
};

const serviceAccount = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Part of the error for a kubeconfig that needs an exec or auth-provider plugin, which only client-node runs. */
export const needsPlugin = 'uses an exec or auth-provider plugin';

const invalid = (source: string, what: string) =>
  fail(ipamError(CniCode.InvalidConfig, `the kubeconfig ${source} ${what}`));

/** `scheme://user:password@` — userinfo, which Kubernetes never uses and messages must never show. */
const userinfo = /\b([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#\s]*@/g;

/** A server URL (or any text holding URLs) as messages show it: `https://***@host:6443` for userinfo. */
export const redactServer = (text: string): string => text.replace(userinfo, '$1***@');

/** The server URL requests go to: userinfo dropped, as Kubernetes (no basic auth since 1.19) ignores it. */
export const withoutUserinfo = (server: string): string => server.replace(userinfo, '$1');

/** The error for a kubeconfig file that cannot be used: 5 when reading failed, 7 for what it is. */
export function kubeconfigFileError(path: string, problem: FileProblem): IpamError {
  return problem.kind === 'missing' || problem.kind === 'failed'
    ? ipamError(
        CniCode.IoFailure,
        `cannot load the kubeconfig ${path}: ${problem.kind === 'missing' ? 'ENOENT' : problem.errno}`,
      )
    : ipamError(CniCode.InvalidConfig, `the kubeconfig ${path} ${describeProblem(problem)}`);
}

/**
 * The text of a kubeconfig file. A NAD names it (`kubernetes.kubeconfig`): read as an untrusted file — a
 * regular file of at most 1 MiB, never a FIFO or a device — by the plugin's reader and client-node's alike.
 */
export function readKubeconfig(path: string): Result<string> {
  const read = readUntrustedFile(path);
  return read.ok ? ok(read.value.toString('utf8')) : fail(kubeconfigFileError(path, read.error));
}

/** Reads a file named in the kubeconfig (relative to its directory), or decodes the inline base64 data. */
function material(source: string, file: unknown, data: unknown): Result<Buffer | undefined> {
  if (typeof data === 'string' && data !== '') return ok(Buffer.from(data, 'base64'));
  if (typeof file !== 'string' || file === '') return ok(undefined);
  const path = isAbsolute(file) ? file : join(dirname(source), file);
  const read = readUntrustedFile(path);
  if (read.ok) return read;
  const problem = read.error;
  return fail(
    problem.kind === 'missing' || problem.kind === 'failed'
      ? ipamError(
          CniCode.IoFailure,
          `cannot read a file named by the kubeconfig ${source}: ${problem.kind === 'missing' ? 'ENOENT' : problem.errno}`,
        )
      : ipamError(
          CniCode.InvalidConfig,
          `the file ${path} named by the kubeconfig ${source} ${describeProblem(problem)}`,
        ),
  );
}

/** Whether a server URL is one the client can use: http or https. */
const isHttpUrl = (server: string): boolean => {
  if (!URL.canParse(server)) return false;
  const { protocol } = new URL(server);
  return protocol === 'http:' || protocol === 'https:';
};

function fromFile(path: string): Result<Credentials> {
  const text = readKubeconfig(path);
  if (!text.ok) return text;
  return credentialsFromText(text.value, path);
}

/**
 * A kubeconfig's content. One in JSON — the one the agent installs for the plugin (renderKubeconfig's
 * `json`) — is read by JSON.parse: the YAML parser costs a fresh plugin process about 10 ms on it. Anything
 * else is YAML (of which JSON is a part, so the two readings agree).
 */
function parseKubeconfig(text: string): unknown {
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // a YAML flow mapping, not JSON: the YAML parser decides
    }
  }
  return load(text);
}

/**
 * The credentials of a kubeconfig's text: `path` names it in messages, and relative file names in it are
 * relative to its directory (the operator commands pass a merged kubeconfig whose file names are absolute).
 */
export function credentialsFromText(text: string, path: string): Result<Credentials> {
  let parsed: KubeconfigFile | null;
  try {
    parsed = parseKubeconfig(text) as KubeconfigFile | null;
  } catch {
    // Never the parser's message: it quotes the file, and the file holds credentials.
    return fail(
      ipamError(CniCode.InvalidConfig, `cannot load the kubeconfig ${path}: not a valid kubeconfig file`),
    );
  }
  if (typeof parsed !== 'object' || parsed === null) return invalid(path, 'is not a kubeconfig file');
  const context = parsed.contexts?.find((c) => c.name === parsed['current-context'])?.context;
  if (context === undefined) return invalid(path, 'has no current context');
  const cluster = parsed.clusters?.find((c) => c.name === context.cluster)?.cluster;
  const server = cluster?.server;
  if (cluster === undefined || typeof server !== 'string')
    return invalid(path, 'has no server for its current context');
  if (!isHttpUrl(server))
    return invalid(path, `has a server that is not an http:// or https:// URL: ${redactServer(server)}`);
  const user = parsed.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    return invalid(
      path,
      'uses an exec or auth-provider plugin, which the CNI plugin does not run; give it a token or a client certificate',
    );
  }
  const tokenFile =
    typeof user.token === 'string' ? ok(undefined) : material(path, user.tokenFile, undefined);
  if (!tokenFile.ok) return tokenFile;
  const token = typeof user.token === 'string' ? user.token : tokenFile.value?.toString('utf8').trim();
  const tokenPath =
    typeof user.token !== 'string' && typeof user.tokenFile === 'string' && user.tokenFile !== ''
      ? isAbsolute(user.tokenFile)
        ? user.tokenFile
        : join(dirname(path), user.tokenFile)
      : undefined;
  const ca = material(path, cluster['certificate-authority'], cluster['certificate-authority-data']);
  if (!ca.ok) return ca;
  const cert = material(path, user['client-certificate'], user['client-certificate-data']);
  if (!cert.ok) return cert;
  const key = material(path, user['client-key'], user['client-key-data']);
  if (!key.ok) return key;
  return ok({
    server,
    namespace:
      context.namespace === undefined || context.namespace === '' ? defaultNamespace : context.namespace,
    insecure: cluster['insecure-skip-tls-verify'] === true,
    ...(token === undefined ? {} : { token }),
    ...(tokenPath === undefined ? {} : { tokenFile: tokenPath }),
    ...(ca.value === undefined ? {} : { ca: ca.value }),
    ...(cert.value === undefined ? {} : { cert: cert.value }),
    ...(key.value === undefined ? {} : { key: key.value }),
    ...(typeof cluster['tls-server-name'] === 'string' ? { tlsServerName: cluster['tls-server-name'] } : {}),
  });
}

function inCluster(env: Readonly<Record<string, string | undefined>>): Result<Credentials> {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  try {
    const token = readFileSync(join(serviceAccount, 'token'), 'utf8').trim();
    const ca = readFileSync(join(serviceAccount, 'ca.crt'));
    let namespace = defaultNamespace;
    try {
      namespace = readFileSync(join(serviceAccount, 'namespace'), 'utf8').trim() || defaultNamespace;
    } catch {
      // no namespace file: the default
    }
    return ok({
      server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
      namespace,
      token,
      tokenFile: join(serviceAccount, 'token'),
      ca,
      insecure: false,
    });
  } catch (e) {
    return fail(
      ipamError(
        CniCode.IoFailure,
        `cannot read the service account in ${serviceAccount}: ${errnoOf(e) ?? 'unreadable'}`,
      ),
    );
  }
}

/** The kubeconfig named by the config, else $KUBECONFIG, else the pod's service account. */
export function loadCredentials(
  path: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Result<Credentials> {
  const source = path ?? env.KUBECONFIG;
  if (source !== undefined && source !== '') return fromFile(source.split(':')[0] ?? source);
  if (env.KUBERNETES_SERVICE_HOST !== undefined) return inCluster(env);
  return fail(
    ipamError(
      CniCode.InvalidConfig,
      'no kubeconfig: set ipam.kubernetes.kubeconfig (the installer writes it into the flat file), $KUBECONFIG, or run in a pod',
    ),
  );
}

/** What a kubeconfig written by this project says: one cluster, one user, one context. */
export type KubeconfigSpec = {
  readonly server: string;
  readonly namespace?: string;
  readonly token?: string;
  /** The CA of the server's certificate, PEM. */
  readonly ca?: string | Buffer;
  /** No certificate check: for a plain-HTTP server such as the embedded one (client-node needs it for http:). */
  readonly insecure?: boolean;
};

/**
 * The kubeconfig text for `spec` — the one writer of kubeconfigs (agent install, embedded server, tests).
 * `json` for the one the agent installs for the plugin: JSON is YAML, so every kubeconfig reader (client-go,
 * kubectl, Whereabouts) reads it, and the plugin reads it without its YAML parser (parseKubeconfig).
 */
export function renderKubeconfig(spec: KubeconfigSpec, format: 'yaml' | 'json' = 'yaml'): string {
  const render = (value: unknown): string =>
    format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : dump(value);
  return render({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'cluster',
        cluster: {
          server: spec.server,
          ...(spec.ca === undefined
            ? {}
            : { 'certificate-authority-data': Buffer.from(spec.ca).toString('base64') }),
          ...(spec.insecure === true ? { 'insecure-skip-tls-verify': true } : {}),
        },
      },
    ],
    users: [{ name: 'whereabouts', user: spec.token === undefined ? {} : { token: spec.token } }],
    contexts: [
      {
        name: 'whereabouts',
        context: {
          cluster: 'cluster',
          user: 'whereabouts',
          ...(spec.namespace === undefined ? {} : { namespace: spec.namespace }),
        },
      },
    ],
    'current-context': 'whereabouts',
  });
}
