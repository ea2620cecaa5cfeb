// whereabouts-ts against Whereabouts v0.9.4 on one real kube-apiserver, in one run: the same burst — 1000
// ADDs then 1000 DELs from 10 simulated nodes — for Whereabouts, for whereabouts-ts standalone
// (`dist/whereabouts` with an `agent_socket` where nothing listens) and for whereabouts-ts with a node agent
// per simulated node (`whereabouts-ts agent` processes). The claim "much faster, far fewer requests" is
// only worth what a side-by-side run on the same server, machine and shape shows.
//
// - Shape: each simulated node runs its pods' plugin processes as a kubelet on its own cores would
//   (test/support/kubelet.ts: a per-node cap scaled to this machine's cores, printed).
// - Each system in its own namespace, its plugins and agents with a ServiceAccount's kubeconfig (not
//   system:masters, so API Priority and Fairness applies), named by a flat file that `configuration_path`
//   names: Whereabouts needs one, and ours reads the same (test/support/whereabouts.ts).
// - One network: 10.128.0.0/16, overlapping ranges on (the default of both). The pool exists before the
//   burst (one pod's ADD first), as after a network's first pod.
// - As a kubelet: a failed ADD is torn down (DEL) and tried again after a backoff, with a new sandbox; a
//   failed DEL is tried again. Failures are counted on the first try, whatever the retries achieve, and a
//   system's seconds (and the ratios it is in) are not results when it had any.
// - Requests are counted by the API server itself (`apiserver_request_total` of the whereabouts group,
//   Leases, pods and nodes), during the waves only.
// - Duplicates are checked on what was answered (one address, two pods) and on what the server stores
//   (the pool entry or reservation of an answered address naming another pod).
//
// `npm run bench -- versus [pods]` (`npm run kube:build`, `npm run peers:build` and `npm run build` first).
// Bounded: the scenario stops itself after `scenarioLimitMs`.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinaries, findPeers } from '../../kube/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../kube/control-plane.ts';
import { group } from '../../src/codecs/ippool.ts';
import { execute, type Output } from '../../test/support/exec.ts';
import { describeNodes, onNodes, simulatedNodes, type Nodes } from '../../test/support/kubelet.ts';
import { result } from '../report.ts';
import { plugin as ours, startAgentProcess } from '../support/burst.ts';
import { difference, ipamResources, requestCounts, sum, writerKubeconfig } from '../support/real-cluster.ts';

const systems = ['whereabouts', 'standalone', 'agent'] as const;
type System = (typeof systems)[number];

const range = '10.128.0.0/16';
/**
 * The whole scenario's bound: 100 min. On a busy 2-core machine Whereabouts took about 10 min, ours
 * standalone about 15, and ours with agents over 30 (every system slows down as the pool fills).
 */
const scenarioLimitMs = 6_000_000;
/** A kubelet's --runtime-request-timeout (2 min): the longest a sandbox operation may take. */
const callTimeoutMs = 120_000;
/** Tries of one ADD (or DEL), as a kubelet retries a pod's sandbox; the pause doubles from `backoffMs`. */
const attempts = 4;
const backoffMs = 1_000;

type Call = (command: string, pod: string, containerId: string, node: number) => Promise<Output>;

/** What a pod's ADD came to: its address ('' when every try failed), its sandbox, its failed tries. */
type Added = { address: string; containerId: string; errors: string[] };

type Measured = {
  system: System;
  addSeconds: number;
  delSeconds: number;
  added: Added[];
  delErrors: string[][];
  requests: Map<string, number>;
  addRequests: Map<string, number>;
  duplicates: string[];
  unrecorded: string[];
  orphans: number;
  leftEntries: number;
  leftReservations: number;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Why a call failed, in a line: the CNI error's message, or the exit and the tail of stderr. */
function why(output: Output): string {
  try {
    const e = JSON.parse(output.stdout) as { code?: number; msg?: string; details?: string };
    if (typeof e.msg === 'string') return `code ${e.code ?? '?'}: ${e.msg} ${e.details ?? ''}`.trim();
  } catch {
    // not a CNI error
  }
  return `exit ${output.code}: ${output.stderr.trim().split('\n').at(-1) ?? ''}`;
}

const addressOf = (output: Output): string | undefined => {
  if (output.code !== 0) return undefined;
  try {
    return (JSON.parse(output.stdout) as { ips?: { address: string }[] }).ips?.[0]?.address.split('/')[0];
  } catch {
    return undefined;
  }
};

/** One pod's ADD as a kubelet runs it: on failure, DEL of that sandbox, a pause, and a new sandbox. */
async function addPod(call: Call, pod: string, node: number): Promise<Added> {
  const errors: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const containerId = `${pod}-sandbox-${attempt}`;
    const output = await call('ADD', pod, containerId, node);
    const address = addressOf(output);
    if (address !== undefined) return { address, containerId, errors };
    errors.push(why(output));
    await call('DEL', pod, containerId, node);
    if (attempt === attempts) return { address: '', containerId, errors };
    await sleep(backoffMs * 2 ** (attempt - 1));
  }
}

