// End to end: the built `dist/whereabouts` as the IPAM of the real reference CNI plugins (bridge, macvlan,
// ipvlan from Debian's containernetworking-plugins), in network namespaces made here as stand-ins for pods,
// against the embedded API server — the reference plugin execs ours exactly as on a node. Only
// 198.18.0.0/15 and 2001:db8::/32 are used, only inside namespaces this test made, and every namespace,
// bridge and link is removed afterwards, also when a test fails. Needs root; skipped otherwise.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { poolsOf } from '../support/pools.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const plugin = join(root, 'dist', 'whereabouts');
const referencePlugins = ['/usr/lib/cni', '/opt/cni/bin'].find((dir) => existsSync(join(dir, 'bridge')));
const isRoot = process.getuid?.() === 0;
const prefix = `wbe${process.pid % 10000}`;

if (!isRoot)
  console.warn('SKIPPED: the end-to-end CNI tests need root to create network namespaces and links');
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
    execFileSync('ip', ['link', 'del', probe], { stdio: 'ignore' });
  }
}
const ipvlanAvailable = kernelHasIpvlan();
if (isRoot && !ipvlanAvailable)
  console.warn('SKIPPED: the ipvlan end-to-end test: this kernel has no ipvlan link type');
const testWithIpvlan = ipvlanAvailable ? test : test.skip;

type CniOutput = { code: number; stdout: string; stderr: string };

/**
 * Runs a reference plugin (which execs ours as its IPAM), as a container runtime would; with
 * `whereabouts` as the plugin name, runs ours directly, as a reference plugin does.
 */
