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

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkInvariants, type InvariantReport, type RunningPod } from './invariants.ts';
import { renderView, type PoolRow, type SandboxEvent } from './view.ts';
import { normalise, parseCidr } from '../ip/cidr.ts';
import { makeRange, rangeCapacity } from '../ip/range.ts';
import { decodeEntry, rawPool } from '../codecs/ippool.ts';
import { arrayAt, isObject, objectAt, stringAt, type JsonObject } from '../codecs/decode.ts';
import { metaOf } from '../codecs/object-meta.ts';

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

/** Pods one node keeps at most (it deletes one when it has more). */
const podsPerNode = 6;
const group = 'whereabouts.cni.cncf.io/v1alpha1';

type PodState = 'starting' | 'running' | 'failed' | 'stopping';
type Pod = {
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

type CallOutcome = { ok: true; stdout: string } | { ok: false; message: string; interrupted: boolean };

export async function runSandbox(options: SandboxOptions): Promise<SandboxReport> {
  const networks = options.networks ?? defaultNetworks;
  const maxInFlight = options.maxInFlightPerNode ?? 2;
  const retryBackoffMs = options.retryBackoffMs ?? 10_000;
  const warmUpMs = (options.warmUpSeconds ?? 5) * 1000;
  const stopGraceMs = options.stopGraceMs ?? 3000;
  const dir = mkdtempSync(join(tmpdir(), 'whereabouts-sandbox-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const children = new Set<ChildProcess>();
  let server: ChildProcess | undefined;
  const state = { stopping: false, killing: false };
  /** Read through a function: the loops look at it again after every await. */
  const stopping = (): boolean => state.stopping;
  try {
    const started = await startServer(options, kubeconfig, options.stop);
    if (started === undefined) {
      options.write('stopped before the API server was up\n');
      return emptyReport([]);
    }
    server = started.child;
    const url = started.url;
    const serverGone = new Promise<void>((resolve) => {
      started.child.once('exit', () => {
        resolve();
      });
    });
    const serverExited = (): boolean => started.child.exitCode !== null || started.child.signalCode !== null;
    options.write(`embedded API server at ${url}; kubeconfig ${kubeconfig}\n`);

    const events: SandboxEvent[] = [];
    const counts = { calls: 0, failed: 0, failedAfterWarmUp: 0, interrupted: 0 };
    const startedAt = Date.now();
    const record = (event: SandboxEvent): void => {
      events.push(event);
      if (events.length > 200) events.shift();
      if (!options.live)
        options.write(
          `${event.at.toISOString()} ${event.node} ${event.verb} ${event.pod} ${event.network}: ${event.outcome}\n`,
        );
    };

    /** Runs the plugin once, as a container runtime does: in its own process group, so that the terminal's
     *  Ctrl-C reaches the sandbox alone, which then stops its calls in order. */
    const call = (verb: 'ADD' | 'DEL', pod: Pod, network: Network, attempt = 1): Promise<CallOutcome> =>
      new Promise((resolve) => {
        const conf = {
          cniVersion: '1.1.0',
          name: network.name,
          type: 'macvlan',
          ipam: { type: 'whereabouts', kubernetes: { kubeconfig }, log_level: 'error', ...network.ipam },
        };
        const calledAt = Date.now();
        const child = spawn(options.plugin, [], {
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
        children.add(child);
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => {
          if (stdout.length < 65_536) stdout += d.toString();
        });
        // The plugin may be gone before it read its config (killed at stop): no unhandled EPIPE.
        child.stdin.on('error', () => undefined);
        child.stdin.end(JSON.stringify(conf));
        const finish = (code: number | null, signal: string | null, spawnError?: Error): void => {
          children.delete(child);
          // A child is in its own process group only once it runs: one forked in the instant of a Ctrl-C
          // gets the terminal's SIGINT too. It did not fail; the call is made again, as it is idempotent.
          if ((signal === 'SIGINT' || signal === 'SIGTERM') && !state.killing && attempt === 1) {
            resolve(call(verb, pod, network, attempt + 1));
            return;
          }
          counts.calls++;
          let outcome: CallOutcome;
          if (code === 0) outcome = { ok: true, stdout };
          else {
            const interrupted = state.killing && signal !== null;
            let message = spawnError?.message ?? (signal === null ? `exit ${code}` : `killed by ${signal}`);
            try {
              const error: unknown = JSON.parse(stdout);
              message = stringAt(error, 'details') ?? stringAt(error, 'msg') ?? message;
            } catch {
              // not JSON: keep the exit status
            }
            outcome = { ok: false, message, interrupted };
            if (interrupted) counts.interrupted++;
            else {
              counts.failed++;
              if (calledAt - startedAt >= warmUpMs) counts.failedAfterWarmUp++;
            }
          }
          let text = 'released';
          if (!outcome.ok) text = outcome.interrupted ? 'interrupted at stop' : `error: ${outcome.message}`;
          else if (verb === 'ADD') text = addressesOf(outcome.stdout).join(', ');
          record({
            at: new Date(),
            node: pod.node,
            verb,
            pod: pod.name,
            network: network.name,
            outcome: text,
          });
          resolve(outcome);
        };
        child.once('error', (e) => {
          finish(null, null, e);
        });
        child.once('close', (code, signal) => {
          finish(code, signal);
        });
      });

    const pods: Pod[] = [];
    /** Pods whose state nobody can know: a call was cut short at stop, or a DEL failed and stays failed. */
    const uncertain = new Set<string>();
    let serial = 0;
    const backoff = (): number => Date.now() + retryBackoffMs * (1 + Math.random() * 0.5);

    /** DELs every network of the pod's current sandbox; true when all succeeded. */
    const teardown = async (pod: Pod): Promise<boolean> => {
      let ok = true;
      for (const network of networks) {
        const outcome = await call('DEL', pod, network);
        if (!outcome.ok) {
          ok = false;
          if (outcome.interrupted) break;
        }
      }
      if (ok) {
        pod.needsTeardown = false;
        pod.addresses = new Map();
        uncertain.delete(pod.container);
      } else {
        pod.needsTeardown = true;
        uncertain.add(pod.container);
      }
      return ok;
    };

    /** Starts (or restarts) a pod's sandbox: ADD on every network in turn, as Multus calls its delegates. */
    const add = async (pod: Pod): Promise<void> => {
      if (pod.needsTeardown && !(await teardown(pod))) {
        pod.retryAt = backoff();
        return;
      }
      if (pod.failures > 0) pod.container = containerId(pod, serial);
      pod.state = 'starting';
      const addresses = new Map<string, string[]>();
      for (const network of networks) {
        const outcome = await call('ADD', pod, network);
        if (outcome.ok) {
          addresses.set(network.ifName, addressesOf(outcome.stdout));
          continue;
        }
        if (outcome.interrupted) {
          uncertain.add(pod.container);
          pod.state = 'failed';
          return;
        }
        // The runtime tears a failed sandbox down before it tries again: nothing it got may stay held.
        pod.state = 'failed';
        pod.failures++;
        await teardown(pod);
        pod.retryAt = backoff();
        return;
      }
      pod.addresses = addresses;
      pod.state = 'running';
      pod.failures = 0;
    };

    const remove = async (pod: Pod): Promise<void> => {
      pod.state = 'stopping';
      if (await teardown(pod)) pods.splice(pods.indexOf(pod), 1);
      else pod.retryAt = backoff();
    };

    /** The next sandbox operation of a node, or undefined when it has nothing to do. */
    const next = (node: string): { pod: Pod; run: () => Promise<void> } | undefined => {
      const now = Date.now();
      const mine = pods.filter((p) => p.node === node);
      const idle = mine.filter((p) => !p.busy);
      const due = idle.find((p) => (p.state === 'failed' || p.state === 'stopping') && p.retryAt <= now);
      if (due !== undefined)
        return { pod: due, run: () => (due.state === 'stopping' ? remove(due) : add(due)) };
      const deletable = idle.filter((p) => p.state === 'running' || p.state === 'failed');
      if (deletable.length > 0 && (mine.length > podsPerNode || Math.random() < 0.35)) {
        const pod = deletable[Math.floor(Math.random() * deletable.length)] as Pod;
        // A failed pod whose sandbox is torn down holds nothing: deleting it calls no plugin.
        if (pod.state === 'failed' && !pod.needsTeardown)
          return {
            pod,
            run: () => {
              pods.splice(pods.indexOf(pod), 1);
              return Promise.resolve();
            },
          };
        return { pod, run: () => remove(pod) };
      }
      if (mine.length > podsPerNode) return undefined;
      serial++;
      const pod: Pod = {
        node,
        name: `app-${serial}`,
        container: '',
        state: 'starting',
        busy: false,
        retryAt: 0,
        failures: 0,
        needsTeardown: false,
        addresses: new Map(),
      };
      pod.container = containerId(pod, serial);
      pods.push(pod);
      return { pod, run: () => add(pod) };
    };

    // Waits that end early when the run stops.
    let wakeAll = (): void => undefined;
    const stopped = new Promise<void>((resolve) => {
      wakeAll = resolve;
    });
    const wait = async (ms: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
      clearTimeout(timer);
    };

    const inFlight = new Set<Promise<void>>();
    /** One simulated node: every so often it starts a sandbox operation, but never more than `maxInFlight`
     *  at once — while they are all busy it waits for one to finish, as a kubelet's pod workers do. */
    const node = async (name: string): Promise<void> => {
      const mine = new Set<Promise<void>>();
      while (!stopping()) {
        await wait(300 + Math.random() * 700);
        // Each operation runs its plugin calls one after the other: one call in flight per operation.
        while (!stopping() && mine.size >= maxInFlight) await Promise.race([...mine, stopped]);
        if (stopping()) break;
        const op = next(name);
        if (op === undefined) continue;
        op.pod.busy = true;
        const running = op.run().finally(() => {
          op.pod.busy = false;
          mine.delete(running);
          inFlight.delete(running);
        });
        mine.add(running);
        inFlight.add(running);
      }
    };

    const poolRows = async (): Promise<PoolRow[] | undefined> => {
      const pools = await listObjects(url, 'ippools');
      return pools?.map(poolRow);
    };
    const counters = () => ({
      running: pods.filter((p) => p.state === 'running').length,
      starting: pods.filter((p) => p.state === 'starting').length,
      failed: pods.filter((p) => p.state === 'failed').length,
      calls: counts.calls,
      failedCalls: counts.failed,
      failedPods: pods
        .filter((p) => p.state === 'failed')
        .map((p) => ({
          name: p.name,
          node: p.node,
          failures: p.failures,
          retryInMs: p.retryAt - Date.now(),
        })),
    });
    let drawing = false;
    const timer = setInterval(() => {
      if (!options.live || drawing) return;
      drawing = true;
      void poolRows()
        .then((rows) => {
          if (!state.stopping)
            options.write(`\u001b[H\u001b[2J${renderView(rows ?? [], events, counters())}`);
        })
        .finally(() => (drawing = false));
    }, 1000);

    const stopRequested = new Promise<string>((resolve) => {
      void options.stop?.then(() => {
        resolve('stopped');
      });
      void serverGone.then(() => {
        resolve('the API server process exited');
      });
      if (options.durationSeconds > 0)
        setTimeout(() => {
          resolve('done');
        }, options.durationSeconds * 1000).unref();
    });
    const nodes = Array.from({ length: options.nodes }, (_, i) => node(`node-${i + 1}`));
    const reason = await stopRequested;
    const stoppingAt = Date.now();
    state.stopping = true;
    clearInterval(timer);
    wakeAll();
    await Promise.all(nodes);
    if (inFlight.size > 0) {
      options.write(`${options.live ? '\n' : ''}stopping: waiting for ${inFlight.size} sandbox operations\n`);
      const graceOver = new Promise<void>((resolve) => setTimeout(resolve, stopGraceMs).unref());
      await Promise.race([Promise.all(inFlight), graceOver]);
      if (inFlight.size > 0) {
        state.killing = true;
        for (const child of children) killGroup(child, 'SIGKILL');
        await Promise.all(inFlight);
      }
    }

    const running = pods.filter((p) => p.state === 'running' && !uncertain.has(p.container));
    const violations: string[] = [];
    let invariants: InvariantReport = {
      violations: [],
      duplicates: 0,
      strays: 0,
      allocations: 0,
      reservations: 0,
    };
    const [pools, reservations] = serverExited()
      ? [undefined, undefined]
      : await Promise.all([listObjects(url, 'ippools'), listObjects(url, 'overlappingrangeipreservations')]);
    if (pools === undefined || reservations === undefined) {
      violations.push(
        `cannot check the invariants: ${serverExited() ? reason : 'the API server did not answer'}`,
      );
    } else {
      invariants = checkInvariants(running.map(runningPod), pools, reservations, uncertain);
      violations.push(...invariants.violations);
    }
    const c = counters();
    options.write(
      [
        options.live ? '' : undefined,
        renderView(pools?.map(poolRow) ?? [], events, c).trimEnd(),
        '',
        `${reason} after ${((stoppingAt - startedAt) / 1000).toFixed(1)} s (stop took ${((Date.now() - stoppingAt) / 1000).toFixed(1)} s)`,
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
        .join('\n'),
    );
    return {
      calls: counts.calls,
      failedCalls: counts.failed,
      failedAfterWarmUp: counts.failedAfterWarmUp,
      interruptedCalls: counts.interrupted,
      runningPods: c.running,
      failedPods: c.failed,
      invariants,
      violations,
    };
  } finally {
    for (const child of children) killGroup(child, 'SIGKILL');
    if (server !== undefined) await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

const emptyReport = (violations: string[]): SandboxReport => ({
  calls: 0,
  failedCalls: 0,
  failedAfterWarmUp: 0,
  interruptedCalls: 0,
  runningPods: 0,
  failedPods: 0,
  invariants: { violations: [], duplicates: 0, strays: 0, allocations: 0, reservations: 0 },
  violations,
});

const containerId = (pod: Pod, serial: number): string =>
  `sandbox${serial}${Math.random().toString(16).slice(2, 10)}${pod.failures > 0 ? `r${pod.failures}` : ''}`;

const addressesOf = (stdout: string): string[] => {
  try {
    return (arrayAt(JSON.parse(stdout), 'ips') ?? []).flatMap((i) => stringAt(i, 'address') ?? []);
  } catch {
    return [];
  }
};

const runningPod = (pod: Pod): RunningPod => ({
  podRef: `sandbox/${pod.name}`,
  containerId: pod.container,
  addresses: pod.addresses,
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Starts the API server process and waits for the line that names its URL; undefined when stopped first. */
async function startServer(
  options: SandboxOptions,
  kubeconfig: string,
  stop: Promise<unknown> | undefined,
): Promise<{ child: ChildProcess; url: string } | undefined> {
  const [command, ...args] = options.apiServer;
  // Its own process group: the terminal's Ctrl-C reaches the sandbox, which stops the server last.
  const child = spawn(
    command,
    [...args, '--port', String(options.port), '--kubeconfig', kubeconfig, '--stop-on-stdin-end'],
    { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stdin.on('error', () => undefined);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let stdout = '';
  const url = await new Promise<string | undefined>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const found = /embedded API server at (\S+)/.exec(stdout)?.[1];
      if (found !== undefined && stdout.includes('\n', stdout.indexOf(found))) resolve(found);
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`the API server process exited (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    child.once('error', reject);
    void stop?.then(() => {
      resolve(undefined);
    });
    setTimeout(() => {
      reject(new Error('the API server process did not start within 120 s'));
    }, 120_000).unref();
  }).catch(async (e: unknown) => {
    await stopServer(child);
    throw e;
  });
  if (url === undefined) {
    await stopServer(child);
    return undefined;
  }
  child.stdout.resume();
  return { child, url };
}

/** Closes the server's stdin (it stops on that) and waits for it; SIGKILL when it takes too long. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  child.stdin?.end();
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => {
    killGroup(child, 'SIGKILL');
  }, 2000);
  await exited;
  clearTimeout(timer);
}

/** Every object of a whereabouts kind, in all namespaces; undefined when the server does not answer. */
async function listObjects(url: string, plural: string): Promise<JsonObject[] | undefined> {
  try {
    const response = await fetch(`${url}/apis/${group}/${plural}`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return undefined;
    return arrayAt(await response.json(), 'items')?.filter(isObject);
  } catch {
    return undefined;
  }
}

function poolRow(object: JsonObject): PoolRow {
  const { name } = metaOf(object);
  const range = stringAt(objectAt(object, 'spec'), 'range') ?? '';
  const pool = rawPool(object);
  const cidr = parseCidr(range);
  let used = 0;
  if (pool.ok)
    for (const [key, value] of Object.entries(pool.value.entries))
      if (decodeEntry(pool.value, key, value) !== undefined) used++;
  return {
    name,
    range,
    used,
    capacity: cidr === undefined ? 0n : rangeCapacity(makeRange(normalise(cidr), [])),
  };
}
