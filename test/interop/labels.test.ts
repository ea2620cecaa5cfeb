// Whereabouts v0.9.4 in node slice pools that carry our labels (docs/slices.md), on a real kube-apiserver,
// each plugin its real executable with the node named in NODENAME (Whereabouts' Fast IPAM reads it too): it
// allocates and releases in a slice pool we created with labels, its writes (a JSON patch of
// `spec.allocations`) keep them, and a slice pool it created without labels gets them on our next ADD.

import { builtPeers, describeWhenBuilt, peersBuilt } from '../support/built.ts';
import { emptyNamespace, onRealServer, realCluster, type Cluster } from '../support/cluster.ts';
import { execute, pluginPath, podEnv } from '../support/exec.ts';
import { writeNodeSlicePool } from '../support/pools.ts';
import { answered, bothPlugins, type Plugin, type Plugins } from '../support/whereabouts.ts';
import type { Obj } from '../../src/kube-api/api.ts';
import { nodeSelector, slicePoolLabels } from '../../src/codecs/pool-labels.ts';

const whereabouts = { group: 'whereabouts.cni.cncf.io', version: 'v1alpha1' } as const;

describeWhenBuilt('Whereabouts v0.9.4 in labelled node slice pools', peersBuilt, () => {
  onRealServer((plane) => {
    let cluster: Cluster;
    let plugins: Plugins;
    beforeEach(async () => {
      cluster = await realCluster(plane(), 'labels');
      plugins = bothPlugins(cluster.kubeconfig, cluster.namespace);
    });
    afterEach(async () => {
      plugins.remove();
      await emptyNamespace(cluster);
      await cluster.close();
    });

    const config = () => ({
      cniVersion: '1.0.0',
      name: 'fastnet',
      type: 'macvlan',
      master: 'eth0',
      ipam: plugins.ipam({ range: '10.70.0.0/23', node_slice_size: '/24', network_name: 'fastnet' }),
    });

    /** One CNI call of pod `pod` (interface net1) through `plugin`, on `node`. */
    const call = (plugin: Plugin, command: string, pod: string, node: string) =>
      execute(
        plugin === 'ours' ? pluginPath : builtPeers().whereabouts,
        {
          ...podEnv(command, pod, `sandbox-${pod}`, cluster.namespace),
          CNI_PATH: builtPeers().pluginsDir,
          NODENAME: node,
        },
        JSON.stringify(config()),
        180_000,
      );
    const add = async (plugin: Plugin, pod: string, node: string) => {
      const answer = answered(await call(plugin, 'ADD', pod, node));
      if (!answer.ok) throw new Error(`${plugin} ADD ${pod}: ${answer.why}`);
      return answer.address;
    };
    const del = async (plugin: Plugin, pod: string, node: string) => {
      expect((await call(plugin, 'DEL', pod, node)).code).toBe(0);
    };

    /** A slice pool as stored: its labels and the pods its entries name. */
    async function pool(name: string): Promise<{ labels?: Record<string, string>; held: string[] }> {
      const o = (await cluster.objects('ippools', whereabouts.group)).get(name);
      if (o === undefined) throw new Error(`no IPPool ${name}`);
      const allocations = ((o.spec ?? {}) as { allocations?: Record<string, { podref: string }> })
        .allocations;
      return {
        ...((o.metadata as { labels?: Record<string, string> }).labels === undefined
          ? {}
          : { labels: (o.metadata as { labels: Record<string, string> }).labels }),
        held: Object.entries(allocations ?? {})
          .map(([, e]) => e.podref.split('/')[1] ?? '')
          .sort(),
      };
    }

    test('Whereabouts allocates and releases in a slice pool we labelled and keeps the labels; a slice pool it created gets them on our next ADD', async () => {
      await writeNodeSlicePool(
        cluster.connection(),
        'fastnet',
        { range: '10.70.0.0/23', sliceSize: '/24' },
        [
          { nodeName: 'node-1', sliceRange: '10.70.0.0/24' },
          { nodeName: 'node-2', sliceRange: '10.70.1.0/24' },
        ],
        cluster.namespace,
      );
      const node1 = 'fastnet-node-1-10.70.0.0-24';
      const node2 = 'fastnet-node-2-10.70.1.0-24';
      const labels1 = slicePoolLabels('node-1', 'fastnet');
      const labels2 = slicePoolLabels('node-2', 'fastnet');

      // node-1: ours creates the slice pool, labelled; Whereabouts allocates there, then releases.
      const o1 = await add('ours', 'o1', 'node-1');
      expect(o1).toMatch(/^10\.70\.0\.\d+$/);
      expect(await pool(node1)).toEqual({ labels: labels1, held: ['o1'] });
      const w1 = await add('whereabouts', 'w1', 'node-1');
      expect(w1).toMatch(/^10\.70\.0\.\d+$/);
      expect(w1).not.toBe(o1);
      expect(await pool(node1)).toEqual({ labels: labels1, held: ['o1', 'w1'] });
      await del('whereabouts', 'w1', 'node-1');
      expect(await pool(node1)).toEqual({ labels: labels1, held: ['o1'] });

      // node-2: Whereabouts creates the slice pool (no labels); our next ADD labels it; Whereabouts goes on.
      const w2 = await add('whereabouts', 'w2', 'node-2');
      expect(w2).toMatch(/^10\.70\.1\.\d+$/);
      expect((await pool(node2)).labels).toBeUndefined();
      const o2 = await add('ours', 'o2', 'node-2');
      expect(o2).toMatch(/^10\.70\.1\.\d+$/);
      expect(o2).not.toBe(w2);
      expect((await pool(node2)).labels).toEqual(labels2);
      const w3 = await add('whereabouts', 'w3', 'node-2');
      expect([w2, o2]).not.toContain(w3);
      expect(await pool(node2)).toEqual({ labels: labels2, held: ['o2', 'w2', 'w3'] });
      await del('whereabouts', 'w2', 'node-2');
      await del('whereabouts', 'w3', 'node-2');
      expect(await pool(node2)).toEqual({ labels: labels2, held: ['o2'] });

      // Each node's selector lists its own slice pool, as the agent will.
      for (const [node, name] of [
        ['node-1', node1],
        ['node-2', node2],
      ] as const) {
        const list = (await cluster.connection().custom.listNamespacedCustomObject({
          ...whereabouts,
          namespace: cluster.namespace,
          plural: 'ippools',
          labelSelector: nodeSelector(node),
        })) as { items: Obj[] };
        expect(list.items.map((o) => (o.metadata as { name: string }).name)).toEqual([name]);
      }
      await del('ours', 'o1', 'node-1');
      await del('ours', 'o2', 'node-2');
      expect(await pool(node1)).toEqual({ labels: labels1, held: [] });
      expect(await pool(node2)).toEqual({ labels: labels2, held: [] });
    }, 300_000);
  });
});
