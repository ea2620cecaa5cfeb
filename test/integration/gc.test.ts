// GC against the embedded API server and a real kube-apiserver: allocations made by the real transaction for
// pods in the API, then pods deleted, finished, recreated — and GC run as it runs in its CronJob. Pods are
// written as the real server takes them: created Pending, their phase reported through the status
// subresource (as a kubelet does), deleted for good with grace period 0 (a kubelet's final delete), or
// deleted gracefully and left Terminating (no kubelet runs here to finish them).

import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { applyPlan } from '../../src/gc/apply.ts';
import { collect } from '../../src/gc/collect.ts';
import { networkStatusAnnotation } from '../../src/gc/network-status.ts';
import { planCollection, suspectsAnnotation } from '../../src/gc/plan.ts';
import { runGc } from '../../src/gc/run.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import {
  createPod,
  emptyNamespace,
  onEveryServer,
  startCluster,
  type Cluster,
  type TestCluster,
} from '../support/cluster.ts';
import { ipamConfig, owner as ownerIn } from '../support/config.ts';
import { poolsIn, reservationsIn, writeNodeSlicePool, writePool } from '../support/pools.ts';

const hourLater = () => Date.now() + 3_600_000;
const grace = 300_000;
const v4 = ipamConfig({ range: '10.40.0.0/24' });
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The helpers of one test's cluster: pods in the cluster's namespace, and what its pools hold. */
function on(cluster: Cluster) {
  const namespace = cluster.namespace;
  const core = () => cluster.connection().core;
  const owner = (pod: string, ifName = 'net1', containerId = `sandbox-${pod}`) => ({
    ...ownerIn(pod, ifName, containerId),
    podRef: `${namespace}/${pod}`,
  });
  return {
    namespace,
    owner,
    ref: (pod: string) => `${namespace}/${pod}`,
    /** A pod bound to `node`; its kubelet reports `phase` (Running unless said). */
    async createPod(
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
                  name: `${namespace}/net`,
                  interface: iface,
                  ips,
                })),
              ),
            };
      await createPod(cluster, name, node, annotations);
      await this.reportPhase(name, options.phase ?? 'Running');
    },
    /** What the pod's kubelet reports, through the status subresource. */
    reportPhase: async (name: string, phase: string) => {
      await core().patchNamespacedPodStatus({ namespace, name, body: { status: { phase } } }, mergePatch);
    },
    /** The pod is gone: its kubelet's final delete (grace period 0), or a force delete. */
    deletePod: async (name: string) => {
      await core().deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
    },
    /** A graceful delete, as `kubectl delete pod` sends it: the pod stays, Terminating. */
    deleteGracefully: async (name: string) => {
      await core().deleteNamespacedPod({ namespace, name });
    },
    /** Multus writes the pod's network-status: the addresses each interface got. */
    showNetworkStatus: async (name: string, ips: Record<string, string[]>) => {
      const status = Object.entries(ips).map(([iface, list]) => ({
        name: `${namespace}/net`,
        interface: iface,
        ips: list,
      }));
      await core().patchNamespacedPod(
        {
          namespace,
          name,
          body: { metadata: { annotations: { [networkStatusAnnotation]: JSON.stringify(status) } } },
        },
        mergePatch,
      );
    },
    async attach(
      config: IpamConfig,
      pod: string,
      ifName = 'net1',
      containerId = `sandbox-${pod}`,
    ): Promise<string[]> {
      const result = await allocate(config, owner(pod, ifName, containerId), {
        store: cluster.store(),
        log: silentLogger,
        deadline: deadlineIn(10_000),
        node: 'node-1', // for networks with node slices
      });
      if (!result.ok) throw new Error(result.error.details);
      return result.value.map((a) => formatIP(ipOf(a.range.range.subnet.family, a.address)));
    },
    /** GC's sightings of address-changed entries recorded on a pool, parsed; undefined: no annotation. */
    suspects: async (pool = '10.40.0.0-24') => {
      const o = (await cluster.objects('ippools', 'whereabouts.cni.cncf.io')).get(pool);
      const raw = (o?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations?.[
        suspectsAnnotation
      ];
      return raw === undefined
        ? undefined
        : (JSON.parse(raw) as Record<string, { id: string; since: string }>);
    },
    heldPods: async (pool = '10.40.0.0-24') =>
      Object.values((await poolsIn(cluster)).get(pool)?.allocations ?? {})
        .map((e) => e.podref)
        .sort(),
    async gc(options: { dryRun?: boolean; now?: () => number } = {}) {
      const result = await runGc(cluster.connection(), {
        dryRun: options.dryRun ?? false,
        graceMs: grace,
        now: options.now ?? hourLater,
      });
      if (!result.ok) throw new Error(result.error.message);
      return result.value;
    },
  };
}

