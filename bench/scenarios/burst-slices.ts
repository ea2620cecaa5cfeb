// 2000 pods on 50 simulated nodes (an agent process each), each ADD a real plugin process, each node running
// its pods' processes as a kubelet on its own cores would (test/support/kubelet.ts: a per-node cap scaled to
// this machine's cores, printed), then all released — once with node slices (`node_slice_size: /27`: 30 addresses per slice, so every node
// fills its first slice and takes a second one itself during the burst) and once without, on the same
// agents in the same run, for the ratio. The slice controller runs as its own process, from 50 Node
// objects and the NetworkAttachmentDefinition, as in a cluster. The floor is as in `burst`: the same number
// of `dist/whereabouts` VERSION processes in the same shape. Failures are results; a run with failures gives
// no seconds or ratios.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/kube-api/kube.ts';
import { result } from '../report.ts';
import { describeNodes, simulatedNodes } from '../../test/support/kubelet.ts';
import {
  burst,
  cliProcess,
  failuresOf,
  poolsIn,
  printFailures,
  resultUnlessFailed,
  startAgentProcess,
  wave,
} from '../support/burst.ts';
import { ask, serveApi, untilPrinted } from '../support/processes.ts';

const shape = simulatedNodes(50);
const nodes = shape.count;
const podsPerNode = 40;
const pods = nodes * podsPerNode;
const range = '10.128.0.0/16';

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-burst-slices-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const server = await serveApi(kubeconfig);
  const connection = connect({ kubeconfig });
  if (!connection.ok) throw new Error(connection.error.details);
  const { core, custom, namespace } = connection.value;
  const names = Array.from({ length: nodes }, (_, i) => `node-${i}`);
  for (const name of names) await core.createNode({ body: { metadata: { name } } });
  // Each node's configuration directory holds its `nodename`, as the agent installs it: a plugin that
  // works standalone (its agent did not answer in time) still knows its node.
  const configDirs = names.map((n) => {
    const d = join(dir, `net.d-${n}`);
    mkdirSync(d);
    writeFileSync(join(d, 'nodename'), n);
    return d;
  });
  const ipam = (sliced: boolean, node: number) => ({
    type: 'whereabouts',
    range,
    enable_overlapping_ranges: false,
    ...(sliced ? { node_slice_size: '/27' } : {}),
    agent_socket: join(dir, `node-${node}.sock`),
    configuration_path: configDirs[node],
    kubernetes: { kubeconfig },
    log_level: 'error',
  });
  const conf = (name: string, sliced: boolean, node: number) =>
    JSON.stringify({ cniVersion: '1.0.0', name, type: 'macvlan', ipam: ipam(sliced, node) });
  await custom.createNamespacedCustomObject({
    group: 'k8s.cni.cncf.io',
    version: 'v1',
    namespace: 'default',
    plural: 'network-attachment-definitions',
    body: {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name: 'sliced' },
      spec: { config: conf('sliced', true, 0) },
    },
  });
  const controller: ChildProcess = cliProcess([
    'controller',
    '--kubeconfig',
    kubeconfig,
    '--identity',
    'bench',
    '--interval',
    '200ms',
  ]);
  await untilPrinted(controller, 'controller running', 'the slice controller');
  const assigned = async (): Promise<number> => {
    try {
      const pool = (await custom.getNamespacedCustomObject({
        group: 'whereabouts.cni.cncf.io',
        version: 'v1alpha1',
        namespace,
        plural: 'nodeslicepools',
        name: 'sliced',
      })) as { status?: { allocations?: { nodeName: string }[] } };
      return (pool.status?.allocations ?? []).filter((a) => a.nodeName !== '').length;
    } catch {
      return 0;
    }
  };
  while ((await assigned()) < nodes) await new Promise((r) => setTimeout(r, 100));

  const agents: ChildProcess[] = [];
  // Whatever happens, no agent, controller or server process outlives the run.
  const stopAll = () => {
    for (const a of agents) a.kill('SIGTERM');
    controller.kill('SIGTERM');
    server.stdin?.end();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopAll);
  agents.push(
    ...(await Promise.all(
      names.map((n, i) => startAgentProcess(join(dir, `${n}.sock`), kubeconfig, n, join(dir, `state-${i}`))),
    )),
  );
  const nodeOf = (pod: number) => pod % nodes;
  await ask(server, 'latency 2 3');

  const floor = await wave('VERSION', pods, (i) => conf('whole', false, nodeOf(i)), shape);
  // The whole-range pool is created by the first pods of the wave, as the slice pools are.
  const whole = await burst(server, pods, (i) => conf('whole', false, nodeOf(i)), shape);
  const sliced = await burst(server, pods, (i) => conf('sliced', true, nodeOf(i)), shape);
  const slicesTaken = await assigned();
  const pools = await poolsIn(server);
  const held = (sliced: boolean) =>
    Object.entries(pools)
      .filter(([name]) => (name === `${namespace}/10.128.0.0-16`) !== sliced)
      .reduce((n, [, p]) => n + Object.keys(p.allocations).length, 0);
  process.off('exit', stopAll);
  stopAll();
  console.log(`# shape: ${describeNodes(shape)}`);
  console.log(
    `# floor: ${floor.seconds.toFixed(2)} s for ${pods} VERSION processes, ${floor.failures.length} failed`,
  );
  printFailures('without slices', whole);
  printFailures('with slices', sliced);
  console.log(`# slices assigned after the burst: ${slicesTaken} (${nodes} before it)`);
  console.log(
    `# allocations left after the DEL bursts (their DELs failed; the runtime would retry them): ${held(false)} without slices, ${held(true)} with`,
  );
  const floorRun = ['floor', floor.failures.length] as const;
  const slicedRun = ['with slices', failuresOf(sliced)] as const;
  const wholeRun = ['without slices', failuresOf(whole)] as const;
  result('burst_slices_floor_failures', floor.failures.length, 'calls');
  result('burst_slices_failures', failuresOf(sliced), 'calls');
  result('burst_slices_unsliced_failures', failuresOf(whole), 'calls');
  result('burst_slices_duplicates', sliced.duplicates.length + whole.duplicates.length, 'addresses');
  result('burst_slices_left_allocations', held(true), 'allocations');
  result('burst_slices_unsliced_left_allocations', held(false), 'allocations');
  resultUnlessFailed('burst_slices_seconds', sliced.add.seconds, 's', [slicedRun]);
  resultUnlessFailed('burst_slices_ratio', sliced.add.seconds / whole.add.seconds, 'ratio', [
    slicedRun,
    wholeRun,
  ]);
  resultUnlessFailed('burst_slices_floor_ratio', sliced.add.seconds / floor.seconds, 'ratio', [
    slicedRun,
    floorRun,
  ]);
  result('burst_slices_writes_per_alloc', sliced.writesPerAlloc, 'writes');
  resultUnlessFailed('burst_slices_unsliced_seconds', whole.add.seconds, 's', [wholeRun]);
}
