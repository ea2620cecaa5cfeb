// Whereabouts v0.9.4 and whereabouts-ts on one real kube-apiserver, allocating in the same network: what
// `docs/migrate.md` promises an operator who switches a cluster in place or runs both side by side. Each
// plugin is its real executable, run as a runtime runs it (`test/support/whereabouts.ts`); the invariants are
// checked on what the API server stores. Where mixing is unsafe, a test shows the unsafe outcome with the
// real binary, and migrate.md says what to avoid.

import { formatIP, ipOf } from '../../src/ip/address.ts';
import { networkOf, parseCidr } from '../../src/ip/cidr.ts';
import { describeWhenBuilt, peersBuilt } from '../support/built.ts';
import { emptyNamespace, onRealServer, realCluster, type Cluster } from '../support/cluster.ts';
import { onNodes, simulatedNodes } from '../support/kubelet.ts';
import { poolsIn, reservationsIn, writePool } from '../support/pools.ts';
import { answered, bothPlugins, type Plugin, type Plugins } from '../support/whereabouts.ts';

/** Every pool entry as `address → podref`, and every reservation as `name → podref`. */
async function stored(
  cluster: Cluster,
): Promise<{ entries: Map<string, string[]>; reservations: Map<string, string> }> {
  const entries = new Map<string, string[]>();
  for (const pool of (await poolsIn(cluster)).values()) {
    const cidr = parseCidr(pool.range);
    if (cidr === undefined) throw new Error(`pool range ${pool.range}`);
    for (const [offset, entry] of Object.entries(pool.allocations)) {
      const address = formatIP(ipOf(cidr.family, networkOf(cidr) + BigInt(offset)));
      entries.set(address, [...(entries.get(address) ?? []), entry.podref]);
    }
  }
  const reservations = new Map(
    [...(await reservationsIn(cluster))].map(([name, spec]) => [name, spec.podref]),
  );
  return { entries, reservations };
}

