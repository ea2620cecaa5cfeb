// A small levelled logger: `<RFC 3339 time> [<level>] <message> key=value…` on stderr and, when configured,
// appended to a file — Whereabouts' line format, so existing log scraping keeps working. Hand-written
// because the plugin pays for every module it loads on each invocation. The file is a NAD's `log_file`:
// appended to only while it is a regular file (untrusted-file.ts), never one of the `protect` files.

import type { LogLevel } from './config/ipam-config.ts';
import {
  appendUntrustedFile,
  describeProblem,
  identityOf,
  type FileIdentity,
  type FileProblem,
} from './config/untrusted-file.ts';

export type Fields = Readonly<Record<string, string | number | boolean | undefined>>;
export type Logger = {
  readonly debug: (message: string, fields?: Fields) => void;
  readonly verbose: (message: string, fields?: Fields) => void;
  readonly error: (message: string, fields?: Fields) => void;
};

const rank: Record<LogLevel, number> = { panic: 0, error: 1, verbose: 2, debug: 3 };

const quoted = (value: string | number | boolean): string => {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
};

export type LoggerOptions = {
  readonly level: LogLevel;
  readonly file?: string | undefined;
  /** Files never appended to, whatever path `file` takes to them: the configuration this process reads. */
  readonly protect?: readonly string[];
  readonly write?: (line: string) => void;
};

function whyNot(problem: FileProblem | { readonly kind: 'protected' }): string {
  switch (problem.kind) {
    case 'protected':
      return 'it is a file the plugin reads its configuration from (the flat file, the kubeconfig or nodename)';
    case 'missing':
      return 'its directory does not exist';
    case 'failed':
      return problem.errno;
    default:
      return `it ${describeProblem(problem)}`;
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  let fileBroken = false;
  let protect: FileIdentity[] | undefined;
  const emit = (level: LogLevel, message: string, fields: Fields = {}): void => {
    if (rank[level] > rank[options.level]) return;
    const extra = Object.entries(fields)
      .filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined)
      .map(([k, v]) => ` ${k}=${quoted(v)}`)
      .join('');
    const line = `${new Date().toISOString()} [${level}] ${message}${extra}\n`;
    write(line);
    if (options.file !== undefined && !fileBroken) {
      protect ??= (options.protect ?? []).flatMap((path) => identityOf(path) ?? []);
      const appended = appendUntrustedFile(options.file, line, { mode: 0o644, protect });
      if (!appended.ok) {
        fileBroken = true;
        write(
          `${new Date().toISOString()} [error] cannot append to log_file ${options.file}: ${whyNot(appended.error)}; logging to stderr only\n`,
        );
      }
    }
  };
  return {
    debug: (m, f) => {
      emit('debug', m, f);
    },
    verbose: (m, f) => {
      emit('verbose', m, f);
    },
    error: (m, f) => {
      emit('error', m, f);
    },
  };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  verbose: () => undefined,
  error: () => undefined,
};
