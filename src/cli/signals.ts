// How a long-running command learns it should stop, and stops: the first SIGINT (Ctrl-C) or SIGTERM (the
// kubelet stopping the pod) runs its one shutdown sequence (src/lifecycle.ts). Repeats are ignored rather than
// fatal — `npm start` forwards a terminal's Ctrl-C a second time, and a kubelet that loses patience sends
// SIGKILL, not another SIGTERM — so the clean stop that follows always finishes (its own bounds decide how
// long it takes).

import { StopFailed, type Parts } from '../lifecycle.ts';

/** Resolves at the first SIGINT or SIGTERM this process receives from now on. */
export function stopRequested(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.on('SIGINT', () => {
      resolve();
    });
    process.on('SIGTERM', () => {
      resolve();
    });
  });
}

/**
 * Waits for `until` (by default the first SIGINT or SIGTERM), then stops `running`, the last part started
 * first. Every part that failed to stop is written to stderr, named, and the exit status is 1.
 */
export async function runUntilStopped(
  command: string,
  running: Parts,
  until: Promise<void> = stopRequested(),
): Promise<void> {
  await until;
  try {
    await running.stop();
  } catch (e) {
    const failures = e instanceof StopFailed ? e.failures : [{ part: command, error: e }];
    for (const { part, error } of failures)
      process.stderr.write(
        `${command}: ${part} did not stop cleanly: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    process.exitCode = 1;
  }
}
