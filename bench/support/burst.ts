// What the burst scenarios share: agent processes (one per simulated node) and a wave of plugin processes,
// as a roll-out starts pods: each simulated node runs its pods' plugin processes the way a kubelet on its
// own cores would (test/support/kubelet.ts), so that the wave measures the IPAM, not this machine.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { result } from '../report.ts';
import { onNodes, type Nodes } from '../../test/support/kubelet.ts';
import { ask, runProcess, untilPrinted } from './processes.ts';

export const root = join(import.meta.dirname, '..', '..');
export const plugin = join(root, 'dist', 'whereabouts');

/** The command line from the sources (Node strips the types as it loads them). */
export const cliSources = join(root, 'src', 'cli', 'main.ts');
/** The command line as the image ships it: one ES module bundled by `npm run build`. */
export const cliBundle = join(root, 'dist', 'whereabouts-ts.mjs');

/** `whereabouts-ts <args>` as a process of its own, from the sources unless `entry` names the bundle. */
export const cliProcess = (args: readonly string[], entry = cliSources): ChildProcess =>
  spawn(process.execPath, [entry, ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });

export async function startAgentProcess(
  socket: string,
  kubeconfig: string,
  node: string,
  stateDir: string,
  entry = cliSources,
  extraArgs: readonly string[] = [],
): Promise<ChildProcess> {
  const child = cliProcess(
    [
      'agent',
      '--socket',
      socket,
      '--kubeconfig',
      kubeconfig,
      '--node-name',
      node,
      '--metrics-port',
      '0',
      '--state-dir',
      stateDir,
      ...extraArgs,
    ],
    entry,
  );
  // The ready line names the agent's metrics server (`untilAgentSynced` asks its /readyz).
  let printed = '';
  const onData = (d: Buffer) => {
    printed += d.toString();
    const url = /agent ready: .*metrics (\S+)/.exec(printed)?.[1];
    if (url === undefined) return;
    agentMetricsUrls.set(child, url);
    child.stdout?.off('data', onData);
  };
  child.stdout?.on('data', onData);
  await untilPrinted(child, 'agent ready', `the agent of ${node}`);
  return child;
}

/** The metrics server (`http://127.0.0.1:<port>`) of each agent process `startAgentProcess` started. */
const agentMetricsUrls = new WeakMap<ChildProcess, string>();

/**
 * Waits until an agent process of `startAgentProcess` answers its /readyz with 200: its watch caches have
 * synced and its restart reconcile is done. Fails after `timeoutMs` or when the agent exits.
 */
