// The IPAM transaction over real HTTP with the real client, against the embedded API server and a real
// kube-apiserver with etcd; lost responses, an unreachable server and missing CRDs on the embedded one.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { formatIP, ipOf } from '../../src/ip/address.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate, release, type TransactionContext } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import type { Owner } from '../../src/allocator/allocation.ts';
import type { KubeApi } from '../../src/kube-api/api.ts';
import { connect } from '../../src/kube-api/kube.ts';
import { kubeStore } from '../../src/store/store.ts';
import {
  onEveryServer,
  onRealServer,
  startCluster,
  type Cluster,
  type TestCluster,
} from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { poolsIn, poolsOf, reservationsIn, reservationsOf, writePool } from '../support/pools.ts';

let cluster: Cluster;
/** Write requests (create, patch, delete) the stores of `context()` sent. */
let writes = 0;

/** A KubeApi that counts the write requests it sends. */
const counting = (api: KubeApi): KubeApi => ({
  ...api,
  create: (ref, body) => {
    writes++;
    return api.create(ref, body);
  },
  jsonPatch: (ref, operations) => {
    writes++;
    return api.jsonPatch(ref, operations);
  },
  delete: (ref, resourceVersion) => {
    writes++;
    return api.delete(ref, resourceVersion);
  },
});

const context = (ms = 20_000, requestTimeoutMs = 5_000): TransactionContext => ({
  store: kubeStore(counting(cluster.connection({ requestTimeoutMs }))),
  log: silentLogger,
  deadline: deadlineIn(ms),
});

async function add(config: IpamConfig, o: Owner, ctx = context()): Promise<string[]> {
  const result = await allocate(config, o, ctx);
  if (!result.ok) throw new Error(`allocate failed: ${result.error.details}`);
  return result.value.map((a) => formatIP(ipOf(a.range.range.subnet.family, a.address)));
}

