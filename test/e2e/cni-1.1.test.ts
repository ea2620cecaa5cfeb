// End to end at CNI 1.1 through the CNI library itself: cnitool (libcni) runs conflists of the current
// reference plugins with the built `dist/whereabouts` as their IPAM, in network namespaces made here as
// stand-ins for pods — the path every libcni runtime takes, result cache and all — next to cni.test.ts,
// which execs Debian's plugins directly. cnitool has no cache-folder option, so each of its runs gets its
// own mount namespace with this suite's temp folder bound over /var/lib/cni: the node's cache is never read
// or written, and the test can see and edit what libcni cached. Only 198.18.0.0/15 is used, only in
// namespaces made here; every namespace, link and file is removed afterwards, also when a test fails.
// Needs root (namespaces, links, mounts) and `npm run peers:build`; skipped otherwise.

import { createHash } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kubeconfigFor } from '../../src/dev-apiserver/kubeconfig.ts';
import type { Peers } from '../../kube/binaries.ts';
import { builtPeers, describeWhenBuilt, peersBuilt } from '../support/built.ts';
import { createPod, emptyNamespace, onEveryServer, type Cluster } from '../support/cluster.ts';
import { execute, pluginPath, type Output } from '../support/exec.ts';
import { poolsIn } from '../support/pools.ts';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const prefix = `wbc${process.pid % 10000}`;

if (!isRoot) console.warn('SKIPPED: the CNI 1.1 cnitool tests need root for namespaces, links and mounts');
const describeAsRoot = isRoot ? describe : describe.skip;

