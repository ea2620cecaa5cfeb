// `npm run bench -- scale`: what one allocation costs the API server as the cluster grows, on a real
// kube-apiserver with etcd (`npm run kube:build`). For N = 2, 10 and 50 nodes, N real `whereabouts-ts agent`
// processes (one per node, distinct node names), then 200 ADDs through them:
//
// - into one shared (unsliced) pool: 10.128.0.0/20, its pool made by one ADD before the measured 200 (as
//   after a network's first pod);
// - into a node-sliced network: 10.129.0.0/16 in /24 slices (`node_slice_size`), its NodeSlicePool written
//   before the agents start with a slice for every node, as the controller leaves it (the other slices
//   free); each node's slice pool is made by its first ADD, inside the measured 200.
//
// Overlapping-range reservations on (the default) in both. Pod i runs on node i % N; each node runs its
// pods' ADDs `perNode` at a time whatever N, as a kubelet does. The ADDs go straight to each agent's unix
// socket as the plugin sends them (src/cni/agent-client.ts), from this process: lighter on a small machine
// than a `dist/whereabouts` process per pod, and the plugin process is not what this measures.
//
// Measured with the API server's own metrics (GET /metrics as the admin): the bytes it sent about IPPools —
// `apiserver_response_sizes_sum` (every verb it reports) + `apiserver_watch_events_sizes_sum` (every event
// to every watcher) for resource="ippools" — over the 200 ADDs, per ADD. kube-apiserver observes response
// sizes of GET and LIST only, so the answers to PATCH and POST (the whole pool, once per write, to the
// writer alone) are not in the figure; a `#` line gives the bytes by metric and verb. The idle RSS of the
// agents (VmRSS once they are up and synced, before any ADD; the median); failures (ADDs not answered 0)
// and duplicates (an address answered to two pods, or held by two pool entries, read from the pools at the
// end). Each configuration in a namespace of its own with its own ServiceAccount; the agents of one are
// stopped before the next starts.
//
// The agents run as the image runs them: `node dist/whereabouts-ts.mjs agent` (`npm run build` first; the
// scenario refuses a bundle older than a source file). From the sources (`sources`), an idle agent holds
// about 60 MB more: Node's type stripping and the unbundled modules.
//
// Because the API server's own figure leaves the writes' answers out, the agents reach it through a relay that
// counts every byte the server sends them (TLS passes through untouched): `scale_agent_received_…`, all
// resources and verbs, the pools sent back after each patch included.
//
// `npm run bench -- scale [2,10,50] [shared|sliced] [sources] [trust=<ms>]`: the node counts
// (comma-separated), the kinds of network, agents from the sources instead of the bundle, and how long the
// agents trust a copy of a shared pool (their `--pool-trust-ms`), all optional. Bounded: the scenario stops
// itself after `scenarioLimitMs`.

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinaries } from '../../kube/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../kube/control-plane.ts';
import { forwardToAgent, type Forwarded } from '../../src/cni/agent-client.ts';
import { group } from '../../src/codecs/ippool.ts';
import { onNodes } from '../../test/support/kubelet.ts';
import { result } from '../report.ts';
import { cliBundle, cliSources, root, startAgentProcess, untilAgentSynced } from '../support/burst.ts';
import { median } from '../support/processes.ts';
import { bytesSent, difference, requestCounts, sum, writerKubeconfig } from '../support/real-cluster.ts';

const kinds = ['shared', 'sliced'] as const;
type Kind = (typeof kinds)[number];

const defaultNodeCounts = [2, 10, 50];
const pods = 200;
/** ADDs one node runs at once, whatever N: a kubelet's parallelism does not shrink as the cluster grows. */
const perNode = 4;
/** Agents started at once (each a Node process loading the command line: 50 at once thrash 2 cores). */
const startingAtOnce = 4;
const sharedRange = '10.128.0.0/20';
const slicedRange = '10.129.0.0/16';
const sliceSize = '/24';
/** The plugin's wait for its agent (cni-plugin/main.ts). */
const agentTimeoutMs = 75_000;
/** The whole scenario's bound. */
const scenarioLimitMs = 2_400_000;

