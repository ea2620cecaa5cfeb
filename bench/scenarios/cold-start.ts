// Start-up cost of the plugin, per process: (a) `dist/whereabouts` VERSION, (b) a full ADD and DEL against
// the embedded API server (running in a process of its own), (c) `node -e 0` on the same Node runtime for
// reference. Medians over 30 rounds, the three interleaved so that machine noise hits all alike. (b) is
// reported per process — the mean of its ADD and its DEL — and as the pair.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { result } from '../report.ts';
import { median, serveApi, timed } from '../support/processes.ts';

const rounds = 30;
const plugin = join(import.meta.dirname, '..', '..', 'dist', 'whereabouts');

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-coldstart-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const server = await serveApi(kubeconfig);
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'bench',
    type: 'macvlan',
    ipam: { type: 'whereabouts', range: '198.18.0.0/16', kubernetes: { kubeconfig }, log_level: 'error' },
  });
  const figures = {
    version: [] as number[],
    versionCpu: [] as number[],
    add: [] as number[],
    del: [] as number[],
    adddelCpu: [] as number[],
    node: [] as number[],
    nodeCpu: [] as number[],
  };
  for (let i = 0; i < rounds; i++) {
    const version = await timed(plugin, [], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    const env = {
      CNI_CONTAINERID: `bench-${i}`,
      CNI_NETNS: '/var/run/netns/bench',
      CNI_IFNAME: 'net1',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-${i}`,
    };
    const add = await timed(plugin, [], { ...env, CNI_COMMAND: 'ADD' }, conf);
    const del = await timed(plugin, [], { ...env, CNI_COMMAND: 'DEL' }, conf);
    const node = await timed(process.execPath, ['-e', '0'], {});
    if (version.code !== 0 || add.code !== 0 || del.code !== 0 || node.code !== 0) {
      throw new Error(`a process failed: ${add.stdout} ${del.stdout}`);
    }
    figures.version.push(version.wallMs);
    figures.versionCpu.push(version.cpuMs);
    figures.add.push(add.wallMs);
    figures.del.push(del.wallMs);
    figures.adddelCpu.push((add.cpuMs + del.cpuMs) / 2);
    figures.node.push(node.wallMs);
    figures.nodeCpu.push(node.cpuMs);
  }
  server.stdin?.end();
  rmSync(dir, { recursive: true, force: true });

  const nodeMs = median(figures.node);
  const versionMs = median(figures.version);
  const adddelMs = median(figures.add.map((add, i) => (add + (figures.del[i] ?? NaN)) / 2));
  console.log('# CPU times come from GNU time, which reports centiseconds');
  result('coldstart_version_ms', versionMs, 'ms');
  result('coldstart_adddel_ms', adddelMs, 'ms');
  result('coldstart_node_ms', nodeMs, 'ms');
  result('coldstart_version_ratio', versionMs / nodeMs, 'ratio');
  result('coldstart_adddel_ratio', adddelMs / nodeMs, 'ratio');
  result(
    'coldstart_adddel_pair_ms',
    median(figures.add.map((add, i) => add + (figures.del[i] ?? NaN))),
    'ms',
  );
  result('coldstart_version_cpu_ms', median(figures.versionCpu), 'ms');
  result('coldstart_adddel_cpu_ms', median(figures.adddelCpu), 'ms');
  result('coldstart_node_cpu_ms', median(figures.nodeCpu), 'ms');
}
