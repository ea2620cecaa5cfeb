// GC against the embedded API server: allocations made by the real transaction for pods in the API, then
// pods deleted, finished, recreated — and GC run as it runs in its CronJob.

import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { applyPlan } from '../../src/gc/apply.ts';
import { collect } from '../../src/gc/collect.ts';
import { networkStatusAnnotation } from '../../src/gc/network-status.ts';
import { planCollection } from '../../src/gc/plan.ts';
import { runGc } from '../../src/gc/run.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { poolsOf, reservationsOf, writeNodeSlicePool } from '../support/pools.ts';

let cluster: TestCluster;
beforeEach(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  await cluster.close();
});

const hourLater = () => Date.now() + 3_600_000;
const grace = 300_000;
const v4 = ipamConfig({ range: '10.40.0.0/24' });

async function createPod(
  name: string,
  node: string,
  options: { phase?: string; ips?: Record<string, string[]> } = {},
): Promise<void> {
  const annotations =
    options.ips === undefined
      ? undefined
      : {
          [networkStatusAnnotation]: JSON.stringify(
            Object.entries(options.ips).map(([iface, ips]) => ({
              name: 'default/net',
              interface: iface,
              ips,
            })),
          ),
        };
  await cluster.connection().core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name, ...(annotations === undefined ? {} : { annotations }) },
      spec: { nodeName: node, containers: [] },
      status: { phase: options.phase ?? 'Running' },
    },
  });
}

const deletePod = (name: string) =>
  cluster.connection().core.deleteNamespacedPod({ namespace: 'default', name });

async function attach(config: IpamConfig, pod: string, ifName = 'net1'): Promise<string[]> {
  const result = await allocate(config, owner(pod, ifName), {
    store: cluster.store(),
    log: silentLogger,
    deadline: deadlineIn(10_000),
    node: 'node-1', // for networks with node slices
  });
  if (!result.ok) throw new Error(result.error.details);
  return result.value.map((a) => formatIP(ipOf(a.range.range.subnet.family, a.address)));
}

const heldPods = (pool = '10.40.0.0-24') =>
  Object.values(poolsOf(cluster.server).get(pool)?.allocations ?? {})
    .map((e) => e.podref)
    .sort();

