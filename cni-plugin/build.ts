// `npm run build`: bundles the plugin into one CommonJS file with esbuild, then makes it a single
// executable application (Node SEA) — the Node runtime this project pins, the bundle and its V8 code cache
// in one ELF file that the container runtime can exec from /opt/cni/bin with no Node on the host.
// Also bundles the whereabouts-ts command line into one ES module, `dist/whereabouts-ts.mjs`, which the
// image runs on its Node runtime (see the Dockerfile).

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const bundle = join(dist, 'whereabouts.cjs');
const executable = join(dist, 'whereabouts');
const cli = join(dist, 'whereabouts-ts.mjs');

// Optional native helpers of ws and node-fetch-style code that a SEA cannot load; never needed here.
const noNativeHelpers = {
  bufferutil: './cni-plugin/empty.cjs',
  'utf-8-validate': './cni-plugin/empty.cjs',
  encoding: './cni-plugin/empty.cjs',
};

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
  alias: noNativeHelpers,
  logLevel: 'warning',
});

await build({
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outfile: cli,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  // Not minified: a long-running component's stack traces should name its functions.
  legalComments: 'none',
  alias: noNativeHelpers,
  // CommonJS dependencies (commander, prom-client) call require() for Node's modules: give them one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __wbCreateRequire } from 'node:module';\nconst require = __wbCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
chmodSync(cli, 0o755);

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
console.log(
  `built ${executable} (${mib(executable)} MiB; bundle ${mib(bundle)} MiB) and ${cli} (${mib(cli)} MiB)`,
);
