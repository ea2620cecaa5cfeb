// The agent's host install: the plugin executables into the CNI bin dir — the forwarder as `whereabouts` and
// the TypeScript plugin beside it as `whereabouts-ts-plugin`, the one the forwarder execs when no agent
// answers (forwarder/main.go) — and into
// `<cni conf dir>/whereabouts.d/` the kubeconfig the plugin uses (service-account token, CA, API address),
// the flat file that points the plugin at it and at the agent's socket, and the node name — the same files,
// names and modes as Whereabouts' installer, so a NAD written for Whereabouts works unchanged.
//
// Every file is written to a temporary name in its directory and renamed over the old one, so a runtime
// exec'ing the plugin or reading the kubeconfig never sees half a file. Files whose content is already right
// are not rewritten. Nothing is ever removed except temporary files of our own that a crash left behind.

import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { renderKubeconfig } from '../kube-api/kubeconfig.ts';
import { errnoOf, fail, ok, type Result } from '../errors.ts';
import type { Logger } from '../log.ts';

/** Our temporary files end in this; the only files the installer ever deletes. */
const temporarySuffix = '.whereabouts-ts.tmp';

export type HostPaths = {
  /** The host's CNI bin dir as mounted in the agent's container (`/host/opt/cni/bin`). */
  readonly cniBinDir?: string | undefined;
  /** The host's CNI conf dir as mounted (`/host/etc/cni/net.d`). */
  readonly cniConfDir?: string | undefined;
  /** The mount prefix to strip from paths written into host files (`/host`). */
  readonly hostPrefix: string;
};

export type InstallOptions = HostPaths & {
  /** The executable installed as `whereabouts`: the forwarder (or the TypeScript plugin itself). */
  readonly plugin: string;
  /**
   * The TypeScript plugin, installed as `whereabouts-ts-plugin` beside it; by default the file of that name
   * beside `plugin`, when there is one.
   */
  readonly standalonePlugin?: string | undefined;
  readonly nodeName: string;
  /** The agent's socket, a path that is the same on the host and in the container. */
  readonly socketPath: string;
  /** Where the service account's token, CA and namespace are (projected volume). */
  readonly serviceAccountDir: string;
  /** KUBERNETES_SERVICE_HOST/PORT (and _PROTOCOL, default https), WHEREABOUTS_NAMESPACE. */
  readonly env: Readonly<Record<string, string | undefined>>;
};

export type InstallError = { readonly file: string; readonly reason: string };

export type Written = 'written' | 'unchanged';

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function readOrUndefined(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Writes `content` to `path` by a temporary file and a rename, unless the file already holds it. */
export function writeAtomically(path: string, content: Buffer | string, mode: number): Written {
  const current = readOrUndefined(path);
  if (current !== undefined && sha256(current) === sha256(content)) {
    chmodSync(path, mode);
    return 'unchanged';
  }
  const temporary = join(dirname(path), `.${basename(path)}${temporarySuffix}`);
  const fd = openSync(temporary, 'w', mode);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temporary, mode); // the umask may have narrowed it
  renameSync(temporary, path);
  return 'written';
}

/** Removes our own temporary files in `dir` (left by a crash between write and rename); nothing else. */
function clearTemporaries(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (name.endsWith(temporarySuffix)) rmSync(join(dir, name), { force: true });
}

/** A path inside the container's host mount, as the host sees it. */
export function onHost(path: string, hostPrefix: string): string {
  if (hostPrefix === '' || hostPrefix === '/') return path;
  const prefix = hostPrefix.endsWith('/') ? hostPrefix.slice(0, -1) : hostPrefix;
  return path === prefix ? '/' : path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;
}

export const confSubdir = 'whereabouts.d';

/** The TypeScript plugin's name beside the forwarder (forwarder/main.go's standaloneName). */
export const standaloneName = 'whereabouts-ts-plugin';

/** The three files under the conf dir, as the container sees them. */
export const hostFiles = (cniConfDir: string) => {
  const dir = join(cniConfDir, confSubdir);
  return {
    dir,
    kubeconfig: join(dir, 'whereabouts.kubeconfig'),
    flatFile: join(dir, 'whereabouts.conf'),
    nodeName: join(dir, 'nodename'),
  };
};

type ServiceAccount = { token: string; ca: Buffer | undefined; namespace: string | undefined };

function readServiceAccount(dir: string): Result<ServiceAccount, InstallError> {
  const token = readOrUndefined(join(dir, 'token'));
  if (token === undefined)
    return fail({ file: join(dir, 'token'), reason: 'no service-account token (is the volume mounted?)' });
  return ok({
    token: token.toString('utf8').trim(),
    ca: readOrUndefined(join(dir, 'ca.crt')),
    namespace: readOrUndefined(join(dir, 'namespace'))?.toString('utf8').trim(),
  });
}

/** The API server's address from the kubelet-provided environment; IPv6 hosts in brackets. */
function apiServer(env: InstallOptions['env']): Result<string, InstallError> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '')
    return fail({
      file: 'kubeconfig',
      reason: 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (they are, in a pod)',
    });
  const protocol = env.KUBERNETES_SERVICE_PROTOCOL ?? 'https';
  return ok(`${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}`);
}

/** Where the plugin finds the agent's kubeconfig on the host (the path the flat file names); none when the
 *  agent installs no CNI configuration. */
export function pluginKubeconfigPath(options: InstallOptions): string | undefined {
  if (options.cniConfDir === undefined) return undefined;
  const files = hostFiles(options.cniConfDir);
  return join(onHost(files.dir, options.hostPrefix), basename(files.kubeconfig));
}

