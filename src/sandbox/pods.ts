// The simulated pods' lifecycle, as a kubelet and its container runtime drive it: a new pod's sandbox is
// ADDed on every network in turn (as Multus calls its delegates); a failed ADD is torn down (DEL, as the
// runtime does after a failed RunPodSandbox), the pod shown as failed and retried after the pod worker's
// back-off, in a new sandbox; a deleted pod is DELed on every network, and retried while a DEL fails. What a
// node does next is chosen here too: a retry that is due first, else now and then a deletion (always when
// it holds too many pods), else a new pod.

import { addressesOf, callPlugin } from './plugin-call.ts';
import type { Pod, Run } from './run.ts';
import type { RunningPod } from './invariants.ts';

/** Pods one node keeps at most (it deletes one when it has more). */
const podsPerNode = 6;

/** A sandbox operation of one pod; nothing else runs for the pod until it is done. */
export type Operation = { readonly pod: Pod; readonly run: () => Promise<void> };

/** When a failed pod or DEL is tried again: the back-off, jittered. */
const backoff = (run: Run): number => Date.now() + run.retryBackoffMs * (1 + Math.random() * 0.5);

/** DELs every network of the pod's current sandbox; true when all succeeded. */
async function teardown(run: Run, pod: Pod): Promise<boolean> {
  let ok = true;
  for (const network of run.networks) {
    const outcome = await callPlugin(run, 'DEL', pod, network);
    if (!outcome.ok) {
      ok = false;
      if (outcome.interrupted) break;
    }
  }
  if (ok) {
    pod.needsTeardown = false;
    pod.addresses = new Map();
    run.uncertain.delete(pod.container);
  } else {
    pod.needsTeardown = true;
    run.uncertain.add(pod.container);
  }
  return ok;
}

/** Starts (or restarts) a pod's sandbox: ADD on every network in turn, as Multus calls its delegates. */
async function addPod(run: Run, pod: Pod): Promise<void> {
  if (pod.needsTeardown && !(await teardown(run, pod))) {
    pod.retryAt = backoff(run);
    return;
  }
  if (pod.failures > 0) pod.container = containerId(pod, run.serial);
  pod.state = 'starting';
  const addresses = new Map<string, string[]>();
  for (const network of run.networks) {
    const outcome = await callPlugin(run, 'ADD', pod, network);
    if (outcome.ok) {
      addresses.set(network.ifName, addressesOf(outcome.stdout));
      continue;
    }
    if (outcome.interrupted) {
      run.uncertain.add(pod.container);
      pod.state = 'failed';
      return;
    }
    // The runtime tears a failed sandbox down before it tries again: nothing it got may stay held.
    pod.state = 'failed';
    pod.failures++;
    await teardown(run, pod);
    pod.retryAt = backoff(run);
    return;
  }
  pod.addresses = addresses;
  pod.state = 'running';
  pod.failures = 0;
}

/** Deletes a pod: DEL on every network; it is gone once they all succeeded, else tried again later. */
async function removePod(run: Run, pod: Pod): Promise<void> {
  pod.state = 'stopping';
  if (await teardown(run, pod)) forget(run, pod);
  else pod.retryAt = backoff(run);
}

const forget = (run: Run, pod: Pod): void => {
  run.pods.splice(run.pods.indexOf(pod), 1);
};

/** The next sandbox operation of a node, or undefined when it has nothing to do. */
export function nextOperation(run: Run, node: string): Operation | undefined {
  const now = Date.now();
  const mine = run.pods.filter((p) => p.node === node);
  const idle = mine.filter((p) => !p.busy);
  const due = idle.find((p) => (p.state === 'failed' || p.state === 'stopping') && p.retryAt <= now);
  if (due !== undefined)
    return { pod: due, run: () => (due.state === 'stopping' ? removePod(run, due) : addPod(run, due)) };
  const deletable = idle.filter((p) => p.state === 'running' || p.state === 'failed');
  if (deletable.length > 0 && (mine.length > podsPerNode || Math.random() < 0.35)) {
    const pod = deletable[Math.floor(Math.random() * deletable.length)] as Pod;
    // A failed pod whose sandbox is torn down holds nothing: deleting it calls no plugin.
    if (pod.state === 'failed' && !pod.needsTeardown)
      return {
        pod,
        run: () => {
          forget(run, pod);
          return Promise.resolve();
        },
      };
    return { pod, run: () => removePod(run, pod) };
  }
  if (mine.length > podsPerNode) return undefined;
  const pod = newPod(run, node);
  return { pod, run: () => addPod(run, pod) };
}

/** A new pod on a node, not started yet. */
function newPod(run: Run, node: string): Pod {
  run.serial++;
  const pod: Pod = {
    node,
    name: `app-${run.serial}`,
    container: '',
    state: 'starting',
    busy: false,
    retryAt: 0,
    failures: 0,
    needsTeardown: false,
    addresses: new Map(),
  };
  pod.container = containerId(pod, run.serial);
  run.pods.push(pod);
  return pod;
}

const containerId = (pod: Pod, serial: number): string =>
  `sandbox${serial}${Math.random().toString(16).slice(2, 10)}${pod.failures > 0 ? `r${pod.failures}` : ''}`;

/** A running pod as the invariant check takes it. */
export const runningPod = (pod: Pod): RunningPod => ({
  podRef: `sandbox/${pod.name}`,
  containerId: pod.container,
  addresses: pod.addresses,
});
