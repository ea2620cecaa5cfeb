// One call of the real plugin executable, made as a container runtime makes it: the network's config on
// stdin, the CNI_* variables in the environment, the process in a group of its own (so that the terminal's
// Ctrl-C reaches the sandbox alone, which then stops its calls in order). Each call is counted — failed
// calls in the warm-up apart, calls killed at stop apart — and recorded as an event with what it answered.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { record } from './progress.ts';
import type { CallOutcome, Pod, Run } from './run.ts';
import type { Network } from './sandbox.ts';
import { arrayAt, stringAt } from '../codecs/decode.ts';

type Verb = 'ADD' | 'DEL';

/** Runs the plugin once for a pod's current sandbox on one network. */
export function callPlugin(
  run: Run,
  verb: Verb,
  pod: Pod,
  network: Network,
  attempt = 1,
): Promise<CallOutcome> {
  return new Promise((resolve) => {
    const calledAt = Date.now();
    const child = spawnPlugin(run, verb, pod, network);
    run.children.add(child);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 65_536) stdout += d.toString();
    });
    const finish = (code: number | null, signal: string | null, spawnError?: Error): void => {
      run.children.delete(child);
      // A child is in its own process group only once it runs: one forked in the instant of a Ctrl-C
      // gets the terminal's SIGINT too. It did not fail; the call is made again, as it is idempotent.
      if ((signal === 'SIGINT' || signal === 'SIGTERM') && !run.state.killing && attempt === 1) {
        resolve(callPlugin(run, verb, pod, network, attempt + 1));
        return;
      }
      const outcome = outcomeOf(run, code, signal, stdout, spawnError);
      count(run, outcome, calledAt);
      recordCall(run, verb, pod, network, outcome);
      resolve(outcome);
    };
    child.once('error', (e) => {
      finish(null, null, e);
    });
    child.once('close', (code, signal) => {
      finish(code, signal);
    });
  });
}

/** Starts the plugin process with the network's config on its stdin. */
function spawnPlugin(
  run: Run,
  verb: Verb,
  pod: Pod,
  network: Network,
): ChildProcessByStdio<Writable, Readable, null> {
  const conf = {
    cniVersion: '1.1.0',
    name: network.name,
    type: 'macvlan',
    ipam: {
      type: 'whereabouts',
      kubernetes: { kubeconfig: run.kubeconfig },
      log_level: 'error',
      ...network.ipam,
    },
  };
  const child = spawn(run.options.plugin, [], {
    detached: true,
    stdio: ['pipe', 'pipe', 'ignore'],
    env: {
      PATH: process.env.PATH ?? '',
      CNI_COMMAND: verb,
      CNI_CONTAINERID: pod.container,
      CNI_NETNS: `/var/run/netns/${pod.container}`,
      CNI_IFNAME: network.ifName,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=sandbox;K8S_POD_NAME=${pod.name}`,
    },
  });
  // The plugin may be gone before it read its config (killed at stop): no unhandled EPIPE.
  child.stdin.on('error', () => undefined);
  child.stdin.end(JSON.stringify(conf));
  return child;
}

/** Success, or the error the plugin printed (else its exit status); interrupted when killed at stop. */
function outcomeOf(
  run: Run,
  code: number | null,
  signal: string | null,
  stdout: string,
  spawnError: Error | undefined,
): CallOutcome {
  if (code === 0) return { ok: true, stdout };
  const interrupted = run.state.killing && signal !== null;
  let message = spawnError?.message ?? (signal === null ? `exit ${code}` : `killed by ${signal}`);
  try {
    const error: unknown = JSON.parse(stdout);
    message = stringAt(error, 'details') ?? stringAt(error, 'msg') ?? message;
  } catch {
    // not JSON: keep the exit status
  }
  return { ok: false, message, interrupted };
}

function count(run: Run, outcome: CallOutcome, calledAt: number): void {
  const { counts } = run;
  counts.calls++;
  if (outcome.ok) return;
  if (outcome.interrupted) counts.interrupted++;
  else {
    counts.failed++;
    if (calledAt - run.startedAt >= run.warmUpMs) counts.failedAfterWarmUp++;
  }
}

function recordCall(run: Run, verb: Verb, pod: Pod, network: Network, outcome: CallOutcome): void {
  let text = 'released';
  if (!outcome.ok) text = outcome.interrupted ? 'interrupted at stop' : `error: ${outcome.message}`;
  else if (verb === 'ADD') text = addressesOf(outcome.stdout).join(', ');
  record(run, { at: new Date(), node: pod.node, verb, pod: pod.name, network: network.name, outcome: text });
}

/** The addresses an ADD answered. */
export const addressesOf = (stdout: string): string[] => {
  try {
    return (arrayAt(JSON.parse(stdout), 'ips') ?? []).flatMap((i) => stringAt(i, 'address') ?? []);
  } catch {
    return [];
  }
};