type Measured = {
  kind: Kind;
  nodes: number;
  /** Every byte the API server sent the agents during the ADDs (through the relay). */
  agentBytes: number;
  bytes: Map<string, number>;
  requests: Map<string, number>;
  seconds: number;
  startSeconds: number;
  rssMiB: number[];
  failures: string[];
  duplicates: string[];
  unrecorded: number;
  poolBytes: number[];
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A TCP relay on loopback in front of kube-apiserver that counts the bytes the server sends back through it
 * (TLS passes through: the agents still verify the server, whose certificate names 127.0.0.1).
 */
async function countingRelay(target: URL): Promise<{ url: string; received(): number; close(): void }> {
  let received = 0;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    upstream.on('data', (chunk: Buffer) => (received += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    received: () => received,
    close: () => {
      server.close();
    },
  };
}

const ipv4 = (value: bigint) => [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
const ipv4Value = (text: string) => text.split('.').reduce((v, octet) => (v << 8n) + BigInt(octet), 0n);

/** Resident set size of a process now, in MiB (VmRSS of /proc/<pid>/status). */
function rssMiB(pid: number | undefined): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid ?? 0}/status`, 'utf8'))?.[1];
  return kib === undefined ? NaN : Number(kib) / 1024;
}

/** Runs `work(i)` for i in [0, n), `atOnce` at a time; the results in order. */
async function limited<R>(n: number, atOnce: number, work: (i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(n);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) results[i] = await work(i);
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, n) }, worker));
  return results;
}

/** What an agent answered, or why there was no answer, in a line. */
function why(forwarded: Forwarded): string {
  if ('unavailable' in forwarded) return `no answer: ${forwarded.unavailable}`;
  if ('busy' in forwarded) return `busy: ${forwarded.busy}`;
  try {
    const e = JSON.parse(forwarded.output.stdout) as { code?: number; msg?: string; details?: string };
    return `code ${e.code ?? '?'}: ${e.msg ?? ''} ${(e.details ?? '').slice(0, 200)}`.trim();
  } catch {
    return `exit ${forwarded.output.exitCode}: ${forwarded.output.stdout.slice(0, 200)}`;
  }
}

const addressOf = (forwarded: Forwarded): string | undefined => {
  if (!('output' in forwarded) || forwarded.output.exitCode !== 0) return undefined;
  try {
    const answer = JSON.parse(forwarded.output.stdout) as { ips?: { address: string }[] };
    return answer.ips?.[0]?.address.split('/')[0];
  } catch {
    return undefined;
  }
};

/** Reads the counters until the watch events stop growing (every watcher has been sent every write). */
async function settled(plane: ControlPlane): Promise<Map<string, number>> {
  let last = await bytesSent(plane, 'ippools');
  for (let i = 0; i < 30; i++) {
    await sleep(500);
    const now = await bytesSent(plane, 'ippools');
    if (sum(difference(now, last)) === 0) return now;
    last = now;
  }
  return last;
}

/** One configuration: N agents in a fresh namespace, 200 ADDs through them, the bytes and the outcome. */
async function measure(
  plane: ControlPlane,
  dir: string,
  kind: Kind,
  nodes: number,
  entry: string,
  agentArgs: readonly string[],
): Promise<Measured> {
  const namespace = await plane.namespace(`scale-${kind}-${nodes}`);
  const here = join(dir, `${kind}-${nodes}`);
  const kubeconfig = `${here}.kubeconfig`;
  const relay = await countingRelay(new URL(plane.url));
  writeFileSync(kubeconfig, (await writerKubeconfig(plane, namespace)).replace(plane.url, relay.url), {
    mode: 0o600,
  });
  const network = `scale-${kind}`;
  if (kind === 'sliced') {
    const slices = 2 ** (Number(sliceSize.slice(1)) - Number(slicedRange.split('/')[1]));
    const base = ipv4Value(slicedRange.split('/')[0] ?? '');
    const written = await plane.request(
      'POST',
      `/apis/${group}/v1alpha1/namespaces/${namespace}/nodeslicepools`,
      {
        apiVersion: `${group}/v1alpha1`,
        kind: 'NodeSlicePool',
        metadata: { name: network },
        spec: { range: slicedRange, sliceSize },
        status: {
          allocations: Array.from({ length: slices }, (_, i) => ({
            nodeName: i < nodes ? `node-${i}` : '',
            sliceRange: `${ipv4(base + BigInt(i) * 256n)}${sliceSize}`,
          })),
        },
      },
    );
    if (written.status !== 201) throw new Error(`scale: NodeSlicePool: ${written.status}`);
  }
  const socket = (node: number) => `${here}-node-${node}.sock`;
  const conf = (node: number) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: network,
      type: 'macvlan',
      master: 'eth0',
      ipam: {
        type: 'whereabouts',
        range: kind === 'shared' ? sharedRange : slicedRange,
        ...(kind === 'sliced' ? { node_slice_size: sliceSize } : {}),
        enable_overlapping_ranges: true,
        agent_socket: socket(node),
        kubernetes: { kubeconfig },
        log_level: 'error',
      },
    });
  const add = (pod: string, node: number) =>
    forwardToAgent(
      socket(node),
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: `${pod}-sandbox`,
        CNI_NETNS: `/var/run/netns/${pod}`,
        CNI_IFNAME: 'net1',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
        CNI_PATH: '/opt/cni/bin',
      },
      conf(node),
      agentTimeoutMs,
    );

  const agents: ChildProcess[] = [];
  // The watchdog and Ctrl-C end the process without unwinding: no agent may outlive it.
  const killAgents = () => {
    for (const agent of agents) agent.kill('SIGKILL');
  };
  process.once('exit', killAgents);
  try {
    let started = performance.now();
    await limited(nodes, startingAtOnce, async (node) => {
      const agent = await startAgentProcess(
        socket(node),
        kubeconfig,
        `node-${node}`,
        `${here}-state-${node}`,
        entry,
        agentArgs,
      );
      agents.push(agent);
      await untilAgentSynced(agent);
    });
    const startSeconds = (performance.now() - started) / 1000;
    await sleep(2_000); // what start-up left to the collector
    const rss = agents.map((a) => rssMiB(a.pid));

    const warm = kind === 'shared' ? await add('warm', 0) : undefined;
    if (warm !== undefined && addressOf(warm) === undefined)
      throw new Error(`scale: the first pod of the shared pool got no address: ${why(warm)}`);

    const bytesBefore = await settled(plane);
    const requestsBefore = await requestCounts(plane);
    const agentBytesBefore = relay.received();
    started = performance.now();
    const answers = await onNodes({ count: nodes, perNode }, pods, (job, node) => add(`pod-${job}`, node));
    const seconds = (performance.now() - started) / 1000;
    const bytes = difference(await settled(plane), bytesBefore);
    const agentBytes = relay.received() - agentBytesBefore;
    const requests = difference(await requestCounts(plane), requestsBefore);

    const failures = answers.filter((a) => addressOf(a) === undefined).map(why);
    // Duplicates: an address answered to two pods, or held by two entries of the pools (or by another pod).
    const answered = new Map<string, string[]>();
    const told = warm === undefined ? answers : [warm, ...answers];
    const names = warm === undefined ? [] : ['warm'];
    names.push(...answers.map((_, i) => `pod-${i}`));
    told.forEach((a, i) => {
      const address = addressOf(a);
      if (address !== undefined)
        answered.set(address, [...(answered.get(address) ?? []), `${namespace}/${names[i] ?? ''}`]);
    });
    const listed = await plane.request('GET', `/apis/${group}/v1alpha1/namespaces/${namespace}/ippools`);
    if (listed.status !== 200) throw new Error(`scale: list ippools: ${listed.status}`);
    const pools = (
      listed.body as {
        items: { spec: { range: string; allocations?: Record<string, { podref?: string }> } }[];
      }
    ).items;
    const stored = new Map<string, string[]>();
    for (const pool of pools) {
      const base = ipv4Value(pool.spec.range.split('/')[0] ?? '');
      for (const [offset, entry] of Object.entries(pool.spec.allocations ?? {})) {
        const address = ipv4(base + BigInt(offset));
        stored.set(address, [...(stored.get(address) ?? []), entry.podref ?? '']);
      }
    }
    const duplicates: string[] = [];
    let unrecorded = 0;
    for (const address of new Set([...answered.keys(), ...stored.keys()])) {
      const owners = answered.get(address) ?? [];
      const entries = stored.get(address) ?? [];
      if (
        owners.length > 1 ||
        entries.length > 1 ||
        entries.some((podref) => owners.length > 0 && podref !== owners[0])
      )
        duplicates.push(
          `${address}: answered to ${owners.join(', ') || 'nobody'}, stored for ${entries.join(', ') || 'nobody'}`,
        );
      else if (owners.length === 1 && entries.length === 0) unrecorded += 1;
    }
    return {
      kind,
      nodes,
      agentBytes,
      bytes,
      requests,
      seconds,
      startSeconds,
      rssMiB: rss,
      failures,
      duplicates,
      unrecorded,
      poolBytes: pools.map((p) => JSON.stringify(p).length),
    };
  } finally {
    relay.close();
    process.off('exit', killAgents);
    await Promise.all(
      agents.map(async (agent) => {
        if (agent.exitCode !== null || agent.signalCode !== null) return;
        const exited = once(agent, 'exit');
        agent.kill('SIGTERM');
        const late = setTimeout(() => agent.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(late);
      }),
    );
  }
}

/** The newest modification time of the files under `dir`, in ms. */
const newestUnder = (dir: string): number =>
  Math.max(
    0,
    ...readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs),
  );

/** The agent's command line: the bundle as the image ships it, refused when a source is newer. */
function agentEntry(fromSources: boolean): string {
  if (fromSources) return cliSources;
  if (!existsSync(cliBundle))
    throw new Error(`scale: ${cliBundle} is missing: run npm run build (or pass sources)`);
  if (newestUnder(join(root, 'src')) > statSync(cliBundle).mtimeMs)
    throw new Error(`scale: ${cliBundle} is older than src/: run npm run build (or pass sources)`);
  return cliBundle;
}

const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} KB`;

function summarize(m: Measured): void {
  const total = sum(m.bytes);
  console.log(
    `# ${m.kind}, ${m.nodes} agents (started and synced in ${m.startSeconds.toFixed(1)} s, idle RSS median ${median(m.rssMiB).toFixed(1)} MiB): ` +
      `${pods} ADDs in ${m.seconds.toFixed(1)} s, ${m.failures.length} failed, ${m.duplicates.length} duplicates, ${m.unrecorded} answered but not stored; ` +
      `${kb(total)} about IPPools sent, ${kb(total / pods)} per ADD; the agents received ${kb(m.agentBytes / pods)} per ADD (everything)`,
  );
  console.log(
    `#   bytes by metric and verb, per ADD: ${[...m.bytes].map(([k, n]) => `${k}: ${kb(n / pods)}`).join(', ') || 'none'}`,
  );
  console.log(
    `#   ippools requests (verb code: count): ${[...m.requests]
      .filter(([k]) => k.split(' ')[1] === 'ippools')
      .map(([k, n]) => `${k.replace(' ippools', '')}: ${n}`)
      .join(', ')}`,
  );
  const largest = Math.max(0, ...m.poolBytes);
  console.log(`#   pools at the end: ${m.poolBytes.length}, the largest ${kb(largest)} as JSON`);
  const groups = new Map<string, { n: number; example: string }>();
  for (const f of [...m.failures, ...m.duplicates.map((d) => `duplicate ${d}`)]) {
    const key = f.replace(/[\w.-]*\d[\w.-]*/g, 'N');
    const seen = groups.get(key) ?? { n: 0, example: f };
    groups.set(key, { ...seen, n: seen.n + 1 });
  }
  for (const { n, example } of groups.values()) console.log(`#   ${n} × like ${example.slice(0, 300)}`);
}

export async function run(): Promise<void> {
  const args = process.argv.slice(3);
  const counts =
    args
      .find((a) => /^\d+(,\d+)*$/.test(a))
      ?.split(',')
      .map(Number) ?? defaultNodeCounts;
  const asked = kinds.filter((k) => args.includes(k));
  const chosen = asked.length === 0 ? [...kinds] : asked;
  const trust = args.find((a) => /^trust=\d+$/.test(a))?.slice('trust='.length);
  const agentArgs = trust === undefined ? [] : ['--pool-trust-ms', trust];
  const unknown = args.filter(
    (a) =>
      !/^\d+(,\d+)*$/.test(a) &&
      !(kinds as readonly string[]).includes(a) &&
      a !== 'sources' &&
      !/^trust=\d+$/.test(a),
  );
  if (unknown.length > 0 || counts.some((n) => n < 1))
    throw new Error(
      `scale: unknown argument ${unknown.join(' ')}; usage: scale [2,10,50] [shared|sliced] [sources] [trust=<ms>]`,
    );
  const entry = agentEntry(args.includes('sources'));
  const watchdog = setTimeout(() => {
    console.error(`scale: still running after ${scenarioLimitMs / 1000} s; stopped`);
    process.exit(1); // the exit hooks kill the agents, etcd and kube-apiserver
  }, scenarioLimitMs);
  watchdog.unref();
  const found = findBinaries();
  if (!found.ok) throw new Error(`scale: ${found.why}`);

  const started = performance.now();
  const plane = await startControlPlane();
  const dir = mkdtempSync(join(tmpdir(), 'wb-scale-'));
  console.log(
    `# kube-apiserver ${found.binaries.kubernetesVersion} with etcd on loopback, ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log(
    `# ${pods} ADDs per configuration through real agent processes (straight to their sockets, as the plugin sends them), ` +
      `pod i on node i % N, each node running ${perNode} ADDs at once whatever N; shared: one pool ${sharedRange}; ` +
      `sliced: ${slicedRange} in ${sliceSize} slices, one assigned to every node beforehand; overlapping ranges on; ` +
      `agents: node ${entry === cliBundle ? 'dist/whereabouts-ts.mjs (the bundle the image ships)' : 'src/cli/main.ts (the sources)'}`,
  );
  const measured: Measured[] = [];
  try {
    for (const kind of chosen)
      for (const nodes of counts) {
        const m = await measure(plane, dir, kind, nodes, entry, agentArgs);
        summarize(m);
        measured.push(m);
      }
  } finally {
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  clearTimeout(watchdog);

  for (const m of measured)
    result(`scale_bytes_per_alloc_${m.kind}_${m.nodes}`, Math.round(sum(m.bytes) / pods), 'bytes');
  for (const m of measured)
    result(`scale_agent_received_per_alloc_${m.kind}_${m.nodes}`, Math.round(m.agentBytes / pods), 'bytes');
  for (const kind of chosen) {
    const of = (n: number) => measured.find((m) => m.kind === kind && m.nodes === n);
    const [few, many] = [of(2), of(50)];
    if (few === undefined || many === undefined) continue;
    result(`scale_bytes_ratio_${kind}`, sum(many.bytes) / sum(few.bytes), 'ratio');
    result(`scale_agent_received_ratio_${kind}`, many.agentBytes / few.agentBytes, 'ratio');
  }
  result('scale_agent_idle_rss_mb', median(measured.flatMap((m) => m.rssMiB)), 'MB');
  result(
    'scale_failures',
    measured.reduce((n, m) => n + m.failures.length, 0),
    'allocations',
  );
  result(
    'scale_duplicates',
    measured.reduce((n, m) => n + m.duplicates.length, 0),
    'addresses',
  );
  for (const m of measured) result(`scale_add_seconds_${m.kind}_${m.nodes}`, m.seconds, 's');
  console.log(`# wall time ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
