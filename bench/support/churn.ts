// The churn workload (issue 15): StatefulSet-style pods recreated under the same names — the old pod
// deleted and, at once, a new sandbox of the same name ADDed with a new container ID, racing the node
// agent's release on deletion of the old one; the old sandbox's DEL arriving late; the agent restarted
// (its restart reconcile running) and the API server restarted on the same port with its objects (every
// watch and connection ends), round after round. After every round: no address held by two live
// attachments, every live attachment's address in its pool as its own. After the last: every pod deleted
// and DELed, nothing left — no pool entry, no reservation. Used by test/e2e/churn.test.ts and
// `npm run bench -- churn`.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent, type RunningAgent } from '../../src/agent/agent.ts';
import { kubeconfigFor } from '../../src/dev-apiserver/kubeconfig.ts';
import { startApiServer } from '../../src/dev-apiserver/server.ts';
import { parseIP } from '../../src/ip/address.ts';
import { silentLogger } from '../../src/log.ts';
import { connect } from '../../src/kube-api/kube.ts';
import { crdDirectory } from './cluster.ts';

export type ChurnOptions = {
  readonly rounds: number;
  readonly pods: number;
  /** Told after every round. */
  readonly progress?: (round: number) => void;
};

export type ChurnReport = {
  readonly rounds: number;
  /** Addresses held by two live attachments, summed over the rounds. */
  readonly duplicates: number;
  /** Live attachments whose address their pool did not hold as theirs, summed over the rounds. */
  readonly liveReleased: number;
  /** Pool entries and reservations left after every pod was deleted and DELed. */
  readonly leaked: number;
  /** What went wrong, one line each (ADDs that failed for good, the first few findings). */
  readonly problems: readonly string[];
};

const plugin = join(import.meta.dirname, '..', '..', 'dist', 'whereabouts');
const namespace = 'kube-system';
const node = 'node-1';
const range = '198.18.8.0/24';
const pool = '198.18.8.0-24';

type Output = { code: number; stdout: string };

function cni(command: string, pod: string, container: string, conf: string): Promise<Output> {
  return new Promise((resolve) => {
    const child = execFile(
      plugin,
      [],
      {
        env: {
          PATH: process.env.PATH ?? '',
          CNI_COMMAND: command,
          CNI_CONTAINERID: container,
          CNI_NETNS: '/var/run/netns/x',
          CNI_IFNAME: 'net1',
          CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
          CNI_PATH: '/opt/cni/bin',
          NODENAME: node,
        },
        timeout: 120_000,
      },
      (error, stdout) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout });
      },
    );
    child.stdin?.end(conf);
  });
}

/** As a kubelet does: an answer "try again later" (11) is asked again. */
async function retried(command: string, pod: string, container: string, conf: string): Promise<Output> {
  for (let attempt = 0; ; attempt++) {
    const out = await cni(command, pod, container, conf);
    const code = out.code === 0 ? 0 : (JSON.parse(out.stdout || '{}') as { code?: number }).code;
    if (code !== 11 || attempt === 20) return out;
  }
}

const base = parseIP(range.split('/')[0] ?? '')?.value ?? 0n;
/** The pool key of an address: its offset from the range's network address. */
const offsetOf = (address: string): string => ((parseIP(address)?.value ?? 0n) - base).toString();

const addressOf = (out: Output): string | undefined =>
  out.code === 0
    ? (JSON.parse(out.stdout) as { ips?: { address: string }[] }).ips?.[0]?.address.split('/')[0]
    : undefined;

