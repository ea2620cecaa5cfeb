#!/usr/bin/env node
// Why this file: `npx whereabouts-ts` (package.json `bin`) must work from a checkout on whatever Node the
// machine has. The command line is TypeScript run by Node 24's type stripping, and the project pins
// Node 24 as a dependency (node_modules/node). So this launcher is plain JavaScript that any Node can
// parse: on Node 24 or later it runs the command line in this process; on an older Node it re-runs itself
// with the pinned Node; with neither it says so in one line instead of a stack trace.

/* global process */
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const minimum = 24;
const major = Number(process.versions.node.split('.')[0]);
// Through node_modules/.bin's link or a kubectl-whereabouts link: the checkout is where this file lies.
const root = join(dirname(realpathSync(fileURLToPath(import.meta.url))), '..');
const reexecuted = 'WHEREABOUTS_TS_PINNED_NODE';

if (major >= minimum) {
  await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
} else {
  const pinned = join(root, 'node_modules', 'node', 'bin', 'node');
  if (process.env[reexecuted] !== undefined || !existsSync(pinned)) {
    process.stderr.write(
      `whereabouts-ts needs Node.js ${minimum} or later; found ${process.versions.node}` +
        (existsSync(pinned) ? '\n' : ` (run npm install in ${root} to get the pinned Node.js)\n`),
    );
    process.exit(1);
  }
  // The same script again, so that the command line sees the name it was started by (kubectl-whereabouts).
  const child = spawn(pinned, [process.argv[1] ?? '', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [reexecuted]: '1' },
  });
  // Ctrl-C reaches the child from the terminal (one process group): ignore it here rather than deliver it
  // twice; what is sent to this process alone is passed on.
  process.on('SIGINT', () => undefined);
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (e) => {
    process.stderr.write(`whereabouts-ts: cannot start ${pinned}: ${e.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal !== null) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}
