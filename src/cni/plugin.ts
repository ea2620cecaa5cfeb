// One invocation of the plugin, from environment and stdin to stdout and exit code. Every failure ends as
// a CNI error object on stdout with its code — never a stack trace, never a hang — and logs go to stderr
// and `log_file`.

import { join } from 'node:path';
import { quoteText } from '../config/json.ts';
import { checkForAdd, loadConfig, loadForRelease } from '../config/load.ts';
import { CniCode, ipamError, type IpamError, type Result } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import type { IpamConfig } from '../config/ipam-config.ts';
import type { IpamStore } from '../store/store.ts';
import type { NodeLock } from './node-lock.ts';
import { readEnvironment, type Invocation } from './environment.ts';
import {
  answerVersion,
  atLeast,
  isSupported,
  latest,
  supportedVersions,
  verbSince,
  versionAnswer,
} from './versions.ts';
import type { Held, VerbContext } from './verbs.ts';

export type PluginInput = {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
  /** Where to find the flat file (Whereabouts' paths unless a test says otherwise). */
  readonly flatFilePaths?: readonly string[];
  /**
   * Opens the datastore for a config (its `kubeconfig`, the only key it reads): the Kubernetes store in
   * production.
   */
  readonly openStore: (
    config: Pick<IpamConfig, 'kubeconfig'>,
  ) => Result<IpamStore> | Promise<Result<IpamStore>>;
  /** Where log lines go besides `log_file`; stderr by default. */
  readonly writeLog?: (line: string) => void;
  /**
   * What to do with the config's `log_file`. `append` (the default: the plugin executable) appends to it
   * when it is a regular file, or creates it — never a FIFO, a device, or the flat file or kubeconfig it
   * reads. `ignore` is for the node agent: it runs as root for every pod of the node and writes no file a
   * NAD names (its lines go to `writeLog`, the agent's own log).
   */
  readonly logFile?: 'append' | 'ignore';
  /** How long the verb may take, all retries included; each verb's default otherwise (see verbs.ts). */
  readonly deadlineMs?: number;
  /**
   * Hands the invocation to the node agent at this socket; `undefined` back means do it here. Set by the
   * executable, never by the agent itself.
   */
  readonly forward?: (
    socketPath: string,
  ) => Promise<PluginOutput | { unavailable: string } | { busy: string }>;
  /**
   * Takes the node-wide lock of a network for the verbs that write (src/cni/node-lock.ts): the executable
   * working standalone sets it, so that one of its processes per node writes a network's pools at a time.
   */
  readonly lock?: (key: string, waitMs: number, onWait: () => void) => Promise<NodeLock>;
  /** Told what a successful ADD run here holds (the node agent's record of its attachments). */
  readonly onHeld?: (held: Held) => void;
};

/** The verbs that write pools, and so take the node lock when the executable works standalone. */
const writing: ReadonlySet<string> = new Set(['ADD', 'DEL', 'GC']);

export type PluginOutput = { readonly stdout: string; readonly exitCode: number };

const errorOutput = (cniVersion: string, error: IpamError): PluginOutput => ({
  stdout: `${JSON.stringify({ cniVersion, code: error.code, msg: error.msg, details: error.details })}\n`,
  exitCode: 1,
});

/**
 * Versions from before 0.3.0 (none at all reads as 0.1.0). ADD, CHECK, GC and STATUS refuse them, since
 * their results would be in a format this plugin does not write; DEL prints nothing on success, so it
 * goes on: a pod a runtime created with such a config must still be deletable (docs/decisions.md).
 */
const legacyVersions: readonly string[] = ['', '0.1.0', '0.2.0'];

/**
 * DEL of a config `loadConfig` refuses: success once `delRefused` (verbs.ts) released what the attachment
 * holds; undefined — the config error stands — when that cannot be done: the config is not a Whereabouts
 * one, CNI_ARGS names no pod, no usable kubeconfig, or the API server fails.
 */
