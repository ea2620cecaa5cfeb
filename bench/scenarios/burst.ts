// 1000 pods on 10 simulated nodes, each ADD a real plugin process, then all released at once; the embedded
// API server (in its own process) answers reads in 2 ms and writes in 5 ms. Run once with a node agent per
// node (one agent process each) and once standalone, and compared with a floor measured in the same run:
// the same number of `dist/whereabouts` VERSION processes at the same concurrency — what the processes
// cost before any IPAM work. The network has no overlapping-range reservations (one object per address
// cannot be group-committed; with them every allocation is at least one write).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { result } from '../report.ts';
import { burst, poolsIn, plugin, printFailures, startAgentProcess, wave } from '../support/burst.ts';
import { ask, runProcess, serveApi } from '../support/processes.ts';

const nodes = 10;
const podsPerNode = 100;
const pods = nodes * podsPerNode;

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
  const viaAgent = (pod: number) => conf(sockets[pod % nodes] ?? '');
  const standalone = () => conf(join(dir, 'no-agent.sock'));

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

  const floor = await wave('VERSION', pods, viaAgent);
  const agent = await burst(server, pods, viaAgent);
  const alone = await burst(server, pods, standalone);
  const pools = await poolsIn(server);
  const leftover = Object.values(pools).reduce((n, p) => n + Object.keys(p.allocations).length, 0) - 1; // the warm-up pod

  for (const a of agents) a.kill('SIGTERM');
  server.stdin?.end();
  rmSync(dir, { recursive: true, force: true });
  console.log(`# floor: ${floor.seconds.toFixed(2)} s for ${pods} VERSION processes`);
  printFailures('agent', agent);
  printFailures('standalone', alone);
  console.log(`# allocations left after the DEL bursts: ${leftover}`);
  result('burst_agent_seconds', agent.add.seconds, 's');
  result('burst_agent_floor_ratio', agent.add.seconds / floor.seconds, 'ratio');
  result('burst_agent_writes_per_alloc', agent.writesPerAlloc, 'writes');
  result('burst_standalone_seconds', alone.add.seconds, 's');
  result('burst_standalone_floor_ratio', alone.add.seconds / floor.seconds, 'ratio');
  result('burst_standalone_writes_per_alloc', alone.writesPerAlloc, 'writes');
  result('burst_duplicates', agent.duplicates.length + alone.duplicates.length, 'addresses');
}
