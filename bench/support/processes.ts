// Timing whole processes: wall and CPU time of one child, as GNU time reports them.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export type Timed = {
  readonly wallMs: number;
  readonly cpuMs: number;
  /** Peak resident set size of the child, in MiB. */
  readonly rssMiB: number;
  readonly code: number;
  readonly stdout: string;
  /** The child's own stderr, without GNU time's line. */
  readonly stderr: string;
};

/**
 * Runs `command` under /usr/bin/time, feeding it `stdin`. Wall time is measured here, from spawn to exit
 * (GNU time only reports centiseconds); CPU is user + system of the child itself, from GNU time.
 */
export async function timed(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  stdin = '',
): Promise<Timed> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', command, ...args], {
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  const [code] = (await once(child, 'close')) as [number];
  const wallMs = performance.now() - started;
  const lines = stderr.trim().split('\n');
  const [, user, system, rssKiB] = (lines.at(-1) ?? '').split(' ').map(Number);
  return {
    wallMs,
    cpuMs: ((user ?? NaN) + (system ?? NaN)) * 1000,
    rssMiB: (rssKiB ?? NaN) / 1024,
    code,
    stdout,
    stderr: lines.slice(0, -1).join('\n'),
  };
}

/** Starts an API server process (bench/support/serve*.ts) and waits until its kubeconfig is written. */
export async function serveApi(kubeconfig: string, script = 'serve.ts'): Promise<ChildProcess> {
  const child = spawn(process.execPath, [new URL(`./${script}`, import.meta.url).pathname, kubeconfig], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await untilPrinted(child, 'ready', 'the API server process');
  return child;
}

/** Waits until a child process prints `text` on stdout; fails if it exits first. */
export function untilPrinted(child: ChildProcess, text: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes(text)) resolve();
    });
    child.on('exit', () => {
      reject(new Error(`${what} exited`));
    });
  });
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

/** Sends a command line to a serve*.ts process and returns the next line it prints. */
export function ask(server: ChildProcess, command: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    // An answer (the pools) can span many chunks: it ends at the first newline.
    const onData = (d: Buffer) => {
      answer += d.toString();
      const end = answer.indexOf('\n');
      if (end < 0) return;
      server.stdout?.off('data', onData);
      resolve(answer.slice(0, end).trim());
    };
    server.stdout?.on('data', onData);
    server.stdin?.write(`${command}\n`);
  });
}

/** Runs a process to completion, feeding it stdin; resolves with its exit code and stdout. */
export function runProcess(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number; stdout: string }> {
  const child = spawn(command, args, { env });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.resume();
  child.stdin.end(stdin);
  return once(child, 'close').then(([code]) => ({ code: code as number, stdout }));
}
