// The end of a run: the sandbox's invariants (src/sandbox/invariants.ts) checked against what the API server
// holds — unless it is gone, which is then the violation — the final view and summary printed, and the
// report that `whereabouts-ts sandbox` turns into its exit status.

import type { JsonObject } from '../codecs/decode.ts';
import { listObjects, poolRow } from './api-server.ts';
import { checkInvariants, type InvariantReport } from './invariants.ts';
import { runningPod } from './pods.ts';
import { counters } from './progress.ts';
import type { Pod, Run } from './run.ts';
import type { SandboxReport } from './sandbox.ts';
import { renderView } from './view.ts';

const noInvariants = (): InvariantReport => ({
  violations: [],
  duplicates: 0,
  strays: 0,
  allocations: 0,
  reservations: 0,
});

export const emptyReport = (violations: string[]): SandboxReport => ({
  calls: 0,
  failedCalls: 0,
  failedAfterWarmUp: 0,
  interruptedCalls: 0,
  runningPods: 0,
  failedPods: 0,
  invariants: noInvariants(),
  violations,
});

/** What the end of a run found. */
type Check = {
  /** The pods known to run: the pools must hold exactly their addresses. */
  readonly running: readonly Pod[];
  readonly pools: JsonObject[] | undefined;
  readonly invariants: InvariantReport;
  readonly violations: readonly string[];
};

/** Checks the invariants, prints the final view and summary, and returns the report. */
export async function finalReport(run: Run, reason: string, stoppingAt: number): Promise<SandboxReport> {
  const check = await checkRun(run, reason);
  const c = counters(run);
  run.options.write(summary(run, check, c, reason, stoppingAt));
  return {
    calls: run.counts.calls,
    failedCalls: run.counts.failed,
    failedAfterWarmUp: run.counts.failedAfterWarmUp,
    interruptedCalls: run.counts.interrupted,
    runningPods: c.running,
    failedPods: c.failed,
    invariants: check.invariants,
    violations: check.violations,
  };
}

/** The pools and reservations the API server holds against the pods known to run. */
async function checkRun(run: Run, reason: string): Promise<Check> {
  const { server } = run;
  const running = run.pods.filter((p) => p.state === 'running' && !run.uncertain.has(p.container));
  const [pools, reservations] = server.exited()
    ? [undefined, undefined]
    : await Promise.all([
        listObjects(server.url, 'ippools'),
        listObjects(server.url, 'overlappingrangeipreservations'),
      ]);
  if (pools === undefined || reservations === undefined) {
    const why = server.exited() ? reason : 'the API server did not answer';
    return {
      running,
      pools,
      invariants: noInvariants(),
      violations: [`cannot check the invariants: ${why}`],
    };
  }
  const invariants = checkInvariants(running.map(runningPod), pools, reservations, run.uncertain);
  return { running, pools, invariants, violations: [...invariants.violations] };
}

/** The final view, then why and when the run stopped, the calls, the pods and the invariants. */
function summary(
  run: Run,
  check: Check,
  c: ReturnType<typeof counters>,
  reason: string,
  stoppingAt: number,
): string {
  const { counts, options, uncertain, warmUpMs } = run;
  const { running, invariants, violations } = check;
  return [
    options.live ? '' : undefined,
    renderView(check.pools?.map(poolRow) ?? [], run.events, c).trimEnd(),
    '',
    `${reason} after ${((stoppingAt - run.startedAt) / 1000).toFixed(1)} s (stop took ${((Date.now() - stoppingAt) / 1000).toFixed(1)} s)`,
    `plugin calls: ${counts.calls}, failed: ${counts.failed} (${counts.failedAfterWarmUp} after the first ${warmUpMs / 1000} s)` +
      (counts.interrupted > 0 ? `, cut short at stop: ${counts.interrupted}` : ''),
    `pods: ${c.running} running, ${c.failed} failed` +
      (uncertain.size > 0 ? `, ${uncertain.size} in an unknown state` : ''),
    violations.length === 0
      ? `invariants hold: the pools hold exactly the ${running.length} running pods' ${invariants.allocations} addresses, with ${invariants.reservations} reservations, none held twice`
      : `INVARIANTS VIOLATED (${violations.length}):\n${violations.map((v) => `  ${v}`).join('\n')}`,
    `stopped: ${c.running} pods left running in the pools`,
    '',
  ]
    .filter((line) => line !== undefined)
    .join('\n');
}
