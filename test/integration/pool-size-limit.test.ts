// An IPPool at the API server's object size limit (etcd's 1.5 MiB request limit), on both servers: the raw
// answer to one more entry; the plugin's ADD refused at once with code 999 naming node_slice_size (one write,
// no retry, nothing left behind); a DEL that still works. And the config warning about such a range, which
// never fails an ADD. The pool is created whole, with as many entries as fit: filling it through 10,000
// ADDs would take many minutes on a real server.

import type { Owner } from '../../src/allocator/allocation.ts';
import { runPlugin, type PluginOutput } from '../../src/cni/plugin.ts';
import { ok } from '../../src/errors.ts';
import type { Obj } from '../../src/kube-api/api.ts';
import { entryOf } from '../../src/codecs/ippool.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { onEveryServer, type Cluster } from '../support/cluster.ts';
import { poolsIn, reservationsIn } from '../support/pools.ts';

const range = '10.64.0.0/16';
const name = '10.64.0.0-16';
/** etcd's default --max-request-bytes, which bounds a stored object. */
const limitBytes = 1_572_864;
/** Kubernetes refuses more than 256 KiB of annotations: the padding stays well below. */
const targetPadding = 100_000;
/** The padding is found to this many bytes: less than one more entry (about 145), so the pool is full. */
const precision = 64;

/** Owners as a cluster has them: 64-hex sandbox IDs, pod refs of 32 characters. */
const ownerAt = (i: number): Owner => ({
  containerId: i.toString(16).padStart(64, '0'),
  podRef: `team-a/frontend-7d4b9c-${String(i).padStart(9, '0')}`,
  ifName: 'net1',
});

const poolBody = (entries: number, padding: number): Obj => ({
  apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
  kind: 'IPPool',
  metadata: { name, annotations: { padding: 'x'.repeat(padding) } },
  spec: {
    range,
    allocations: Object.fromEntries(
      Array.from({ length: entries }, (_, i) => [String(i + 1), entryOf(ownerAt(i + 1))]),
    ),
  },
});

/**
 * Creates the pool with as many realistic entries as leave about `targetPadding` bytes, padded with the
 * largest annotation that still fits (bisection, to `precision` bytes): the pool the server stored is full.
 */
async function fullPool(cluster: Cluster): Promise<{ entries: number; stored: Obj }> {
  const api = cluster.connection({ requestTimeoutMs: 60_000 });
  const collection = {
    group: 'whereabouts.cni.cncf.io',
    version: 'v1alpha1',
    plural: 'ippools',
    namespace: cluster.namespace,
  };
  const perEntry = (JSON.stringify(poolBody(1000, 0)).length - JSON.stringify(poolBody(0, 0)).length) / 1000;
  const entries = Math.floor((limitBytes - targetPadding) / perEntry);
  const fits = async (padding: number): Promise<boolean> => {
    const created = await api.create(collection, poolBody(entries, padding));
    if (!created.ok) {
      const f = created.error;
      if (f.kind === 'status' && f.code === 500) return false;
      throw new Error(`create IPPool: ${JSON.stringify(f)}`);
    }
    const removed = await api.delete({ ...collection, name });
    if (!removed.ok) throw new Error(`delete IPPool: ${JSON.stringify(removed.error)}`);
    return true;
  };
  // The server stores the JSON sent and a little more (uid, timestamps; etcd adds its key and framing):
  // 136 bytes more on the embedded server, 316 on kube-apiserver 1.37.
  const estimate = limitBytes - JSON.stringify(poolBody(entries, 0)).length;
  let low = estimate - 1024;
  let high = estimate;
  while (high - low > precision) {
    const middle = Math.floor((low + high) / 2);
    if (await fits(middle)) low = middle;
    else high = middle;
  }
  const created = await api.create(collection, poolBody(entries, low));
  if (!created.ok) throw new Error(`create IPPool: ${JSON.stringify(created.error)}`);
  return { entries, stored: created.value };
}