describeWhenBuilt('Whereabouts v0.9.4 beside whereabouts-ts', peersBuilt, () => {
  onRealServer((plane) => {
    let cluster: Cluster;
    let plugins: Plugins;
    beforeEach(async () => {
      cluster = await realCluster(plane(), 'interop');
      plugins = bothPlugins(cluster.kubeconfig, cluster.namespace);
    });
    afterEach(async () => {
      plugins.remove();
      await emptyNamespace(cluster);
      await cluster.close();
    });
    const network = (ipam: Record<string, unknown>) => ({
      cniVersion: '1.0.0',
      name: 'storage',
      type: 'macvlan',
      master: 'eth0',
      ipam: plugins.ipam(ipam),
    });

    test('both allocate concurrently into one network from 10 nodes (200 ADDs each): no address twice, pools and reservations agree; each DELs its own and nothing is left', async () => {
      const config = network({ range: '10.60.0.0/22', enable_overlapping_ranges: true });
      // Whereabouts creates a missing pool on its first ADD and answers that attempt with a retry; the
      // pool exists before the burst, as after a network's first pod.
      expect(answered(await plugins.call('whereabouts', 'ADD', 'first', config)).ok).toBe(true);
      const pods = 400;
      const plugin = (job: number): Plugin => (job % 2 === 0 ? 'whereabouts' : 'ours');
      const pod = (job: number) => `${plugin(job)}-${job}`;
      const nodes = simulatedNodes(10);
      // As a kubelet does: a failed ADD is cleaned up with a DEL and tried again (here at most 5 times).
      const failures: string[] = [];
      const adds = await onNodes(nodes, pods, async (job) => {
        for (let attempt = 1; ; attempt++) {
          const answer = answered(await plugins.call(plugin(job), 'ADD', pod(job), config));
          if (answer.ok || attempt === 5) return answer;
          failures.push(`${pod(job)}: ${answer.why}`);
          await plugins.call(plugin(job), 'DEL', pod(job), config);
        }
      });
      // Ours never failed; Whereabouts' failures (its Lease and its resourceVersion-tested writes under
      // this load) are printed, and every pod got an address in the end.
      expect(failures.filter((f) => f.startsWith('ours'))).toEqual([]);
      if (failures.length > 0)
        console.log(
          `Whereabouts' ADDs that failed and were retried: ${failures.length}\n${failures.map((f) => f.slice(0, 200)).join('\n')}`,
        );
      expect(adds.filter((a) => !a.ok)).toEqual([]);
      const holders = new Map<string, string[]>([['10.60.0.1', [`${cluster.namespace}/first`]]]);
      adds.forEach((a, job) => {
        if (a.ok)
          holders.set(a.address, [...(holders.get(a.address) ?? []), `${cluster.namespace}/${pod(job)}`]);
      });
      expect([...holders].filter(([, h]) => h.length > 1)).toEqual([]);
      expect(holders.size).toBe(pods + 1);
      const { entries, reservations } = await stored(cluster);
      // The pool holds exactly the answered addresses, each for the pod it was answered to …
      expect(new Map([...entries].sort())).toEqual(new Map([...holders].sort()));
      // … and every entry has its reservation, for the same pod, and the reverse.
      expect(new Map([...reservations].sort())).toEqual(
        new Map([...holders].map(([address, [podref]]) => [address, podref] as const).sort()),
      );

      // Each DELs its own: ours first, then Whereabouts' (with ours writing at the same time, Whereabouts'
      // DEL can fail and answer success; the next test shows it).
      for (const who of ['ours', 'whereabouts'] as const) {
        const dels = await onNodes(nodes, pods, async (job) =>
          plugin(job) === who ? (await plugins.call(who, 'DEL', pod(job), config)).code : 0,
        );
        expect(dels.filter((code) => code !== 0)).toEqual([]);
      }
      expect((await plugins.call('whereabouts', 'DEL', 'first', config)).code).toBe(0);
      const after = await stored(cluster);
      expect(after.entries).toEqual(new Map());
      expect(after.reservations).toEqual(new Map());
    }, 600_000);

    test('hand-over both ways, dual-stack: the other plugin answers a re-ADD of the same attachment with the same addresses, and its DEL releases them', async () => {
      const config = network({ ipRanges: [{ range: '10.61.0.0/24' }, { range: '2001:db8:61::/64' }] });
      const addresses = (output: Awaited<ReturnType<Plugins['call']>>): string[] => {
        expect(output).toMatchObject({ code: 0 });
        return (JSON.parse(output.stdout) as { ips: { address: string }[] }).ips
          .map((ip) => ip.address)
          .sort();
      };
      for (const [first, second] of [
        ['whereabouts', 'ours'],
        ['ours', 'whereabouts'],
      ] as const) {
        const pod = `from-${first}`;
        const given = addresses(await plugins.call(first, 'ADD', pod, config));
        expect(given).toHaveLength(2);
        expect(addresses(await plugins.call(second, 'ADD', pod, config))).toEqual(given);
        const held = await stored(cluster);
        expect([...held.entries.values()].flat().filter((p) => p.endsWith(`/${pod}`))).toHaveLength(2); // one per range, none added
        expect((await plugins.call(second, 'DEL', pod, config)).code).toBe(0);
        const after = await poolsIn(cluster);
        expect([...after.values()].flatMap((pool) => Object.values(pool.allocations))).toEqual([]);
        expect(await reservationsIn(cluster)).toEqual(new Map());
      }
    }, 300_000);

    test("unsafe: Whereabouts' DEL deletes a reservation of another pod, and then hands its address out twice; ours keeps it", async () => {
      // Two networks over one address space (overlapping ranges on): our pod holds 10.62.0.5 in the /24
      // network, with the cluster-wide reservation. The /28 network's pool holds an entry for the same
      // address without a reservation of its own: what Whereabouts leaves when creating its reservation
      // fails after its pool write (reference: whereabouts.md §4.3).
      const wide = network({ range: '10.62.0.0/24', range_start: '10.62.0.5', range_end: '10.62.0.5' });
      const narrow = network({ range: '10.62.0.0/28', range_start: '10.62.0.5', range_end: '10.62.0.5' });
      for (const deleter of ['ours', 'whereabouts'] as const) {
        expect(answered(await plugins.call('ours', 'ADD', 'holder', wide))).toEqual({
          ok: true,
          address: '10.62.0.5',
        });
        await writePool(
          cluster.connection(),
          '10.62.0.0-28',
          '10.62.0.0/28',
          {
            '5': { id: 'sandbox-stale', podref: `${cluster.namespace}/stale`, ifname: 'net1' },
          },
          cluster.namespace,
        );
        expect((await plugins.call(deleter, 'DEL', 'stale', narrow)).code).toBe(0);
        const reservation = (await reservationsIn(cluster)).get('10.62.0.5');
        const next = answered(await plugins.call('whereabouts', 'ADD', 'newcomer', narrow));
        if (deleter === 'ours') {
          // Ours deleted the stale entry but not the holder's reservation, so the address stays taken.
          expect(reservation?.podref).toBe(`${cluster.namespace}/holder`);
          expect(next.ok).toBe(false);
        } else {
          // Whereabouts deleted the reservation by name, without looking whose it is …
          expect(reservation).toBeUndefined();
          // … and hands the address our pod still holds to another pod.
          expect(next).toEqual({ ok: true, address: '10.62.0.5' });
          expect((await stored(cluster)).entries.get('10.62.0.5')).toEqual(
            expect.arrayContaining([`${cluster.namespace}/holder`, `${cluster.namespace}/newcomer`]),
          );
        }
        await emptyNamespace(cluster);
      }
    }, 300_000);

    test('unsafe: offsets of 2^63 and above (the upper half of a /64): Whereabouts cannot read them, drops our entries on its next write, and without reservations hands one address out twice', async () => {
      const upperHalf = (overlapping: boolean) =>
        network({
          range: '2001:db8:63::/64',
          range_start: '2001:db8:63::8000:0:0:1',
          range_end: '2001:db8:63::8000:0:0:2',
          enable_overlapping_ranges: overlapping,
          network_name: overlapping ? 'reserved' : 'unreserved',
        });
      const entriesOf = async (pool: string) =>
        Object.values((await poolsIn(cluster)).get(pool)?.allocations ?? {}).map(
          (e) => e.podref.split('/')[1],
        );

      // With reservations: Whereabouts skips the address our reservation names, but its pool write drops
      // our entry (offset 2^63 + k), which only the reservation still protects.
      const reserved = upperHalf(true);
      const ours = answered(await plugins.call('ours', 'ADD', 'ours', reserved));
      expect(ours.ok).toBe(true);
      const theirs = answered(await plugins.call('whereabouts', 'ADD', 'theirs', reserved));
      expect(theirs.ok && ours.ok && theirs.address !== ours.address).toBe(true);
      expect(await entriesOf('reserved-2001-db8-63---64')).toEqual(['theirs']);

      // Without reservations: Whereabouts cannot read even its own entries there, and answers one address
      // to two pods.
      const unreserved = upperHalf(false);
      const first = answered(await plugins.call('whereabouts', 'ADD', 'first', unreserved));
      const second = answered(await plugins.call('whereabouts', 'ADD', 'second', unreserved));
      expect(first.ok && second.ok && first.address === second.address).toBe(true);
    }, 300_000);
  });
});