onEveryServer((start) => {
  let cluster: Cluster;
  let t: ReturnType<typeof on>;
  beforeEach(async () => {
    cluster = await start();
    t = on(cluster);
  });
  afterEach(async () => {
    await emptyNamespace(cluster);
    await cluster.close();
  });

  test('a deleted pod: its allocation and reservation are released', async () => {
    await t.createPod('a', 'node-1');
    await t.createPod('b', 'node-1');
    const [address] = await t.attach(v4, 'a');
    await t.attach(v4, 'b');
    await t.deletePod('a');
    const report = await t.gc();
    expect(report.plan.releases.map((r) => [r.podRef, r.reason])).toEqual([[t.ref('a'), 'pod-gone']]);
    expect(await t.heldPods()).toEqual([t.ref('b')]);
    // The reservation goes in the next run, once it is older than the grace period … or at once here, a run an hour on.
    expect((await reservationsIn(cluster)).has(address ?? '')).toBe(false);
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
      t.namespace,
    );
    await writeNodeSlicePool(
      cluster.connection(),
      'fast',
      { range: '10.42.0.0/23', sliceSize: '/24' },
      slices('10.42.0.0/23'),
      t.namespace,
    );
    const named = ipamConfig({ range: '10.41.0.0/23', node_slice_size: '/24', network_name: 'blue' });
    const unnamed = ipamConfig({ range: '10.42.0.0/23', node_slice_size: '/24' }, { name: 'fast' });
    await t.createPod('a', 'node-1');
    await t.createPod('b', 'node-1');
    const kept: string[] = [];
    for (const config of [named, unnamed]) {
      await t.attach(config, 'a');
      kept.push(...(await t.attach(config, 'b')));
    }
    await t.deletePod('a');
    const report = await t.gc();
    expect(report.applied?.errors).toEqual([]);
    expect(await t.heldPods('blue-node-1-10.41.0.0-24')).toEqual([t.ref('b')]);
    expect(await t.heldPods('node-1-10.42.0.0-24')).toEqual([t.ref('b')]);
    expect([...(await reservationsIn(cluster)).keys()].sort()).toEqual(
      [`blue-${kept[0] ?? ''}`, kept[1]].sort(),
    );
  });

  test('an unreadable pool is skipped, named with what is wrong, and the others are still collected', async () => {
    await t.createPod('a', 'node-1');
    await t.attach(v4, 'a');
    await t.deletePod('a');
    await writePool(cluster.connection(), 'damaged', 'not-a-cidr', {}, cluster.namespace);
    const report = await t.gc();
    expect(report.skippedPools).toEqual([
      `IPPool ${cluster.namespace}/damaged: spec.range "not-a-cidr" is not a CIDR`,
    ]);
    expect(report.plan.releases.map((r) => r.podRef)).toEqual([t.ref('a')]);
    expect(await t.heldPods()).toEqual([]);
  });

  test('a node gone with its pods: all of them released, other nodes untouched', async () => {
    for (const [pod, node] of [
      ['x1', 'gone'],
      ['x2', 'gone'],
      ['y1', 'alive'],
    ] as const) {
      await t.createPod(pod, node);
      await t.attach(v4, pod);
    }
    await t.deletePod('x1');
    await t.deletePod('x2');
    await t.gc();
    expect(await t.heldPods()).toEqual([t.ref('y1')]);
  });

  test('a finished Job pod is released', async () => {
    await t.createPod('job-1', 'node-1', { phase: 'Succeeded' });
    await t.attach(v4, 'job-1');
    expect((await t.gc()).plan.releases.map((r) => r.reason)).toEqual(['pod-finished']);
    expect(await t.heldPods()).toEqual([]);
  });

  test('a StatefulSet pod recreated on another node: kept when it holds the address, released when it got another — on the second sighting', async () => {
    await t.createPod('web-0', 'node-1');
    const [address] = await t.attach(v4, 'web-0');
    await t.deletePod('web-0');
    await t.createPod('web-0', 'node-2', { ips: { net1: [address ?? ''] } });
    await t.gc();
    expect(await t.heldPods()).toEqual([t.ref('web-0')]);

    await t.deletePod('web-0');
    await t.createPod('web-0', 'node-3', { ips: { net1: ['10.99.0.1'] } });
    // A dry run records nothing.
    expect((await t.gc({ dryRun: true })).plan.releases).toEqual([]);
    expect(await t.suspects()).toBeUndefined();
    // The first run to see the mismatch records it on the pool and keeps the address …
    const first = await t.gc();
    expect(first.plan.releases).toEqual([]);
    expect(first.plan.suspects).toBe(1);
    expect(first.applied?.errors).toEqual([]);
    expect(Object.values((await t.suspects()) ?? {}).map((s) => s.id)).toEqual(['sandbox-web-0']);
    expect(await t.heldPods()).toEqual([t.ref('web-0')]);
    // … the next, a grace period later and seeing the same entry with the same mismatch, releases it.
    const second = await t.gc({ now: () => hourLater() + grace });
    expect(second.plan.releases.map((r) => r.reason)).toEqual(['address-changed']);
    expect(second.applied?.errors).toEqual([]);
    expect(await t.heldPods()).toEqual([]);
    expect(await t.suspects()).toBeUndefined();
  });

  test('a node reboot: the new sandbox’s address is kept while network-status still shows the old one (whereabouts#162)', async () => {
    // db-0 runs for long (GC runs an hour on), Multus has written its address.
    await t.createPod('db-0', 'node-1');
    const [before] = await t.attach(v4, 'db-0');
    await t.showNetworkStatus('db-0', { net1: [before ?? ''] });
    // The node reboots: the runtime tears the old sandbox down (its DEL frees the address), and the kubelet
    // starts a new sandbox for the same pod, which gets another address.
    await release(v4, t.owner('db-0'), {
      store: cluster.store(),
      log: silentLogger,
      deadline: deadlineIn(10_000),
    });
    const other = before === '10.40.0.9' ? '10.40.0.10' : '10.40.0.9';
    const rebooted = ipamConfig({ range: '10.40.0.0/24' }, { runtimeConfig: { ips: [other] } });
    const [after] = await t.attach(rebooted, 'db-0', 'net1', 'sandbox-db-0-rebooted');
    expect(after).not.toBe(before);
    // Multus writes network-status only once every delegate has finished: GC runs before it did.
    const lagging = await t.gc();
    expect(lagging.plan.releases).toEqual([]);
    expect(lagging.applied?.errors).toEqual([]);
    expect(await t.heldPods()).toEqual([t.ref('db-0')]);
    expect(Object.values((await t.suspects()) ?? {}).map((s) => s.id)).toEqual(['sandbox-db-0-rebooted']);
    // Multus catches up; the next run (a grace period on) keeps the address and drops the sighting.
    await t.showNetworkStatus('db-0', { net1: [after ?? ''] });
    const caughtUp = await t.gc({ now: () => hourLater() + grace });
    expect(caughtUp.plan.releases).toEqual([]);
    expect(await t.heldPods()).toEqual([t.ref('db-0')]);
    expect(await t.suspects()).toBeUndefined();
  });

  test('sightings are written conditionally: another writer meanwhile wins, other annotations stay', async () => {
    await t.createPod('web-0', 'node-1');
    await t.attach(v4, 'web-0');
    await t.deletePod('web-0');
    await t.createPod('web-0', 'node-2', { ips: { net1: ['10.99.0.1'] } });
    const api = cluster.connection();
    const pool = {
      group: 'whereabouts.cni.cncf.io',
      version: 'v1alpha1',
      plural: 'ippools',
      namespace: t.namespace,
      name: '10.40.0.0-24',
    };
    const annotationPath = '/metadata/annotations/whereabouts-ts.io~1gc-suspects';
    expect(
      (
        await api.jsonPatch(pool, [
          { op: 'add', path: '/metadata/annotations', value: { 'example.com/team': 'a' } },
        ])
      ).ok,
    ).toBe(true);
    const collected = await collect(api);
    if (!collected.ok) throw new Error(collected.error.message);
    const plan = planCollection({ ...collected.value, now: hourLater(), graceMs: grace });
    expect(plan.sightings.map((w) => [w.annotated, w.previous])).toEqual([[true, undefined]]);

    // Meanwhile another run records (here: an empty set of sightings); the planned write is left out.
    expect((await api.jsonPatch(pool, [{ op: 'add', path: annotationPath, value: '{}' }])).ok).toBe(true);
    const applied = await applyPlan(api, plan);
    expect(applied.recorded).toEqual([]);
    expect(applied.changed).toBe(1);
    expect(await t.suspects()).toEqual({});

    // The next run replaces it; the other annotation is untouched throughout.
    const report = await t.gc();
    expect(report.applied?.recorded).toHaveLength(1);
    expect(Object.values((await t.suspects()) ?? {}).map((s) => s.id)).toEqual(['sandbox-web-0']);
    const stored = (await cluster.objects('ippools', 'whereabouts.cni.cncf.io')).get('10.40.0.0-24');
    expect(
      (stored?.metadata as { annotations?: Record<string, string> }).annotations?.['example.com/team'],
    ).toBe('a');
    expect(await t.heldPods()).toEqual([t.ref('web-0')]);
  });

  test('a pod Pending without network-status inside the grace period is kept, as is a pod showing its address', async () => {
    await t.createPod('starting', 'node-1', { phase: 'Pending' });
    await t.attach(v4, 'starting');
    await t.createPod('running', 'node-1');
    const [address] = await t.attach(v4, 'running');
    await t.deletePod('running');
    await t.createPod('running', 'node-1', { ips: { net1: [address ?? ''] } });
    const report = await t.gc({ now: Date.now });
    expect(report.plan.releases).toEqual([]);
    expect(await t.heldPods()).toEqual([t.ref('running'), t.ref('starting')]);
  });

  test('reservations of named networks and of IPv6 addresses ending in :: are kept while their pods live', async () => {
    const named = ipamConfig({ range: '10.41.0.0/24', network_name: 'blue' });
    const v6 = ipamConfig({ range: '2001:db8:41::/47' }, { runtimeConfig: { ips: ['2001:db8:41:1::'] } });
    await t.createPod('p', 'node-1');
    await t.attach(named, 'p');
    expect(await t.attach(v6, 'p', 'net2')).toEqual(['2001:db8:41:1::']);
    const before = [...(await reservationsIn(cluster)).keys()].sort();
    expect(before).toEqual(['2001-db8-41-1--0', expect.stringMatching(/^blue-10\.41\.0\.\d+$/) as unknown]);
    const report = await t.gc();
    expect(report.plan.releases).toEqual([]);
    expect(report.plan.deletions).toEqual([]);
    expect([...(await reservationsIn(cluster)).keys()].sort()).toEqual(before);
  });

  test('an orphaned reservation (no pool entry) older than the grace period is deleted; a young one kept', async () => {
    await t.createPod('p', 'node-1');
    const store = cluster.store();
    await store.createReservation('10.40.0.77', { podref: t.ref('p'), ifname: 'net1' });
    expect((await t.gc({ now: Date.now })).plan.deletions).toEqual([]);
    const report = await t.gc();
    expect(report.applied?.deleted.map((d) => d.name)).toEqual(['10.40.0.77']);
    expect((await reservationsIn(cluster)).size).toBe(0);
  });

  test('an address re-allocated between the plan and its write is kept', async () => {
    await t.createPod('old', 'node-1');
    const [address] = await t.attach(v4, 'old');
    await t.deletePod('old');
    const api = cluster.connection();
    const collected = await collect(api);
    if (!collected.ok) throw new Error(collected.error.message);
    const plan = planCollection({ ...collected.value, now: hourLater(), graceMs: grace });
    expect(plan.releases.map((r) => r.address)).toEqual([address]);

    // Meanwhile: the old pod's DEL runs, and a new pod is given the very same address.
    await release(v4, t.owner('old'), {
      store: cluster.store(),
      log: silentLogger,
      deadline: deadlineIn(10_000),
    });
    await t.createPod('new', 'node-1');
    const wanted = ipamConfig({ range: '10.40.0.0/24' }, { runtimeConfig: { ips: [address] } });
    expect(await t.attach(wanted, 'new')).toEqual([address]);

    const applied = await applyPlan(api, plan);
    expect(applied.released).toEqual([]);
    expect(applied.changed).toBeGreaterThanOrEqual(1);
    expect(await t.heldPods()).toEqual([t.ref('new')]);
    expect((await reservationsIn(cluster)).get(address ?? '')?.podref).toBe(t.ref('new'));
  });

  test('a Terminating pod keeps its addresses until its kubelet reports it finished, or it is gone', async () => {
    for (const name of ['stopping', 'stuck', 'done']) {
      await t.createPod(name, 'node-1');
      await t.attach(v4, name);
    }
    // Deleted gracefully, the pods stay, Terminating: their containers may still run — for the grace period,
    // or for good on a node whose kubelet is down or cut off. An hour on, GC still keeps what they hold.
    for (const name of ['stopping', 'stuck', 'done']) await t.deleteGracefully(name);
    const stuck = await cluster
      .connection()
      .core.readNamespacedPod({ namespace: t.namespace, name: 'stuck' });
    expect(stuck.metadata?.deletionTimestamp).toBeDefined();
    expect((await t.gc()).plan.releases).toEqual([]);
    // The kubelet of `stopping` has stopped its containers and sandbox and reports it Failed; `done` is gone.
    await t.reportPhase('stopping', 'Failed');
    await t.deletePod('done');
    const report = await t.gc();
    expect(report.plan.releases.map((r) => [r.podRef, r.reason]).sort()).toEqual([
      [t.ref('done'), 'pod-gone'],
      [t.ref('stopping'), 'pod-finished'],
    ]);
    expect(await t.heldPods()).toEqual([t.ref('stuck')]);
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
      await t.createPod('gone', 'node-1');
      const [address] = await t.attach(v4, 'gone');
      await t.deletePod('gone');
      const table = await run(['--dry-run']);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(
        new RegExp(
          `allocation +${t.namespace}/10\\.40\\.0\\.0-24 +${(address ?? '').replace(/\./g, '\\.')} +${t.namespace}/gone +net1 +pod-gone`,
        ),
      );
      expect(table.stderr).toMatch(
        /^GC: 1 pools, 1 allocations, 1 reservations, 0 pods; leaked 1 allocations and 0 reservations \(dry run: nothing changed\)/,
      );
      const json = await run(['--dry-run', '--output', 'json']);
      expect(JSON.parse(json.stdout)).toEqual({
        releases: [
          {
            namespace: t.namespace,
            pool: '10.40.0.0-24',
            key: expect.any(String) as unknown,
            address,
            podRef: t.ref('gone'),
            ifName: 'net1',
            containerId: 'sandbox-gone',
            reason: 'pod-gone',
          },
        ],
        deletions: [],
      });
      expect(await t.heldPods()).toEqual([t.ref('gone')]);
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
      await t.createPod('gone', 'node-1');
      await t.attach(v4, 'gone');
      await t.deletePod('gone');
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
      expect(await t.heldPods()).toEqual([]);
      expect(pushed).toHaveLength(1);
      expect(pushed[0]).toMatch(/^POST \/metrics\/job\/whereabouts-gc\n/);
      expect(pushed[0]).toContain('whereabouts_gc_released_total{reason="pod-gone"} 1');
      expect(pushed[0]).toContain('whereabouts_gc_last_success_timestamp_seconds');
    });

    test('a bad flag is a clear error and a non-zero exit', async () => {
      const bad = await run(['--output', 'yaml', '--dry-run']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('--output must be table or json');
    });
  });
});

