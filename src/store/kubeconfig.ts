// A minimal kubeconfig reader for the plugin: what installers write (a server, a CA, a bearer token or a
// client certificate, a namespace) and the in-cluster service account. The long-running components use
// client-node's KubeConfig instead, which also knows exec plugins, OIDC and the rest.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { dump, load } from 'js-yaml';
import { CniCode, errnoOf, fail, ipamError, ok, type Result } from '../errors.ts';
import { defaultNamespace } from './api.ts';

export type Credentials = {
  readonly server: string;
  readonly namespace: string;
  readonly token?: string;
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

/** Reads a file named in the kubeconfig (relative to its directory), or decodes the inline base64 data. */
function material(base: string, file: unknown, data: unknown): Buffer | undefined {
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  if (typeof file === 'string' && file !== '')
    return readFileSync(isAbsolute(file) ? file : join(base, file));
  return undefined;
}

function fromFile(path: string): Result<Credentials> {
  let parsed: KubeconfigFile | null;
  try {
    parsed = load(readFileSync(path, 'utf8')) as KubeconfigFile | null;
  } catch (e) {
    // Never the parser's message: it quotes the file, and the file holds credentials.
    const errno = errnoOf(e);
    return fail(
      ipamError(
        errno === undefined ? CniCode.InvalidConfig : CniCode.IoFailure,
        `cannot load the kubeconfig ${path}: ${errno ?? 'not a valid kubeconfig file'}`,
      ),
    );
  }
  if (typeof parsed !== 'object' || parsed === null) return invalid(path, 'is not a kubeconfig file');
  const context = parsed.contexts?.find((c) => c.name === parsed['current-context'])?.context;
  if (context === undefined) return invalid(path, 'has no current context');
  const cluster = parsed.clusters?.find((c) => c.name === context.cluster)?.cluster;
  const server = cluster?.server;
  if (cluster === undefined || typeof server !== 'string')
    return invalid(path, 'has no server for its current context');
  const user = parsed.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    return invalid(
      path,
      'uses an exec or auth-provider plugin, which the CNI plugin does not run; give it a token or a client certificate',
    );
  }
  const base = dirname(path);
  try {
    const tokenFromFile =
      typeof user.tokenFile === 'string' ? readFileSync(user.tokenFile, 'utf8').trim() : undefined;
    const token = typeof user.token === 'string' ? user.token : tokenFromFile;
    const ca = material(base, cluster['certificate-authority'], cluster['certificate-authority-data']);
    const cert = material(base, user['client-certificate'], user['client-certificate-data']);
    const key = material(base, user['client-key'], user['client-key-data']);
    return ok({
      server,
      namespace:
        context.namespace === undefined || context.namespace === '' ? defaultNamespace : context.namespace,
      insecure: cluster['insecure-skip-tls-verify'] === true,
      ...(token === undefined ? {} : { token }),
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(typeof cluster['tls-server-name'] === 'string'
        ? { tlsServerName: cluster['tls-server-name'] }
        : {}),
    });
  } catch (e) {
    return fail(
      ipamError(
        CniCode.IoFailure,
        `cannot read a file named by the kubeconfig ${path}: ${errnoOf(e) ?? 'unreadable'}`,
      ),
    );
  }
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

/** The kubeconfig text for `spec` — the one writer of kubeconfigs (agent install, embedded server, tests). */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  return dump({
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
