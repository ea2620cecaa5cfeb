// The simulated nodes, each a loop that stands in for a kubelet: every so often it starts a sandbox operation
// of one of its pods, but never more than a few at once — while they are all busy it starts nothing
// (backpressure instead of a pile of processes that all time out). At stop the nodes start nothing more, the
// operations in flight get a grace period, and the plugin calls that outlast it are killed.

import { killGroup } from './api-server.ts';
import { nextOperation } from './pods.ts';
import { stopping, wait, type Run } from './run.ts';

/** Starts every node of the run; each settles once the run is stopping. */
export const startNodes = (run: Run): Promise<void>[] =>
  Array.from({ length: run.options.nodes }, (_, i) => runNode(run, `node-${i + 1}`));

/** One simulated node: every so often it starts a sandbox operation, but never more than `maxInFlight`
 *  at once — while they are all busy it waits for one to finish, as a kubelet's pod workers do. */
async function runNode(run: Run, name: string): Promise<void> {
  const mine = new Set<Promise<void>>();
  while (!stopping(run)) {
    await wait(run, 300 + Math.random() * 700);
    // Each operation runs its plugin calls one after the other: one call in flight per operation.
    while (!stopping(run) && mine.size >= run.maxInFlight) await Promise.race([...mine, run.stopped]);
    if (stopping(run)) break;
    const op = nextOperation(run, name);
    if (op === undefined) continue;
    op.pod.busy = true;
    const running = op.run().finally(() => {
      op.pod.busy = false;
      mine.delete(running);
      run.inFlight.delete(running);
    });
    mine.add(running);
    run.inFlight.add(running);
  }
}

/** Waits for the operations in flight, for the grace period at most; then kills their plugin calls. */
export async function drainOperations(run: Run): Promise<void> {
  const { inFlight, options } = run;
  if (inFlight.size === 0) return;
  options.write(`${options.live ? '\n' : ''}stopping: waiting for ${inFlight.size} sandbox operations\n`);
  const graceOver = new Promise<void>((resolve) => setTimeout(resolve, run.stopGraceMs).unref());
  await Promise.race([Promise.all(inFlight), graceOver]);
  if (inFlight.size > 0) {
    run.state.killing = true;
    for (const child of run.children) killGroup(child, 'SIGKILL');
    await Promise.all(inFlight);
  }
}
