// Why this file: the commands take durations as operators write them (`300s`, `5m`, `1h`) and keep them as
// milliseconds; `--help` must show the defaults the way the docs and manifests write them (`5m`, not
// 300000), so every duration option is declared here with its default shown as a duration.

import { InvalidArgumentError, Option } from 'commander';

const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `300`, `300s`, `5m`, `1h`, `250ms` → milliseconds (a bare number is seconds). */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError('must be a duration such as 300s, 5m or 1h');
  return Number(match[1]) * units[(match[2] ?? 's') as keyof typeof units];
}

/** Milliseconds as the largest whole unit: 300000 → `5m`, 15000 → `15s`, 90000 → `90s`, 1500 → `1500ms`. */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms >= units[unit] && ms % units[unit] === 0) return `${ms / units[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/** A `--flag <duration>` option whose value is milliseconds and whose default `--help` shows as a duration. */
export const durationOption = (flags: string, description: string, defaultMs: number): Option =>
  new Option(flags, description).argParser(parseDuration).default(defaultMs, formatDuration(defaultMs));
