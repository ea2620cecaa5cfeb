// Why this file: a new user runs the CLI from a checkout with whatever Node the machine has (often older
// than the Node 24 the project pins in node_modules). `npx whereabouts-ts` and the `bin` launcher must then
// run it on the pinned Node, and every entry point on a Node too old for it must say so in one line instead
// of a stack trace. These tests start the launcher and the bundle with an older system Node when the
// machine has one (the suite says so when it has none), and always check the launcher's own fallback.

import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { execute } from '../support/exec.ts';

const root = join(import.meta.dirname, '..', '..');
const launcher = join(root, 'bin', 'whereabouts-ts.js');
const bundle = join(root, 'dist', 'whereabouts-ts.mjs');
const tooOld = /^whereabouts-ts needs Node\.js 24 or later; found 2[0-3]\.\d+\.\d+/;

/** PATH without node_modules/.bin (which npm puts first, with the pinned Node in it). */
const systemPath = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => !dir.includes('node_modules'))
  .join(delimiter);

/** A Node older than 24 outside node_modules, as a machine's own Node is: the first on PATH, or a usual place. */
const oldNode = ((): string | undefined => {
  const candidates = [
    ...systemPath.split(delimiter).map((d) => join(d, 'node')),
    '/usr/bin/node',
    '/usr/local/bin/node',
  ];
  for (const node of candidates) {
    if (!existsSync(node)) continue;
    try {
      const version = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      if (Number(version.split('.')[0]) < 24) return node;
    } catch {
      // not a runnable Node
    }
  }
  return undefined;
})();

test('package.json names the launcher as the bin, and the launcher is an executable script', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  expect(pkg.bin).toEqual({ 'whereabouts-ts': 'bin/whereabouts-ts.js' });
  expect(readFileSync(launcher, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  expect(statSync(launcher).mode & 0o111).toBe(0o111);
});

test('on the pinned Node the launcher runs the command line in its own process', async () => {
  const out = await execute([process.execPath, launcher, 'gc', '--help'], {}, '', 30_000);
  expect(out.code).toBe(0);
  expect(out.stdout).toContain('Usage: whereabouts-ts gc');
});

(oldNode === undefined ? describe.skip : describe)(
  `on this machine's older Node (${oldNode ?? 'none found: nothing to run these with'})`,
  () => {
    const node = oldNode ?? '';
    const env = { PATH: `${dirname(node)}${delimiter}${systemPath}` };

    test('the launcher re-runs itself on the pinned Node, exit status and output passed through', async () => {
      const help = await execute([node, launcher, 'gc', '--help'], env, '', 30_000);
      expect(help.stderr).toBe('');
      expect(help.code).toBe(0);
      // Durations as the docs write them.
      expect(help.stdout).toContain('(default: 5m)');
      const bad = await execute([node, launcher, 'pod', 'not-a-ref'], env, '', 30_000);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('pod: "not-a-ref" must be <namespace>/<name>');
    });

    test('under the kubectl plugin name, the re-run command line still knows it is `kubectl whereabouts`', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wb-launcher-'));
      try {
        const plugin = join(dir, 'kubectl-whereabouts');
        symlinkSync(launcher, plugin);
        const help = await execute([node, plugin, '--help'], env, '', 30_000);
        expect(help.stdout).toContain('Usage: kubectl whereabouts');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('npx whereabouts-ts <command> works from the checkout with this Node and its npm', async () => {
      // npx links the checkout into its cache once and keeps that link: a cache of its own, so that the
      // test runs the bin package.json names now.
      const cache = mkdtempSync(join(tmpdir(), 'wb-npx-cache-'));
      try {
        const out = await execute(
          [
            '/bin/sh',
            '-c',
            `cd "${join(root, 'src')}" && npx --cache "${cache}" --no-install whereabouts-ts pools --help`,
          ],
          { ...env, HOME: process.env.HOME ?? '/root' },
          '',
          60_000,
        );
        expect(out.code).toBe(0);
        expect(out.stdout).toContain('Usage: whereabouts-ts pools');
      } finally {
        rmSync(cache, { recursive: true, force: true });
      }
    });

    test('the bundle says in one line that it needs Node 24', async () => {
      expect(existsSync(bundle)).toBe(true); // npm run build makes it (npm test builds first)
      const out = await execute([node, bundle, '--help'], env, '', 30_000);
      expect(out.code).toBe(1);
      expect(out.stdout).toBe('');
      expect(out.stderr).toMatch(new RegExp(`${tooOld.source}\\n$`));
    });

    test('without the pinned Node (no npm install yet), the launcher says so in one line', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wb-launcher-'));
      try {
        mkdirSync(join(dir, 'bin'));
        copyFileSync(launcher, join(dir, 'bin', 'whereabouts-ts.js'));
        const out = await execute([node, join(dir, 'bin', 'whereabouts-ts.js'), 'pools'], env, '', 30_000);
        expect(out.code).toBe(1);
        expect(out.stdout).toBe('');
        expect(out.stderr).toMatch(tooOld);
        expect(out.stderr).toContain(`(run npm install in ${dir} to get the pinned Node.js)`);
        expect(out.stderr.split('\n')).toEqual([expect.any(String), '']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