/** Whether the kernel can make ipvlan links (some sandbox kernels are built without it). */
function kernelHasIpvlan(): boolean {
  if (!isRoot) return false;
  const probe = `${prefix}probe`;
  try {
    execFileSync('ip', ['link', 'add', probe, 'type', 'veth', 'peer', 'name', `${probe}p`], {
      stdio: 'ignore',
    });
    execFileSync('ip', ['link', 'add', 'link', probe, 'name', `${probe}v`, 'type', 'ipvlan', 'mode', 'l2'], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  } finally {
    try {
      execFileSync('ip', ['link', 'del', probe], { stdio: 'ignore' });
    } catch {
      // the probe link was never made
    }
  }
}

const ip = (...args: string[]) => run('ip', args);
const quietly = async (f: () => Promise<unknown>) => {
  try {
    await f();
  } catch {
    // cleanup of something that is already gone
  }
};

const netnsPath = (netns: string) => `/var/run/netns/${netns}`;

/** The container ID cnitool gives an attachment: `cnitool-` and the first 10 bytes of SHA-512(netns path). */
const containerIdOf = (netns: string) =>
  `cnitool-${createHash('sha512').update(netnsPath(netns)).digest('hex').slice(0, 20)}`;

async function addressesIn(netns: string, ifName = 'eth1'): Promise<string[]> {
  const { stdout } = await ip('-n', netns, '-j', 'addr', 'show', 'dev', ifName);
  const links = JSON.parse(stdout) as { addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  return links.flatMap((l) =>
    l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`),
  );
}

async function linkExists(netns: string, ifName: string): Promise<boolean> {
  try {
    await ip('-n', netns, 'link', 'show', ifName);
    return true;
  } catch {
    return false;
  }
}

async function ping(netns: string, address: string): Promise<boolean> {
  try {
    await run('ip', ['netns', 'exec', netns, 'ping', '-4', '-c', '1', '-W', '3', address]);
    return true;
  } catch {
    return false;
  }
}

function v4Offset(base: string, offset: bigint): string {
  const value = base.split('.').reduce((n, o) => (n << 8n) | BigInt(o), 0n) + offset;
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

type Held = { address: string; podref: string; id: string; ifname: string };

/** Every allocation the cluster's IPPools record (IPv4 only here), sorted by address. */
async function held(cluster: Cluster): Promise<Held[]> {
  const pools = await poolsIn(cluster);
  return [...pools.values()]
    .flatMap((pool) => {
      const [base, bits] = pool.range.split('/');
      return Object.entries(pool.allocations).map(([offset, entry]) => ({
        address: `${v4Offset(base ?? '', BigInt(offset))}/${bits ?? ''}`,
        podref: entry.podref,
        id: entry.id,
        ifname: entry.ifname ?? '',
      }));
    })
    .sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true }));
}

type AddResult = {
  cniVersion: string;
  interfaces?: { name: string; sandbox?: string }[];
  ips: { address: string; interface?: number }[];
};

/** A TCP port nothing listens on: bound by the OS, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describeWhenBuilt('CNI 1.1 through cnitool and the reference plugins', peersBuilt, () => {
  describeAsRoot('cnitool, reference plugins and whereabouts in network namespaces', () => {
    const ipvlanAvailable = kernelHasIpvlan();
    if (isRoot && !ipvlanAvailable)
      console.warn('SKIPPED: the ipvlan cnitool test: this kernel has no ipvlan link type');
    const testWithIpvlan = ipvlanAvailable ? test : test.skip;

    /** The built cnitool and reference plugins (looked up when the suite runs, not when Jest collects it). */
    let peers: Peers;
    /** This suite's folder: the conflists, the CNI bin folder holding `whereabouts`, and libcni's cache. */
    let work: string;
    let confDir: string;
    let binDir: string;
    let cacheDir: string;

    beforeAll(() => {
      peers = builtPeers();
      work = mkdtempSync(join(tmpdir(), `${prefix}-`));
      confDir = join(work, 'net.d');
      binDir = join(work, 'bin');
      cacheDir = join(work, 'cache');
      for (const dir of [confDir, binDir, cacheDir]) mkdirSync(dir);
      // The plugin is found by its type, `whereabouts`, on CNI_PATH: the built executable under that name.
      symlinkSync(pluginPath, join(binDir, 'whereabouts'));
      // The mount point the private cache folder is bound over, inside cnitool's own mount namespace.
      mkdirSync('/var/lib/cni', { recursive: true });
    });

    afterAll(() => {
      rmSync(work, { recursive: true, force: true });
    });

    /** The files of libcni's result cache (`results/<network>-<container ID>-<ifname>`), one per attachment. */
    const cached = (): string[] => {
      try {
        return readdirSync(join(cacheDir, 'results')).sort();
      } catch {
        return [];
      }
    };
    const cacheFile = (network: string, netns: string, ifName = 'eth1') =>
      `${network}-${containerIdOf(netns)}-${ifName}`;

    onEveryServer((start) => {
      let cluster: Cluster;
      let started = false;
      const namespaces: string[] = [];
      const links: string[] = [];
      let node: string;
      let testNumber = 0;

      beforeEach(async () => {
        cluster = await start();
        started = true;
        // GC works on the pods the API server places on this node: a node name of this test's own.
        testNumber += 1;
        node = `${prefix}-node-${testNumber}`;
      });

      afterEach(async () => {
        for (const netns of namespaces.splice(0)) await quietly(() => ip('netns', 'del', netns));
        for (const link of links.splice(0)) await quietly(() => ip('link', 'del', link));
        rmSync(join(cacheDir, 'results'), { recursive: true, force: true });
        for (const file of readdirSync(confDir)) rmSync(join(confDir, file));
        if (!started) return; // start() itself failed
        started = false;
        await quietly(() => emptyNamespace(cluster));
        await cluster.close();
      });

      /** A network namespace standing in for a pod's sandbox, with its Pod on `onNode` (this node by default). */
      const pod = async (n: number, onNode = node) => {
        const netns = `${prefix}-${n}`;
        await quietly(() => ip('netns', 'del', netns));
        await ip('netns', 'add', netns);
        namespaces.push(netns);
        await ip('-n', netns, 'link', 'set', 'lo', 'up');
        const name = `pod-${n}`;
        await createPod(cluster, name, onNode);
        return { netns, name, podref: `${cluster.namespace}/${name}`, containerId: containerIdOf(netns) };
      };
      type Pod = Awaited<ReturnType<typeof pod>>;

      /** A veth pair with both ends up in the root namespace: a master for macvlan/ipvlan. */
      const master = async (name: string) => {
        await quietly(() => ip('link', 'del', name));
        await ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
        links.push(name);
        await ip('link', 'set', name, 'up');
        await ip('link', 'set', `${name}p`, 'up');
        return name;
      };

      const ipam = (range: string, kubeconfig = cluster.kubeconfig) => ({
        type: 'whereabouts',
        range,
        kubernetes: { kubeconfig },
        // A socket no agent listens on: every invocation works standalone, never through a node agent.
        agent_socket: join(work, 'no-agent.sock'),
        log_level: 'error',
      });

      /** Writes a conflist at cniVersion 1.1.0 and returns its network name. */
      const conflist = (name: string, plugins: object[]) => {
        const network = `${prefix}-${name}`;
        writeFileSync(
          join(confDir, `${network}.conflist`),
          JSON.stringify({ cniVersion: '1.1.0', name: network, plugins }),
        );
        return network;
      };

      /** Runs cnitool as a runtime runs libcni, with this suite's cache folder as /var/lib/cni. */
      const cnitool = (
        verb: 'add' | 'check' | 'del' | 'gc' | 'status',
        network: string,
        target?: Pod,
      ): Promise<Output> =>
        execute(
          [
            'unshare',
            '--mount',
            '--propagation',
            'private',
            '--',
            'sh',
            '-c',
            'mount --bind "$0" /var/lib/cni && exec "$@"',
            cacheDir,
            peers.cnitool,
            verb,
            network,
            // GC and STATUS concern the whole network; cnitool still wants a namespace argument.
            netnsPath(target?.netns ?? `${prefix}-none`),
          ],
          {
            NETCONFPATH: confDir,
            CNI_PATH: `${peers.pluginsDir}:${binDir}`,
            CNI_IFNAME: 'eth1',
            NODENAME: node,
            ...(target === undefined
              ? {}
              : {
                  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${cluster.namespace};K8S_POD_NAME=${target.name};K8S_POD_INFRA_CONTAINER_ID=${target.containerId}`,
                }),
          },
          '',
          90_000,
        );

      const added = async (network: string, target: Pod): Promise<AddResult> => {
        const output = await cnitool('add', network, target);
        expect([output.code, output.stderr]).toEqual([0, '']);
        return JSON.parse(output.stdout) as AddResult;
      };

      /**
       * A bridge network on a bridge made here with a MAC of its own, which the kernel then keeps as ports
       * join (else it takes the lowest port MAC, and bridge's CHECK, comparing the MAC the ADD result
       * recorded, fails for every pod but the last one added).
       */
      const bridgeNetwork = async (name: string, bridge: string, range: string) => {
        await quietly(() => ip('link', 'del', bridge));
        await ip('link', 'add', bridge, 'type', 'bridge');
        links.push(bridge);
        await ip('link', 'set', bridge, 'address', `02:00:5e:00:${String(links.length).padStart(2, '0')}:01`);
        return conflist(name, [{ type: 'bridge', bridge, ipam: ipam(range) }]);
      };

      test('bridge: ADD gives each pod the address its IPPool records under libcni’s container ID, pods reach each other, CHECK and STATUS pass', async () => {
        const network = await bridgeNetwork('bridge', `${prefix}br0`, '198.18.10.0/24');
        const a = await pod(1);
        const b = await pod(2);
        const resultA = await added(network, a);
        const resultB = await added(network, b);
        expect(resultA.cniVersion).toBe('1.1.0');
        expect(resultA.interfaces).toContainEqual({
          name: 'eth1',
          mac: expect.any(String) as string,
          sandbox: netnsPath(a.netns),
        });
        const addressA = resultA.ips[0]?.address ?? '';
        const addressB = resultB.ips[0]?.address ?? '';
        expect(addressA).toMatch(/^198\.18\.10\.\d+\/24$/);
        expect(await addressesIn(a.netns)).toEqual([addressA]);
        expect(await addressesIn(b.netns)).toEqual([addressB]);
        expect(await held(cluster)).toEqual(
          [
            { address: addressA, podref: a.podref, id: a.containerId, ifname: 'eth1' },
            { address: addressB, podref: b.podref, id: b.containerId, ifname: 'eth1' },
          ].sort((x, y) => x.address.localeCompare(y.address, 'en', { numeric: true })),
        );
        expect(cached()).toEqual([cacheFile(network, a.netns), cacheFile(network, b.netns)].sort());
        expect(await ping(a.netns, addressB.split('/')[0] ?? '')).toBe(true);

        // CHECK: libcni hands the cached result to bridge as prevResult; bridge passes it to our CHECK.
        const checked = await cnitool('check', network, a);
        expect([checked.code, checked.stdout, checked.stderr]).toEqual([0, '', '']);
        const status = await cnitool('status', network);
        expect([status.code, status.stdout, status.stderr]).toEqual([0, '', '']);
      });

      test('CHECK fails with the IPAM error once the allocation is gone; DEL releases and removes, DEL again succeeds', async () => {
        const network = await bridgeNetwork('check', `${prefix}br1`, '198.18.11.0/24');
        const a = await pod(3);
        const b = await pod(4);
        const addressA = (await added(network, a)).ips[0]?.address ?? '';
        const addressB = (await added(network, b)).ips[0]?.address ?? '';

        // The allocation of a disappears (a cluster-wide reconciler, an admin) while the pod runs on.
        const [poolName] = (await poolsIn(cluster)).keys();
        const offset = String(Number(addressA.split('/')[0]?.split('.')[3]));
        const patched = await cluster.request(
          'PATCH',
          `/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${cluster.namespace}/ippools/${poolName ?? ''}`,
          { spec: { allocations: { [offset]: null } } },
          'application/merge-patch+json',
        );
        expect(patched.status).toBe(200);
        expect((await held(cluster)).map((h) => h.address)).toEqual([addressB]);

        const stale = await cnitool('check', network, a);
        expect(stale.code).not.toBe(0);
        expect(stale.stderr).toContain('IPAM check failed');
        expect(stale.stderr).toContain(
          `container ${a.containerId} interface eth1 holds no address in IPPool ${poolName ?? ''}`,
        );
        const live = await cnitool('check', network, b);
        expect([live.code, live.stderr]).toEqual([0, '']);

        const deleted = await cnitool('del', network, b);
        expect([deleted.code, deleted.stdout, deleted.stderr]).toEqual([0, '', '']);
        expect(await linkExists(b.netns, 'eth1')).toBe(false);
        expect(await held(cluster)).toEqual([]);
        expect(cached()).toEqual([cacheFile(network, a.netns)]);
        // DEL again: no cached result, nothing held, no link: still success.
        const again = await cnitool('del', network, b);
        expect([again.code, again.stderr]).toEqual([0, '']);
        // DEL of the attachment whose allocation is already gone: success, and its link goes.
        expect((await cnitool('del', network, a)).code).toBe(0);
        expect(await linkExists(a.netns, 'eth1')).toBe(false);
        expect(cached()).toEqual([]);
      });

      test('STATUS: not ready with code 50 when the API server cannot be reached', async () => {
        const kubeconfig = join(work, `unreachable-${testNumber}.kubeconfig`);
        writeFileSync(kubeconfig, kubeconfigFor(`http://127.0.0.1:${await closedPort()}`), { mode: 0o600 });
        const plugin = { type: 'bridge', bridge: `${prefix}br2`, ipam: ipam('198.18.12.0/24', kubeconfig) };
        const network = conflist('unreachable', [plugin]);
        const status = await cnitool('status', network);
        expect(status.code).not.toBe(0);
        // cnitool prints the plugin's error as `msg; details`: our code 50's msg, passed on by bridge.
        expect(status.stderr).toContain(
          'Plugin not available; list IPPools in kube-system: the API server http://127.0.0.1:',
        );
        expect(status.stderr).toContain('is unreachable');
        // The code itself, as bridge answers libcni: its IPAM's error unchanged.
        const bridge = await execute(
          join(peers.pluginsDir, 'bridge'),
          { CNI_COMMAND: 'STATUS', CNI_PATH: binDir },
          // What libcni sends a plugin for STATUS: its config with the network's name and cniVersion.
          JSON.stringify({ ...plugin, name: network, cniVersion: '1.1.0' }),
        );
        expect(bridge.code).not.toBe(0);
        expect(JSON.parse(bridge.stdout)).toMatchObject({ code: 50, msg: 'Plugin not available' });
        // Before the next test the same network, reachable again, is ready.
        const reachable = conflist('unreachable', [
          { type: 'bridge', bridge: `${prefix}br2`, ipam: ipam('198.18.12.0/24') },
        ]);
        expect((await cnitool('status', reachable)).code).toBe(0);
      });

      test('GC of a bridge network: libcni DELs every attachment it cached (cnitool names none valid), bridge v1.10.0 passes no GC to its IPAM', async () => {
        const network = await bridgeNetwork('gcbridge', `${prefix}br3`, '198.18.13.0/24');
        const a = await pod(5);
        const b = await pod(6);
        await added(network, a);
        const addressB = (await added(network, b)).ips[0]?.address ?? '';
        // The runtime lost b's cache entry: libcni no longer knows the attachment.
        rmSync(join(cacheDir, 'results', cacheFile(network, b.netns)));

        const gc = await cnitool('gc', network);
        expect([gc.code, gc.stdout, gc.stderr]).toEqual([0, '', '']);
        expect(await linkExists(a.netns, 'eth1')).toBe(false);
        expect(cached()).toEqual([]);
        expect(await held(cluster)).toEqual([
          { address: addressB, podref: b.podref, id: b.containerId, ifname: 'eth1' },
        ]);
        expect(await addressesIn(b.netns)).toEqual([addressB]);
      });

      test('GC of a network whose plugin is whereabouts: libcni DELs what it cached, then our GC releases the rest of this node’s allocations in the network’s pools and keeps the others', async () => {
        const plugin = (range: string) => ({ type: 'whereabouts', ipam: ipam(range) });
        const network = conflist('gcown', [plugin('198.18.14.0/24')]);
        const other = conflist('gcother', [plugin('198.18.15.0/24')]);
        const cachedPod = await pod(7);
        const uncachedPod = await pod(8);
        const elsewhere = await pod(9, `${prefix}-elsewhere`);
        const otherNetwork = await pod(10);
        await added(network, cachedPod);
        await added(network, uncachedPod);
        const keptElsewhere = (await added(network, elsewhere)).ips[0]?.address ?? '';
        const keptOther = (await added(other, otherNetwork)).ips[0]?.address ?? '';
        expect(await held(cluster)).toHaveLength(4);
        // Attachments the runtime's cache no longer lists: only GC can find them.
        rmSync(join(cacheDir, 'results', cacheFile(network, uncachedPod.netns)));
        rmSync(join(cacheDir, 'results', cacheFile(network, elsewhere.netns)));

        const gc = await cnitool('gc', network);
        expect([gc.code, gc.stdout, gc.stderr]).toEqual([0, '', '']);
        expect(await held(cluster)).toEqual([
          { address: keptElsewhere, podref: elsewhere.podref, id: elsewhere.containerId, ifname: 'eth1' },
          { address: keptOther, podref: otherNetwork.podref, id: otherNetwork.containerId, ifname: 'eth1' },
        ]);
        expect(cached()).toEqual([cacheFile(other, otherNetwork.netns)]);
      });

      test('GC with the valid attachments a libcni runtime injects: both keys, and `null` when none is valid', async () => {
        const range = '198.18.16.0/24';
        const network = `${prefix}-gcargs`;
        const owners = [await pod(11), await pod(12), await pod(13)];
        const netConf = { cniVersion: '1.1.0', name: network, type: 'whereabouts', ipam: ipam(range) };
        const exec = (command: string, conf: object, owner?: Pod) =>
          execute(
            pluginPath,
            {
              CNI_COMMAND: command,
              CNI_PATH: binDir,
              NODENAME: node,
              ...(owner === undefined
                ? {}
                : {
                    CNI_CONTAINERID: owner.containerId,
                    CNI_NETNS: netnsPath(owner.netns),
                    CNI_IFNAME: 'eth1',
                    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${cluster.namespace};K8S_POD_NAME=${owner.name}`,
                  }),
            },
            JSON.stringify(conf),
          );
        for (const owner of owners) expect((await exec('ADD', netConf, owner)).code).toBe(0);
        const [live, , alsoLive] = owners.map((o) => ({ containerID: o.containerId, ifname: 'eth1' }));
        // libcni's InjectConf: the plugin's config plus name, cniVersion and the list under both keys.
        const withValid = (valid: object[] | null) => ({
          ...netConf,
          'cni.dev/valid-attachments': valid,
          'cni.dev/attachments': valid,
        });
        const first = await exec('GC', withValid([live ?? {}, alsoLive ?? {}]));
        expect([first.code, first.stdout]).toEqual([0, '']);
        expect((await held(cluster)).map((h) => h.id).sort()).toEqual(
          [owners[0]?.containerId, owners[2]?.containerId].sort(),
        );
        // A runtime with no valid attachment left: Go marshals the empty (nil) slice as null.
        const none = await exec('GC', withValid(null));
        expect([none.code, none.stdout]).toEqual([0, '']);
        expect(await held(cluster)).toEqual([]);
      });

      test('macvlan over a veth master at 1.1.0: ADD, ping, CHECK, STATUS, DEL', async () => {
        const link = await master(`${prefix}m`);
        const network = conflist('macvlan', [
          { type: 'macvlan', master: link, mode: 'bridge', ipam: ipam('198.18.17.0/24') },
        ]);
        const a = await pod(14);
        const b = await pod(15);
        const resultA = await added(network, a);
        const addressB = (await added(network, b)).ips[0]?.address ?? '';
        expect(await addressesIn(a.netns)).toEqual([resultA.ips[0]?.address]);
        expect(await ping(a.netns, addressB.split('/')[0] ?? '')).toBe(true);
        expect((await cnitool('check', network, a)).code).toBe(0);
        expect((await cnitool('status', network)).code).toBe(0);
        expect((await cnitool('del', network, a)).code).toBe(0);
        expect((await cnitool('del', network, b)).code).toBe(0);
        expect(await held(cluster)).toEqual([]);
        expect(await linkExists(a.netns, 'eth1')).toBe(false);
      });

      testWithIpvlan('ipvlan over a veth master at 1.1.0: ADD, ping, CHECK, DEL', async () => {
        const link = await master(`${prefix}i`);
        const network = conflist('ipvlan', [
          { type: 'ipvlan', master: link, mode: 'l2', ipam: ipam('198.18.18.0/24') },
        ]);
        const a = await pod(16);
        const b = await pod(17);
        await added(network, a);
        const addressB = (await added(network, b)).ips[0]?.address ?? '';
        expect(await ping(a.netns, addressB.split('/')[0] ?? '')).toBe(true);
        expect((await cnitool('check', network, a)).code).toBe(0);
        expect((await cnitool('del', network, a)).code).toBe(0);
        expect((await cnitool('del', network, b)).code).toBe(0);
        expect(await held(cluster)).toEqual([]);
      });
    });
  });
});