describe('embedded API server only: faults', () => {
  let cluster: TestCluster;
  let t: ReturnType<typeof on>;
  const rbac = { denyPatchOf: '' };
  beforeEach(async () => {
    rbac.denyPatchOf = '';
    cluster = await startCluster({ authorize: (r) => !(r.verb === 'patch' && r.name === rbac.denyPatchOf) });
    t = on(cluster);
  });
  afterEach(async () => {
    await cluster.close();
  });

  test('API errors mid-run: the others are still processed, and the run reports the failure', async () => {
    const blocked = ipamConfig({ range: '10.42.0.0/24' });
    await t.createPod('a', 'node-1');
    await t.createPod('b', 'node-1');
    await t.attach(blocked, 'a');
    await t.attach(v4, 'b');
    await t.deletePod('a');
    await t.deletePod('b');
    rbac.denyPatchOf = '10.42.0.0-24';
    const report = await t.gc();
    expect(report.applied?.released.map((r) => r.podRef)).toEqual([t.ref('b')]);
    expect(report.applied?.errors).toHaveLength(1);
    expect(report.applied?.errors[0]).toContain('forbidden by RBAC (403)');
    expect(await t.heldPods('10.42.0.0-24')).toEqual([t.ref('a')]);
  });

  test('the gc command without a cluster is a clear error and a non-zero exit', async () => {
    const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
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