/** One pod's DEL, tried again after a pause while it fails. The failed tries. */
async function delPod(call: Call, pod: string, containerId: string, node: number): Promise<string[]> {
  const errors: string[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const output = await call('DEL', pod, containerId, node);
    if (output.code === 0) return errors;
    errors.push(why(output));
    if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1));
  }
  return errors;
}

type Stored = { entries: Map<string, string[]>; reservations: Map<string, string> };

const ipv4 = (value: bigint) => [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
const ipv4Value = (text: string) => text.split('.').reduce((v, octet) => (v << 8n) + BigInt(octet), 0n);

/** Every pool entry of `namespace` as `address → podrefs`, every reservation as `address → podref`. */
async function storedIn(plane: ControlPlane, namespace: string): Promise<Stored> {
  const list = async (plural: string) => {
    const answer = await plane.request('GET', `/apis/${group}/v1alpha1/namespaces/${namespace}/${plural}`);
    if (answer.status !== 200) throw new Error(`list ${plural}: ${answer.status}`);
    return (answer.body as { items: { metadata: { name: string }; spec: Record<string, unknown> }[] }).items;
  };
  const entries = new Map<string, string[]>();
  for (const pool of await list('ippools')) {
    const base = ipv4Value((pool.spec.range as string).split('/')[0] ?? '');
    const allocations = (pool.spec.allocations ?? {}) as Record<string, { podref?: string }>;
    for (const [offset, entry] of Object.entries(allocations)) {
      const address = ipv4(base + BigInt(offset));
      entries.set(address, [...(entries.get(address) ?? []), entry.podref ?? '']);
    }
  }
  const reservations = new Map(
    (await list('overlappingrangeipreservations')).map(
      (r) => [r.metadata.name, (r.spec.podref as string | undefined) ?? ''] as const,
    ),
  );
  return { entries, reservations };
}

/** Failures grouped by kind (numbers and names made of them do not split a group), one example each. */
function printGrouped(label: string, failures: readonly string[]): void {
  const groups = new Map<string, { n: number; example: string }>();
  for (const f of failures) {
    const kind = f.replace(/[\w.-]*\d[\w.-]*/g, 'N');
    const seen = groups.get(kind) ?? { n: 0, example: f };
    groups.set(kind, { ...seen, n: seen.n + 1 });
  }
  for (const { n, example } of groups.values())
    console.log(`#   ${label}: ${n} × like ${example.slice(0, 300)}`);
}

async function measure(
  plane: ControlPlane,
  system: System,
  dir: string,
  nodes: Nodes,
  pods: number,
  whereabouts: { executable: string; pluginsDir: string },
): Promise<Measured> {
  const namespace = await plane.namespace(`versus-${system}`);
  const here = join(dir, system);
  const kubeconfig = join(dir, `${system}.kubeconfig`);
  writeFileSync(kubeconfig, await writerKubeconfig(plane, namespace), { mode: 0o600 });
  const flatFile = join(dir, `${system}.conf`);
  writeFileSync(flatFile, JSON.stringify({ datastore: 'kubernetes', kubernetes: { kubeconfig } }));
  const socket = (node: number) =>
    system === 'agent' ? join(dir, `${system}-node-${node}.sock`) : join(dir, 'nobody-listens.sock');
  const config = (node: number) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'versus',
      type: 'macvlan',
      master: 'eth0',
      ipam: {
        type: 'whereabouts',
        range,
        configuration_path: flatFile,
        log_level: 'error',
        ...(system === 'whereabouts' ? {} : { agent_socket: socket(node) }),
      },
    });
  const executable = system === 'whereabouts' ? whereabouts.executable : ours;
  const call: Call = (command, pod, containerId, node) =>
    execute(
      executable,
      {
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: `/var/run/netns/${containerId}`,
        CNI_IFNAME: 'net1',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
        CNI_PATH: whereabouts.pluginsDir,
      },
      config(node),
      callTimeoutMs,
    );

  const agents: ChildProcess[] = [];
  // The watchdog ends the process without unwinding: no agent may outlive it.
  const stopAgents = () => {
    for (const agent of agents) agent.kill('SIGTERM');
  };
  process.once('exit', stopAgents);
  try {
    if (system === 'agent')
      agents.push(
        ...(await Promise.all(
          Array.from({ length: nodes.count }, (_, node) =>
            startAgentProcess(socket(node), kubeconfig, `node-${node}`, join(here, `state-${node}`)),
          ),
        )),
      );
    // The network's first pod creates the pool (Whereabouts answers that first ADD with an error).
    const warm = await addPod(call, 'warm', 0);
    if (warm.address === '')
      throw new Error(`${system}: the first pod got no address: ${warm.errors.join('; ')}`);

    const before = await requestCounts(plane, ipamResources);
    let started = performance.now();
    const added = await onNodes(nodes, pods, (job, node) => addPod(call, `pod-${job}`, node));
    const addSeconds = (performance.now() - started) / 1000;
    const afterAdd = await requestCounts(plane, ipamResources);
    // Printed at once: a run the watchdog ends still shows its ADD waves.
    console.log(
      `# ${system}: ADD wave done in ${addSeconds.toFixed(1)} s, ${added.filter((a) => a.errors.length > 0).length} ADDs failed on the first try, ${sum(difference(afterAdd, before))} requests`,
    );

    // Duplicates: on what was answered, and on what the server stores.
    const holders = new Map<string, string[]>([[warm.address, [`${namespace}/warm`]]]);
    added.forEach((a, job) => {
      if (a.address !== '')
        holders.set(a.address, [...(holders.get(a.address) ?? []), `${namespace}/pod-${job}`]);
    });
    const stored = await storedIn(plane, namespace);
    const duplicates: string[] = [];
    const unrecorded: string[] = [];
    for (const [address, owners] of holders) {
      const entries = stored.entries.get(address) ?? [];
      const reservation = stored.reservations.get(address);
      if (owners.length > 1) duplicates.push(`${address} answered to ${owners.join(', ')}`);
      else if (entries.some((podref) => podref !== owners[0]) || (reservation ?? owners[0]) !== owners[0])
        duplicates.push(
          `${address} answered to ${owners[0] ?? ''}, stored for ${[...entries, reservation ?? ''].join(', ')}`,
        );
      else if (entries.length === 0 || reservation === undefined)
        unrecorded.push(
          `${address} (${owners[0] ?? ''}): ${entries.length === 0 ? 'no pool entry' : ''} ${reservation === undefined ? 'no reservation' : ''}`,
        );
    }
    const orphans = [...stored.entries.keys()].filter((address) => !holders.has(address)).length;

    const beforeDel = await requestCounts(plane, ipamResources);
    started = performance.now();
    const delErrors = await onNodes(nodes, pods, (job, node) => {
      const a = added[job];
      return a === undefined ? Promise.resolve([]) : delPod(call, `pod-${job}`, a.containerId, node);
    });
    const delSeconds = (performance.now() - started) / 1000;
    const afterDel = await requestCounts(plane, ipamResources);
    const addRequests = difference(afterAdd, before);
    const delRequests = difference(afterDel, beforeDel);
    const requests = new Map(addRequests);
    for (const [key, n] of delRequests) requests.set(key, (requests.get(key) ?? 0) + n);

    const left = await storedIn(plane, namespace);
    const warmRef = `${namespace}/warm`;
    return {
      system,
      addSeconds,
      delSeconds,
      added,
      delErrors,
      requests: new Map([...requests].sort(([a], [b]) => a.localeCompare(b))),
      addRequests,
      duplicates,
      unrecorded,
      orphans,
      leftEntries: [...left.entries.values()].flat().filter((podref) => podref !== warmRef).length,
      leftReservations: [...left.reservations.values()].filter((podref) => podref !== warmRef).length,
    };
  } finally {
    process.off('exit', stopAgents);
    stopAgents();
  }
}

