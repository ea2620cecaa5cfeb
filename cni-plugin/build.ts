// `npm run build`: bundles the plugin into one CommonJS file with esbuild, then makes it a single
// executable application (Node SEA) — the Node runtime this project pins, the bundle and its V8 code cache
// in one ELF file that the container runtime can exec from /opt/cni/bin with no Node on the host.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const bundle = join(dist, 'whereabouts.cjs');
const executable = join(dist, 'whereabouts');

mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(root, 'cni-plugin', 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  // Optional native helpers of ws and node-fetch-style code that a SEA cannot load; never needed here.
  alias: {
    bufferutil: './cni-plugin/empty.cjs',
    'utf-8-validate': './cni-plugin/empty.cjs',
    encoding: './cni-plugin/empty.cjs',
  },
  logLevel: 'warning',
});

const blob = join(dist, 'sea-prep.blob');
const seaConfig = join(dist, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

// Build next to the target and rename into place, so a running plugin never sees a half-written file.
const partial = `${executable}.partial`;
rmSync(partial, { force: true });
copyFileSync(process.execPath, partial);
chmodSync(partial, 0o755);
try {
  execFileSync('strip', ['--strip-debug', partial], { stdio: 'ignore' });
} catch {
  // no strip on this machine: the executable is larger but the same
}
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules', 'postject', 'dist', 'cli.js'),
    partial,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
renameSync(partial, executable);
rmSync(blob);
rmSync(seaConfig);
const mib = (path: string) => (statSync(path).size / 1024 / 1024).toFixed(1);
console.log(`built ${executable} (${mib(executable)} MiB; bundle ${mib(bundle)} MiB)`);
