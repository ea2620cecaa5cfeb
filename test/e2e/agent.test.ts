// The plugin executable with the node agent: requests go over the agent's unix socket when it is there, and
// the plugin does the work itself when it is not — with the same results and the same invariants. Run
// against the embedded API server (which ends watches after 2 s here, and whose faults make lists and
// watches fail) and against a real kube-apiserver (which ends watches after 5–10 s, answers 429 while it
// starts again, and keeps a gracefully deleted pod Terminating until its kubelet — here, the test — is done).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { runTestAgent } from '../support/agent.ts';
import { slicePoolLabels } from '../../src/codecs/pool-labels.ts';
import type { ControlPlane } from '../../kube/control-plane.ts';
import {
  createPod as createPodIn,
  emptyNamespace,
  onRealServer,
  realCluster,
  startCluster,
  type Cluster,
  type TestCluster,
} from '../support/cluster.ts';
import { execute, pluginPath as plugin, podEnv } from '../support/exec.ts';
import { networkConf } from '../support/config.ts';
import { poolsIn, reservationsIn, writeNodeSlicePool, writePool } from '../support/pools.ts';
import { until, whenServed } from '../support/wait.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function suite(start: () => Promise<Cluster>, kind: Cluster['kind'], plane?: () => ControlPlane): void {
  let cluster: Cluster;
  let running: RunningAgent | undefined;
  let dir: string;
  let socket: string;
  const startAgent = (node: string, socketPath: string, stateDir?: string) =>
    runTestAgent(cluster, socketPath, { nodeName: node, ...(stateDir === undefined ? {} : { stateDir }) });
  beforeEach(async () => {
    cluster = await start();
    dir = mkdtempSync(join(tmpdir(), 'wb-agent-'));
    socket = join(dir, 'run', 'agent.sock');
    running = await startAgent('node-1', socket);
  });
  afterEach(async () => {
    await running?.stop();
    await emptyNamespace(cluster);
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const embedded = () => cluster as TestCluster;

  const conf = () =>
    networkConf({
      range: '198.18.0.0/22',
      agent_socket: socket,
      kubernetes: { kubeconfig: cluster.kubeconfig },
    });

  /** 198.19.0.0/24 in /28 slices (NodeSlicePool `sliced`), served by the agent at `agentSocket`. */
  const slicedConf = (agentSocket: string) =>
    networkConf(
      {
        range: '198.19.0.0/24',
        node_slice_size: '/28',
        agent_socket: agentSocket,
        kubernetes: { kubeconfig: cluster.kubeconfig },
      },
      'sliced',
    );

  const env = (command: string, pod: string) => podEnv(command, pod, undefined, cluster.namespace);
  const cni = (command: string, pod: string) => execute(plugin, env(command, pod), conf());
  const allocations = async (pool = '198.18.0.0-22') =>
    Object.values((await poolsIn(cluster)).get(pool)?.allocations ?? {});
  const holders = async (pool?: string) => (await allocations(pool)).map((a) => a.podref).sort();
  const reservationHolders = async () =>
    [...(await reservationsIn(cluster)).values()].map((r) => r.podref).sort();
  const ref = (pod: string) => `${cluster.namespace}/${pod}`;

  /** A pod bound to a node, as the scheduler leaves it (no kubelet runs: the test plays its part). */
  const createPod = (name: string, node: string) => createPodIn(cluster, name, node);
  /** A graceful DELETE, as `kubectl delete pod` sends it: the pod stays Terminating until its kubelet is done. */
  const deleteGracefully = (name: string) =>
    whenServed(() => cluster.connection().core.deleteNamespacedPod({ namespace: cluster.namespace, name }));
  /** The pod goes at once: its kubelet's final delete once the containers are gone, or a force delete. */
  const deleteNow = (name: string) =>
    whenServed(() =>
      cluster
        .connection()
        .core.deleteNamespacedPod({ namespace: cluster.namespace, name, gracePeriodSeconds: 0 }),
    );
  /** What the kubelet reports once it has stopped a deleted pod's containers and sandbox. */
  const reportFinished = (name: string, phase = 'Failed') =>
    whenServed(() =>
      cluster
        .connection()
        .core.patchNamespacedPodStatus(
          { namespace: cluster.namespace, name, body: { status: { phase } } },
          mergePatch,
        ),
    );

  const metricsText = async () => (await fetch(`${running?.metricsUrl ?? ''}/metrics`)).text();
  /** One sample of the agent's metrics, `labels` as printed (`{a="b"}`); 0 when absent. */
  const metric = async (name: string, labels: string) => {
    const line = `${name}${labels} `;
    const found = (await metricsText()).split('\n').find((l) => l.startsWith(line));
    return found === undefined ? 0 : Number(found.slice(line.length));
  };
  const ready = async () => (await fetch(`${running?.metricsUrl ?? ''}/readyz`)).status === 200;

  test("the socket is the agent's alone (mode 0600)", () => {
    expect(statSync(socket).mode & 0o777).toBe(0o600);
  });

  test('the plugin hands its work to the agent, and concurrent ADDs through it never collide', async () => {
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => cni('ADD', `p${i}`)));
    expect(results.filter((r) => r.code !== 0)).toEqual([]);
    expect(running?.agent.stats.byCommand.ADD).toBe(60);
    const addresses = results.map(
      (r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]?.address,
    );
    expect(new Set(addresses).size).toBe(60);
    expect(await allocations()).toHaveLength(60);
    const released = await Promise.all(Array.from({ length: 60 }, (_, i) => cni('DEL', `p${i}`)));
    expect(released.filter((r) => r.code !== 0)).toEqual([]);
    expect(await allocations()).toHaveLength(0);
  });

  test('a network naming another kubeconfig is declined by the agent and served standalone, in that store', async () => {
    const made = await cluster.request('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { generateName: 'other-' },
    });
    const elsewhere = (made.body as { metadata: { name: string } }).metadata.name;
    const other = join(dir, 'other.kubeconfig');
    writeFileSync(
      other,
      // The context's namespace, in YAML or in JSON (renderKubeconfig's).
      readFileSync(cluster.kubeconfig, 'utf8').replace(
        new RegExp(`("?namespace"?: *"?)${cluster.namespace}`),
        `$1${elsewhere}`,
      ),
      { mode: 0o600 },
    );
    const served = running?.agent.stats.requests ?? 0;
    const own = JSON.parse(conf()) as { ipam: Record<string, unknown> };
    own.ipam.kubernetes = { kubeconfig: other };
    const added = await execute(plugin, env('ADD', 'x'), JSON.stringify(own));
    expect(added.code).toBe(0);
    // Not one request ran in the agent; the address is in the pool of the namespace that kubeconfig names.
    expect(running?.agent.stats.requests).toBe(served);
    const pools = (await cluster.connection().custom.listNamespacedCustomObject({
      group: 'whereabouts.cni.cncf.io',
      version: 'v1alpha1',
      namespace: elsewhere,
      plural: 'ippools',
    })) as { items: { spec: { allocations: Record<string, { podref: string }> } }[] };
    expect(pools.items.flatMap((p) => Object.values(p.spec.allocations).map((a) => a.podref))).toEqual([
      ref('x'),
    ]);
    expect(await holders()).toEqual([]);
    // A DEL of a config ADD refuses (here a typo'd key) is declined the same way: its kubeconfig is read all
    // the same, and the plugin releases in the namespace it names.
    const { forwardToAgent } = await import('../../src/cni/agent-client.ts');
    const refused = JSON.stringify({ ...own, ipam: { ...own.ipam, rnage: '10.0.0.0/24' } });
    expect(await forwardToAgent(socket, env('DEL', 'x'), refused, 30_000)).toEqual({
      unavailable: `the node agent does not serve it: the network names the kubeconfig ${other}, not the node agent's ${cluster.kubeconfig}`,
    });
    expect(running?.agent.stats.requests).toBe(served);
    expect(await execute(plugin, env('DEL', 'x'), refused)).toMatchObject({ code: 0, stdout: '' });
    const left = (await cluster.connection().custom.listNamespacedCustomObject({
      group: 'whereabouts.cni.cncf.io',
      version: 'v1alpha1',
      namespace: elsewhere,
      plural: 'ippools',
    })) as { items: { spec: { allocations: Record<string, unknown> } }[] };
    expect(left.items.map((p) => p.spec.allocations)).toEqual([{}]);
    expect((await execute(plugin, env('DEL', 'x'), JSON.stringify(own))).code).toBe(0);
    // The node's own networks still go through the agent.
    expect((await cni('ADD', 'y')).code).toBe(0);
    expect(running?.agent.stats.requests).toBe(served + 1);
  });

  test('without the agent the plugin works standalone, and results agree', async () => {
    const viaAgent = await cni('ADD', 'a');
    await running?.stop();
    running = undefined;
    const again = await cni('ADD', 'a'); // standalone now: the same address, ADD being idempotent
    expect(again).toEqual(viaAgent);
    expect((await cni('ADD', 'b')).code).toBe(0);
    expect(await allocations()).toHaveLength(2);
  });

  if (kind === 'embedded')
    test('requests of one attachment run one after another: a DEL sent during its ADD releases what the ADD took', async () => {
      const { forwardToAgent } = await import('../../src/cni/agent-client.ts');
      await cni('ADD', 'warm'); // the pool exists: the DEL's read is served at once from the agent's cache
      embedded().server.faults.writeLatencyMs = 300;
      for (let round = 0; round < 3; round++) {
        const pod = `lane-${round}`;
        const [added, deleted] = await Promise.all([
          forwardToAgent(socket, env('ADD', pod), conf(), 30_000),
          new Promise((r) => setTimeout(r, 50)).then(() =>
            forwardToAgent(socket, env('DEL', pod), conf(), 30_000),
          ),
        ]);
        expect(added).toMatchObject({ output: { exitCode: 0 } });
        expect(deleted).toMatchObject({ output: { exitCode: 0 } });
        expect(await holders()).toEqual([ref('warm')]);
      }
    });

  test('bad requests on the socket are refused without running anything', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      const req = request({ socketPath: socket, method: 'POST', path: '/v1/cni' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.end('{"env": 1}');
    });
    expect(status).toBe(400);
    expect(running?.agent.stats.requests).toBe(0);
  });

  if (kind === 'embedded')
    test('group commit: a burst on one node becomes far fewer pool writes than allocations', async () => {
      await cni('ADD', 'warm'); // creates the pool
      embedded().server.resetStats();
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => cni('ADD', `g${i}`)));
      expect(results.filter((r) => r.code !== 0)).toEqual([]);
      const patches = embedded().server.stats.byVerb.patch ?? 0;
      expect(patches).toBeLessThan(40);
      expect(await allocations()).toHaveLength(41);
      const metrics = await metricsText();
      expect(metrics).toMatch(/whereabouts_agent_requests_total\{verb="ADD",result="ok"\} 41/);
      expect(metrics).toContain('whereabouts_agent_batch_size_bucket');
      expect((await fetch(`${running?.metricsUrl ?? ''}/healthz`)).status).toBe(200);
      expect(await ready()).toBe(true);
    });

  test('release on pod deletion: never while a Terminating pod may still run; once its kubelet reports it finished, or it is gone', async () => {
    for (const [name, node] of [
      ['finished', 'node-1'],
      ['terminating', 'node-1'],
      ['gone', 'node-1'],
      ['other', 'node-2'],
    ] as const) {
      await createPod(name, node);
      expect((await cni('ADD', name)).code).toBe(0);
    }
    // Graceful deletes: both pods stay, Terminating; their containers may still run.
    await deleteGracefully('terminating');
    await deleteGracefully('finished');
    const terminating = await cluster
      .connection()
      .core.readNamespacedPod({ namespace: cluster.namespace, name: 'terminating' });
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    // The kubelet of `finished` has stopped its containers and sandbox, and says so.
    await reportFinished('finished');
    // `gone` is deleted with grace period 0 — after the two above, so once its release is seen, the agent
    // has seen (and decided on) every change of the other two.
    await deleteNow('gone');
    // Released: the pool entry first, then the reservation, then the count.
    await until(
      'the finished and the gone pod are released, their reservations dropped',
      async () => (await metric('whereabouts_agent_released_on_pod_delete_total', '')) === 2,
    );
    expect(await holders()).toEqual([ref('other'), ref('terminating')]);
    expect(await reservationHolders()).toEqual([ref('other'), ref('terminating')]);
  });

  test('release on pod deletion goes on after the server ended the watches: the agent resumes them', async () => {
    for (const name of ['first', 'second']) {
      await createPod(name, 'node-1');
      expect((await cni('ADD', name)).code).toBe(0);
    }
    // The server ends every watch after its timeout; the agent opens it again from where it was.
    await until('the server has ended both watches and the agent has opened them again', async () => {
      const [pods, pools] = [
        await metric('whereabouts_agent_watch_starts_total', '{resource="pods",request="watch"}'),
        await metric('whereabouts_agent_watch_starts_total', '{resource="ippools",request="watch"}'),
      ];
      return pods >= 2 && pools >= 2;
    });
    expect(await ready()).toBe(true);
    await deleteNow('first');
    await until('the deleted pod is released', async () => !(await holders()).includes(ref('first')));
    expect(await holders()).toEqual([ref('second')]);
    expect(await metric('whereabouts_agent_watch_failures_total', '{resource="pods"}')).toBe(0);
  });

  if (kind === 'embedded')
    test('lists and watches that fail (429 with Retry-After) are retried, not given up; a deletion meanwhile is found by the relist after a 410', async () => {
      for (const name of ['during', 'after']) {
        await createPod(name, 'node-1');
        expect((await cni('ADD', name)).code).toBe(0);
      }
      const { server } = embedded();
      // Every list and watch fails from now on: the open watches end at their timeout, and re-opening fails.
      server.faults.errorRates = { 429: 1 };
      server.faults.retryAfterSeconds = 1;
      server.faults.appliesTo = (r) => r.verb === 'watch' || r.verb === 'list';
      await until(
        'the agent has seen its pod watch fail',
        async () => (await metric('whereabouts_agent_watch_failures_total', '{resource="pods"}')) >= 1,
      );
      expect(await ready()).toBe(false);
      const lists = await metric('whereabouts_agent_watch_starts_total', '{resource="pods",request="list"}');
      // Meanwhile a pod is deleted, and the history it was in is compacted away: only a new list shows it.
      await deleteNow('during');
      server.compact();
      server.faults.errorRates = {};
      await until(
        'the pod deleted during the outage is released',
        async () => !(await holders()).includes(ref('during')),
      );
      // The watch from before the compaction was answered 410: the agent listed again.
      expect(
        await metric('whereabouts_agent_watch_starts_total', '{resource="pods",request="list"}'),
      ).toBeGreaterThan(lists);
      await until('the agent is ready again', ready);
      await deleteNow('after');
      await until('a pod deleted after the outage is released', async () => (await holders()).length === 0);
    });

  if (plane !== undefined)
    test('release on pod deletion goes on after kube-apiserver restarted, and after a compaction (410: relist)', async () => {
      for (const name of ['a', 'b', 'c']) {
        await createPod(name, 'node-1');
        expect((await cni('ADD', name)).code).toBe(0);
      }
      await plane().restartApiServer(); // every watch and connection ends; 429 for a moment after
      await deleteNow('a');
      await until(
        'the pod deleted after the restart is released',
        async () => !(await whenServed(() => holders())).includes(ref('a')),
      );
      await until('the agent is ready again', ready);
      await deleteNow('b');
      await cluster.compact(); // etcd forgets, kube-apiserver starts over: old resourceVersions are 410
      await until(
        'the pod deleted around the compaction is released',
        async () => !(await whenServed(() => holders())).includes(ref('b')),
      );
      await deleteNow('c');
      await until(
        'every pod deleted is released, its reservation dropped',
        async () => (await metric('whereabouts_agent_released_on_pod_delete_total', '')) === 3,
      );
      expect(await holders()).toEqual([]);
      // Each reservation goes right after its pool entry (the release drops it next).
      await until(
        'every reservation is dropped',
        async () => (await whenServed(() => reservationHolders())).length === 0,
        70_000,
      );
      await until('the agent is ready again', ready);
    }, 240_000);

  test('after a restart, releases what pods gone meanwhile held; keeps what a pod that may still run holds, wherever it runs', async () => {
    await running?.stop();
    running = undefined;
    const state = join(dir, 'state');
    running = await startAgent('node-1', socket, state);
    const pods = ['kept', 'gone', 'finished', 'terminating', 'elsewhere'];
    for (const name of pods) {
      await createPod(name, name === 'elsewhere' ? 'node-2' : 'node-1'); // its ADD reached node-1's agent
      expect((await cni('ADD', name)).code).toBe(0);
    }
    await running.stop();
    running = undefined;
    // While the agent is down (nobody calls DEL: the node is off): `gone` is force-deleted; `finished` and
    // `terminating` are deleted gracefully and stay Terminating, and only `finished`'s kubelet said it stopped.
    await deleteNow('gone');
    await deleteGracefully('finished');
    await deleteGracefully('terminating');
    await reportFinished('finished', 'Succeeded');
    running = await startAgent('node-1', socket, state);
    await until('the agent is ready (reconciled)', ready);
    // `finished` may be released by the pod watch rather than the reconcile: its reservation goes last.
    const left = [ref('elsewhere'), ref('kept'), ref('terminating')];
    await until(
      'the reservations of the released pods are dropped',
      async () => (await reservationHolders()).length === 3,
    );
    expect(await holders()).toEqual(left);
    expect(await reservationHolders()).toEqual(left);
    // The pod on node-2 whose ADD node-1's agent served is kept, and said to be out of place.
    expect(await metric('whereabouts_agent_foreign_attachments_total', '')).toBe(1);
  });

  if (kind === 'embedded')
    test('the start-up reconcile decides only on what was recorded before: an ADD served meanwhile keeps its address', async () => {
      await running?.stop();
      const { server } = embedded();
      // The pod list fails until the test lets it: the agent serves, but its reconcile waits for that list.
      server.faults.errorRates = { 429: 1 };
      server.faults.retryAfterSeconds = 1;
      server.faults.appliesTo = (r) => r.verb === 'list' && r.def.plural === 'pods';
      running = await startAgent('node-1', socket, join(dir, 'state'));
      // No Pod object: a reconcile that took this attachment for one left from before would release it.
      expect((await cni('ADD', 'fresh')).code).toBe(0);
      expect(await ready()).toBe(false);
      server.faults.errorRates = {};
      await until('the agent is ready (reconciled)', ready);
      expect(await holders()).toEqual([ref('fresh')]);
    });

  test("upgraded from an agent whose records name no pools (it watched them all): nothing is lost, every pod's address still released", async () => {
    await running?.stop();
    running = undefined;
    for (const name of ['stays', 'goes', 'later']) {
      await createPod(name, 'node-1');
      expect((await cni('ADD', name)).code).toBe(0); // standalone: no agent runs
    }
    // The records the older agent wrote for these ADDs: pod, container and interface only.
    const state = join(dir, 'state');
    mkdirSync(join(state, 'attachments'), { recursive: true });
    for (const name of ['stays', 'goes', 'later'])
      writeFileSync(
        join(state, 'attachments', `sandbox-${name}_net1.json`),
        JSON.stringify({ podRef: ref(name), containerId: `sandbox-${name}`, ifName: 'net1' }),
      );
    await deleteNow('goes'); // while no agent runs
    running = await startAgent('node-1', socket, state);
    await until('the agent is ready (reconciled)', ready);
    expect(await holders()).toEqual([ref('later'), ref('stays')]);
    // The records were completed from one list of the pools: a pod deleted now is released too.
    await deleteNow('later');
    await until('the pod deleted after the upgrade is released', async () => (await holders()).length === 1);
    expect(await holders()).toEqual([ref('stays')]);
    await until('its reservation is dropped', async () => (await reservationHolders()).length === 1);
    expect(await reservationHolders()).toEqual([ref('stays')]);
  });

  test('node slices: after a restart, releases what a pod gone meanwhile held in its slice pool, which it watches', async () => {
    await running?.stop();
    const state = join(dir, 'state');
    running = await startAgent('node-1', socket, state);
    await writeNodeSlicePool(
      cluster.connection(),
      'sliced',
      { range: '198.19.0.0/24', sliceSize: '/28' },
      [{ nodeName: 'node-1', sliceRange: '198.19.0.0/28' }],
      cluster.namespace,
    );
    const pool = 'node-1-198.19.0.0-28';
    for (const name of ['stays', 'goes']) {
      await createPod(name, 'node-1');
      expect((await execute(plugin, env('ADD', name), slicedConf(socket))).code).toBe(0);
    }
    await running.stop();
    running = undefined;
    await deleteNow('goes'); // while the agent is down
    running = await startAgent('node-1', socket, state);
    await until('the agent is ready (reconciled)', ready);
    expect(await holders(pool)).toEqual([ref('stays')]);
    await until(
      'the reservation of the gone pod is dropped',
      async () => (await reservationHolders()).length === 1,
    );
    expect(await reservationHolders()).toEqual([ref('stays')]);
    // Its own slice pool is the one pool it watches.
    await until(
      'the slice pool is watched',
      async () => (await metric('whereabouts_agent_pools_held', '{kind="watched"}')) === 1,
    );
  });

  test("the agent watches its own node's slice pools only: another node's never reach it", async () => {
    const slicePool = (node: string) =>
      writePool(
        cluster.connection(),
        `net-${node}-10.5.0.0-24`,
        '10.5.0.0/24',
        {},
        cluster.namespace,
        slicePoolLabels(node, 'net'),
      );
    // node-9's first, then node-1's: once node-1's has arrived, node-9's would have, had it been sent.
    await slicePool('node-9');
    await slicePool('node-1');
    await until(
      "node-1's slice pool is watched",
      async () => (await metric('whereabouts_agent_pools_held', '{kind="watched"}')) >= 1,
    );
    expect(await metric('whereabouts_agent_pools_held', '{kind="watched"}')).toBe(1);
    expect(await metric('whereabouts_agent_pools_held', '{kind="copies"}')).toBe(0);
  });

  /** Agents for node-2 and node-3 beside node-1's, on sockets `node-<n>.sock` in the test directory. */
  const agentsOfNodes2And3 = () =>
    Promise.all([2, 3].map((n) => startAgent(`node-${n}`, join(dir, `node-${n}.sock`))));

  test('several agents under a burst, one stopped mid-burst: every ADD succeeds, no duplicate, nothing left after DEL', async () => {
    const others = await agentsOfNodes2And3();
    const socketOf = (i: number) => (i % 3 === 0 ? socket : join(dir, `node-${(i % 3) + 1}.sock`));
    // As a kubelet does: an ADD or DEL answered "try again later" (11) is run again. A stopping agent
    // answers 11 to what it has not started, finishes what it has, and once its socket is gone the plugin
    // works standalone.
    const run = async (command: string, i: number) => {
      for (;;) {
        const r = await execute(
          plugin,
          env(command, `m${i}`),
          conf().replace(JSON.stringify(socket), JSON.stringify(socketOf(i))),
        );
        if (r.code === 0 || (JSON.parse(r.stdout) as { code?: number }).code !== 11) return r;
      }
    };
    const burst = Promise.all(Array.from({ length: 90 }, (_, i) => run('ADD', i)));
    await until('node-2 has served a few ADDs', () => (others[0]?.agent.stats.requests ?? 0) >= 5);
    await others[0]?.stop(); // node-2's agent stops with requests in flight
    const added = await burst;
    expect(added.filter((r) => r.code !== 0)).toEqual([]);
    const told = added.map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]?.address);
    expect(new Set(told).size).toBe(90);
    // Every pod told an address holds one; a pod whose request the dying agent committed after its plugin
    // went on standalone may briefly hold a second — its own, released with the rest on DEL — never another's.
    const held = await holders();
    for (let i = 0; i < 90; i++) expect(held).toContain(ref(`m${i}`));
    expect(held.every((p) => p.startsWith(`${cluster.namespace}/m`))).toBe(true);
    const released = await Promise.all(Array.from({ length: 90 }, (_, i) => run('DEL', i)));
    expect(released.filter((r) => r.code !== 0)).toEqual([]);
    expect(await allocations()).toEqual([]);
    await others[1]?.stop();
  });

  test('node slices through three agents: each node allocates in its own slices, takes more when full, no duplicate', async () => {
    const others = await agentsOfNodes2And3();
    try {
      // 198.19.0.0/24 in /28 slices; every node starts with one (as the controller leaves it) and needs two.
      await writeNodeSlicePool(
        cluster.connection(),
        'sliced',
        { range: '198.19.0.0/24', sliceSize: '/28' },
        Array.from({ length: 16 }, (_, i) => ({
          nodeName: i < 3 ? `node-${i + 1}` : '',
          sliceRange: `198.19.0.${i * 16}/28`,
        })),
        cluster.namespace,
      );
      const socketOf = (i: number) => (i % 3 === 0 ? socket : join(dir, `node-${(i % 3) + 1}.sock`));
      const run = (command: string, i: number) =>
        execute(plugin, env(command, `s${i}`), slicedConf(socketOf(i)));
      await createPod('s0', 'node-1');
      const added = await Promise.all(Array.from({ length: 60 }, (_, i) => run('ADD', i)));
      expect(added.filter((r) => r.code !== 0)).toEqual([]);
      const told = added.map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]?.address);
      expect(new Set(told).size).toBe(60);
      const pools = await poolsIn(cluster);
      for (const [i, address] of told.entries()) {
        // The pod's address lies in a pool of its own node, whose range is a slice assigned to that node.
        const node = `node-${(i % 3) + 1}`;
        const offset = Number(address?.split('/')[0]?.split('.')[3]);
        const slice = `198.19.0.${offset - (offset % 16)}/28`;
        expect(pools.get(`${node}-198.19.0.${offset - (offset % 16)}-28`)?.range).toBe(slice);
      }
      const slices = (
        (await cluster.objects('nodeslicepools', 'whereabouts.cni.cncf.io')).get('sliced') as {
          status: { allocations: { nodeName: string; sliceRange: string }[] };
        }
      ).status.allocations;
      for (const n of [1, 2, 3]) expect(slices.filter((s) => s.nodeName === `node-${n}`)).toHaveLength(2);
      expect(running?.agent.stats.byCommand.ADD).toBe(20);
      // Deleting a pod of node-1 releases its address in node-1's slice pool, and its reservation (named
      // after the network, not after the pool: the agent tells `<node>-<slice>` pools by its own node name).
      const s0 = told[0]?.split('/')[0] ?? '';
      expect((await reservationsIn(cluster)).has(s0)).toBe(true);
      await deleteNow('s0');
      await until(
        'the reservation of the deleted pod is dropped',
        async () => !(await reservationsIn(cluster)).has(s0),
      );
      expect(await holders('node-1-198.19.0.0-28')).not.toContain(ref('s0'));
      const released = await Promise.all(Array.from({ length: 60 }, (_, i) => run('DEL', i)));
      expect(released.filter((r) => r.code !== 0)).toEqual([]);
      expect([...(await poolsIn(cluster)).values()].flatMap((p) => Object.keys(p.allocations))).toEqual([]);
      expect((await reservationsIn(cluster)).size).toBe(0);
    } finally {
      await Promise.all(others.map((o) => o.stop()));
    }
  });
}

describe('embedded API server', () => {
  suite(() => startCluster({ watchTimeoutSeconds: 2 }), 'embedded');
});
onRealServer((plane) => {
  suite(() => realCluster(plane()), 'real', plane);
});