async function gc(options: { dryRun?: boolean; now?: () => number } = {}) {
  const result = await runGc(cluster.connection(), {
    dryRun: options.dryRun ?? false,
    graceMs: grace,
    now: options.now ?? hourLater,
  });
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

test('a deleted pod: its allocation and reservation are released', async () => {
  await createPod('a', 'node-1');
  await createPod('b', 'node-1');
  const [address] = await attach(v4, 'a');
  await attach(v4, 'b');
  await deletePod('a');
  const report = await gc();
  expect(report.plan.releases.map((r) => [r.podRef, r.reason])).toEqual([['default/a', 'pod-gone']]);
  expect(heldPods()).toEqual(['default/b']);
  // The reservation goes in the next run, once it is older than the grace period … or at once here, a run an hour on.
  expect(reservationsOf(cluster.server).has(address ?? '')).toBe(false);
  expect(report.applied?.errors).toEqual([]);
});

test('node slice pools: a deleted pod is released with its reservation, for named and unnamed networks', async () => {
  const slices = (range: string) => [
    { nodeName: 'node-1', sliceRange: range.replace('/23', '/24') },
    { nodeName: '', sliceRange: range.replace('.0.0/23', '.1.0/24') },
  ];
  await writeNodeSlicePool(
    cluster.connection(),
    'blue',
    { range: '10.41.0.0/23', sliceSize: '/24' },
    slices('10.41.0.0/23'),
  );
  await writeNodeSlicePool(
    cluster.connection(),
    'fast',
    { range: '10.42.0.0/23', sliceSize: '/24' },
    slices('10.42.0.0/23'),
  );
  const named = ipamConfig({ range: '10.41.0.0/23', node_slice_size: '/24', network_name: 'blue' });
  const unnamed = ipamConfig({ range: '10.42.0.0/23', node_slice_size: '/24' }, { name: 'fast' });
  await createPod('a', 'node-1');
  await createPod('b', 'node-1');
  const kept: string[] = [];
  for (const config of [named, unnamed]) {
    await attach(config, 'a');
    kept.push(...(await attach(config, 'b')));
  }
  await deletePod('a');
  const report = await gc();
  expect(report.applied?.errors).toEqual([]);
  expect(heldPods('blue-node-1-10.41.0.0-24')).toEqual(['default/b']);
  expect(heldPods('node-1-10.42.0.0-24')).toEqual(['default/b']);
  expect([...reservationsOf(cluster.server).keys()].sort()).toEqual(
    [`blue-${kept[0] ?? ''}`, kept[1]].sort(),
  );
});

test('a node gone with its pods: all of them released, other nodes untouched', async () => {
  for (const [pod, node] of [
    ['x1', 'gone'],
    ['x2', 'gone'],
    ['y1', 'alive'],
  ] as const) {
    await createPod(pod, node);
    await attach(v4, pod);
  }
  await deletePod('x1');
  await deletePod('x2');
  await gc();
  expect(heldPods()).toEqual(['default/y1']);
});

test('a finished Job pod is released', async () => {
  await createPod('job-1', 'node-1', { phase: 'Succeeded' });
  await attach(v4, 'job-1');
  expect((await gc()).plan.releases.map((r) => r.reason)).toEqual(['pod-finished']);
  expect(heldPods()).toEqual([]);
});

test('a StatefulSet pod recreated on another node: kept when it holds the address, released when it got another', async () => {
  await createPod('web-0', 'node-1');
  const [address] = await attach(v4, 'web-0');
  await deletePod('web-0');
  await createPod('web-0', 'node-2', { ips: { net1: [address ?? ''] } });
  await gc();
  expect(heldPods()).toEqual(['default/web-0']);

  await deletePod('web-0');
  await createPod('web-0', 'node-3', { ips: { net1: ['10.99.0.1'] } });
  const report = await gc();
  expect(report.plan.releases.map((r) => r.reason)).toEqual(['address-changed']);
  expect(heldPods()).toEqual([]);
});

test('a pod Pending without network-status inside the grace period is kept, as is a pod showing its address', async () => {
  await createPod('starting', 'node-1', { phase: 'Pending' });
  await attach(v4, 'starting');
  await createPod('running', 'node-1');
  const [address] = await attach(v4, 'running');
  await deletePod('running');
  await createPod('running', 'node-1', { ips: { net1: [address ?? ''] } });
  const report = await gc({ now: Date.now });
  expect(report.plan.releases).toEqual([]);
  expect(heldPods()).toEqual(['default/running', 'default/starting']);
});

test('reservations of named networks and of IPv6 addresses ending in :: are kept while their pods live', async () => {
  const named = ipamConfig({ range: '10.41.0.0/24', network_name: 'blue' });
  const v6 = ipamConfig({ range: '2001:db8:41::/47' }, { runtimeConfig: { ips: ['2001:db8:41:1::'] } });
  await createPod('p', 'node-1');
  await attach(named, 'p');
  expect(await attach(v6, 'p', 'net2')).toEqual(['2001:db8:41:1::']);
  const before = [...reservationsOf(cluster.server).keys()].sort();
  expect(before).toEqual(['2001-db8-41-1--0', expect.stringMatching(/^blue-10\.41\.0\.\d+$/) as unknown]);
  const report = await gc();
  expect(report.plan.releases).toEqual([]);
  expect(report.plan.deletions).toEqual([]);
  expect([...reservationsOf(cluster.server).keys()].sort()).toEqual(before);
});

test('an orphaned reservation (no pool entry) older than the grace period is deleted; a young one kept', async () => {
  await createPod('p', 'node-1');
  const store = cluster.store();
  await store.createReservation('10.40.0.77', { podref: 'default/p', ifname: 'net1' });
  expect((await gc({ now: Date.now })).plan.deletions).toEqual([]);
  const report = await gc();
  expect(report.applied?.deleted.map((d) => d.name)).toEqual(['10.40.0.77']);
  expect(reservationsOf(cluster.server).size).toBe(0);
});

test('an address re-allocated between the plan and its write is kept', async () => {
  await createPod('old', 'node-1');
  const [address] = await attach(v4, 'old');
  await deletePod('old');
  const api = cluster.connection();
  const collected = await collect(api);
  if (!collected.ok) throw new Error(collected.error.message);
  const plan = planCollection({ ...collected.value, now: hourLater(), graceMs: grace });
  expect(plan.releases.map((r) => r.address)).toEqual([address]);

  // Meanwhile: the old pod's DEL runs, and a new pod is given the very same address.
  await release(v4, owner('old'), {
    store: cluster.store(),
    log: silentLogger,
    deadline: deadlineIn(10_000),
  });
  await createPod('new', 'node-1');
  const wanted = ipamConfig({ range: '10.40.0.0/24' }, { runtimeConfig: { ips: [address] } });
  expect(await attach(wanted, 'new')).toEqual([address]);

  const applied = await applyPlan(api, plan);
  expect(applied.released).toEqual([]);
  expect(applied.changed).toBeGreaterThanOrEqual(1);
  expect(heldPods()).toEqual(['default/new']);
  expect(reservationsOf(cluster.server).get(address ?? '')?.podref).toBe('default/new');
});

test('API errors mid-run: the others are still processed, and the run reports the failure', async () => {
  await cluster.close();
  const rbac = { denyPatchOf: '' };
  cluster = await startCluster({ authorize: (r) => !(r.verb === 'patch' && r.name === rbac.denyPatchOf) });
  const blocked = ipamConfig({ range: '10.42.0.0/24' });
  await createPod('a', 'node-1');
  await createPod('b', 'node-1');
  await attach(blocked, 'a');
  await attach(v4, 'b');
  await deletePod('a');
  await deletePod('b');
  rbac.denyPatchOf = '10.42.0.0-24';
  const report = await gc();
  expect(report.applied?.released.map((r) => r.podRef)).toEqual(['default/b']);
  expect(report.applied?.errors).toHaveLength(1);
  expect(report.applied?.errors[0]).toContain('forbidden by RBAC (403)');
  expect(heldPods('10.42.0.0-24')).toEqual(['default/a']);
});

describe('the gc command', () => {
  const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [cli, 'gc', '--kubeconfig', cluster.kubeconfig, ...args],
        { timeout: 30_000 },
        (error, stdout, stderr) => {
          resolve({
            code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
            stdout,
            stderr,
          });
        },
      );
    });

  test('--dry-run prints what it would release and why, as a table and as JSON, and changes nothing', async () => {
    await createPod('gone', 'node-1');
    const [address] = await attach(v4, 'gone');
    await deletePod('gone');
    const table = await run(['--dry-run']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      new RegExp(
        `allocation +kube-system/10\\.40\\.0\\.0-24 +${(address ?? '').replace(/\./g, '\\.')} +default/gone +net1 +pod-gone`,
      ),
    );
    expect(table.stderr).toMatch(
      /^GC: 1 pools, 1 allocations, 1 reservations, 0 pods; leaked 1 allocations and 0 reservations \(dry run: nothing changed\)/,
    );
    const json = await run(['--dry-run', '--output', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({
      releases: [
        {
          namespace: 'kube-system',
          pool: '10.40.0.0-24',
          key: expect.any(String) as unknown,
          address,
          podRef: 'default/gone',
          ifName: 'net1',
          containerId: 'sandbox-gone',
          reason: 'pod-gone',
        },
      ],
      deletions: [],
    });
    expect(heldPods()).toEqual(['default/gone']);
  });

  test('a real run releases, logs one summary line, and pushes its metrics', async () => {
    const pushed: string[] = [];
    const gateway = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        pushed.push(`${req.method ?? ''} ${req.url ?? ''}\n${body}`);
        res.end();
      });
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    await createPod('gone', 'node-1');
    await attach(v4, 'gone');
    await deletePod('gone');
    const out = await run([
      '--grace-period',
      '0s',
      '--pushgateway',
      `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`,
    ]);
    gateway.close();
    expect(out.code).toBe(0);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect(out.stderr).toMatch(/released 1, deleted 1, left 0 that changed meanwhile, 0 errors/);
    expect(heldPods()).toEqual([]);
    expect(pushed).toHaveLength(1);
    expect(pushed[0]).toMatch(/^POST \/metrics\/job\/whereabouts-gc\n/);
    expect(pushed[0]).toContain('whereabouts_gc_released_total{reason="pod-gone"} 1');
    expect(pushed[0]).toContain('whereabouts_gc_last_success_timestamp_seconds');
  });

  test('a bad flag or no cluster is a clear error and a non-zero exit', async () => {
    const bad = await run(['--output', 'yaml', '--dry-run']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--output must be table or json');
    await cluster.server.close();
    const down = await promisify(execFile)(process.execPath, [
      cli,
      'gc',
      '--kubeconfig',
      cluster.kubeconfig,
    ]).catch((e: unknown) => e as { code: number; stderr: string });
    expect('code' in down && down.code).toBe(1);
    expect('stderr' in down && down.stderr).toMatch(/is unreachable \(ECONNREFUSED\)/);
  });
});
