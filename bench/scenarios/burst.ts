// 1000 pods on 10 simulated nodes, each ADD a real plugin process, then all released at once; the embedded
// API server (in its own process) answers reads in 2 ms and writes in 5 ms. Run once with a node agent per
// node (one agent process each) and once standalone, and compared with a floor measured in the same run:
// the same number of `dist/whereabouts` VERSION processes at the same concurrency — what the processes
// cost before any IPAM work. The network has no overlapping-range reservations (one object per address
// cannot be group-committed; with them every allocation is at least one write).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { result } from '../report.ts';
import { ask, runProcess, serveApi, untilPrinted } from '../support/processes.ts';

const nodes = 10;
const podsPerNode = 100;
const root = join(import.meta.dirname, '..', '..');
const plugin = join(root, 'dist', 'whereabouts');

type Stats = { writes: number; requests: number };

async function startAgentProcess(
  socket: string,
  kubeconfig: string,
  node: string,
  stateDir: string,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      join(root, 'src', 'cli', 'main.ts'),
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
    ],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  await untilPrinted(child, 'agent ready', `the agent of ${node}`);
  return child;
}

/** All pods at once, each a plugin process; resolves with the wall time and the addresses handed out. */
async function wave(
  command: string,
  conf: (node: number) => string,
): Promise<{ seconds: number; addresses: string[]; failures: string[] }> {
  const started = performance.now();
  const outputs = await Promise.all(
    Array.from({ length: nodes * podsPerNode }, (_, i) =>
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
        conf(i % nodes),
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const addresses = outputs.flatMap((o) =>
    o.code === 0 && o.stdout !== '' && command === 'ADD'
      ? [(JSON.parse(o.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '']
      : [],
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

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-burst-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const server = await serveApi(kubeconfig);
  const sockets = Array.from({ length: nodes }, (_, i) => join(dir, `node-${i}.sock`));
  const agents = await Promise.all(
    sockets.map((s, i) => startAgentProcess(s, kubeconfig, `node-${i}`, join(dir, `state-${i}`))),
  );
  const conf = (socket: string) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'burst',
      type: 'macvlan',
      ipam: {
        type: 'whereabouts',
        range: '10.128.0.0/16',
        enable_overlapping_ranges: false,
        agent_socket: socket,
        kubernetes: { kubeconfig },
        log_level: 'error',
      },
    });
  const viaAgent = (node: number) => conf(sockets[node] ?? '');
  const standalone = () => conf(join(dir, 'no-agent.sock'));
  const stats = async (): Promise<Stats> => JSON.parse(await ask(server, 'stats')) as Stats;

  // The pool exists before the bursts, as it does after a network's first pod.
  await runProcess(
    plugin,
    [],
    {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'warm',
      CNI_NETNS: '/x',
      CNI_IFNAME: 'net1',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=burst;K8S_POD_NAME=warm',
    },
    standalone(),
  );
  await ask(server, 'latency 2 3');

  const floor = await wave('VERSION', viaAgent);
  const measure = async (confFor: (node: number) => string) => {
    await ask(server, 'reset');
    const add = await wave('ADD', confFor);
    const afterAdd = await stats();
    const del = await wave('DEL', confFor);
    const duplicates = add.addresses.length - new Set(add.addresses).size;
    return { add, del, writesPerAlloc: afterAdd.writes / (nodes * podsPerNode), duplicates };
  };
  const agent = await measure(viaAgent);
  const alone = await measure(standalone);
  const pools = JSON.parse(await ask(server, 'pools')) as Record<string, { allocations: object }>;
  const leftover = Object.values(pools).reduce((n, p) => n + Object.keys(p.allocations).length, 0) - 1; // the warm-up pod

  for (const a of agents) a.kill('SIGTERM');
  server.stdin?.end();
  rmSync(dir, { recursive: true, force: true });
  console.log(`# floor: ${floor.seconds.toFixed(2)} s for ${nodes * podsPerNode} VERSION processes`);
  for (const [mode, m] of [
    ['agent', agent],
    ['standalone', alone],
  ] as const) {
    const failures = [...m.add.failures.map((f) => `ADD ${f}`), ...m.del.failures.map((f) => `DEL ${f}`)];
    console.log(
      `# ${mode}: ADD ${m.add.seconds.toFixed(2)} s, DEL ${m.del.seconds.toFixed(2)} s, failures ${failures.length}`,
    );
    const counts = new Map<string, number>();
    for (const f of failures) counts.set(f, (counts.get(f) ?? 0) + 1);
    for (const [f, n] of counts) console.log(`#   ${n} × ${f}`);
  }
  console.log(`# allocations left after the DEL bursts: ${leftover}`);
  result('burst_agent_seconds', agent.add.seconds, 's');
  result('burst_agent_floor_ratio', agent.add.seconds / floor.seconds, 'ratio');
  result('burst_agent_writes_per_alloc', agent.writesPerAlloc, 'writes');
  result('burst_standalone_seconds', alone.add.seconds, 's');
  result('burst_standalone_floor_ratio', alone.add.seconds / floor.seconds, 'ratio');
  result('burst_standalone_writes_per_alloc', alone.writesPerAlloc, 'writes');
  result('burst_duplicates', agent.duplicates + alone.duplicates, 'addresses');
}
