// A small levelled logger: `<RFC 3339 time> [<level>] <message> key=value…` on stderr and, when configured,
// appended to a file — Whereabouts' line format, so existing log scraping keeps working. Hand-written
// because the plugin pays for every module it loads on each invocation.

import { appendFileSync } from 'node:fs';
import type { LogLevel } from './config/ipam-config.ts';

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
  readonly write?: (line: string) => void;
};

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  let fileBroken = false;
  const emit = (level: LogLevel, message: string, fields: Fields = {}): void => {
    if (rank[level] > rank[options.level]) return;
    const extra = Object.entries(fields)
      .filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined)
      .map(([k, v]) => ` ${k}=${quoted(v)}`)
      .join('');
    const line = `${new Date().toISOString()} [${level}] ${message}${extra}\n`;
    write(line);
    if (options.file !== undefined && !fileBroken) {
      try {
        appendFileSync(options.file, line, { mode: 0o644 });
      } catch {
        fileBroken = true;
        write(
          `${new Date().toISOString()} [error] cannot append to log_file ${options.file}; logging to stderr only\n`,
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
