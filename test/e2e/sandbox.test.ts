// `npm start` runs the sandbox: the embedded API server (a process of its own), simulated nodes exec'ing the
// built plugin as a kubelet would, a view, and at the end a check of its own invariants. These tests hold it
// to what a user meets: a run that ends by itself or by Ctrl-C prints its summary, says the pools hold
// exactly the running pods, leaves no temporary directory and no process behind; a reader that goes away
// does not crash it; pods whose ADD fails are shown as failed, torn down and retried, and hold nothing.
// Every wait is for an event (a line printed, a process exited); the jest timeout is the only bound.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runSandbox } from '../../src/sandbox/sandbox.ts';

const root = join(import.meta.dirname, '..', '..');
const main = join(root, 'src', 'cli', 'main.ts');

type Run = {
  readonly child: ChildProcess;
  /** Everything printed on stdout so far. */
  stdout: () => string;
  stderr: () => string;
  /** Settles when stdout has printed something matching. */
  printed: (pattern: RegExp) => Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

const started: ChildProcess[] = [];

/** Starts `whereabouts-ts sandbox` in a process group of its own, as a shell starts a foreground job. */
function sandbox(args: readonly string[]): Run {
  const child = spawn(process.execPath, [main, 'sandbox', ...args], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(stdout)) w.resolve();
      else waiters.push(w);
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    printed: (pattern) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(stdout)) resolve();
        else waiters.push({ pattern, resolve });
        void exited.then(() => {
          reject(new Error(`the sandbox exited before printing ${pattern}:\n${stdout}\n${stderr}`));
        });
      }),
    exited,
  };
}

/** The sandbox's temporary directory, from the kubeconfig path of its first line. */
const tempDirOf = (stdout: string): string => {
  const kubeconfig = /; kubeconfig (\S+)/.exec(stdout)?.[1];
  if (kubeconfig === undefined) throw new Error(`no kubeconfig printed:\n${stdout}`);
  return dirname(kubeconfig);
};
const serverOf = (stdout: string): string => /embedded API server at (\S+);/.exec(stdout)?.[1] ?? '';

afterEach(() => {
  for (const child of started.splice(0))
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
});

test('a run that ends by itself allocates through the real plugin, shows the pools, and checks its invariants', async () => {
  const run = sandbox(['--duration', '3', '--nodes', '2']);
  const { code } = await run.exited;
  const stdout = run.stdout();
  expect({ code, stderr: run.stderr() }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toMatch(/^embedded API server at http:\/\/127\.0\.0\.1:\d+; kubeconfig /);
  expect(stdout).toMatch(/ node-[12] ADD app-\d+ storage: 198\.18\.0\.\d+\/27\n/);
  expect(stdout).toMatch(
    / node-[12] ADD app-\d+ data: 198\.18\.1[6-9]\.\d+\/22, 2001:db8:16::[0-9a-f]+\/64\n/,
  );
  expect(stdout).toMatch(/198\.18\.0\.0-27 +198\.18\.0\.0\/27 +\d+\/30/);
  expect(stdout).not.toContain('error');
  // One sandbox operation per pod at a time: no pod's ADD finishes after its DEL (which left allocations of
  // pods that were gone when the node DEL'd pods whose ADD was still running).
  const deleted = new Set<string>();
  for (const [, verb, pod, network] of stdout.matchAll(/ node-\d+ (ADD|DEL) (app-\d+) (\w+): /g)) {
    const key = `${pod} ${network}`;
    if (verb === 'DEL') deleted.add(key);
    else expect(deleted.has(key) ? `${key}: ADD after DEL` : key).toBe(key);
  }
  expect(stdout).toMatch(/\ninvariants hold: the pools hold exactly the \d+ running pods' \d+ addresses/);
  expect(stdout).toMatch(/stopped: \d+ pods left running in the pools\n$/);
  expect(existsSync(tempDirOf(stdout))).toBe(false);
}, 120_000);

test('Ctrl-C stops everything: the summary, the invariant check, no temporary directory, no server left', async () => {
  const run = sandbox(['--nodes', '3']);
  // Plugin calls are running (a pod has both its networks) when the terminal's Ctrl-C arrives.
  await run.printed(/ ADD app-\d+ data: 198\.18\./);
  const pid = run.child.pid as number;
  // The terminal sends SIGINT to the whole foreground process group; `npm start` forwards a second one.
  process.kill(-pid, 'SIGINT');
  process.kill(pid, 'SIGINT');
  const { code, signal } = await run.exited;
  const stdout = run.stdout();
  expect({ code, signal, stderr: run.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
  expect(stdout).toMatch(/\nstopped after [\d.]+ s \(stop took [\d.]+ s\)\n/);
  expect(stdout).toMatch(/\ninvariants hold: /);
  // The plugin children are in process groups of their own: the terminal's SIGINT did not reach them.
  expect(stdout).not.toMatch(/SIGINT|error:/);
  expect(existsSync(tempDirOf(stdout))).toBe(false);
  // The API server process is gone with it.
  await expect(fetch(`${serverOf(stdout)}/version`)).rejects.toThrow();
}, 120_000);

test('a reader that goes away (| head) does not crash the sandbox with EPIPE', async () => {
  const run = sandbox(['--nodes', '2']);
  await run.printed(/ ADD app-\d+ /);
  const server = serverOf(run.stdout());
  run.child.stdout?.destroy();
  process.kill(-(run.child.pid as number), 'SIGINT');
  const { code } = await run.exited;
  expect({ code, stderr: run.stderr() }).toEqual({ code: 0, stderr: '' });
  await expect(fetch(`${server}/version`)).rejects.toThrow();
}, 120_000);

test('pods whose ADD fails are shown as failed, torn down, retried after a back-off, and hold nothing', async () => {
  // A pool of two addresses for two nodes that keep up to seven pods each: most ADDs find it exhausted.
  const lines: string[] = [];
  let retried = (): void => undefined;
  const stop = new Promise<void>((resolve) => {
    retried = resolve;
  });
  const failedOnce = new Set<string>();
  const report = await runSandbox({
    plugin: join(root, 'dist', 'whereabouts'),
    apiServer: [process.execPath, join(root, 'src', 'cli', 'apiserver.ts')],
    nodes: 2,
    port: 0,
    durationSeconds: 0,
    retryBackoffMs: 200,
    networks: [{ name: 'tiny', ifName: 'net1', ipam: { range: '198.18.0.0/30' } }],
    live: false,
    write: (text) => {
      for (const line of text.split('\n')) {
        lines.push(line);
        const add = / ADD (app-\d+) tiny: (.*)$/.exec(line);
        if (add === null) continue;
        const [, pod = '', outcome = ''] = add;
        // An ADD of a pod whose earlier ADD failed: the retry.
        if (failedOnce.has(pod)) retried();
        if (outcome.startsWith('error:')) failedOnce.add(pod);
      }
    },
    stop,
  });
  const output = lines.join('\n');
  expect(output).toMatch(/ ADD app-\d+ tiny: error: .*/);
  // The runtime tears a failed sandbox down: its DEL follows.
  expect(output).toMatch(/ DEL app-\d+ tiny: released/);
  expect(report.failedCalls).toBeGreaterThan(0);
  expect(output).toMatch(/\npods: \d+ running, \d+ failed/);
  // Whatever failed holds nothing; the pool holds exactly the running pods.
  expect(report.violations).toEqual([]);
  expect(report.runningPods).toBeLessThanOrEqual(2);
  expect(report.invariants.allocations).toBe(report.runningPods);
}, 120_000);