export async function untilAgentSynced(agent: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const url = agentMetricsUrls.get(agent);
  if (url === undefined) throw new Error('untilAgentSynced: not an agent process of startAgentProcess');
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`the agent at ${url} exited`);
    const status = await fetch(`${url}/readyz`).then(
      (r) => {
        void r.body?.cancel();
        return r.status;
      },
      () => 0,
    );
    if (status === 200) return;
    if (performance.now() > deadline)
      throw new Error(`the agent at ${url} is not ready after ${timeoutMs / 1000} s (/readyz ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `addresses[i]`: what pod i got ('' when its ADD failed). */
export type Wave = { seconds: number; addresses: string[]; failures: string[] };

/**
 * `pods` plugin processes, pod i with the config `conf(i)` on node i % nodes.count, each node running at
 * most `nodes.perNode` at once (the next starts when one ends); the wall time and the addresses handed out.
 */
export async function wave(
  command: string,
  pods: number,
  conf: (pod: number) => string,
  nodes: Nodes,
): Promise<Wave> {
  const started = performance.now();
  const outputs = await onNodes(nodes, pods, (i) =>
    runProcess(
      plugin,
      [],
      {
        CNI_COMMAND: command,
        CNI_CONTAINERID: `burst-${i}`,
        CNI_NETNS: '/var/run/netns/burst',
        CNI_IFNAME: 'net1',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=burst;K8S_POD_NAME=pod-${i}`,
      },
      conf(i),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const addresses = outputs.map((o) =>
    o.code === 0 && o.stdout !== '' && command === 'ADD'
      ? ((JSON.parse(o.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '')
      : '',
  );
  // What failed, as the runtime would log it: the plugin's error code and message.
  const failures = outputs
    .filter((o) => o.code !== 0)
    .map((o) => {
      try {
        const e = JSON.parse(o.stdout) as { code: number; msg: string; details?: string };
        return `code ${e.code}: ${e.msg} (${(e.details ?? '').slice(0, 100)})`;
      } catch {
        return `exit ${o.code} without a CNI error`;
      }
    });
  return { seconds, addresses, failures };
}

/** The failed plugin calls of a burst, ADD and DEL waves together. */
export const failuresOf = ({ add, del }: Burst): number => add.failures.length + del.failures.length;

/**
 * Prints `RESULT <name> <value> <unit>` unless a run it comes from had failures: then a `#` line with the
 * figure and why it is not a result (a run with failures measures timeouts and retries, not the IPAM).
 */
export function resultUnlessFailed(
  name: string,
  value: number,
  unit: string,
  failed: readonly (readonly [string, number])[],
): void {
  const runs = failed.filter(([, n]) => n > 0);
  if (runs.length === 0) {
    result(name, value, unit);
    return;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toPrecision(4);
  console.log(
    `# ${name} ${shown} ${unit}: not a result, its run had failures (${runs.map(([run, n]) => `${run}: ${n}`).join(', ')})`,
  );
}

/** Prints the failures of a burst's ADD and DEL waves, grouped, and its duplicates, as `#` lines. */
export function printFailures(mode: string, { add, del, duplicates }: Burst): void {
  const failures = [...add.failures.map((f) => `ADD ${f}`), ...del.failures.map((f) => `DEL ${f}`)];
  console.log(
    `# ${mode}: ADD ${add.seconds.toFixed(2)} s, DEL ${del.seconds.toFixed(2)} s, failures ${failures.length}, duplicates ${duplicates.length}`,
  );
  // Grouped by kind: numbers (offsets, nodes, ports, change counts) do not split a group.
  const counts = new Map<string, number>();
  for (const f of failures.map((f) => f.replace(/\d+/g, 'N'))) counts.set(f, (counts.get(f) ?? 0) + 1);
  for (const [f, n] of counts) console.log(`#   ${n} × ${f}`);
  for (const d of duplicates) console.log(`#   duplicate ${d}`);
}

/** Every address handed to more than one pod: `address: pod-1 (in pool …), pod-7 (in pool …)`. */
function duplicatesIn(addresses: readonly string[], pools: Record<string, PoolSpec>): string[] {
  const pods = new Map<string, number[]>();
  addresses.forEach((a, i) => {
    if (a !== '') pods.set(a, [...(pods.get(a) ?? []), i]);
  });
  const poolsOf = (pod: number) =>
    Object.entries(pools)
      .filter(([, p]) => Object.values(p.allocations).some((e) => e.podref === `burst/pod-${pod}`))
      .map(([name]) => name);
  return [...pods]
    .filter(([, holders]) => holders.length > 1)
    .map(
      ([address, holders]) =>
        `${address}: ${holders.map((i) => `pod-${i} (in ${poolsOf(i).join(', ') || 'no pool'})`).join(', ')}`,
    );
}

type PoolSpec = { range: string; allocations: Record<string, { podref: string }> };

/** The pools the API server process holds, by name. */
export const poolsIn = async (server: ChildProcess): Promise<Record<string, PoolSpec>> =>
  JSON.parse(await ask(server, 'pools')) as Record<string, PoolSpec>;

export type Burst = { add: Wave; del: Wave; writesPerAlloc: number; duplicates: string[] };

/**
 * An ADD wave then a DEL wave of the same pods on `nodes`, against the API server process `server` (its write
 * count reset first): the waves, pool writes per allocation of the ADD wave, and addresses handed out twice.
 */
export async function burst(
  server: ChildProcess,
  pods: number,
  conf: (pod: number) => string,
  nodes: Nodes,
): Promise<Burst> {
  await ask(server, 'reset');
  const add = await wave('ADD', pods, conf, nodes);
  const { writes } = JSON.parse(await ask(server, 'stats')) as { writes: number };
  const duplicates = duplicatesIn(add.addresses, await poolsIn(server));
  const del = await wave('DEL', pods, conf, nodes);
  return { add, del, writesPerAlloc: writes / pods, duplicates };
}
