// The labels of node slice pools on both API servers: an ADD creates a slice pool with its node's and its
// network's labels (a shared pool gets none), labels the slice pools of its node that Whereabouts wrote
// without them — once, keeping the labels and allocations they have — and `nodeSelector(node)` lists exactly
// that node's slice pools.

import type { Owner } from '../../src/allocator/allocation.ts';
import type { IpamConfig } from '../../src/config/ipam-config.ts';
import { deadlineIn } from '../../src/ipam/retry.ts';
import { allocate } from '../../src/ipam/transaction.ts';
import { silentLogger } from '../../src/log.ts';
import type { Obj } from '../../src/kube-api/api.ts';
import { nodeSelector, slicePoolLabels } from '../../src/codecs/pool-labels.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { emptyNamespace, onEveryServer, type Cluster } from '../support/cluster.ts';
import { ipamConfig, owner } from '../support/config.ts';
import { writeNodeSlicePool, writePool } from '../support/pools.ts';

const whereabouts = { group: 'whereabouts.cni.cncf.io', version: 'v1alpha1' } as const;

/** A node name of 100 characters: a valid Node name, too long for a label value. */
const longNode = `${'n'.repeat(60)}.${'m'.repeat(39)}`;

onEveryServer((start) => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await start();
  });
  afterEach(async () => {
    await emptyNamespace(cluster);
    await cluster.close();
  });

  /** A named network (`blue`) and an unnamed one (CNI name `fast`): a /23 each, in /24 slices. */
  const blue = ipamConfig({ range: '10.61.0.0/23', node_slice_size: '/24', network_name: 'blue' });
  const fast = ipamConfig({ range: '10.62.0.0/23', node_slice_size: '/24' }, { name: 'fast' });
  const shared = ipamConfig({ range: '10.63.0.0/24' });

  async function slicePools(nodes: readonly [string, string]): Promise<void> {
    for (const [name, range] of [
      ['blue', '10.61'],
      ['fast', '10.62'],
    ] as const)
      await writeNodeSlicePool(
        cluster.connection(),
        name,
        { range: `${range}.0.0/23`, sliceSize: '/24' },
        [
          { nodeName: nodes[0], sliceRange: `${range}.0.0/24` },
          { nodeName: nodes[1], sliceRange: `${range}.1.0/24` },
        ],
        cluster.namespace,
      );
  }

  async function add(config: IpamConfig, o: Owner, node: string, store: IpamStore = cluster.store()) {
    const result = await allocate(config, o, {
      store,
      log: silentLogger,
      deadline: deadlineIn(20_000),
      node,
      random: () => 0,
    });
    if (!result.ok) throw new Error(`allocate failed: ${result.error.details}`);
  }

  const pools = () => cluster.objects('ippools', whereabouts.group);
  const labelsOf = (o: Obj | undefined) => (o?.metadata as { labels?: Record<string, string> }).labels;

  /** The IPPools the API server lists for a label selector, by name. */
  async function selected(labelSelector: string): Promise<string[]> {
    const list = (await cluster.connection().custom.listNamespacedCustomObject({
      ...whereabouts,
      namespace: cluster.namespace,
      plural: 'ippools',
      labelSelector,
    })) as { items: Obj[] };
    return list.items.map((o) => (o.metadata as { name: string }).name).sort();
  }

  test("a slice pool an ADD creates carries its node's and network's labels, a shared pool none; nodeSelector lists exactly one node's slice pools", async () => {
    await slicePools(['node-1', longNode]);
    for (const [pod, node] of [
      ['a', 'node-1'],
      ['b', longNode],
    ] as const) {
      await add(blue, owner(pod), node);
      await add(fast, owner(pod), node);
      await add(shared, owner(pod), node);
    }
    const stored = await pools();
    expect([...stored.keys()].sort()).toEqual(
      [
        '10.63.0.0-24',
        'blue-node-1-10.61.0.0-24',
        `blue-${longNode}-10.61.1.0-24`,
        'node-1-10.62.0.0-24',
        `${longNode}-10.62.1.0-24`,
      ].sort(),
    );
    expect(labelsOf(stored.get('blue-node-1-10.61.0.0-24'))).toEqual({
      'whereabouts-ts.io/node': 'node-1',
      'whereabouts-ts.io/network': 'blue',
    });
    expect(labelsOf(stored.get('node-1-10.62.0.0-24'))).toEqual(slicePoolLabels('node-1', 'fast'));
    expect(labelsOf(stored.get(`${longNode}-10.62.1.0-24`))).toEqual(slicePoolLabels(longNode, 'fast'));
    expect(labelsOf(stored.get('10.63.0.0-24'))).toBeUndefined();

    expect(await selected(nodeSelector('node-1'))).toEqual([
      'blue-node-1-10.61.0.0-24',
      'node-1-10.62.0.0-24',
    ]);
    // The long name's label value is hashed; the real server accepted it, and selects by it.
    expect(await selected(nodeSelector(longNode))).toEqual(
      [`blue-${longNode}-10.61.1.0-24`, `${longNode}-10.62.1.0-24`].sort(),
    );
    expect(await selected(nodeSelector('node-2'))).toEqual([]);
  });

  test('a slice pool written without our labels gets them on the next ADD, once, keeping its other labels and its allocations', async () => {
    await slicePools(['node-1', 'node-2']);
    const { custom } = cluster.connection();
    const existing = (name: string, range: string, labels?: Record<string, string>) =>
      custom.createNamespacedCustomObject({
        ...whereabouts,
        namespace: cluster.namespace,
        plural: 'ippools',
        body: {
          apiVersion: `${whereabouts.group}/${whereabouts.version}`,
          kind: 'IPPool',
          metadata: { name, ...(labels === undefined ? {} : { labels }) },
          spec: { range, allocations: { '5': { id: 'sandbox-old', podref: 'default/old', ifname: 'net1' } } },
        },
      });
    // As Whereabouts writes a slice pool: no labels at all.
    await existing('blue-node-1-10.61.0.0-24', '10.61.0.0/24');
    // Someone else's label, and ours naming the wrong node (an edit by hand).
    await existing('blue-node-2-10.61.1.0-24', '10.61.1.0/24', {
      team: 'storage',
      'whereabouts-ts.io/node': 'node-9',
    });
    const store = cluster.store();
    const labelled: string[] = [];
    const counting: IpamStore = {
      ...store,
      labelPool: (name, labels) => {
        labelled.push(name);
        return store.labelPool(name, labels);
      },
    };
    await add(blue, owner('a'), 'node-1', counting);
    await add(blue, owner('b'), 'node-2', counting);
    await add(blue, owner('c'), 'node-1', counting);
    await add(blue, owner('d'), 'node-2', counting);
    expect(labelled).toEqual(['blue-node-1-10.61.0.0-24', 'blue-node-2-10.61.1.0-24']);

    const stored = await pools();
    expect(labelsOf(stored.get('blue-node-1-10.61.0.0-24'))).toEqual(slicePoolLabels('node-1', 'blue'));
    expect(labelsOf(stored.get('blue-node-2-10.61.1.0-24'))).toEqual({
      team: 'storage',
      ...slicePoolLabels('node-2', 'blue'),
    });
    const allocations = (name: string) =>
      Object.entries(
        ((stored.get(name)?.spec ?? {}) as { allocations: Record<string, { podref: string }> }).allocations,
      ).map(([key, e]) => `${key} ${e.podref}`);
    expect(allocations('blue-node-1-10.61.0.0-24').sort()).toEqual(
      ['1 default/a', '2 default/c', '5 default/old'].sort(),
    );
    expect(allocations('blue-node-2-10.61.1.0-24').sort()).toEqual(
      ['0 default/b', '1 default/d', '5 default/old'].sort(),
    );
    expect(await selected(nodeSelector('node-2'))).toEqual(['blue-node-2-10.61.1.0-24']);
    expect(await selected('team=storage')).toEqual(['blue-node-2-10.61.1.0-24']);
  });

  test("an ADD labels every slice pool of its node it reads: a node's second slice too", async () => {
    await slicePools(['node-1', 'node-1']);
    for (const range of ['10.61.0.0/24', '10.61.1.0/24'])
      await writePool(
        cluster.connection(),
        `blue-node-1-${range.replace('/', '-')}`,
        range,
        {},
        cluster.namespace,
      );
    await add(blue, owner('a'), 'node-1');
    const stored = await pools();
    for (const name of ['blue-node-1-10.61.0.0-24', 'blue-node-1-10.61.1.0-24'])
      expect(labelsOf(stored.get(name))).toEqual(slicePoolLabels('node-1', 'blue'));
    expect(await selected(nodeSelector('node-1'))).toEqual([
      'blue-node-1-10.61.0.0-24',
      'blue-node-1-10.61.1.0-24',
    ]);
  });
});