/**
 * The kubeconfig the plugin uses when it works without the agent: the agent's own service account. In JSON
 * (still YAML to every other reader), which a fresh plugin process reads without loading a YAML parser.
 */
export const pluginKubeconfig = (server: string, account: ServiceAccount, namespace: string): string =>
  renderKubeconfig(
    {
      server,
      token: account.token,
      namespace,
      ...(account.ca === undefined ? {} : { ca: account.ca }),
    },
    'json',
  );

/**
 * The flat file: an existing one keeps its other keys (an operator's settings, Whereabouts' own
 * `reconciler_cron_expression`); ours are set. One that is not JSON is kept aside as `.bak`, not lost.
 */
function flatFileContent(path: string, ours: Record<string, unknown>): { text: string; setAside: boolean } {
  const current = readOrUndefined(path);
  let base: Record<string, unknown> = {};
  let setAside = false;
  if (current !== undefined) {
    try {
      const parsed: unknown = JSON.parse(current.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        base = parsed as Record<string, unknown>;
      else setAside = true;
    } catch {
      setAside = true;
    }
  }
  return { text: `${JSON.stringify({ ...base, ...ours }, null, 2)}\n`, setAside };
}

export type InstallReport = Readonly<
  Record<'plugin' | 'kubeconfig' | 'flatFile' | 'nodeName', Written | 'skipped'>
>;

/** Refreshes only the kubeconfig: for a rotated token or CA. */
export function installKubeconfig(options: InstallOptions): Result<Written | 'skipped', InstallError> {
  if (options.cniConfDir === undefined) return ok('skipped');
  const files = hostFiles(options.cniConfDir);
  const account = readServiceAccount(options.serviceAccountDir);
  if (!account.ok) return account;
  const server = apiServer(options.env);
  if (!server.ok) return server;
  const namespace = options.env.WHEREABOUTS_NAMESPACE ?? account.value.namespace ?? 'kube-system';
  return guarded(files.kubeconfig, () =>
    writeAtomically(files.kubeconfig, pluginKubeconfig(server.value, account.value, namespace), 0o600),
  );
}

function guarded<T>(file: string, write: () => T): Result<T, InstallError> {
  try {
    return ok(write());
  } catch (e) {
    return fail({ file, reason: errnoOf(e) ?? (e instanceof Error ? e.message : String(e)) });
  }
}

export function install(options: InstallOptions): Result<InstallReport, InstallError> {
  let plugin: Written | 'skipped' = 'skipped';
  if (options.cniBinDir !== undefined) {
    const binDir = options.cniBinDir;
    clearTemporaries(binDir);
    // The plugin the forwarder falls back to goes first: a runtime never finds a new forwarder without it.
    const beside = join(dirname(options.plugin), standaloneName);
    const standalone =
      options.standalonePlugin ?? (beside !== options.plugin && existsSync(beside) ? beside : undefined);
    const files: [string, string][] = [
      ...(standalone === undefined ? [] : [[standalone, standaloneName] as [string, string]]),
      [options.plugin, 'whereabouts'],
    ];
    const written: Written[] = [];
    for (const [from, name] of files) {
      const source = guarded(from, () => readFileSync(from));
      if (!source.ok) return source;
      const copied = guarded(join(binDir, name), () =>
        writeAtomically(join(binDir, name), source.value, 0o755),
      );
      if (!copied.ok) return copied;
      written.push(copied.value);
    }
    plugin = written.includes('written') ? 'written' : 'unchanged';
  }
  if (options.cniConfDir === undefined)
    return ok({ plugin, kubeconfig: 'skipped', flatFile: 'skipped', nodeName: 'skipped' });

  const files = hostFiles(options.cniConfDir);
  const made = guarded(files.dir, () => mkdirSync(files.dir, { recursive: true, mode: 0o755 }));
  if (!made.ok) return made;
  clearTemporaries(files.dir);
  const kubeconfig = installKubeconfig(options);
  if (!kubeconfig.ok) return kubeconfig;

  const hostDir = onHost(files.dir, options.hostPrefix);
  const flat = flatFileContent(files.flatFile, {
    datastore: 'kubernetes',
    configuration_path: hostDir,
    kubernetes: { kubeconfig: pluginKubeconfigPath(options) },
    agent_socket: options.socketPath,
  });
  if (flat.setAside) {
    const kept = guarded(files.flatFile, () => {
      renameSync(files.flatFile, `${files.flatFile}.bak`);
    });
    if (!kept.ok) return kept;
  }
  const flatFile = guarded(files.flatFile, () => writeAtomically(files.flatFile, flat.text, 0o600));
  if (!flatFile.ok) return flatFile;
  const nodeName = guarded(files.nodeName, () =>
    writeAtomically(files.nodeName, `${options.nodeName}\n`, 0o644),
  );
  if (!nodeName.ok) return nodeName;
  return ok({ plugin, kubeconfig: kubeconfig.value, flatFile: flatFile.value, nodeName: nodeName.value });
}

/**
 * Rewrites the plugin kubeconfig whenever the projected token or CA has changed, looked at every `everyMs`;
 * returns what stops it.
 */
export function keepKubeconfigFresh(options: InstallOptions, everyMs: number, log: Logger): () => void {
  const timer = setInterval(() => {
    const refreshed = installKubeconfig(options);
    if (!refreshed.ok) log.error('cannot refresh the plugin kubeconfig', { ...refreshed.error });
    else if (refreshed.value === 'written') log.verbose('rewrote the plugin kubeconfig: token or CA changed');
  }, everyMs);
  return () => {
    clearInterval(timer);
  };
}
