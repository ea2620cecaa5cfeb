// Why this file: the operator commands (`whereabouts-ts pools`, `ip`, `pod`, `gc`, also as `kubectl
// whereabouts`) run on an operator's machine next to kubectl, so they find credentials exactly as kubectl
// does — `--kubeconfig`, else every file of `$KUBECONFIG` merged, else `~/.kube/config`, else the pod's
// service account — and take `--context` and `-n`. The plugin keeps its own, narrower rules (the NAD's
// `kubernetes.kubeconfig`, the flat file): see kubeconfig.ts, which this file does not change.

import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { dump, load } from 'js-yaml';
import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';
import type { KubeApi } from './api.ts';
import { httpApi } from './http-api.ts';
import { connect } from './kube.ts';
import { credentialsFromText, loadCredentials, needsPlugin, readKubeconfig } from './kubeconfig.ts';

export type KubectlFlags = {
  /** `--kubeconfig`: this file alone, which must exist. */
  readonly kubeconfig?: string | undefined;
  /** `--context`: instead of the current context. */
  readonly context?: string | undefined;
  /** `-n`/`--namespace`: instead of the context's namespace. */
  readonly namespace?: string | undefined;
};

export type Env = Readonly<Record<string, string | undefined>>;

/** Where the credentials come from: a kubeconfig (one file or several merged), or the in-cluster account. */
export type Resolved =
  | { readonly kind: 'kubeconfig'; readonly text: string; readonly source: string }
  | { readonly kind: 'in-cluster' };

type Named = { name?: unknown } & Record<string, unknown>;
type KubeconfigFile = {
  clusters?: unknown;
  users?: unknown;
  contexts?: unknown;
  'current-context'?: unknown;
};

/** What the error says when no credentials are found: every place looked at, as kubectl would. */
export const nowhere =
  'no kubeconfig: pass --kubeconfig <file>, set $KUBECONFIG (files separated by ":"), create ~/.kube/config, or run in a pod (in-cluster service account)';

const invalid = (details: string) => fail(ipamError(CniCode.InvalidConfig, details));

const namedList = (value: unknown): Named[] =>
  Array.isArray(value)
    ? value.filter(
        (v: unknown): v is Named =>
          typeof v === 'object' && v !== null && 'name' in v && typeof v.name === 'string',
      )
    : [];

/** File names a kubeconfig holds, relative to its own directory; kubectl resolves them so before merging. */
function absolutePaths(entry: Named, key: 'cluster' | 'user', dir: string): Named {
  const body = entry[key];
  if (typeof body !== 'object' || body === null) return entry;
  const fields = { ...(body as Record<string, unknown>) };
  const names =
    key === 'cluster' ? ['certificate-authority'] : ['client-certificate', 'client-key', 'tokenFile'];
  for (const name of names) {
    const value = fields[name];
    if (typeof value === 'string' && value !== '' && !isAbsolute(value)) fields[name] = join(dir, value);
  }
  // An exec plugin named by a relative path with a slash is relative to the kubeconfig, as in kubectl.
  const exec = fields.exec;
  if (key === 'user' && typeof exec === 'object' && exec !== null) {
    const command = (exec as Record<string, unknown>).command;
    if (typeof command === 'string' && command.includes('/') && !isAbsolute(command))
      fields.exec = { ...exec, command: join(dir, command) };
  }
  return { ...entry, [key]: fields };
}

type Loaded = { readonly path: string; readonly content: KubeconfigFile };

/** One file, read as an untrusted file; `optional`: a missing file is no error (a $KUBECONFIG entry). */
function loadFile(path: string, optional: boolean): Result<Loaded | undefined> {
  const text = readKubeconfig(path);
  if (!text.ok) {
    if (optional && text.error.details.endsWith(': ENOENT')) return ok(undefined);
    return text;
  }
  let content: unknown;
  try {
    content = load(text.value);
  } catch {
    // Never the parser's message: it quotes the file, and the file holds credentials.
    return invalid(`cannot load the kubeconfig ${path}: not a valid kubeconfig file`);
  }
  if (content === undefined || content === null) return ok({ path, content: {} });
  if (typeof content !== 'object' || Array.isArray(content))
    return invalid(`the kubeconfig ${path} is not a kubeconfig file`);
  return ok({ path, content });
}

/**
 * Merges kubeconfig files as kubectl merges $KUBECONFIG: the first file to define a cluster, user or
 * context of a given name wins, and so does the first file to set current-context.
 */
