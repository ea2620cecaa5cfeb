// `whereabouts-ts sandbox` (npm start): the whole system on one machine with nothing else installed — the
// embedded API server with the CRDs (in a process of its own, so that the simulation cannot starve it),
// simulated nodes that create and delete pods and run the real plugin executable for each as a kubelet and
// its container runtime would, and a live view of the pools.
//
// What keeps it standing on a loaded machine is what keeps a kubelet standing: a node runs at most a few
// plugin calls at once and starts nothing new while they are busy (backpressure instead of a pile of
// processes that all time out); one sandbox operation per pod at a time, so a pod is DEL'd only after its
// ADD has finished; a failed ADD is torn down (DEL, as the runtime does after a failed RunPodSandbox), the
// pod is shown as failed and retried after the pod worker's back-off. At the end it checks its own
// invariants (src/sandbox/invariants.ts) against what the API server holds, and says so.
//
// The parts, each in a file of its own: the API server process (api-server.ts), the run's state
// (run.ts), the simulated nodes and their stop (nodes.ts), the pods' lifecycle (pods.ts), one plugin call
// (plugin-call.ts), the events, counters and live view (progress.ts, view.ts), and the end of the run
// (report.ts). This file puts them together: start the server, run the nodes until the run should stop, stop
// them, report; whatever happens, no process and no temporary directory is left behind.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killGroup, startServer, stopServer, watchServer } from './api-server.ts';
import type { InvariantReport } from './invariants.ts';
import { drainOperations, startNodes } from './nodes.ts';
import { startLiveView } from './progress.ts';
import { emptyReport, finalReport } from './report.ts';
import { newRun, type Run } from './run.ts';

export type Network = {
  readonly name: string;
  readonly ifName: string;
  /** The ipam section less `type` and `kubernetes`. */
  readonly ipam: Readonly<Record<string, unknown>>;
};

export type SandboxOptions = {
  readonly plugin: string;
  /** The command that runs the API server (`whereabouts-ts apiserver`); the sandbox adds where and how. */
  readonly apiServer: readonly [string, ...string[]];
  readonly nodes: number;
  readonly port: number;
  /** Stop by itself after this many seconds (0: only when `stop` settles). */
  readonly durationSeconds: number;
  /** Settles when the run should end (Ctrl-C). */
  readonly stop?: Promise<unknown>;
  /** Plugin calls one simulated node runs at once. */
  readonly maxInFlightPerNode?: number;
  /** Before a failed pod is tried again: the kubelet pod worker's back-off after an error (10 s, jittered). */
  readonly retryBackoffMs?: number;
  /** Failed calls in the first seconds are counted apart (the pools are created then). */
  readonly warmUpSeconds?: number;
  /** How long a stop waits for the plugin calls in flight before it kills them. */
  readonly stopGraceMs?: number;
  readonly networks?: readonly Network[];
  /** Redraw a table in place (a terminal) or print one line per event. */
  readonly live: boolean;
  readonly write: (text: string) => void;
};

export type SandboxReport = {
  readonly calls: number;
  readonly failedCalls: number;
  readonly failedAfterWarmUp: number;
  /** Calls killed because they outlasted the stop's grace period. */
  readonly interruptedCalls: number;
  readonly runningPods: number;
  readonly failedPods: number;
  readonly invariants: InvariantReport;
  /** The invariant violations, plus the reason when the check could not run. */
  readonly violations: readonly string[];
};

/** The networks the simulated pods attach to: a small pool that fills up, and a dual-stack one. */
export const defaultNetworks: readonly Network[] = [
  {
    name: 'storage',
    ifName: 'net1',
    ipam: { range: '198.18.0.0/27', exclude: ['198.18.0.1'], gateway: '198.18.0.1' },
  },
  {
    name: 'data',
    ifName: 'net2',
    ipam: { ipRanges: [{ range: '198.18.16.0/22' }, { range: '2001:db8:16::/64' }] },
  },
];

export async function runSandbox(options: SandboxOptions): Promise<SandboxReport> {
  const dir = mkdtempSync(join(tmpdir(), 'whereabouts-sandbox-'));
  const kubeconfig = join(dir, 'kubeconfig');
  /** The plugin processes running now: whatever happens, none outlives the run. */
  const children = new Set<ChildProcess>();
  let server: ChildProcess | undefined;
  try {
    const started = await startServer(options, kubeconfig, options.stop);
    if (started === undefined) {
      options.write('stopped before the API server was up\n');
      return emptyReport([]);
    }
    server = started.child;
    const api = watchServer(started);
    options.write(`embedded API server at ${api.url}; kubeconfig ${kubeconfig}\n`);
    return await simulate(newRun(options, kubeconfig, api, children, options.networks ?? defaultNetworks));
  } finally {
    for (const child of children) killGroup(child, 'SIGKILL');
    if (server !== undefined) await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the nodes until the run should stop, stops them, and reports. */
async function simulate(run: Run): Promise<SandboxReport> {
  const view = startLiveView(run);
  const stopRequested = whenToStop(run);
  const nodes = startNodes(run);
  const reason = await stopRequested;
  const stoppingAt = Date.now();
  run.state.stopping = true;
  clearInterval(view);
  run.wakeAll();
  await Promise.all(nodes);
  await drainOperations(run);
  return finalReport(run, reason, stoppingAt);
}

/** Why the run stops, once it should: Ctrl-C, the API server gone, or the duration over. */
const whenToStop = (run: Run): Promise<string> =>
  new Promise<string>((resolve) => {
    const { options } = run;
    void options.stop?.then(() => {
      resolve('stopped');
    });
    void run.server.gone.then(() => {
      resolve('the API server process exited');
    });
    if (options.durationSeconds > 0)
      setTimeout(() => {
        resolve('done');
      }, options.durationSeconds * 1000).unref();
  });