onEveryServer((start) => {
  beforeEach(async () => {
    cluster = await start();
    writes = 0;
  });
  afterEach(async () => {
    await cluster.close();
  });

  describe('allocate and release', () => {
    const config = ipamConfig({ range: '10.0.0.0/24' });

    test('claims the offset in the pool and the cluster-wide reservation', async () => {
      expect(await add(config, owner('a'))).toHaveLength(1);
      const [address] = await add(config, owner('a'));
      const pool = (await poolsIn(cluster)).get('10.0.0.0-24');
      const offset = String(Number(address?.split('.')[3]));
      expect(pool?.range).toBe('10.0.0.0/24');
      expect(pool?.allocations).toEqual({
        [offset]: { id: 'sandbox-a', podref: 'default/a', ifname: 'net1' },
      });
      expect(await reservationsIn(cluster)).toEqual(
        new Map([[address, { podref: 'default/a', ifname: 'net1', containerid: 'sandbox-a' }]]),
      );
    });

    test('ADD is idempotent per (pod, interface); DEL frees it and is idempotent; DEL of the unknown creates nothing', async () => {
      const first = await add(config, owner('a'));
      expect(await add(config, owner('a'))).toEqual(first);
      const other = await add(config, owner('b'));
      expect(other).not.toEqual(first);

      const released = await release(config, owner('a'), context());
      expect(released.ok && released.value.map((r) => formatIP(ipOf(4, r.address)))).toEqual(first);
      expect(
        Object.values((await poolsIn(cluster)).get('10.0.0.0-24')?.allocations ?? {}).map((e) => e.podref),
      ).toEqual(['default/b']);
      expect((await reservationsIn(cluster)).has(first[0] as string)).toBe(false);
      expect((await release(config, owner('a'), context())).ok).toBe(true);

      const before = writes;
      const unknown = await release(ipamConfig({ range: '10.9.0.0/24' }), owner('z'), context());
      expect(unknown).toEqual({ ok: true, value: [] });
      expect(writes).toBe(before);
      expect((await poolsIn(cluster)).has('10.9.0.0-24')).toBe(false);
    });

    test('a new sandbox of the same pod keeps the address; the old sandbox DEL then releases nothing', async () => {
      const first = await add(config, owner('web-0', 'net1', 'old'));
      expect(await add(config, owner('web-0', 'net1', 'new'))).toEqual(first);
      expect(Object.values((await poolsIn(cluster)).get('10.0.0.0-24')?.allocations ?? {})).toEqual([
        { id: 'new', podref: 'default/web-0', ifname: 'net1' },
      ]);
      expect(await release(config, owner('web-0', 'net1', 'old'), context())).toEqual({
        ok: true,
        value: [],
      });
      const released = await release(config, owner('web-0', 'net1', 'new'), context());
      expect(released.ok && released.value).toHaveLength(1);
    });

    test('dual stack: one address per family, each from its own pool', async () => {
      const dual = ipamConfig({ ipRanges: [{ range: '10.1.0.0/24' }, { range: '2001:db8:1::/64' }] });
      expect(await add(dual, owner('a'))).toEqual([
        expect.stringMatching(/^10\.1\.0\./),
        expect.stringMatching(/^2001:db8:1::/),
      ]);
      expect([...(await poolsIn(cluster)).keys()].sort()).toEqual(['10.1.0.0-24', '2001-db8-1---64']);
    });

    test('if a later range fails, the earlier ranges are released before failing', async () => {
      const tiny = ipamConfig({ range: '10.2.0.0/30' });
      await add(tiny, owner('x'));
      await add(tiny, owner('y'));
      const both = ipamConfig({ ipRanges: [{ range: '10.3.0.0/24' }, { range: '10.2.0.0/30' }] });
      const result = await allocate(both, owner('z'), context());
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.code).toBe(11);
        expect(result.error.details).toContain('no free address in 10.2.0.0/30');
      }
      expect((await poolsIn(cluster)).get('10.3.0.0-24')?.allocations).toEqual({});
      expect([...(await reservationsIn(cluster)).values()].some((r) => r.podref === 'default/z')).toBe(false);
    });

    test('an exhausted pool is a clear error and writes nothing', async () => {
      const tiny = ipamConfig({ range: '10.4.0.0/30' });
      await add(tiny, owner('x'));
      await add(tiny, owner('y'));
      const before = writes;
      const result = await allocate(tiny, owner('z'), context());
      expect(result).toEqual({
        ok: false,
        error: {
          code: 11,
          msg: 'Try again later',
          details:
            'no free address in 10.4.0.0/30 between 10.4.0.1 and 10.4.0.2: all 2 assignable addresses are taken (2 allocations in the pool)',
        },
      });
      expect(writes).toBe(before);
    });

    test('a requested address (runtimeConfig.ips) is allocated exactly, and refused when held', async () => {
      const wanted = ipamConfig(
        { range: '10.5.0.0/24', exclude: ['10.5.0.0/28'] },
        { runtimeConfig: { ips: ['10.5.0.7/24'] } },
      );
      expect(await add(wanted, owner('a'))).toEqual(['10.5.0.7']);
      expect(await add(wanted, owner('a'))).toEqual(['10.5.0.7']);
      const result = await allocate(wanted, owner('b'), context());
      expect(!result.ok && result.error.details).toBe(
        'requested address 10.5.0.7 is held by default/a interface net1',
      );
    });
  });

  describe('overlapping ranges and named networks', () => {
    test('pools of overlapping ranges never hand out one address twice (reservations on)', async () => {
      const wide = ipamConfig({ range: '192.168.22.0/24' });
      const narrow = ipamConfig({ range: '192.168.22.0/28' });
      const seen = new Set<string>();
      for (let i = 0; i < 14; i++) {
        for (const address of await add(i % 2 === 0 ? wide : narrow, owner(`p${i}`))) {
          expect(seen.has(address)).toBe(false);
          seen.add(address);
        }
      }
    });

    test('with enable_overlapping_ranges false, overlapping pools are independent (Whereabouts behaviour)', async () => {
      const wide = ipamConfig({ range: '192.168.33.0/24', enable_overlapping_ranges: false });
      const narrow = ipamConfig({ range: '192.168.33.0/28', enable_overlapping_ranges: false });
      const ctx = { ...context(), random: () => 0 };
      expect(await add(wide, owner('a'), ctx)).toEqual(['192.168.33.1']);
      expect(await add(narrow, owner('b'), ctx)).toEqual(['192.168.33.1']);
      expect((await reservationsIn(cluster)).size).toBe(0);
    });

    test('network_name gives an independent address domain with its own object names', async () => {
      const ctx = { ...context(), random: () => 0 };
      expect(await add(ipamConfig({ range: '10.6.0.0/24', network_name: 'blue' }), owner('a'), ctx)).toEqual([
        '10.6.0.1',
      ]);
      expect(await add(ipamConfig({ range: '10.6.0.0/24', network_name: 'red' }), owner('b'), ctx)).toEqual([
        '10.6.0.1',
      ]);
      expect([...(await poolsIn(cluster)).keys()].sort()).toEqual(['blue-10.6.0.0-24', 'red-10.6.0.0-24']);
      expect([...(await reservationsIn(cluster)).keys()].sort()).toEqual(['blue-10.6.0.1', 'red-10.6.0.1']);
    });
  });

  describe('compatibility with Whereabouts', () => {
    test('a pool written by Whereabouts is read and respected, unreadable keys left alone', async () => {
      await writePool(
        cluster.connection(),
        '10.7.0.0-29',
        '10.7.0.0/29',
        {
          '1': { id: 'c1', podref: 'ns/old-1', ifname: 'net1' },
          '2': { id: 'c2', podref: 'ns/old-2' },
          '3': { id: 'c3', podref: 'ns/old-3', ifname: 'net1' },
          garbage: { id: 'x', podref: 'ns/x' },
        },
        cluster.namespace,
      );
      const config = ipamConfig({ range: '10.7.0.0/29' });
      const got = await Promise.all(['a', 'b', 'c'].map((p) => add(config, owner(p))));
      expect(got.flat().sort()).toEqual(['10.7.0.4', '10.7.0.5', '10.7.0.6']);
      expect((await poolsIn(cluster)).get('10.7.0.0-29')?.allocations.garbage).toEqual({
        id: 'x',
        podref: 'ns/x',
      });
      // Whereabouts' idempotency: the same pod and interface get their address back.
      expect(await add(config, { containerId: 'new', podRef: 'ns/old-3', ifName: 'net1' })).toEqual([
        '10.7.0.3',
      ]);
    });

    test('a Whereabouts-style writer (resourceVersion-tested patch) racing with us never causes a duplicate', async () => {
      const config = ipamConfig({ range: '10.8.0.0/24', enable_overlapping_ranges: false });
      await add(config, owner('seed'));
      const { custom } = cluster.connection();
      const where = {
        group: 'whereabouts.cni.cncf.io',
        version: 'v1alpha1',
        namespace: cluster.namespace,
        plural: 'ippools',
        name: '10.8.0.0-24',
      };
      const whereaboutsWriter = async (pod: string): Promise<void> => {
        for (;;) {
          const current = (await custom.getNamespacedCustomObject(where)) as {
            metadata: { resourceVersion: string };
            spec: { allocations: Record<string, unknown> };
          };
          let offset = 1;
          while (current.spec.allocations[String(offset)] !== undefined) offset++;
          try {
            await custom.patchNamespacedCustomObject({
              ...where,
              body: [
                { op: 'test', path: '/metadata/resourceVersion', value: current.metadata.resourceVersion },
                { op: 'test', path: `/spec/allocations/${offset}`, value: null },
                {
                  op: 'add',
                  path: `/spec/allocations/${offset}`,
                  value: { id: pod, podref: `legacy/${pod}` },
                },
              ],
            });
            return;
          } catch {
            // the resourceVersion moved on: read again, as Whereabouts does
          }
        }
      };
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0 ? whereaboutsWriter(`w${i}`) : add(config, owner(`n${i}`)).then(() => undefined),
        ),
      );
      const allocations = (await poolsIn(cluster)).get('10.8.0.0-24')?.allocations ?? {};
      const podrefs = Object.values(allocations).map((e) => e.podref);
      expect(podrefs).toHaveLength(41);
      expect(new Set(podrefs).size).toBe(41);
    });
  });
});

