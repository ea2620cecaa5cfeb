// The whereabouts-ts command line as its own --help describes it: the commands, and each command's options.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './render.ts';

export const sourceCli = join(root, 'src', 'cli', 'main.ts');
/** The bundle the image runs (`npm run build`). */
export const bundledCli = join(root, 'dist', 'whereabouts-ts.mjs');

export function help(cli: string, args: readonly string[]): string {
  return execFileSync(process.execPath, [cli, ...args, '--help'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', COLUMNS: '100' },
  });
}

/** The lines of one section (`Commands:`, `Options:`) of a commander help text. */
const section = (text: string, title: string): string[] => {
  const lines = text.split('\n');
  const start = lines.indexOf(`${title}:`);
  if (start === -1) return [];
  const end = lines.findIndex((line, i) => i > start && line.trim() === '');
  return lines.slice(start + 1, end === -1 ? undefined : end);
};

/** The subcommands (`  agent [options]  description…`). */
export const commandsOf = (text: string): string[] =>
  section(text, 'Commands')
    .map((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1])
    .filter((c): c is string => c !== undefined && c !== 'help');

export type Option = { readonly flag: string; readonly takesValue: boolean };

/** The options (`  --socket <path>  …`, `  -h, --help`). */
export const optionsOf = (text: string): Map<string, Option> =>
  new Map(
    section(text, 'Options')
      .map((line) => /^ {2}(?:-\w, )?(--[\w-]+)(?: ([<[]))?/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1] ?? '', { flag: m[1] ?? '', takesValue: m[2] !== undefined }]),
  );