const resourceVersionOf = (o: Obj | undefined) =>
  (o?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;

onEveryServer((start) => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await start();
  });
  afterEach(async () => {
    await cluster.close();
  });

  /** The plugin in process, its store `store`, its log lines in `log`. */
  async function plugin(
    command: 'ADD' | 'DEL',
    owner: Owner,
    store: IpamStore,
    log: string[],
  ): Promise<PluginOutput & { json: Record<string, unknown> }> {
    const [namespace, pod] = owner.podRef.split('/');
    const output = await runPlugin({
      env: {
        CNI_COMMAND: command,
        CNI_CONTAINERID: owner.containerId,
        CNI_NETNS: '/var/run/netns/test',
        CNI_IFNAME: owner.ifName,
        CNI_PATH: '/opt/cni/bin',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
      },
      stdin: JSON.stringify({
        cniVersion: '1.1.0',
        name: 'net-a',
        type: 'macvlan',
        ipam: { type: 'whereabouts', range, kubernetes: { kubeconfig: cluster.kubeconfig } },
      }),
      flatFilePaths: [],
      openStore: () => ok(store),
      writeLog: (line) => log.push(line),
      deadlineMs: 60_000,
    });
    return {
      ...output,
      json: output.stdout === '' ? {} : (JSON.parse(output.stdout) as Record<string, unknown>),
    };
  }

  const warning = `range ${range} has more addresses than one IPPool can hold`;

  test('a pool at the object limit: one more entry is refused (500, "etcdserver: request is too large"); an ADD fails at once with code 999 naming node_slice_size and leaves nothing; a DEL still works', async () => {
    const { entries, stored } = await fullPool(cluster);

    // The server's own answer to one more entry: what kube-apiserver 1.37 answers, and the embedded one.
    const path = `/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${cluster.namespace}/ippools/${name}`;
    const key = `/spec/allocations/${entries + 1}`;
    const raw = await cluster.request(
      'PATCH',
      path,
      [
        { op: 'test', path: key, value: null },
        { op: 'add', path: key, value: entryOf(ownerAt(entries + 1)) },
      ],
      'application/json-patch+json',
    );
    expect(raw).toEqual({
      status: 500,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'etcdserver: request is too large',
        code: 500,
      },
    });

    // The ADD: one claim, refused for good; no retry until the deadline.
    const store = cluster.store({ requestTimeoutMs: 60_000 });
    let claims = 0;
    const counted: IpamStore = {
      ...store,
      claimOffset: (...args) => {
        claims++;
        return store.claimOffset(...args);
      },
    };
    const log: string[] = [];
    const started = Date.now();
    const added = await plugin('ADD', ownerAt(entries + 1), counted, log);
    const took = Date.now() - started;
    expect(added.exitCode).toBe(1);
    expect(added.json).toMatchObject({ cniVersion: '1.1.0', code: 999, msg: 'Internal error' });
    const details = String(added.json.details);
    expect(details).toContain(`IPPool ${cluster.namespace}/${name}`);
    expect(details).toContain("larger than the API server's limit (etcdserver: request is too large)");
    expect(details).toContain('set node_slice_size');
    expect(details).toContain('split the range into smaller ipRanges');
    expect(claims).toBe(1);
    expect(took).toBeLessThan(30_000); // the deadline is 60 s
    expect(log.some((line) => line.includes(warning))).toBe(true);
    // Nothing left: no reservation, the pool as it was.
    expect(await reservationsIn(cluster)).toEqual(new Map());
    const after = await cluster.objects('ippools', 'whereabouts.cni.cncf.io');
    expect(resourceVersionOf(after.get(name))).toBe(resourceVersionOf(stored));

    // A DEL of one of its pods releases the address.
    const deleted = await plugin('DEL', ownerAt(1), store, []);
    expect(deleted).toMatchObject({ exitCode: 0, stdout: '' });
    const allocations = (await poolsIn(cluster)).get(name)?.allocations ?? {};
    expect(allocations['1']).toBeUndefined();
    expect(Object.keys(allocations)).toHaveLength(entries - 1);
  }, 180_000);

  test('a range larger than one pool holds is warned about in the log, and the ADD succeeds', async () => {
    const log: string[] = [];
    const added = await plugin('ADD', ownerAt(1), cluster.store(), log);
    expect(added.exitCode).toBe(0);
    const ips = added.json.ips as { address: string }[];
    expect(ips.map((ip) => ip.address)).toEqual([expect.stringMatching(/^10\.64\.\d+\.\d+\/16$/)]);
    expect(log.filter((line) => line.includes(warning))).toHaveLength(1);
    expect(log.find((line) => line.includes(warning))).toContain('node_slice_size');
  });
});
