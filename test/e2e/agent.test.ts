// The plugin executable with the node agent: requests go over the agent's unix socket when it is there, and
// the plugin does the work itself when it is not — with the same results and the same invariants.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent, type RunningAgent } from '../../src/agent/agent.ts';
import { silentLogger } from '../../src/log.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { execute, pluginPath as plugin, podEnv } from '../support/exec.ts';
import { poolsOf, reservationsOf, writeNodeSlicePool } from '../support/pools.ts';

let cluster: TestCluster;
let running: RunningAgent | undefined;
let dir: string;
let socket: string;
beforeEach(async () => {
  cluster = await startCluster();
  dir = mkdtempSync(join(tmpdir(), 'wb-agent-'));
  socket = join(dir, 'run', 'agent.sock');
  running = await runAgent({
    connection: cluster.connection(),
    socketPath: socket,
    nodeName: 'node-1',
    log: silentLogger,
    flatFilePaths: [],
    metricsPort: 0,
  });
});
afterEach(async () => {
  await running?.stop();
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

const conf = () =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'net',
    type: 'macvlan',
    ipam: {
      type: 'whereabouts',
      range: '198.18.0.0/22',
      agent_socket: socket,
      kubernetes: { kubeconfig: cluster.kubeconfig },
      log_level: 'error',
    },
  });

const cni = (command: string, pod: string) => execute(plugin, podEnv(command, pod), conf());

const allocations = () => Object.values(poolsOf(cluster.server).get('198.18.0.0-22')?.allocations ?? {});

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
  expect(allocations()).toHaveLength(60);
  const released = await Promise.all(Array.from({ length: 60 }, (_, i) => cni('DEL', `p${i}`)));
  expect(released.filter((r) => r.code !== 0)).toEqual([]);
  expect(allocations()).toHaveLength(0);
});

test('without the agent the plugin works standalone, and results agree', async () => {
  const viaAgent = await cni('ADD', 'a');
  await running?.stop();
  running = undefined;
  const again = await cni('ADD', 'a'); // standalone now: the same address, ADD being idempotent
  expect(again).toEqual(viaAgent);
  expect((await cni('ADD', 'b')).code).toBe(0);
  expect(allocations()).toHaveLength(2);
});

test('requests of one attachment run one after another: a DEL sent during its ADD releases what the ADD took', async () => {
  const { forwardToAgent } = await import('../../src/cni/agent-client.ts');
  await cni('ADD', 'warm'); // the pool exists: the DEL's read is served at once from the agent's cache
  cluster.server.faults.writeLatencyMs = 300;
  for (let round = 0; round < 3; round++) {
    const pod = `lane-${round}`;
    const [added, deleted] = await Promise.all([
      forwardToAgent(socket, podEnv('ADD', pod), conf(), 30_000),
      new Promise((r) => setTimeout(r, 50)).then(() =>
        forwardToAgent(socket, podEnv('DEL', pod), conf(), 30_000),
      ),
    ]);
    expect(added).toMatchObject({ output: { exitCode: 0 } });
    expect(deleted).toMatchObject({ output: { exitCode: 0 } });
    expect(allocations().map((e) => e.podref)).toEqual(['default/warm']);
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

test('group commit: a burst on one node becomes far fewer pool writes than allocations', async () => {
  await cni('ADD', 'warm'); // creates the pool
  cluster.server.resetStats();
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => cni('ADD', `g${i}`)));
  expect(results.filter((r) => r.code !== 0)).toEqual([]);
  const patches = cluster.server.stats.byVerb.patch ?? 0;
  expect(patches).toBeLessThan(40);
  expect(allocations()).toHaveLength(41);
  const metrics = await (await fetch(`${running?.metricsUrl ?? ''}/metrics`)).text();
  expect(metrics).toMatch(/whereabouts_agent_requests_total\{verb="ADD",result="ok"\} 41/);
  expect(metrics).toContain('whereabouts_agent_batch_size_bucket');
  expect((await fetch(`${running?.metricsUrl ?? ''}/healthz`)).status).toBe(200);
  expect((await fetch(`${running?.metricsUrl ?? ''}/readyz`)).status).toBe(200);
});

test('deleting a pod of this node releases its address within seconds', async () => {
  const { core } = cluster.connection();
  await core.createNamespacedPod({
    namespace: 'default',
    body: { metadata: { name: 'doomed' }, spec: { nodeName: 'node-1', containers: [] } },
  });
  await core.createNamespacedPod({
    namespace: 'default',
    body: { metadata: { name: 'other' }, spec: { nodeName: 'node-2', containers: [] } },
  });
  expect((await cni('ADD', 'doomed')).code).toBe(0);
  expect((await cni('ADD', 'other')).code).toBe(0);
  await new Promise((r) => setTimeout(r, 300)); // the pod watch has seen the pods
  await core.deleteNamespacedPod({ namespace: 'default', name: 'doomed' });
  const deadline = Date.now() + 5_000;
  while (allocations().some((a) => a.podref === 'default/doomed') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  expect(allocations().map((a) => a.podref)).toEqual(['default/other']);
  expect([...reservationsOf(cluster.server).values()].map((r) => r.podref)).toEqual(['default/other']);
});

/** Agents for node-2 and node-3 beside node-1's, on sockets `node-<n>.sock` in the test directory. */
const agentsOfNodes2And3 = () =>
  Promise.all(
    [2, 3].map((n) =>
      runAgent({
        connection: cluster.connection(),
        socketPath: join(dir, `node-${n}.sock`),
        nodeName: `node-${n}`,
        log: silentLogger,
        flatFilePaths: [],
        metricsPort: 0,
      }),
    ),
  );

test('several agents under a burst, one killed mid-burst: every ADD succeeds, no duplicate, nothing left after DEL', async () => {
  const others = await agentsOfNodes2And3();
  const socketOf = (i: number) => (i % 3 === 0 ? socket : join(dir, `node-${(i % 3) + 1}.sock`));
  const run = (command: string, i: number) =>
    execute(
      plugin,
      podEnv(command, `m${i}`),
      conf().replace(JSON.stringify(socket), JSON.stringify(socketOf(i))),
    );
  const burst = Promise.all(Array.from({ length: 90 }, (_, i) => run('ADD', i)));
  await new Promise((r) => setTimeout(r, 400));
  await others[0]?.stop(); // node-2's agent dies with requests in flight: its plugins go on standalone
  const added = await burst;
  expect(added.filter((r) => r.code !== 0)).toEqual([]);
  const told = added.map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]?.address);
  expect(new Set(told).size).toBe(90);
  // Every pod told an address holds one; a pod whose request the dying agent committed after its plugin
  // went on standalone may briefly hold a second — its own, released with the rest on DEL — never another's.
  const holders = allocations().map((a) => a.podref);
  for (let i = 0; i < 90; i++) expect(holders).toContain(`default/m${i}`);
  expect(holders.every((p) => /^default\/m\d+$/.test(p))).toBe(true);
  const released = await Promise.all(Array.from({ length: 90 }, (_, i) => run('DEL', i)));
  expect(released.filter((r) => r.code !== 0)).toEqual([]);
  expect(allocations()).toEqual([]);
  await others[1]?.stop();
});

