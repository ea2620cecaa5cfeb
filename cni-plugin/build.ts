// `npm run build`: bundles the plugin into one CommonJS file with esbuild, then makes it a single
// executable application (Node SEA) — the Node runtime this project pins, the bundle and its V8 code cache
// in one ELF file that the container runtime can exec from /opt/cni/bin with no Node on the host:
// `dist/whereabouts-ts-plugin`. Then builds the forwarder (forwarder/, Go, static) as `dist/whereabouts`,
// the executable the runtime runs: it hands each call to the node agent and execs the plugin beside it when
// there is none. Without Go (a user with Node alone), `dist/whereabouts` is a copy of the plugin itself and
// the build says so; in CI (CI=true) a missing Go fails the build.
// Also bundles the whereabouts-ts command line into ES modules, `dist/whereabouts-ts.mjs` and the chunks it
// loads from `dist/cli-chunks/`, which the image runs on its Node runtime (see the Dockerfile): split, so
// that each command loads only its own code (the node agent, on every node, about 1.5 of 3.7 MiB).

import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const bundle = join(dist, 'whereabouts.cjs');
/** The TypeScript plugin, under its own name beside the forwarder (forwarder/main.go's standaloneName). */
const standalone = join(dist, 'whereabouts-ts-plugin');
/** The forwarder: what the runtime runs as `whereabouts`. */
const executable = join(dist, 'whereabouts');
const cli = join(dist, 'whereabouts-ts.mjs');
/** The command line's chunks, named by content: a new build's sit beside a running process's until it is done. */
const cliChunks = join(dist, 'cli-chunks');
/** Intermediate files are this build's own: builds running at once (one working tree, several people) never
 *  remove or half-overwrite each other's; each result is renamed into place whole. */
const own = (path: string) => `${path}.${process.pid}.partial`;

// Optional native helpers of ws and node-fetch-style code that a SEA cannot load; never needed here.
const noNativeHelpers = {
  bufferutil: './cni-plugin/empty.cjs',
  'utf-8-validate': './cni-plugin/empty.cjs',
  encoding: './cni-plugin/empty.cjs',
};

mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(root, 'cni-plugin', 'main.ts')],
  outfile: own(bundle),
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  alias: noNativeHelpers,
  logLevel: 'warning',
});

const cliOut = own(join(dist, 'cli'));
rmSync(cliOut, { recursive: true, force: true });
await build({
  entryPoints: { 'whereabouts-ts': join(root, 'src', 'cli', 'main.ts') },
  outdir: cliOut,
  splitting: true,
  chunkNames: 'cli-chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  // Whitespace and comments only: a long-running component's stack traces still name its functions. V8
  // keeps a module's whole source in memory, as a two-byte string as soon as one character is not ASCII
  // (the comments of some dependencies): without comments the bundle is ASCII and about half the size —
  // 13 MiB less in every process, the node agent's included (docs/agent.md, "Memory").
  minifyWhitespace: true,
  legalComments: 'none',
  alias: noNativeHelpers,
  // First, before any bundled module runs: on a Node older than the pinned one, one line instead of a
  // TypeError from deep inside a dependency (undici needs Node 24's zlib). Then CommonJS dependencies
  // (commander, prom-client) call require() for Node's modules: give them one.
  banner: {
    js: [
      '#!/usr/bin/env node',
      "if (Number(process.versions.node.split('.')[0]) < 24) { process.stderr.write(`whereabouts-ts needs Node.js 24 or later; found ${process.versions.node}\\n`); process.exit(1); }",
      "import { createRequire as __wbCreateRequire } from 'node:module';",
      'const require = __wbCreateRequire(import.meta.url);',
    ].join('\n'),
  },
  logLevel: 'warning',
});
const chunks = readdirSync(join(cliOut, 'cli-chunks'));
for (const file of [
  join(cliOut, 'whereabouts-ts.mjs'),
  ...chunks.map((c) => join(cliOut, 'cli-chunks', c)),
]) {
  // One character that is not ASCII and V8 holds the whole source twice as large (see above): refuse it.
  const nonAscii = /[\u0080-\u00ff]/.exec(readFileSync(file, 'latin1'));
  if (nonAscii !== null) {
    console.error(`build: ${file} holds a character that is not ASCII, at offset ${nonAscii.index}`);
    process.exit(1);
  }
}
// The chunks first (new names beside the old ones), then the entry that names them; then the old chunks go.
mkdirSync(cliChunks, { recursive: true });
for (const chunk of chunks) renameSync(join(cliOut, 'cli-chunks', chunk), join(cliChunks, chunk));
chmodSync(join(cliOut, 'whereabouts-ts.mjs'), 0o755);
renameSync(join(cliOut, 'whereabouts-ts.mjs'), cli);
for (const old of readdirSync(cliChunks)) if (!chunks.includes(old)) rmSync(join(cliChunks, old));
rmSync(cliOut, { recursive: true, force: true });
renameSync(own(bundle), bundle);

const blob = own(join(dist, 'sea-prep.blob'));
const seaConfig = own(join(dist, 'sea-config.json'));
writeFileSync(
  seaConfig,
  JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

// Build next to the target and rename into place, so a running plugin never sees a half-written file.
const partial = own(standalone);
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
renameSync(partial, standalone);
rmSync(blob);
rmSync(seaConfig);

/** The Go toolchain: $GO, else `go` on the PATH, else Go's default install place. */
function findGo(): string | undefined {
  for (const candidate of [process.env.GO, 'go', '/usr/local/go/bin/go']) {
    if (candidate === undefined || candidate === '') continue;
    try {
      execFileSync(candidate, ['version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const forwarderPartial = own(executable);
rmSync(forwarderPartial, { force: true });
const go = findGo();
let forwarder: string;
if (go !== undefined) {
  execFileSync(go, ['build', '-trimpath', '-ldflags=-s -w', '-o', forwarderPartial, '.'], {
    cwd: join(root, 'forwarder'),
    // Static (no libc), and never a toolchain download: the go.mod's version is a minimum.
    env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
    stdio: 'inherit',
  });
  forwarder = `the forwarder ${executable} (${(statSync(forwarderPartial).size / 1024 / 1024).toFixed(1)} MiB, Go)`;
} else {
  if (process.env.CI === 'true') {
    console.error('build: Go is not installed (go, $GO, /usr/local/go/bin/go): CI must build the forwarder');
    process.exit(1);
  }
  copyFileSync(standalone, forwarderPartial);
  chmodSync(forwarderPartial, 0o755);
  forwarder = `NO forwarder: Go was not found (go, $GO, /usr/local/go/bin/go), so ${executable} is a copy of the TypeScript plugin (it works, every call starts Node); install Go and rebuild for the native forwarder`;
}
renameSync(forwarderPartial, executable);
if (!existsSync(executable)) throw new Error(`${executable} was not built`);

const mib = (path: string) => (statSync(path).size / 1024 / 1024).toFixed(1);
console.log(
  `built ${standalone} (${mib(standalone)} MiB; bundle ${mib(bundle)} MiB), ${cli} (${mib(cli)} MiB) and ${forwarder}`,
);
