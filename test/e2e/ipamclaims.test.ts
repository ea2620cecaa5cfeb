// KubeVirt persistent IPs through IPAMClaims (`sticky_ips`, docs/persistent.md) end to end: the plugin
// executable with the node agent serving it, IPAMClaims and virt-launcher pods on the API server (the tests
// play KubeVirt and the kubelet), and GC. The invariants: both pods of a live migration get the one address,
// it is the claim's (status.ips), no DEL releases it, one network's claim never gives another network's
// address, and once the claim is deleted nothing is left.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimPodRef } from '../../src/allocator/keeper.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { runTestAgent } from '../support/agent.ts';
import { runGc } from '../../src/gc/run.ts';
import { claimRef } from '../../src/store/ipamclaim.ts';
import { emptyNamespace, onEveryServer, type Cluster } from '../support/cluster.ts';
import { execute, pluginPath as plugin } from '../support/exec.ts';
import { networkConf } from '../support/config.ts';
import { poolsIn } from '../support/pools.ts';
import { until, whenServed } from '../support/wait.ts';

onEveryServer((start) => {
  let cluster: Cluster;
  let running: RunningAgent | undefined;
  let dir: string;
  let socket: string;
  const claims = new Set<string>();
  beforeEach(async () => {
    cluster = await start();
    dir = mkdtempSync(join(tmpdir(), 'wb-claims-'));
    socket = join(dir, 'agent.sock');
    running = await runTestAgent(cluster, socket);
  });
  afterEach(async () => {
    await running?.stop();
    for (const name of claims) await cluster.connection().delete(claimRef(cluster.namespace, name));
    claims.clear();
    await emptyNamespace(cluster);
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Two networks: `net` (198.18.0.0/24) and `other` (198.19.0.0/24), both with sticky_ips. */
  const conf = (network: 'net' | 'other') =>
    networkConf(
      {
        range: network === 'net' ? '198.18.0.0/24' : '198.19.0.0/24',
        sticky_ips: true,
        agent_socket: socket,
        kubernetes: { kubeconfig: cluster.kubeconfig },
      },
      network,
    );
  const env = (command: string, pod: string, sandbox: string, ifName: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: sandbox,
    CNI_NETNS: '/var/run/netns/x',
    CNI_IFNAME: ifName,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${cluster.namespace};K8S_POD_NAME=${pod}`,
  });
  const call = (
    command: string,
    pod: string,
    sandbox: string,
    network: 'net' | 'other' = 'net',
    ifName = 'net1',
  ) => execute(plugin, env(command, pod, sandbox, ifName), conf(network));
  const cni = async (
    command: string,
    pod: string,
    sandbox: string,
    network: 'net' | 'other' = 'net',
    ifName = 'net1',
  ) => {
    const out = await call(command, pod, sandbox, network, ifName);
    if (out.code !== 0) throw new Error(`${command} ${pod}: ${out.stdout}${out.stderr}`);
    return command === 'ADD'
      ? (JSON.parse(out.stdout) as { ips: { address: string }[] }).ips[0]?.address
      : '';
  };
  type Entry = { id: string; podref: string; ifname: string };
  const entries = async (pool = '198.18.0.0-24'): Promise<Entry[]> =>
    Object.values(((await poolsIn(cluster)).get(pool)?.allocations ?? {}) as Record<string, Entry>);

  async function createClaim(name: string, network = 'net', iface = 'net1'): Promise<void> {
    const made = await cluster.connection().create(claimRef(cluster.namespace), {
      apiVersion: 'k8s.cni.cncf.io/v1alpha1',
      kind: 'IPAMClaim',
      metadata: { name },
      spec: { network, interface: iface },
    });
    if (!made.ok) throw new Error(JSON.stringify(made.error));
    claims.add(name);
  }
  const deleteClaim = async (name: string) => {
    const deleted = await cluster.connection().delete(claimRef(cluster.namespace, name));
    if (!deleted.ok) throw new Error(JSON.stringify(deleted.error));
    claims.delete(name);
  };
  const claimStatus = async (name: string) => {
    const got = await cluster.connection().get(claimRef(cluster.namespace, name));
    if (!got.ok) throw new Error(JSON.stringify(got.error));
    return got.value.status as { ips: string[]; ownerPod: string } | undefined;
  };
  /** A virt-launcher pod on node-1 whose network-selection elements are `networks`. */
  const createPod = (name: string, networks: readonly Record<string, string>[]) =>
    whenServed(() =>
      cluster.connection().core.createNamespacedPod({
        namespace: cluster.namespace,
        body: {
          metadata: { name, annotations: { 'k8s.v1.cni.cncf.io/networks': JSON.stringify(networks) } },
          spec: {
            nodeName: 'node-1',
            containers: [{ name: 'compute', image: 'registry.invalid/virt-launcher:1' }],
          },
        },
      }),
    );
  const deletePod = (name: string) =>
    whenServed(() =>
      cluster
        .connection()
        .core.deleteNamespacedPod({ namespace: cluster.namespace, name, gracePeriodSeconds: 0 }),
    );
  const vmNetworks = (claim: string) => [{ name: 'net', interface: 'net1', 'ipam-claim-reference': claim }];

  test('live migration: source and target pod get the one address of the claim; no DEL releases it; the claim deleted, the agent releases it', async () => {
    await createClaim('vm1.net');
    await createPod('virt-launcher-vm1-src', vmNetworks('vm1.net'));
    const address = await cni('ADD', 'virt-launcher-vm1-src', 'sandbox-src');
    expect(await claimStatus('vm1.net')).toEqual({ ips: [address], ownerPod: 'virt-launcher-vm1-src' });
    // The migration target starts while the source still runs.
    await createPod('virt-launcher-vm1-dst', vmNetworks('vm1.net'));
    expect(await cni('ADD', 'virt-launcher-vm1-dst', 'sandbox-dst')).toBe(address);
    expect(await claimStatus('vm1.net')).toEqual({ ips: [address], ownerPod: 'virt-launcher-vm1-dst' });
    const claimed = [
      { id: 'sandbox-dst', podref: claimPodRef(cluster.namespace, 'vm1.net'), ifname: 'net1' },
    ];
    expect(await entries()).toEqual(claimed);
    // The source goes: its DEL and its pod's deletion keep the address.
    await cni('DEL', 'virt-launcher-vm1-src', 'sandbox-src');
    await deletePod('virt-launcher-vm1-src');
    // The VM stops: the target's DEL keeps it too.
    await cni('DEL', 'virt-launcher-vm1-dst', 'sandbox-dst');
    expect(await entries()).toEqual(claimed);
    // A GC run keeps it while the claim exists.
    const kept = await runGc(cluster.connection(), { dryRun: false, graceMs: 0 });
    expect(kept.ok && kept.value.plan.releases).toEqual([]);
    // The VM is deleted with its claim; its last pod is still on node-1: the agent releases the address.
    await deleteClaim('vm1.net');
    await until('the agent released the claim', async () => (await entries()).length === 0);
  });

  test('the claim deleted after its pods are gone: GC releases the address', async () => {
    await createClaim('vm2.net');
    await createPod('virt-launcher-vm2-a', vmNetworks('vm2.net'));
    await cni('ADD', 'virt-launcher-vm2-a', 'sandbox-a');
    await deletePod('virt-launcher-vm2-a');
    await deleteClaim('vm2.net');
    expect(await entries()).toHaveLength(1); // no agent saw an owner pod on its node
    const ran = await runGc(cluster.connection(), { dryRun: false, graceMs: 0 });
    expect(ran.ok && ran.value.plan.releases.map((r) => r.reason)).toEqual(['claim-gone']);
    expect(await entries()).toEqual([]);
  });

  test("the element is the one Multus made this interface for: another network's claim is never tagged onto it", async () => {
    await createClaim('vm3.net', 'net', 'net2');
    // `other` is the first element (net1, by Multus' naming); `net` carries the claim, as net2.
    await createPod('virt-launcher-vm3-a', [
      { name: 'other' },
      { name: 'net', 'ipam-claim-reference': 'vm3.net' },
    ]);
    await cni('ADD', 'virt-launcher-vm3-a', 'sandbox-a', 'other', 'net1');
    await cni('ADD', 'virt-launcher-vm3-a', 'sandbox-a', 'net', 'net2');
    expect((await entries('198.19.0.0-24')).map((e) => e.podref)).toEqual([
      `${cluster.namespace}/virt-launcher-vm3-a`,
    ]);
    expect((await entries()).map((e) => e.podref)).toEqual([claimPodRef(cluster.namespace, 'vm3.net')]);
    // A claim made for another network, referenced from this network's element: refused, nothing allocated.
    await createClaim('vm4.other', 'other');
    await createPod('virt-launcher-vm4-a', vmNetworks('vm4.other'));
    const refused = await call('ADD', 'virt-launcher-vm4-a', 'sandbox-b');
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toContain('is for network \\"other\\", not this network \\"net\\"');
    expect(await entries()).toHaveLength(1);
    // DEL of the pod releases its own address on `other`, and keeps the claim's on `net`.
    await cni('DEL', 'virt-launcher-vm3-a', 'sandbox-a', 'other', 'net1');
    await cni('DEL', 'virt-launcher-vm3-a', 'sandbox-a', 'net', 'net2');
    expect(await entries('198.19.0.0-24')).toEqual([]);
    expect(await entries()).toHaveLength(1);
  });

  test('concurrent migrations and churn: one address per claim, none held twice, nothing left once the claims go', async () => {
    const vms = Array.from({ length: 4 }, (_, i) => `vm${10 + i}`);
    for (const vm of vms) {
      await createClaim(`${vm}.net`);
      await createPod(`virt-launcher-${vm}-src`, vmNetworks(`${vm}.net`));
      await createPod(`virt-launcher-${vm}-dst`, vmNetworks(`${vm}.net`));
    }
    const others = Array.from({ length: 6 }, (_, i) => `plain-${i}`);
    for (const pod of others) await createPod(pod, [{ name: 'net' }]);
    const [migrated] = await Promise.all([
      Promise.all(
        vms.map(async (vm) => {
          const [a, b] = await Promise.all([
            cni('ADD', `virt-launcher-${vm}-src`, `${vm}-src`),
            cni('ADD', `virt-launcher-${vm}-dst`, `${vm}-dst`),
          ]);
          await cni('DEL', `virt-launcher-${vm}-src`, `${vm}-src`);
          return [a, b] as const;
        }),
      ),
      Promise.all(
        others.map(async (pod) => {
          await cni('ADD', pod, `sandbox-${pod}`);
          await cni('DEL', pod, `sandbox-${pod}`);
        }),
      ),
    ]);
    for (const [a, b] of migrated) expect(a).toBe(b);
    expect(new Set(migrated.map(([a]) => a)).size).toBe(vms.length);
    const held = await entries();
    expect(held.map((e) => e.podref).sort()).toEqual(
      vms.map((vm) => claimPodRef(cluster.namespace, `${vm}.net`)).sort(),
    );
    for (const vm of vms) expect((await claimStatus(`${vm}.net`))?.ips).toHaveLength(1);
    for (const vm of vms) await deleteClaim(`${vm}.net`);
    await until('every claim released', async () => (await entries()).length === 0);
  });
});