export function mergeKubeconfigs(files: readonly Loaded[]): {
  clusters: Named[];
  users: Named[];
  contexts: Named[];
  'current-context'?: string;
} {
  const clusters = new Map<string, Named>();
  const users = new Map<string, Named>();
  const contexts = new Map<string, Named>();
  let current: string | undefined;
  for (const { path, content } of files) {
    const dir = dirname(resolve(path));
    for (const c of namedList(content.clusters))
      if (!clusters.has(c.name as string)) clusters.set(c.name as string, absolutePaths(c, 'cluster', dir));
    for (const u of namedList(content.users))
      if (!users.has(u.name as string)) users.set(u.name as string, absolutePaths(u, 'user', dir));
    for (const c of namedList(content.contexts))
      if (!contexts.has(c.name as string)) contexts.set(c.name as string, c);
    const setHere = content['current-context'];
    if (current === undefined && typeof setHere === 'string' && setHere !== '') current = setHere;
  }
  return {
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    ...(current === undefined ? {} : { 'current-context': current }),
  };
}

/** The files kubectl would read, in order: `--kubeconfig` alone, else $KUBECONFIG's list, else ~/.kube/config. */
function candidates(
  flags: KubectlFlags,
  env: Env,
  home: string | undefined,
): { files: string[]; explicit: boolean; home: boolean } {
  if (flags.kubeconfig !== undefined && flags.kubeconfig !== '')
    return { files: [flags.kubeconfig], explicit: true, home: false };
  const list = env.KUBECONFIG;
  if (list !== undefined && list !== '') {
    const files = [...new Set(list.split(delimiter).filter((f) => f !== ''))];
    return { files, explicit: false, home: false };
  }
  const files = home === undefined || home === '' ? [] : [join(home, '.kube', 'config')];
  return { files, explicit: false, home: true };
}

/** Where the operator commands' credentials come from, resolved as kubectl resolves them. */
export function resolveKubectlConfig(
  flags: KubectlFlags,
  env: Env,
  home: string | undefined,
): Result<Resolved> {
  const { files, explicit, home: fromHome } = candidates(flags, env, home);
  const inPod = env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '';
  const loaded: Loaded[] = [];
  for (const file of files) {
    const one = loadFile(file, !explicit);
    // In a pod (the GC's CronJob) a home directory it may not read is no reason to miss the service account.
    if (!one.ok && fromHome && inPod) continue;
    if (!one.ok) return one;
    if (one.value !== undefined) loaded.push(one.value);
  }
  if (loaded.length === 0) {
    if (inPod) {
      if (flags.context !== undefined)
        return invalid(`--context ${flags.context}: there is no kubeconfig (in-cluster service account)`);
      return ok({ kind: 'in-cluster' });
    }
    return invalid(files.length === 0 ? nowhere : `${nowhere} (none of ${files.join(', ')} exists)`);
  }
  const source = loaded.map((l) => l.path).join(delimiter);
  const merged = mergeKubeconfigs(loaded);
  const context = flags.context ?? merged['current-context'];
  if (context === undefined || context === '')
    return invalid(`the kubeconfig ${source} has no current context: pass --context <name>`);
  if (!merged.contexts.some((c) => c.name === context)) {
    const known = merged.contexts.map((c) => String(c.name));
    return invalid(
      `the kubeconfig ${source} has no context "${context}"` +
        (known.length === 0 ? '' : ` (it has ${known.map((k) => `"${k}"`).join(', ')})`),
    );
  }
  return ok({
    kind: 'kubeconfig',
    source,
    text: dump({ apiVersion: 'v1', kind: 'Config', ...merged, 'current-context': context }),
  });
}

/**
 * The KubeApi of an operator command: the lean HTTP client where the kubeconfig allows it, client-node for
 * exec and auth-provider plugins (as openKubeApi), from credentials found as kubectl finds them.
 */
export function openOperatorApi(
  flags: KubectlFlags,
  env: Env,
  home: string | undefined,
  requestTimeoutMs = 30_000,
): Result<KubeApi> {
  const resolved = resolveKubectlConfig(flags, env, home);
  if (!resolved.ok) return resolved;
  const namespace = flags.namespace !== undefined && flags.namespace !== '' ? flags.namespace : undefined;
  if (resolved.value.kind === 'in-cluster') {
    const credentials = loadCredentials(undefined, { ...env, KUBECONFIG: undefined });
    if (!credentials.ok) return credentials;
    return ok(
      httpApi({ ...credentials.value, ...(namespace === undefined ? {} : { namespace }) }, requestTimeoutMs),
    );
  }
  const { text, source } = resolved.value;
  const credentials = credentialsFromText(text, source);
  if (credentials.ok)
    return ok(
      httpApi({ ...credentials.value, ...(namespace === undefined ? {} : { namespace }) }, requestTimeoutMs),
    );
  if (credentials.error.details.includes(needsPlugin))
    return connect({ resolved: { text, source }, requestTimeoutMs, namespace });
  return credentials;
}