test('node slices through three agents: each node allocates in its own slices, takes more when full, no duplicate', async () => {
  const others = await agentsOfNodes2And3();
  // 198.19.0.0/24 in /28 slices; every node starts with one (as the controller leaves it) and needs two.
  await writeNodeSlicePool(
    cluster.connection(),
    'sliced',
    { range: '198.19.0.0/24', sliceSize: '/28' },
    Array.from({ length: 16 }, (_, i) => ({
      nodeName: i < 3 ? `node-${i + 1}` : '',
      sliceRange: `198.19.0.${i * 16}/28`,
    })),
  );
  const socketOf = (i: number) => (i % 3 === 0 ? socket : join(dir, `node-${(i % 3) + 1}.sock`));
  const slicedConf = (i: number) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'sliced',
      type: 'macvlan',
      ipam: {
        type: 'whereabouts',
        range: '198.19.0.0/24',
        node_slice_size: '/28',
        agent_socket: socketOf(i),
        kubernetes: { kubeconfig: cluster.kubeconfig },
        log_level: 'error',
      },
    });
  const run = (command: string, i: number) => execute(plugin, podEnv(command, `s${i}`), slicedConf(i));
  const { core } = cluster.connection();
  await core.createNamespacedPod({
    namespace: 'default',
    body: { metadata: { name: 's0' }, spec: { nodeName: 'node-1', containers: [] } },
  });
  const added = await Promise.all(Array.from({ length: 60 }, (_, i) => run('ADD', i)));
  expect(added.filter((r) => r.code !== 0)).toEqual([]);
  const told = added.map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]?.address);
  expect(new Set(told).size).toBe(60);
  const pools = poolsOf(cluster.server);
  for (const [i, address] of told.entries()) {
    // The pod's address lies in a pool of its own node, whose range is a slice assigned to that node.
    const node = `node-${(i % 3) + 1}`;
    const offset = Number(address?.split('/')[0]?.split('.')[3]);
    const slice = `198.19.0.${offset - (offset % 16)}/28`;
    expect(pools.get(`${node}-198.19.0.${offset - (offset % 16)}-28`)?.range).toBe(slice);
  }
  const slices = (
    cluster.server.objects('nodeslicepools', 'whereabouts.cni.cncf.io').get('kube-system/sliced') as {
      status: { allocations: { nodeName: string; sliceRange: string }[] };
    }
  ).status.allocations;
  for (const n of [1, 2, 3]) expect(slices.filter((s) => s.nodeName === `node-${n}`)).toHaveLength(2);
  expect(running?.agent.stats.byCommand.ADD).toBe(20);
  // Deleting a pod of node-1 releases its address in node-1's slice pool, and its reservation (named after
  // the network, not after the pool: the agent tells `<node>-<slice>` pools by its own node name).
  const s0 = told[0]?.split('/')[0] ?? '';
  expect(reservationsOf(cluster.server).has(s0)).toBe(true);
  await core.deleteNamespacedPod({ namespace: 'default', name: 's0' });
  const deadline = Date.now() + 5_000;
  while (reservationsOf(cluster.server).has(s0) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  expect(reservationsOf(cluster.server).has(s0)).toBe(false);
  expect(
    Object.values(poolsOf(cluster.server).get('node-1-198.19.0.0-28')?.allocations ?? {}).map(
      (e) => e.podref,
    ),
  ).not.toContain('default/s0');
  const released = await Promise.all(Array.from({ length: 60 }, (_, i) => run('DEL', i)));
  expect(released.filter((r) => r.code !== 0)).toEqual([]);
  expect([...poolsOf(cluster.server).values()].flatMap((p) => Object.keys(p.allocations))).toEqual([]);
  expect(reservationsOf(cluster.server).size).toBe(0);
  await Promise.all(others.map((o) => o.stop()));
});
