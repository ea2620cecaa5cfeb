// Why this file: duration options are read as operators write them and their defaults shown in `--help` as
// the docs and manifests write them (`gc --help` once showed the grace period as 300000 while the docs said 5m).

import { Command } from 'commander';
import { durationOption, formatDuration, parseDuration } from '../../../src/cli/durations.ts';

test.each([
  ['300', 300_000],
  ['300s', 300_000],
  ['5m', 300_000],
  ['1h', 3_600_000],
  ['250ms', 250],
  [' 2s ', 2_000],
])('%j is %d ms', (text, ms) => {
  expect(parseDuration(text)).toBe(ms);
});

test.each(['', '5 m', '-1s', '1.5s', '5d', 'm'])('%j is refused with the accepted forms', (text) => {
  expect(() => parseDuration(text)).toThrow('must be a duration such as 300s, 5m or 1h');
});

test.each([
  [300_000, '5m'],
  [60_000, '1m'],
  [180_000, '3m'],
  [15_000, '15s'],
  [90_000, '90s'],
  [3_600_000, '1h'],
  [1_500, '1500ms'],
  [0, '0ms'],
])('%d ms is shown as %s, and reads back', (ms, text) => {
  expect(formatDuration(ms)).toBe(text);
  expect(parseDuration(text)).toBe(ms);
});

test('--help shows the default as a duration; the value is milliseconds', () => {
  const command = new Command('gc')
    .exitOverride()
    .addOption(durationOption('--grace-period <duration>', 'keep young allocations', 300_000));
  expect(command.helpInformation()).toContain('(default: 5m)');
  expect(command.helpInformation()).not.toContain('300000');
  expect(command.parse([], { from: 'user' }).opts()).toEqual({ gracePeriod: 300_000 });
  expect(command.parse(['--grace-period', '90s'], { from: 'user' }).opts()).toEqual({ gracePeriod: 90_000 });
});