export async function churn(options: ChurnOptions): Promise<ChurnReport> {
  const server = await startApiServer({ crdDirectories: [crdDirectory] });
  const dir = mkdtempSync(join(tmpdir(), 'wb-churn-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigFor(server.url, { namespace }), { mode: 0o600 });
  const connection = () => {
    const c = connect({ kubeconfig });
    if (!c.ok) throw new Error(c.error.details);
    return c.value;
  };
  const socket = join(dir, 'agent.sock');
  const startAgent = () =>
    runAgent({
      connection: connection(),
      socketPath: socket,
      nodeName: node,
      log: silentLogger,
      flatFilePaths: [],
      kubeconfig,
      metricsPort: 0,
      stateDir: join(dir, 'state'),
      watchBackoff: { initialMs: 50, maxMs: 500 },
    });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'churn',
    type: 'macvlan',
    ipam: {
      type: 'whereabouts',
      range,
      agent_socket: socket,
      kubernetes: { kubeconfig },
      log_level: 'error',
    },
  });
  const { core } = connection();
  /** The workload's own API calls, again after a connection the restarted server closed (as kubectl would). */
  const again = async <T>(call: () => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        if (typeof (e as { code?: unknown }).code === 'number' || attempt === 50) throw e;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };
  const createPod = (name: string) =>
    again(() =>
      core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name },
          spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
        },
      }),
    );
  const deletePod = (name: string) =>
    again(() => core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }));

  /** The pool's entries by offset, as the server stores them. */
  const poolAllocations = (): Record<string, { id: string; podref: string } | undefined> =>
    (
      server.objects('ippools', 'whereabouts.cni.cncf.io').get(`${namespace}/${pool}`) as
        { spec?: { allocations?: Record<string, { id: string; podref: string }> } } | undefined
    )?.spec?.allocations ?? {};

  let agent: RunningAgent | undefined = await startAgent();
  const problems: string[] = [];
  let duplicates = 0;
  let liveReleased = 0;
  /** The live attachment of each pod: its container and the address it was told. */
  const live = new Map<string, { container: string; address: string }>();
  const names = Array.from({ length: options.pods }, (_, i) => `db-${i}`);
  try {
    for (let round = 1; round <= options.rounds; round++) {
      const late: { pod: string; container: string }[] = [];
      await Promise.all(
        names.map(async (pod) => {
          const before = live.get(pod);
          if (before !== undefined) {
            // The StatefulSet controller: the old pod goes, the new one of the same name comes at once.
            await deletePod(pod);
            live.delete(pod);
            late.push({ pod, container: before.container });
          }
          await createPod(pod);
          const container = `c-${round}-${pod}`;
          const added = await retried('ADD', pod, container, conf);
          const address = addressOf(added);
          if (address === undefined) problems.push(`round ${round}: ADD ${pod}: ${added.stdout.trim()}`);
          else live.set(pod, { container, address });
        }),
      );
      // The old sandboxes' DELs come late, after the new sandboxes' ADDs: they must release nothing of them.
      for (const { pod, container } of late) {
        const deleted = await retried('DEL', pod, container, conf);
        if (deleted.code !== 0)
          problems.push(`round ${round}: late DEL ${pod} (${container}): ${deleted.stdout.trim()}`);
      }
      if (round % 5 === 0) {
        const stopping = agent;
        agent = undefined;
        await stopping.stop();
        agent = await startAgent();
      }
      if (round % 7 === 0) await server.restart();

      const allocations = poolAllocations();
      const told = [...live.values()].map((l) => l.address);
      duplicates += told.length - new Set(told).size;
      for (const [pod, { container, address }] of live) {
        const entry = allocations[offsetOf(address)];
        if (entry?.id !== container || entry.podref !== `${namespace}/${pod}`) {
          liveReleased++;
          if (problems.length < 20)
            problems.push(
              `round ${round}: ${pod} (${container}) was told ${address}, the pool holds ${JSON.stringify(entry)}`,
            );
        }
      }
      const entries = Object.values(allocations);
      if (entries.length < live.size)
        problems.push(`round ${round}: ${entries.length} entries for ${live.size} live pods`);
      options.progress?.(round);
    }
    // The end: every pod deleted, every sandbox DELed; the agent's releases and the DELs leave nothing.
    await Promise.all(
      [...live].map(async ([pod, { container }]) => {
        await deletePod(pod);
        const deleted = await retried('DEL', pod, container, conf);
        if (deleted.code !== 0) problems.push(`the end: DEL ${pod} (${container}): ${deleted.stdout.trim()}`);
      }),
    );
    live.clear();
    const leftovers = () =>
      Object.keys(poolAllocations()).length +
      server.objects('overlappingrangeipreservations', 'whereabouts.cni.cncf.io').size;
    const leaked = leftovers();
    if (leaked > 0)
      problems.push(
        `left at the end: ${JSON.stringify(poolAllocations())} ${JSON.stringify([...server.objects('overlappingrangeipreservations', 'whereabouts.cni.cncf.io')])}`,
      );
    return { rounds: options.rounds, duplicates, liveReleased, leaked, problems };
  } finally {
    await agent?.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
