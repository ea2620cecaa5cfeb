// One invocation of the plugin, from environment and stdin to stdout and exit code. Every failure ends as
// a CNI error object on stdout with its code — never a stack trace, never a hang — and logs go to stderr
// and `log_file`.

import { join } from 'node:path';
import { quoteText } from '../config/json.ts';
import { checkForAdd, loadConfig } from '../config/load.ts';
import { CniCode, ipamError, type IpamError, type Result } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import type { IpamConfig } from '../config/ipam-config.ts';
import type { IpamStore } from '../store/store.ts';
import { readEnvironment } from './environment.ts';
import {
  answerVersion,
  atLeast,
  isSupported,
  latest,
  supportedVersions,
  verbSince,
  versionAnswer,
} from './versions.ts';
import type { VerbContext } from './verbs.ts';

export type PluginInput = {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
  /** Where to find the flat file (Whereabouts' paths unless a test says otherwise). */
  readonly flatFilePaths?: readonly string[];
  /** Opens the datastore for a config: the Kubernetes store in production. */
  readonly openStore: (config: IpamConfig) => Result<IpamStore> | Promise<Result<IpamStore>>;
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
};

export type PluginOutput = { readonly stdout: string; readonly exitCode: number };

const errorOutput = (cniVersion: string, error: IpamError): PluginOutput => ({
  stdout: `${JSON.stringify({ cniVersion, code: error.code, msg: error.msg, details: error.details })}\n`,
  exitCode: 1,
});

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
  if (!loaded.ok) return errorOutput(answerVersion(input.stdin), loaded.error);
  const { config } = loaded.value;
  if (!isSupported(config.cniVersion)) {
    return errorOutput(
      latest,
      ipamError(
        CniCode.IncompatibleVersion,
        `cniVersion ${quoteText(config.cniVersion)} is not supported; this plugin speaks ${supportedVersions.join(', ')}`,
      ),
    );
  }
  if (!atLeast(config.cniVersion, verbSince[command])) {
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
      return errorOutput(config.cniVersion, checked.error);
    }
  }

  if (input.forward !== undefined) {
    const forwarded = await input.forward(config.agentSocket);
    if ('stdout' in forwarded) return forwarded;
    if ('busy' in forwarded) {
      log.error(forwarded.busy, fields);
      return errorOutput(config.cniVersion, ipamError(CniCode.TryAgainLater, forwarded.busy));
    }
    log.debug(`working standalone: ${forwarded.unavailable}`, fields);
  }

  const store = await input.openStore(config);
  if (!store.ok) {
    log.error(store.error.details, fields);
    return errorOutput(
      config.cniVersion,
      command === 'STATUS' ? ipamError(CniCode.NotAvailable, store.error.details) : store.error,
    );
  }
  // The verbs (and the transaction behind them) are evaluated only when the work is done here.
  const { add, check, deadlines, del, gc, status } = await import('./verbs.ts');
  const ctx: VerbContext = {
    loaded: loaded.value,
    invocation: invocation.value,
    store: store.value,
    log,
    env: input.env,
    deadlineMs: input.deadlineMs ?? deadlines[command],
  };
  const result = await (command === 'ADD'
    ? add(ctx)
    : command === 'DEL'
      ? del(ctx)
      : command === 'CHECK'
        ? check(ctx)
        : command === 'GC'
          ? gc(ctx)
          : status(ctx));
  if (!result.ok) {
    log.error(`${command} failed: ${result.error.details}`, fields);
    return errorOutput(config.cniVersion, result.error);
  }
  log.debug(`${command} done`, fields);
  // ADD prints its result; DEL, CHECK, GC and STATUS print nothing on success.
  return { stdout: result.value === undefined ? '' : `${JSON.stringify(result.value)}\n`, exitCode: 0 };
}