/** The first-try failures of a system's burst: ADDs and DELs whose first try failed. */
const failuresOf = (m: Measured): number =>
  m.added.filter((a) => a.errors.length > 0).length + m.delErrors.filter((e) => e.length > 0).length;

function summarize(m: Measured): void {
  const addFailed = m.added.filter((a) => a.errors.length > 0).length;
  const noAddress = m.added.filter((a) => a.address === '').length;
  const delFailed = m.delErrors.filter((e) => e.length > 0).length;
  const delNever = m.delErrors.filter((e) => e.length === attempts).length;
  const retries = m.added.reduce((n, a) => n + a.errors.length, 0);
  console.log(
    `# ${m.system}: ADD wave ${m.addSeconds.toFixed(1)} s, DEL wave ${m.delSeconds.toFixed(1)} s; ` +
      `${addFailed} ADDs failed on the first try (${retries} failed tries in all, ${noAddress} pods without an address after ${attempts} tries), ` +
      `${delFailed} DELs failed on the first try (${delNever} never succeeded); ` +
      `${sum(m.requests)} requests (${sum(m.addRequests)} in the ADD wave); ` +
      `${m.duplicates.length} duplicates, ${m.unrecorded.length} answered but not stored, ${m.orphans} stored but not answered; ` +
      `left after the DEL wave: ${m.leftEntries} pool entries, ${m.leftReservations} reservations`,
  );
  console.log(
    `#   requests (apiserver_request_total, verb resource code): ${[...m.requests].map(([k, n]) => `${k}: ${n}`).join(', ')}`,
  );
  printGrouped(
    'ADD failed',
    m.added.flatMap((a) => a.errors),
  );
  printGrouped('DEL failed', m.delErrors.flat());
  for (const d of m.duplicates.slice(0, 10)) console.log(`#   duplicate ${d}`);
  for (const u of m.unrecorded.slice(0, 10)) console.log(`#   not stored ${u}`);
}