describe('embedded API server: lost responses, no server, no CRDs, no rights', () => {
  let embedded: TestCluster;
  beforeEach(async () => {
    embedded = await startCluster();
    cluster = embedded;
  });
  afterEach(async () => {
    await embedded.close();
  });

  test('a response lost after the write committed: the retry returns the committed address, once', async () => {
    const config = ipamConfig({ range: '10.10.0.0/24' });
    embedded.server.faults.appliesTo = (r) => r.verb === 'patch' || r.verb === 'create';
    embedded.server.faults.lostResponseRate = 0.5;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => add(config, owner(`p${i}`), context(30_000, 1_000))),
    );
    embedded.server.faults.lostResponseRate = 0;
    const allocations = Object.values(poolsOf(embedded.server).get('10.10.0.0-24')?.allocations ?? {});
    expect(allocations).toHaveLength(20);
    expect(new Set(results.flat()).size).toBe(20);
    expect(reservationsOf(embedded.server).size).toBe(20);
  });

  test('an unreachable API server is "try again later" within the deadline', async () => {
    const config = ipamConfig({ range: '10.11.0.0/24' });
    const ctx = context(1_500, 300);
    await embedded.server.close();
    const started = Date.now();
    const result = await allocate(config, owner('a'), ctx);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(11);
      expect(result.error.details).toMatch(
        /the API server http:\/\/127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\)/,
      );
    }
  });

  test('RBAC refusal fails at once with a message that names RBAC', async () => {
    await embedded.close();
    cluster = embedded = await startCluster({ authorize: (r) => r.def.plural !== 'ippools' });
    const started = Date.now();
    const result = await allocate(ipamConfig({ range: '10.12.0.0/24' }), owner('a'), context());
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(!result.ok && result.error.details).toMatch(/forbidden by RBAC \(403\)/);
  });

  test('missing CRDs fail at once with a message that says to install them', async () => {
    await embedded.close();
    cluster = embedded = await startCluster({ crdDirectories: [] });
    const result = await allocate(ipamConfig({ range: '10.13.0.0/24' }), owner('a'), context());
    expect(!result.ok && result.error.details).toContain(
      'the whereabouts CRDs are not installed; apply the manifests in crds/',
    );
  });
});

