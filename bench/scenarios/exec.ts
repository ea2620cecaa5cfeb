// `npm run bench -- exec`: what the executable in the CNI bin dir costs a node, process by process, next to
// Whereabouts v0.9.4 (`npm run peers:build`), on a real kube-apiserver with etcd (`npm run kube:build`):
//
// - 100 concurrent VERSION processes, wall time: ours (the forwarder, dist/whereabouts) and Whereabouts';
// - one uncontended ADD, user + system CPU of the process the runtime runs (median of 20, from wait4's
//   rusage in microseconds: bench/support/rusage): through the node
//   agent (the forwarder alone; the agent's own work is in the agent), standalone (the forwarder finds no
//   agent and execs the TypeScript plugin: both processes count) and Whereabouts; the peak RSS of an ADD
//   through the agent;
// - a burst of 100 concurrent ADDs into one /24, as one node's runtime runs them when a roll-out lands on it:
//   Whereabouts', ours through the agent, ours standalone — wall time, API requests per allocation (the
//   server's own `apiserver_request_total` of the whereabouts group, read before and after), failures, and
//   addresses handed out twice.
//
// All three plugins use the same flat file and the admin kubeconfig it names, in JSON as the agent installs
// the plugin's (the agent uses it too: a network is served by the agent only when it names the agent's
// kubeconfig); each burst has a /24 of its own, its pool made by a first ADD before the burst. Bounded: the scenario stops itself after 9.5 minutes.
//
// `npm run bench -- exec burst` runs the burst phase alone (its three bursts), for measuring a change to it.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { load } from 'js-yaml';
import { findBinaries, findPeers } from '../../kube/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../kube/control-plane.ts';
import { result } from '../report.ts';
import { plugin as ours, startAgentProcess } from '../support/burst.ts';
import { median } from '../support/processes.ts';
import { difference, requestCounts, sum } from '../support/real-cluster.ts';

const scenarioLimitMs = 570_000;
const concurrent = 100;
const samples = 20;
/** VERSION waves per plugin; the median is reported (one wave is a fraction of a second). */
const versionWaves = 3;

type Exec = { code: number; stdout: string };

