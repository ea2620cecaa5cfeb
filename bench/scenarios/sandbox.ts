// `npm run bench -- sandbox`: issue 16's test of `npm start` on a loaded machine. The sandbox runs for 60 s
// while a CPU-bound helper process keeps every core busy, then gets a Ctrl-C (SIGINT to its process group,
// as a terminal sends it). Reports its plugin calls, the calls that failed after the warm-up, the invariant
// violations its own end-of-run check found (addresses held twice, allocations and reservations of pods
// that do not run), and how long it took from the SIGINT to its exit. Needs `npm run build` (the plugin).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { result } from '../report.ts';

const root = join(import.meta.dirname, '..', '..');
const seconds = 60;

/** One process whose threads spin on every core until it is killed. */
function startHog(): ChildProcess {
  const code = `const { Worker } = require('node:worker_threads');
for (let i = 1; i < ${availableParallelism()}; i++) new Worker('for (;;) {}', { eval: true });
for (;;) {}`;
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
}

export async function run(): Promise<void> {
  const plugin = join(root, 'dist', 'whereabouts');
  if (!existsSync(plugin)) throw new Error(`${plugin} is missing: run npm run build first`);
  const hog = startHog();
  try {
    const sandbox = spawn(process.execPath, [join(root, 'src', 'cli', 'main.ts'), 'sandbox'], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const up = new Promise<void>((resolve) => {
      sandbox.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('embedded API server at')) resolve();
      });
    });
    sandbox.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(sandbox, 'exit');
    await Promise.race([up, exited]);
    console.log(`# sandbox up with ${availableParallelism()} cores kept busy; running ${seconds} s`);
    await Promise.race([new Promise((r) => setTimeout(r, seconds * 1000)), exited]);
    const stopAt = performance.now();
    if (sandbox.pid !== undefined && sandbox.exitCode === null) process.kill(-sandbox.pid, 'SIGINT');
    const [code] = (await exited) as [number | null];
    const stopSeconds = (performance.now() - stopAt) / 1000;

    const summary = stdout.slice(stdout.lastIndexOf('\nRECENT'));
    for (const line of summary.split('\n').slice(-8)) if (line !== '') console.log(`# ${line}`);
    if (stderr.trim() !== '') console.log(`# stderr: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
    console.log(`# exit code ${code}`);
    const calls = /\nplugin calls: (\d+), failed: (\d+) \((\d+) after the first/.exec(stdout);
    const violated = /\nINVARIANTS VIOLATED \((\d+)\)/.exec(stdout);
    const held = /\ninvariants hold: /.test(stdout);
    if (calls === null) console.log('# no summary printed');
    result('sandbox_calls', Number(calls?.[1] ?? NaN), 'calls');
    console.log(`# failed calls in all: ${calls?.[2] ?? '?'}`);
    result('sandbox_failed_calls', Number(calls?.[3] ?? NaN), 'calls');
    result(
      'sandbox_invariant_violations',
      violated !== null ? Number(violated[1]) : held ? 0 : NaN,
      'violations',
    );
    result('sandbox_stop_seconds', stopSeconds, 's');
  } finally {
    hog.kill('SIGKILL');
  }
}
