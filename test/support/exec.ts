// Runs an executable as a container runtime runs a CNI plugin: an environment, the configuration on stdin,
// and the exit code with what it printed.

import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

export const pluginPath = join(import.meta.dirname, '..', '..', 'dist', 'whereabouts');

export type Output = { code: number; stdout: string; stderr: string };

/** `command`: an executable, or an executable and its arguments. */
export function execute(
  command: string | readonly [string, ...string[]],
  env: Record<string, string>,
  stdin: string | Buffer,
  timeoutMs = 60_000,
): Promise<Output> {
  return new Promise((resolve) => {
    const [path, ...args] = typeof command === 'string' ? [command] : command;
    const child = execFile(
      path,
      args,
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
          stdout,
          stderr,
        });
      },
    );
    child.stdin?.on('error', () => undefined); // a plugin may stop reading a hostile stdin early
    child.stdin?.end(stdin);
  });
}

/** The environment of one pod's interface `net1`, as the runtime sets it. */
export const podEnv = (
  command: string,
  pod: string,
  containerId = `sandbox-${pod}`,
  namespace = 'default',
) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: containerId,
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'net1',
  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
});

/** Kills the processes a test started and left running (SIGKILL), and waits until each has exited. */
export async function killAll(children: ChildProcess[]): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
}