/** One process to its end; its stdin may be left unread (Whereabouts' VERSION reads none). */
async function exec(executable: string, env: Record<string, string>, stdin: string): Promise<Exec> {
  const child = spawn(executable, [], { env, stdio: ['pipe', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(stdin);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code: code ?? -1, stdout };
}

/** The rusage helper (bench/support/rusage), built into `dir`: microsecond CPU, where GNU time has 10 ms. */
function buildRusage(dir: string): string {
  const output = join(dir, 'rusage');
  execFileSync(findGo(), ['build', '-o', output, '.'], {
    cwd: join(import.meta.dirname, '..', 'support', 'rusage'),
    env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return output;
}

const findGo = (): string => {
  const go = [process.env.GO, 'go', '/usr/local/go/bin/go'].find(
    (c) => c !== undefined && c !== '' && spawnSync(c, ['version'], { stdio: 'ignore' }).status === 0,
  );
  if (go === undefined) throw new Error('exec: Go is needed (the forwarder and the rusage helper)');
  return go;
};

type Measured = Exec & { cpuMs: number; rssKiB: number };

/** One process under the rusage helper: its user + system CPU and peak RSS. */
async function measured(
  rusage: string,
  executable: string,
  env: Record<string, string>,
  stdin: string,
): Promise<Measured> {
  const child = spawn(rusage, [executable], { env, stdio: ['pipe', 'pipe', 'ignore', 'pipe'] });
  let stdout = '';
  let report = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (report += d.toString()));
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(stdin);
  await once(child, 'close');
  const [user, system, rss, code] = report.trim().split(' ').map(Number);
  if (code === undefined || rss === undefined) throw new Error(`exec: no rusage for ${executable}`);
  return { code, stdout, cpuMs: ((user ?? NaN) + (system ?? NaN)) / 1000, rssKiB: rss };
}

/** `n` processes at once, process i with `env(i)` and `stdin(i)`; the wall time and every output. */
async function all(
  executable: string,
  n: number,
  env: (i: number) => Record<string, string>,
  stdin: (i: number) => string,
): Promise<{ seconds: number; outputs: Exec[] }> {
  const started = performance.now();
  const outputs = await Promise.all(Array.from({ length: n }, (_, i) => exec(executable, env(i), stdin(i))));
  return { seconds: (performance.now() - started) / 1000, outputs };
}

const addressOf = (o: Exec): string | undefined => {
  if (o.code !== 0) return undefined;
  try {
    return (JSON.parse(o.stdout) as { ips?: { address?: string }[] }).ips?.[0]?.address;
  } catch {
    return undefined;
  }
};

/** Addresses handed out more than once. */
const duplicates = (outputs: readonly Exec[]): number => {
  const seen = new Map<string, number>();
  for (const a of outputs.map(addressOf)) if (a !== undefined) seen.set(a, (seen.get(a) ?? 0) + 1);
  return [...seen.values()].filter((n) => n > 1).length;
};

/** Failures, grouped by what they say (numbers aside), as `#` lines. */
function printFailures(mode: string, outputs: readonly Exec[]): void {
  const kinds = new Map<string, number>();
  for (const o of outputs.filter((x) => x.code !== 0)) {
    const kind = o.stdout.trim().slice(0, 200).replace(/\d+/g, 'N');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const [kind, n] of kinds) console.log(`#   ${mode}: ${n} × ${kind}`);
}

export async function run(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`exec: still running after ${scenarioLimitMs / 1000} s; stopped`);
    process.exit(1); // the control plane's exit hook kills etcd and kube-apiserver
  }, scenarioLimitMs);
  watchdog.unref();
  const found = findBinaries();
  if (!found.ok) throw new Error(`exec: ${found.why}`);
  const peers = findPeers();
  if (!peers.ok) throw new Error(`exec: ${peers.why}`);
  const whereabouts = peers.peers.whereabouts;
  if (!existsSync(ours) || !existsSync(join(dirname(ours), 'whereabouts-ts-plugin')))
    throw new Error('exec: dist/whereabouts and dist/whereabouts-ts-plugin are missing: run npm run build');

  const started = performance.now();
  const plane = await startControlPlane();
  const dir = mkdtempSync(join(tmpdir(), 'wb-bench-exec-'));
  const children: ChildProcess[] = [];
  console.log(
    `# kube-apiserver ${found.binaries.kubernetesVersion} with etcd on loopback, ready in ${((performance.now() - started) / 1000).toFixed(1)} s; Whereabouts ${peers.peers.whereaboutsVersion}`,
  );
  try {
    await measure(plane, dir, whereabouts, peers.peers.pluginsDir, children);
  } finally {
    for (const child of children) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  clearTimeout(watchdog);
}

async function measure(
  plane: ControlPlane,
  dir: string,
  whereabouts: string,
  pluginsDir: string,
  children: ChildProcess[],
): Promise<void> {
  const namespace = await plane.namespace('exec');
  const kubeconfig = join(dir, 'kubeconfig');
  // In JSON, as the agent installs the plugin's kubeconfig (src/agent/install.ts); Whereabouts reads it too.
  writeFileSync(kubeconfig, JSON.stringify(load(plane.kubeconfig({ namespace }))), { mode: 0o600 });
  const flatFile = join(dir, 'whereabouts.conf');
  writeFileSync(flatFile, JSON.stringify({ datastore: 'kubernetes', kubernetes: { kubeconfig } }));
  const socket = join(dir, 'agent.sock');
  const noAgent = join(dir, 'no-agent.sock');
  const conf = (range: string, agentSocket?: string) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: `net-${range.split('.')[1] ?? ''}`,
      type: 'macvlan',
      master: 'eth0',
      ipam: {
        type: 'whereabouts',
        range,
        configuration_path: flatFile,
        log_level: 'error',
        ...(agentSocket === undefined ? {} : { agent_socket: agentSocket }),
      },
    });
  const env = (command: string, pod: string): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: `exec-${pod}`,
    CNI_NETNS: '/var/run/netns/exec',
    CNI_IFNAME: 'net1',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
    CNI_PATH: pluginsDir,
    PATH: process.env.PATH ?? '',
  });

  const burstOnly = process.argv[3] === 'burst';
  const agent = await startAgentProcess(socket, kubeconfig, 'node-1', join(dir, 'state'));
  children.push(agent);

  // VERSION: the process's start and answer, nothing else.
  const versionWave = async (executable: string) => {
    const waves: number[] = [];
    for (let w = 0; w < versionWaves; w++) {
      const wave = await all(
        executable,
        concurrent,
        () => env('VERSION', 'v'),
        () => '{"cniVersion":"1.0.0"}',
      );
      if (wave.outputs.some((o) => o.code !== 0)) throw new Error(`exec: VERSION of ${executable} failed`);
      waves.push(wave.seconds * 1000);
    }
    return median(waves);
  };
  if (!burstOnly) {
    const versionOurs = await versionWave(ours);
    const versionTheirs = await versionWave(whereabouts);
    result('exec_version_ms_ours', versionOurs, 'ms');
    result('exec_version_ms_whereabouts', versionTheirs, 'ms');
    result('exec_version_ratio', versionOurs / versionTheirs, 'ratio');
  }

  // One uncontended ADD at a time (each a new pod), then its DEL (not measured).
  if (!burstOnly) {
    const rusage = buildRusage(dir);
    const single = async (executable: string, mode: string, stdin: string) => {
      const first = await exec(executable, env('ADD', `${mode}-first`), stdin);
      if (first.code !== 0 && executable !== whereabouts)
        throw new Error(`exec: the first ${mode} ADD failed: ${first.stdout}`);
      const cpu: number[] = [];
      const rss: number[] = [];
      for (let i = 0; i < samples; i++) {
        const added = await measured(rusage, executable, env('ADD', `${mode}-${i}`), stdin);
        if (added.code !== 0) throw new Error(`exec: ${mode} ADD failed: ${added.stdout}`);
        cpu.push(added.cpuMs);
        rss.push(added.rssKiB);
      }
      for (let i = 0; i < samples; i++) await exec(executable, env('DEL', `${mode}-${i}`), stdin);
      return { cpu: median(cpu), rss: median(rss) };
    };
    const viaAgent = await single(ours, 'agent', conf('10.70.0.0/24', socket));
    const standalone = await single(ours, 'standalone', conf('10.71.0.0/24', noAgent));
    const theirs = await single(whereabouts, 'whereabouts', conf('10.72.0.0/24'));
    result('exec_agent_add_cpu_ms', viaAgent.cpu, 'ms');
    result('exec_standalone_add_cpu_ms', standalone.cpu, 'ms');
    result('exec_whereabouts_add_cpu_ms', theirs.cpu, 'ms');
    result('exec_rss_kb_agent_add', viaAgent.rss, 'KB');
    result('exec_rss_kb_standalone_add', standalone.rss, 'KB');
    result('exec_rss_kb_whereabouts_add', theirs.rss, 'KB');
  }

  // The burst: 100 concurrent ADDs into one /24, its pool already there.
  const burst = async (executable: string, mode: string, stdin: string) => {
    let warm = await exec(executable, env('ADD', `${mode}-warm`), stdin);
    // Whereabouts answers the ADD that made the pool with "try again".
    if (warm.code !== 0) warm = await exec(executable, env('ADD', `${mode}-warm`), stdin);
    const before = await requestCounts(plane);
    const wave = await all(
      executable,
      concurrent,
      (i) => env('ADD', `${mode}-burst-${i}`),
      () => stdin,
    );
    const requests = difference(await requestCounts(plane), before);
    const failures = wave.outputs.filter((o) => o.code !== 0).length;
    console.log(
      `# burst ${mode}: ${concurrent - failures} of ${concurrent} in ${wave.seconds.toFixed(2)} s; requests (verb resource code): ${[...requests].map(([k, n]) => `${k}: ${n}`).join(', ')}`,
    );
    printFailures(mode, wave.outputs);
    return {
      seconds: wave.seconds,
      perAlloc: sum(requests) / concurrent,
      failures,
      duplicates: duplicates([warm, ...wave.outputs]),
    };
  };
  const burstTheirs = await burst(whereabouts, 'whereabouts', conf('10.80.0.0/24'));
  const burstAgent = await burst(ours, 'agent', conf('10.81.0.0/24', socket));
  const burstStandalone = await burst(ours, 'standalone', conf('10.82.0.0/24', noAgent));
  result('exec_burst_whereabouts_seconds', burstTheirs.seconds, 's');
  result('exec_burst_agent_seconds', burstAgent.seconds, 's');
  result('exec_burst_standalone_seconds', burstStandalone.seconds, 's');
  result('exec_burst_agent_ratio', burstAgent.seconds / burstTheirs.seconds, 'ratio');
  result('exec_burst_standalone_ratio', burstStandalone.seconds / burstTheirs.seconds, 'ratio');
  result('exec_burst_whereabouts_requests_per_alloc', burstTheirs.perAlloc, 'requests');
  result('exec_burst_agent_requests_per_alloc', burstAgent.perAlloc, 'requests');
  result('exec_burst_standalone_requests_per_alloc', burstStandalone.perAlloc, 'requests');
  for (const [mode, b] of [
    ['whereabouts', burstTheirs],
    ['agent', burstAgent],
    ['standalone', burstStandalone],
  ] as const) {
    result(`exec_burst_${mode}_failures`, b.failures, 'allocations');
    result(`exec_burst_${mode}_duplicates`, b.duplicates, 'addresses');
  }
}
