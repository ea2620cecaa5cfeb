// 1000 pods on 10 simulated nodes, each ADD a real plugin process, then all released; each node runs its
// pods' plugin processes as a kubelet on its own cores would (test/support/kubelet.ts: a per-node cap,
// scaled to this machine's cores, printed). The embedded API server (in its own process) answers reads in
// 2 ms and writes in 5 ms. Run once with a node agent per node (one agent process each) and once
// standalone, and compared with a floor measured in the same run: the same number of `dist/whereabouts`
// VERSION processes in the same shape — what the processes cost before any IPAM work. Failures are
// results; a run with failures gives no seconds or ratios. The network has no overlapping-range
// reservations (one object per address cannot be group-committed; with them every allocation is at least
// one write).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { result } from '../report.ts';
import { describeNodes, simulatedNodes } from '../../test/support/kubelet.ts';
import {
  burst,
  failuresOf,
  poolsIn,
  plugin,
  printFailures,
  resultUnlessFailed,
  startAgentProcess,
  wave,
} from '../support/burst.ts';
import { ask, runProcess, serveApi } from '../support/processes.ts';

const shape = simulatedNodes(10);
const nodes = shape.count;
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

  const floor = await wave('VERSION', pods, viaAgent, shape);
  const agent = await burst(server, pods, viaAgent, shape);
  const alone = await burst(server, pods, standalone, shape);
  const pools = await poolsIn(server);
  const leftover = Object.values(pools).reduce((n, p) => n + Object.keys(p.allocations).length, 0) - 1; // the warm-up pod

  for (const a of agents) a.kill('SIGTERM');
  server.stdin?.end();
  rmSync(dir, { recursive: true, force: true });
  console.log(`# shape: ${describeNodes(shape)}`);
  console.log(
    `# floor: ${floor.seconds.toFixed(2)} s for ${pods} VERSION processes, ${floor.failures.length} failed`,
  );
  printFailures('agent', agent);
  printFailures('standalone', alone);
  console.log(`# allocations left after the DEL bursts: ${leftover}`);
  const floorRun = ['floor', floor.failures.length] as const;
  const agentRun = ['agent', failuresOf(agent)] as const;
  const aloneRun = ['standalone', failuresOf(alone)] as const;
  result('burst_floor_failures', floor.failures.length, 'calls');
  result('burst_agent_failures', failuresOf(agent), 'calls');
  result('burst_standalone_failures', failuresOf(alone), 'calls');
  result('burst_duplicates', agent.duplicates.length + alone.duplicates.length, 'addresses');
  result('burst_left_allocations', leftover, 'allocations');
  resultUnlessFailed('burst_agent_seconds', agent.add.seconds, 's', [agentRun]);
  resultUnlessFailed('burst_agent_floor_ratio', agent.add.seconds / floor.seconds, 'ratio', [
    agentRun,
    floorRun,
  ]);
  result('burst_agent_writes_per_alloc', agent.writesPerAlloc, 'writes');
  resultUnlessFailed('burst_standalone_seconds', alone.add.seconds, 's', [aloneRun]);
  resultUnlessFailed('burst_standalone_floor_ratio', alone.add.seconds / floor.seconds, 'ratio', [
    aloneRun,
    floorRun,
  ]);
  result('burst_standalone_writes_per_alloc', alone.writesPerAlloc, 'writes');
}