export async function run(): Promise<void> {
  const pods = Number(process.argv[3] ?? 1000);
  if (!Number.isInteger(pods) || pods < 1) throw new Error(`versus: pods must be a positive integer`);
  const found = findBinaries();
  if (!found.ok) throw new Error(`versus: ${found.why}`);
  const peers = findPeers();
  if (!peers.ok) throw new Error(`versus: ${peers.why}`);
  const watchdog = setTimeout(() => {
    console.error(`versus: still running after ${scenarioLimitMs / 1000} s; stopped`);
    process.exit(1); // the control plane's exit hook kills etcd and kube-apiserver
  }, scenarioLimitMs);
  watchdog.unref();

  const nodes = simulatedNodes(10);
  const started = performance.now();
  const plane = await startControlPlane();
  const dir = mkdtempSync(join(tmpdir(), 'wb-bench-versus-'));
  console.log(
    `# kube-apiserver ${found.binaries.kubernetesVersion} with etcd on loopback, ready in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `Whereabouts ${peers.peers.whereaboutsVersion}; whereabouts-ts ${ours}`,
  );
  console.log(
    `# shape: ${describeNodes(nodes)}; ${pods} ADDs then ${pods} DELs per system; network ${range}, overlapping ranges on; ` +
      `a failed ADD is torn down and tried again (at most ${attempts} tries, pauses from ${backoffMs / 1000} s doubling), as a kubelet does`,
  );
  const measured = new Map<System, Measured>();
  try {
    for (const system of systems) {
      // Others' work on this machine shows in the figures: the load when each system starts says how much.
      console.log(
        `# ${system}: starting, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
      );
      const m = await measure(plane, system, dir, nodes, pods, {
        executable: peers.peers.whereabouts,
        pluginsDir: peers.peers.pluginsDir,
      });
      measured.set(system, m);
      summarize(m);
    }
  } finally {
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  clearTimeout(watchdog);

  const get = (system: System): Measured => {
    const m = measured.get(system);
    if (m === undefined) throw new Error(`versus: ${system} not measured`);
    return m;
  };
  const seconds = (m: Measured) => m.addSeconds + m.delSeconds;
  const w = get('whereabouts');
  for (const m of systems.map(get)) {
    const failures = failuresOf(m);
    result(`versus_${m.system}_failures`, failures, 'calls');
    if (failures === 0) result(`versus_${m.system}_seconds`, seconds(m), 's');
    else
      console.log(
        `# versus_${m.system}_seconds ${seconds(m).toFixed(1)} s: not a result, ${failures} calls failed on the first try (retries included)`,
      );
    result(`versus_${m.system}_requests_per_alloc`, sum(m.requests) / pods, 'requests');
    result(`versus_${m.system}_left_allocations`, m.leftEntries, 'allocations');
    result(`versus_${m.system}_left_reservations`, m.leftReservations, 'reservations');
  }
  for (const system of ['standalone', 'agent'] as const) {
    const m = get(system);
    const ratio = seconds(m) / seconds(w);
    const failed = [w, m].filter((x) => failuresOf(x) > 0);
    if (failed.length === 0) result(`versus_${system}_ratio`, ratio, 'ratio');
    else
      console.log(
        `# versus_${system}_ratio ${ratio.toPrecision(4)}: not a result, the runs of ${failed.map((x) => `${x.system} (${failuresOf(x)} failures)`).join(' and ')} had failures`,
      );
  }
  result('versus_whereabouts_duplicates', w.duplicates.length, 'addresses');
  result(
    'versus_duplicates',
    get('standalone').duplicates.length + get('agent').duplicates.length,
    'addresses',
  );
}
