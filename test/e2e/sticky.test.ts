// Sticky StatefulSet addresses (`sticky_ips`, docs/persistent.md) end to end: the plugin executable with the
// node agent serving it, pods and StatefulSets on the API server (the tests play the StatefulSet controller
// and the kubelet), and GC. Each lifecycle checks the invariants that matter: the member gets its address
// back, no address is ever held twice, and nothing is left once the set no longer wants the member.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { retainedId } from '../../src/allocator/keeper.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { runTestAgent } from '../support/agent.ts';
import { runPlugin } from '../../src/cni/plugin.ts';
import { runGc } from '../../src/gc/run.ts';
import { httpApi } from '../../src/kube-api/http-api.ts';
import { loadCredentials } from '../../src/kube-api/kubeconfig.ts';
import { kubeStore } from '../../src/store/store.ts';
import { emptyNamespace, onEveryServer, type Cluster } from '../support/cluster.ts';
import { execute, pluginPath as plugin, podEnv } from '../support/exec.ts';
import { networkConf } from '../support/config.ts';
import { poolsIn } from '../support/pools.ts';
import { until, whenServed } from '../support/wait.ts';

const graceMs = 60_000;

onEveryServer((start) => {
  let cluster: Cluster;
  let running: RunningAgent | undefined;
  let dir: string;
  let socket: string;
  beforeEach(async () => {
    cluster = await start();
    dir = mkdtempSync(join(tmpdir(), 'wb-sticky-'));
    socket = join(dir, 'agent.sock');
    running = await runTestAgent(cluster, socket);
  });
  afterEach(async () => {
    await running?.stop();
    for (const name of sets.keys()) await cluster.connection().delete(setRef(name));
    sets.clear();
    await emptyNamespace(cluster);
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const conf = (sticky = true) =>
    networkConf({
      range: '198.18.0.0/24',
      sticky_ips: sticky,
      agent_socket: socket,
      kubernetes: { kubeconfig: cluster.kubeconfig },
    });
  const cni = async (command: string, pod: string, sandbox: string, sticky = true) => {
    const out = await execute(plugin, podEnv(command, pod, sandbox, cluster.namespace), conf(sticky));
    if (out.code !== 0) throw new Error(`${command} ${pod}: ${out.stdout}${out.stderr}`);
    return command === 'ADD'
      ? (JSON.parse(out.stdout) as { ips: { address: string }[] }).ips[0]?.address
      : '';
  };
  type Entry = { id: string; podref: string; ifname: string };
  const entries = async (): Promise<Entry[]> =>
    Object.values(
      ((await poolsIn(cluster)).get('198.18.0.0-24')?.allocations ?? {}) as Record<string, Entry>,
    );
  const ref = (pod: string) => `${cluster.namespace}/${pod}`;
  const offsets = async () => {
    const pool = (await poolsIn(cluster)).get('198.18.0.0-24');
    return Object.entries((pool?.allocations ?? {}) as Record<string, Entry>).map(
      ([k, e]) => [k, e] as const,
    );
  };
  /** Every pod reference holds at most one entry, and every address is one entry (the pool's map key). */
  const noDuplicates = async () => {
    const refs = (await entries()).map((e) => `${e.podref} ${e.ifname}`);
    expect(new Set(refs).size).toBe(refs.length);
  };

  const sets = new Map<string, string>();
  const setRef = (name?: string) => ({
    group: 'apps',
    version: 'v1',
    plural: 'statefulsets',
    namespace: cluster.namespace,
    ...(name === undefined ? {} : { name }),
  });
  const answered = async <T>(call: Promise<{ ok: true; value: T } | { ok: false; error: unknown }>) => {
    const outcome = await call;
    if (!outcome.ok) throw new Error(JSON.stringify(outcome.error));
    return outcome.value;
  };
  async function createSet(name: string, replicas: number): Promise<void> {
    const made = await answered(
      cluster.connection().create(setRef(), {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name },
        spec: {
          replicas,
          serviceName: name,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
          },
        },
      }),
    );
    sets.set(name, (made.metadata as { uid: string }).uid);
  }
  const scale = (name: string, replicas: number) =>
    answered(
      cluster
        .connection()
        .jsonPatch(setRef(name), [{ op: 'replace', path: '/spec/replicas', value: replicas }]),
    );
  const deleteSet = async (name: string) => {
    await answered(cluster.connection().delete(setRef(name)));
    sets.delete(name);
  };
  /** The set's pod, as its controller creates it (or, without `set`, a pod of that name made by hand). */
  const createPod = (name: string, set?: string) =>
    whenServed(() =>
      cluster.connection().core.createNamespacedPod({
        namespace: cluster.namespace,
        body: {
          metadata: {
            name,
            ...(set === undefined
              ? {}
              : {
                  ownerReferences: [
                    {
                      apiVersion: 'apps/v1',
                      kind: 'StatefulSet',
                      name: set,
                      uid: sets.get(set) ?? '',
                      controller: true,
                    },
                  ],
                }),
          },
          spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
        },
      }),
    );
  /** The pod goes at once: its kubelet's final delete, or a force delete. */
  const deletePod = (name: string) =>
    whenServed(() =>
      cluster
        .connection()
        .core.deleteNamespacedPod({ namespace: cluster.namespace, name, gracePeriodSeconds: 0 }),
    );
  const kept = async () => {
    const text = await (await fetch(`${running?.metricsUrl ?? ''}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('whereabouts_agent_kept_for_statefulset_total '));
    return Number(line?.split(' ')[1] ?? 0);
  };
  /** Two GC runs a grace period apart, as the cron job runs them. */
  const gcTwice = async () => {
    const now = Date.now();
    for (const at of [now, now + graceMs + 1]) {
      const ran = await runGc(cluster.connection(), { dryRun: false, graceMs, now: () => at });
      if (!ran.ok) throw new Error(ran.error.message);
    }
  };

  test('a member deleted and recreated gets its address back; DEL keeps the entry, marked retained', async () => {
    await createSet('web', 2);
    await createPod('web-0', 'web');
    const first = await cni('ADD', 'web-0', 'sandbox-a');
    await cni('DEL', 'web-0', 'sandbox-a');
    expect(await entries()).toEqual([{ id: retainedId, podref: ref('web-0'), ifname: 'net1' }]);
    await deletePod('web-0');
    await until('the agent kept the deleted member', async () => (await kept()) >= 1);
    await createPod('web-0', 'web');
    expect(await cni('ADD', 'web-0', 'sandbox-b')).toBe(first);
    expect(await entries()).toEqual([{ id: 'sandbox-b', podref: ref('web-0'), ifname: 'net1' }]);
    // A GC run in between keeps it too: the set still wants web-0.
    await gcTwice();
    expect(await entries()).toHaveLength(1);
  });

  test("the old sandbox's DEL after the new incarnation's ADD leaves the address with the new one", async () => {
    await createSet('db', 1);
    await createPod('db-0', 'db');
    const first = await cni('ADD', 'db-0', 'sandbox-a');
    await deletePod('db-0'); // force-deleted: the kubelet has not run DEL yet
    await until('the agent kept the deleted member', async () => (await kept()) >= 1);
    await createPod('db-0', 'db');
    expect(await cni('ADD', 'db-0', 'sandbox-b')).toBe(first);
    await cni('DEL', 'db-0', 'sandbox-a');
    expect(await entries()).toEqual([{ id: 'sandbox-b', podref: ref('db-0'), ifname: 'net1' }]);
  });

  test('scaled below the ordinal: a retained address is released once two GC runs a grace period apart agree', async () => {
    await createSet('web', 2);
    await createPod('web-1', 'web');
    await cni('ADD', 'web-1', 'sandbox-a');
    await cni('DEL', 'web-1', 'sandbox-a');
    await deletePod('web-1');
    await until('the agent kept the deleted member', async () => (await kept()) >= 1);
    await scale('web', 1);
    const now = Date.now();
    const firstRun = await runGc(cluster.connection(), { dryRun: false, graceMs, now: () => now });
    expect(firstRun.ok && firstRun.value.plan.suspects).toBe(1);
    expect(await entries()).toHaveLength(1); // kept: scaled back up within the grace period it would stay
    const later = await runGc(cluster.connection(), { dryRun: false, graceMs, now: () => now + graceMs + 1 });
    expect(later.ok && later.value.plan.releases.map((r) => r.reason)).toEqual(['member-unwanted']);
    expect(await entries()).toEqual([]);
    // A member DEL'd after the scale-down is released at once.
    await createPod('web-5', 'web');
    await cni('ADD', 'web-5', 'sandbox-c');
    await cni('DEL', 'web-5', 'sandbox-c');
    expect(await entries()).toEqual([]);
  });

  test('the set deleted: DEL releases, and GC releases what was retained before', async () => {
    await createSet('web', 3);
    await createPod('web-0', 'web');
    await createPod('web-1', 'web');
    await cni('ADD', 'web-0', 'sandbox-a');
    await cni('ADD', 'web-1', 'sandbox-b');
    await cni('DEL', 'web-0', 'sandbox-a'); // retained
    await deleteSet('web');
    await cni('DEL', 'web-1', 'sandbox-b'); // the set is gone: released
    expect((await entries()).map((e) => e.podref)).toEqual([ref('web-0')]);
    await deletePod('web-0');
    await deletePod('web-1');
    await gcTwice();
    expect(await entries()).toEqual([]);
  });

  test('pods no StatefulSet owns are released as without sticky_ips, whatever their names', async () => {
    await createSet('web', 3);
    await createPod('solo-0'); // no set of that name
    await createPod('web-2'); // the set's name, but made by hand
    await createPod('api-7f9c-x2k4q');
    for (const pod of ['solo-0', 'web-2', 'api-7f9c-x2k4q']) {
      await cni('ADD', pod, `sandbox-${pod}`);
      await cni('DEL', pod, `sandbox-${pod}`);
    }
    expect(await entries()).toEqual([]);
    // And a member of a network without sticky_ips is released as ever.
    await createPod('web-0', 'web');
    await cni('ADD', 'web-0', 'sandbox-a', false);
    await cni('DEL', 'web-0', 'sandbox-a', false);
    expect(await entries()).toEqual([]);
  });

  test('standalone (no agent: the plugin reads the set with its own lean client) the member keeps its address too', async () => {
    await running?.stop();
    running = undefined;
    await createSet('web', 1);
    await createPod('web-0', 'web');
    const standalone = async (command: string, sandbox: string) => {
      const out = await runPlugin({
        env: podEnv(command, 'web-0', sandbox, cluster.namespace),
        stdin: conf(),
        flatFilePaths: [],
        openStore: (config) => {
          const credentials = loadCredentials(config.kubeconfig, {});
          return credentials.ok
            ? { ok: true, value: kubeStore(httpApi(credentials.value, 5_000)) }
            : credentials;
        },
        writeLog: () => undefined,
      });
      if (out.exitCode !== 0) throw new Error(`${command}: ${out.stdout}`);
      return command === 'ADD'
        ? (JSON.parse(out.stdout) as { ips: { address: string }[] }).ips[0]?.address
        : '';
    };
    const first = await standalone('ADD', 'sandbox-a');
    await standalone('DEL', 'sandbox-a');
    expect(await entries()).toEqual([{ id: retainedId, podref: ref('web-0'), ifname: 'net1' }]);
    expect(await standalone('ADD', 'sandbox-b')).toBe(first);
    await deleteSet('web');
    await standalone('DEL', 'sandbox-b');
    expect(await entries()).toEqual([]);
  });

  test('concurrent churn of members and other pods: each member keeps one address, none is held twice, nothing leaks', async () => {
    const members = 6;
    await createSet('web', members);
    const names = Array.from({ length: members }, (_, i) => `web-${i}`);
    for (const name of names) await createPod(name, 'web');
    const firstAddresses = await Promise.all(names.map((n) => cni('ADD', n, `${n}-r0`)));
    expect(new Set(firstAddresses).size).toBe(members);
    for (let round = 1; round <= 3; round++) {
      const others = Array.from({ length: 4 }, (_, i) => `other-${round}-${i}`);
      const [again] = await Promise.all([
        Promise.all(
          names.map(async (n) => {
            await cni('DEL', n, `${n}-r${round - 1}`);
            return cni('ADD', n, `${n}-r${round}`);
          }),
        ),
        Promise.all(
          others.map(async (o) => {
            await cni('ADD', o, `sandbox-${o}`);
            await cni('DEL', o, `sandbox-${o}`);
          }),
        ),
      ]);
      expect(again).toEqual(firstAddresses);
      await noDuplicates();
    }
    expect((await offsets()).length).toBe(members);
    await Promise.all(names.map((n) => cni('DEL', n, `${n}-r3`)));
    expect((await entries()).every((e) => e.id === retainedId)).toBe(true);
    await deleteSet('web');
    for (const name of names) await deletePod(name);
    await gcTwice();
    expect(await entries()).toEqual([]);
  });
});
