// The state of one sandbox run, in one record passed to every part of it (the nodes, the plugin calls, the
// counters, the stop and the report): the settings with their defaults filled in, the simulated pods, the
// plugin processes in flight, the counters and the latest events, and the run's stop — a flag the loops read
// again after every await, and a promise that ends their waits early.

import type { ChildProcess } from 'node:child_process';
import type { ApiServer } from './api-server.ts';
import type { Network, SandboxOptions } from './sandbox.ts';
import type { SandboxEvent } from './view.ts';

type PodState = 'starting' | 'running' | 'failed' | 'stopping';

/** A simulated pod, as its node's kubelet knows it. */
export type Pod = {
  readonly node: string;
  readonly name: string;
  /** The current sandbox's container ID: a retry after a failure is a new sandbox. */
  container: string;
  state: PodState;
  /** A sandbox operation (ADD, DEL) runs for it: nothing else may start. */
  busy: boolean;
  /** When a failed pod (or a failed DEL) is tried again. */
  retryAt: number;
  failures: number;
  /** A DEL of the current container failed: it must succeed before anything else. */
  needsTeardown: boolean;
  /** Interface → addresses its ADD answered. */
  addresses: Map<string, string[]>;
};

/** How one plugin call ended. */
export type CallOutcome = { ok: true; stdout: string } | { ok: false; message: string; interrupted: boolean };

/** The plugin calls so far. */
export type Counts = { calls: number; failed: number; failedAfterWarmUp: number; interrupted: number };

export type Run = {
  readonly options: SandboxOptions;
  readonly kubeconfig: string;
  readonly server: ApiServer;
  readonly networks: readonly Network[];
  readonly maxInFlight: number;
  readonly retryBackoffMs: number;
  readonly warmUpMs: number;
  readonly stopGraceMs: number;
  /** When the simulation started: once the API server was up. */
  readonly startedAt: number;
  /** The plugin processes running now. */
  readonly children: Set<ChildProcess>;
  /** `stopping`: nothing new starts; `killing`: the calls still in flight are being killed. */
  readonly state: { stopping: boolean; killing: boolean };
  /** Settles when the run stops: every wait ends early. */
  readonly stopped: Promise<void>;
  readonly wakeAll: () => void;
  /** The latest events, for the view. */
  readonly events: SandboxEvent[];
  readonly counts: Counts;
  readonly pods: Pod[];
  /** Pods whose state nobody can know: a call was cut short at stop, or a DEL failed and stays failed. */
  readonly uncertain: Set<string>;
  /** The last pod number given out. */
  serial: number;
  /** The sandbox operations running now, on every node. */
  readonly inFlight: Set<Promise<void>>;
};

/** A run's state as the simulation starts: the API server is up, nothing else has happened. */
export function newRun(
  options: SandboxOptions,
  kubeconfig: string,
  server: ApiServer,
  children: Set<ChildProcess>,
  networks: readonly Network[],
): Run {
  let wakeAll = (): void => undefined;
  const stopped = new Promise<void>((resolve) => {
    wakeAll = resolve;
  });
  return {
    options,
    kubeconfig,
    server,
    networks,
    maxInFlight: options.maxInFlightPerNode ?? 2,
    retryBackoffMs: options.retryBackoffMs ?? 10_000,
    warmUpMs: (options.warmUpSeconds ?? 5) * 1000,
    stopGraceMs: options.stopGraceMs ?? 3000,
    startedAt: Date.now(),
    children,
    state: { stopping: false, killing: false },
    stopped,
    wakeAll,
    events: [],
    counts: { calls: 0, failed: 0, failedAfterWarmUp: 0, interrupted: 0 },
    pods: [],
    uncertain: new Set(),
    serial: 0,
    inFlight: new Set(),
  };
}

/** Whether the run is stopping. Read through a function: the loops look at it again after every await. */
export const stopping = (run: Run): boolean => run.state.stopping;

/** Waits that end early when the run stops. */
export async function wait(run: Run, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([run.stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