async function releaseRefused(
  input: PluginInput,
  invocation: Invocation,
  refusal: IpamError,
): Promise<PluginOutput | undefined> {
  const only = loadForRelease({
    stdin: input.stdin,
    cniArgs: invocation.cniArgs,
    ...(input.flatFilePaths === undefined ? {} : { flatFilePaths: input.flatFilePaths }),
  });
  if (!only.ok) return undefined;
  const { kubeconfig, configurationPath, flatFile, logFile, logLevel } = only.value;
  const log: Logger = createLogger({
    level: logLevel,
    file: input.logFile === 'ignore' ? undefined : logFile,
    protect: [
      flatFile,
      kubeconfig,
      configurationPath === undefined ? undefined : join(configurationPath, 'nodename'),
    ].filter((path): path is string => path !== undefined),
    ...(input.writeLog === undefined ? {} : { write: input.writeLog }),
  });
  const fields = { command: 'DEL', container: invocation.containerId, ifname: invocation.ifName };
  log.error(
    `config: ADD refuses this configuration (code ${refusal.code}: ${refusal.details}); DEL releases what the attachment holds all the same`,
    fields,
  );
  const store = await input.openStore(kubeconfig === undefined ? {} : { kubeconfig });
  const released = store.ok
    ? await (async () => {
        const { deadlines, delRefused } = await import('./verbs.ts');
        return delRefused({
          invocation,
          release: only.value,
          store: store.value,
          log,
          env: input.env,
          deadlineMs: input.deadlineMs ?? deadlines.DEL,
        });
      })()
    : store;
  if (!released.ok) {
    log.error(
      `DEL could not release, so it answers the configuration error: ${released.error.details}`,
      fields,
    );
    return undefined;
  }
  log.debug('DEL done', fields);
  return { stdout: '', exitCode: 0 };
}