async function cni(
  command: string,
  pluginName: string,
  conf: object,
  pod: { netns: string; name: string },
  ifName = 'eth1',
): Promise<CniOutput> {
  return new Promise((resolve) => {
    const child = execFile(
      pluginName === 'whereabouts' ? plugin : join(referencePlugins ?? '/usr/lib/cni', pluginName),
      {
        env: {
          PATH: process.env.PATH ?? '',
          CNI_COMMAND: command,
          CNI_CONTAINERID: `sandbox-${pod.name}`,
          CNI_NETNS: `/var/run/netns/${pod.netns}`,
          CNI_IFNAME: ifName,
          CNI_PATH: `${join(root, 'dist')}:${referencePlugins ?? ''}`,
          CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=e2e;K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=sandbox-${pod.name}`,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
          stdout,
          stderr,
        });
      },
    );
    child.stdin?.end(JSON.stringify(conf));
  });
}

const ip = (...args: string[]) => run('ip', args);
const quietly = async (f: () => Promise<unknown>) => {
  try {
    await f();
  } catch {
    // cleanup of something that is already gone
  }
};

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

const ping = async (netns: string, address: string): Promise<boolean> => {
  try {
    await run('ip', [
      'netns',
      'exec',
      netns,
      'ping',
      address.includes(':') ? '-6' : '-4',
      '-c',
      '1',
      '-W',
      '3',
      address,
    ]);
    return true;
  } catch {
    return false;
  }
};

/** Every address the IPPools record, as `address/prefix` strings. */
function pooled(cluster: TestCluster): string[] {
  return [...poolsOf(cluster.server).values()].flatMap((pool) => {
    const [base, prefix] = pool.range.split('/');
    return Object.keys(pool.allocations).map(
      (offset) => `${offsetAddress(base ?? '', BigInt(offset))}/${prefix ?? ''}`,
    );
  });
}

function offsetAddress(base: string, offset: bigint): string {
  if (!base.includes(':')) {
    const value = base.split('.').reduce((n, o) => (n << 8n) | BigInt(o), 0n) + offset;
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  // The tests use 2001:db8:… /64 ranges with small offsets, so the result is `<base>` + hex offset.
  return `${base.replace(/::$/, '')}::${offset.toString(16)}`;
}

const resultAddresses = (output: CniOutput): string[] =>
  (JSON.parse(output.stdout) as { ips: { address: string }[] }).ips.map((i) => i.address);

describeAsRoot('reference CNI plugins with whereabouts as IPAM', () => {
  let cluster: TestCluster;
  let kubeconfig: string;
  const namespaces: string[] = [];
  const links: string[] = [];

  const pod = async (n: number) => {
    const netns = `${prefix}-${n}`;
    await quietly(() => ip('netns', 'del', netns));
    await ip('netns', 'add', netns);
    namespaces.push(netns);
    await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0']);
    await ip('-n', netns, 'link', 'set', 'lo', 'up');
    return { netns, name: `pod-${n}` };
  };

  /** A veth pair with both ends up in the root namespace: a master for macvlan/ipvlan (no dummy links here). */
  const master = async (name: string) => {
    await quietly(() => ip('link', 'del', name));
    await ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    links.push(name);
    await ip('link', 'set', name, 'up');
    await ip('link', 'set', `${name}p`, 'up');
    return name;
  };

  beforeAll(() => {
    if (referencePlugins === undefined)
      throw new Error(
        'the reference CNI plugins are not installed (Debian package containernetworking-plugins)',
      );
    if (!existsSync(plugin)) throw new Error('dist/whereabouts is missing: run npm run build');
  });

  beforeEach(async () => {
    cluster = await startCluster();
    kubeconfig = join(root, 'dist', `e2e-kubeconfig-${process.pid}`);
    writeFileSync(kubeconfig, (await import('node:fs')).readFileSync(cluster.kubeconfig));
  });

  afterEach(async () => {
    for (const netns of namespaces.splice(0)) await quietly(() => ip('netns', 'del', netns));
    for (const link of links.splice(0)) await quietly(() => ip('link', 'del', link));
    await quietly(() => run('rm', ['-f', kubeconfig]));
    await cluster.close();
  });

  const ipam = (extra: object) => ({
    type: 'whereabouts',
    kubernetes: { kubeconfig },
    log_level: 'error',
    ...extra,
  });

  test('bridge: each pod gets the address its IPPool records, pods reach each other, DEL frees and removes', async () => {
    const bridge = `${prefix}br0`;
    links.push(bridge);
    const conf = {
      cniVersion: '1.0.0',
      name: 'e2e-bridge',
      type: 'bridge',
      bridge,
      ipam: ipam({ range: '198.18.0.0/24' }),
    };
    const a = await pod(1);
    const b = await pod(2);
    const addA = await cni('ADD', 'bridge', conf, a);
    const addB = await cni('ADD', 'bridge', conf, b);
    expect([addA.code, addB.code, addA.stderr + addB.stderr]).toEqual([0, 0, '']);
    const [addressA] = resultAddresses(addA);
    const [addressB] = resultAddresses(addB);
    expect(await addressesIn(a.netns)).toEqual([addressA]);
    expect(await addressesIn(b.netns)).toEqual([addressB]);
    expect(pooled(cluster).sort()).toEqual([addressA, addressB].sort());
    expect(await ping(a.netns, (addressB ?? '').split('/')[0] ?? '')).toBe(true);

    // CHECK of the IPAM plugin, as the reference plugin passes it on, with the ADD result as prevResult.
    // (Through bridge itself CHECK also compares the bridge's MAC, which moves as ports join.)
    const prevResult = JSON.parse(addA.stdout) as object;
    const checked = await cni('CHECK', 'whereabouts', { ...conf, prevResult }, a);
    expect([checked.code, checked.stdout, checked.stderr]).toEqual([0, '', '']);

    expect((await cni('DEL', 'bridge', conf, a)).code).toBe(0);
    expect(await linkExists(a.netns, 'eth1')).toBe(false);
    expect(pooled(cluster)).toEqual([addressB]);
    const stale = await cni('CHECK', 'whereabouts', { ...conf, prevResult }, a);
    expect(stale.code).not.toBe(0);
    expect(JSON.parse(stale.stdout)).toMatchObject({ code: 100, msg: 'IPAM check failed' });
    expect((await cni('DEL', 'bridge', conf, a)).code).toBe(0); // DEL again: still success

    // ADD again after DEL reuses the pool.
    const again = await cni('ADD', 'bridge', conf, a);
    expect(again.code).toBe(0);
    expect(pooled(cluster)).toHaveLength(2);
    expect([...poolsOf(cluster.server).keys()]).toEqual(['198.18.0.0-24']);
  });

  test('macvlan over a veth master: pods reach each other', async () => {
    const link = await master(`${prefix}m`);
    const conf = {
      cniVersion: '0.4.0',
      name: 'e2e-macvlan',
      type: 'macvlan',
      master: link,
      mode: 'bridge',
      ipam: ipam({ range: '198.18.2.0/24' }),
    };
    const a = await pod(3);
    const b = await pod(4);
    const addA = await cni('ADD', 'macvlan', conf, a);
    const addB = await cni('ADD', 'macvlan', conf, b);
    expect([addA.code, addB.code]).toEqual([0, 0]);
    expect((JSON.parse(addA.stdout) as { cniVersion: string }).cniVersion).toBe('0.4.0');
    const [addressB] = resultAddresses(addB);
    expect(await addressesIn(a.netns)).toEqual(resultAddresses(addA));
    expect(await ping(a.netns, (addressB ?? '').split('/')[0] ?? '')).toBe(true);
    expect((await cni('DEL', 'macvlan', conf, a)).code).toBe(0);
    expect((await cni('DEL', 'macvlan', conf, b)).code).toBe(0);
    expect(pooled(cluster)).toEqual([]);
  });

  testWithIpvlan('ipvlan over a veth master: pods reach each other', async () => {
    const link = await master(`${prefix}i`);
    const conf = {
      cniVersion: '0.3.1',
      name: 'e2e-ipvlan',
      type: 'ipvlan',
      master: link,
      mode: 'l2',
      ipam: ipam({ range: '198.18.3.0/24' }),
    };
    const a = await pod(5);
    const b = await pod(6);
    const addA = await cni('ADD', 'ipvlan', conf, a);
    const addB = await cni('ADD', 'ipvlan', conf, b);
    expect([addA.code, addB.code]).toEqual([0, 0]);
    const [addressB] = resultAddresses(addB);
    expect(await ping(a.netns, (addressB ?? '').split('/')[0] ?? '')).toBe(true);
    expect((await cni('DEL', 'ipvlan', conf, a)).code).toBe(0);
    expect(await linkExists(a.netns, 'eth1')).toBe(false);
  });

  test('dual stack: one address per family, reachable over both', async () => {
    const bridge = `${prefix}br1`;
    links.push(bridge);
    const conf = {
      cniVersion: '1.0.0',
      name: 'e2e-dual',
      type: 'bridge',
      bridge,
      ipam: ipam({ ipRanges: [{ range: '198.18.4.0/24' }, { range: '2001:db8:4::/64' }] }),
    };
    const a = await pod(7);
    const b = await pod(8);
    const addA = await cni('ADD', 'bridge', conf, a);
    const addB = await cni('ADD', 'bridge', conf, b);
    expect([addA.code, addB.code]).toEqual([0, 0]);
    const [v4, v6] = resultAddresses(addB);
    expect(v4).toMatch(/^198\.18\.4\.\d+\/24$/);
    expect(v6).toMatch(/^2001:db8:4::[0-9a-f]+\/64$/);
    expect((await addressesIn(a.netns)).sort()).toEqual(resultAddresses(addA).sort());
    expect(pooled(cluster).sort()).toEqual([...resultAddresses(addA), ...resultAddresses(addB)].sort());
    expect(await ping(a.netns, (v4 ?? '').split('/')[0] ?? '')).toBe(true);
    expect(await ping(a.netns, (v6 ?? '').split('/')[0] ?? '')).toBe(true);
  });

  test('an exhausted pool is a clean error, and the reference plugin cleans up', async () => {
    const bridge = `${prefix}br2`;
    links.push(bridge);
    const conf = {
      cniVersion: '1.0.0',
      name: 'e2e-full',
      type: 'bridge',
      bridge,
      ipam: ipam({ range: '198.18.5.0/30' }),
    };
    expect((await cni('ADD', 'bridge', conf, await pod(9))).code).toBe(0);
    expect((await cni('ADD', 'bridge', conf, await pod(10))).code).toBe(0);
    const third = await pod(11);
    const full = await cni('ADD', 'bridge', conf, third);
    expect(full.code).not.toBe(0);
    const error = JSON.parse(full.stdout) as { code: number; msg: string; details: string };
    expect(error.code).toBe(11);
    expect(error.details).toContain('no free address in 198.18.5.0/30');
    expect(pooled(cluster)).toHaveLength(2);
    // The runtime follows a failed ADD with DEL; the reference plugin then removes what it made.
    expect((await cni('DEL', 'bridge', conf, third)).code).toBe(0);
    expect(await linkExists(third.netns, 'eth1')).toBe(false);
    expect(pooled(cluster)).toHaveLength(2);
  });
});