onRealServer((plane) => {
  test('RBAC refusal: a service account bound to no role fails at once with a message that names RBAC', async () => {
    const namespace = await plane().namespace('rbac');
    const requested = await plane().request(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/default/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
    );
    const token = (requested.body as { status?: { token?: string } }).status?.token;
    expect(requested.status).toBe(201);
    const dir = mkdtempSync(join(tmpdir(), 'wb-rbac-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, plane().kubeconfig({ namespace, ...(token === undefined ? {} : { token }) }));
      const api = connect({ kubeconfig });
      if (!api.ok) throw new Error(api.error.details);
      const started = Date.now();
      const result = await allocate(ipamConfig({ range: '10.12.0.0/24' }), owner('a'), {
        store: kubeStore(api.value),
        log: silentLogger,
        deadline: deadlineIn(20_000),
      });
      expect(Date.now() - started).toBeLessThan(2_000);
      // The real Status message names the user and the verb: an operator sees whose binding is missing.
      expect(!result.ok && result.error.details).toContain(
        `forbidden by RBAC (403): ippools.whereabouts.cni.cncf.io "10.12.0.0-24" is forbidden: User "system:serviceaccount:${namespace}:default" cannot get resource "ippools" in API group "whereabouts.cni.cncf.io" in the namespace "${namespace}"`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