export async function runPlugin(input: PluginInput): Promise<PluginOutput> {
  const invocation = readEnvironment(input.env);
  if (!invocation.ok) return errorOutput(answerVersion(input.stdin), invocation.error);
  const { command } = invocation.value;

  if (command === 'VERSION') {
    return { stdout: versionAnswer(input.stdin), exitCode: 0 };
  }

  const loaded = loadConfig({
    stdin: input.stdin,
    cniArgs: invocation.value.cniArgs,
    ...(input.flatFilePaths === undefined ? {} : { flatFilePaths: input.flatFilePaths }),
  });
  if (!loaded.ok) {
    const released =
      command === 'DEL' ? await releaseRefused(input, invocation.value, loaded.error) : undefined;
    return released ?? errorOutput(answerVersion(input.stdin), loaded.error);
  }
  const { config } = loaded.value;
  const legacyDel = command === 'DEL' && legacyVersions.includes(config.cniVersion);
  // Errors are answered in the config's version; a legacy DEL's without one in 0.1.0, as libcni reads it.
  const version = legacyDel && config.cniVersion === '' ? '0.1.0' : config.cniVersion;
  if (!isSupported(config.cniVersion) && !legacyDel) {
    return errorOutput(
      latest,
      ipamError(
        CniCode.IncompatibleVersion,
        `cniVersion ${quoteText(config.cniVersion)} is not supported; this plugin speaks ${supportedVersions.join(', ')}`,
      ),
    );
  }
  if (!atLeast(version, verbSince[command])) {
    return errorOutput(
      config.cniVersion,
      ipamError(
        CniCode.IncompatibleVersion,
        `config version ${config.cniVersion} does not allow ${command} (needs ${verbSince[command]} or later)`,
      ),
    );
  }

  const ignoreLogFile = input.logFile === 'ignore';
  const log: Logger = createLogger({
    level: config.logLevel,
    file: ignoreLogFile ? undefined : config.logFile,
    // The files this invocation reads as configuration: a log line appended there would break every ADD.
    protect: [
      loaded.value.flatFile,
      config.kubeconfig,
      config.configurationPath === undefined ? undefined : join(config.configurationPath, 'nodename'),
    ].filter((path): path is string => path !== undefined && path !== ''),
    ...(input.writeLog === undefined ? {} : { write: input.writeLog }),
  });
  for (const warning of loaded.value.warnings) log.error(`config: ${warning}`);
  const fields = {
    command,
    container: invocation.value.containerId,
    ifname: invocation.value.ifName,
    network: config.cniName,
  };
  if (ignoreLogFile && config.logFile !== undefined)
    log.verbose('ipam.log_file is ignored in the node agent: its lines are in the agent log', fields);
  log.debug('invoked', fields);

  if (command === 'ADD') {
    // Decided before the agent or the API server is asked: nothing is written for an ADD that must fail.
    const checked = checkForAdd(loaded.value);
    if (!checked.ok) {
      log.error(`ADD refused: ${checked.error.details}`, fields);
      return errorOutput(version, checked.error);
    }
  }

  if (input.forward !== undefined) {
    const forwarded = await input.forward(config.agentSocket);
    if ('stdout' in forwarded) return forwarded;
    if ('busy' in forwarded) {
      log.error(forwarded.busy, fields);
      return errorOutput(version, ipamError(CniCode.TryAgainLater, forwarded.busy));
    }
    log.debug(`working standalone: ${forwarded.unavailable}`, fields);
  }

  const store = await input.openStore(config);
  if (!store.ok) {
    log.error(store.error.details, fields);
    return errorOutput(
      version,
      command === 'STATUS' ? ipamError(CniCode.NotAvailable, store.error.details) : store.error,
    );
  }
  // The verbs (and the transaction behind them) are evaluated only when the work is done here.
  const { add, check, deadlines, del, gc, status } = await import('./verbs.ts');
  const deadlineMs = input.deadlineMs ?? deadlines[command];
  // The lock's wait counts against the verb's deadline; at most half of it, then the verb goes on unlocked
  // (the writes are conditional either way: the lock only spares the API server concurrent patches).
  const started = Date.now();
  // While it waits, the connection to the API server is opened, so that the TLS handshake is not part of
  // the turn (it is most of an ADD's CPU in the turn otherwise).
  let warming: Promise<void> | undefined;
  const locked =
    input.lock !== undefined && writing.has(command)
      ? await input.lock(
          `${config.kubeconfig ?? ''}\n${store.value.namespace}\n${config.networkName}`,
          deadlineMs / 2,
          () => {
            warming ??= store.value.warm?.();
          },
        )
      : undefined;
  if (locked?.kind === 'skipped') log.error(`working without the node lock: ${locked.why}`, fields);
  // A failure to connect is met and reported by the verb's first call.
  await warming?.catch(() => undefined);
  const ctx: VerbContext = {
    loaded: loaded.value,
    invocation: invocation.value,
    store: store.value,
    log,
    env: input.env,
    deadlineMs: deadlineMs - (Date.now() - started),
    ...(input.onHeld === undefined ? {} : { onHeld: input.onHeld }),
  };
  let result: Awaited<ReturnType<typeof add | typeof del>>;
  try {
    result = await (command === 'ADD'
      ? add(ctx)
      : command === 'DEL'
        ? del(ctx)
        : command === 'CHECK'
          ? check(ctx)
          : command === 'GC'
            ? gc(ctx)
            : status(ctx));
  } finally {
    if (locked?.kind === 'held') locked.release();
  }
  if (!result.ok) {
    log.error(`${command} failed: ${result.error.details}`, fields);
    return errorOutput(version, result.error);
  }
  log.debug(`${command} done`, fields);
  // ADD prints its result; DEL, CHECK, GC and STATUS print nothing on success.
  return { stdout: result.value === undefined ? '' : `${JSON.stringify(result.value)}\n`, exitCode: 0 };
}
