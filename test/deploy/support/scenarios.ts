// What each component does in these tests: the work it does in a cluster, run for real, so that every kind
// of API call it can make is made. Each returns the metric names the component exposed. They run on either
// server (support/harness.ts): the embedded one, and a real kube-apiserver where each component is its
// ServiceAccount of deploy/ under real RBAC.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execute, pluginPath, podEnv } from '../../support/exec.ts';
import { writeNad, writeNodeSlicePool, writePool, writeReservation } from '../../support/pools.ts';
import {
  answers200,
  fakePushgateway,
  freePort,
  metricNames,
  namespace,
  waitFor,
  type Harness,
} from './harness.ts';

const group = 'whereabouts.cni.cncf.io';

/** A pod bound to `nodeName` (a real server requires a container; no kubelet runs it). */
async function createPod(h: Harness, name: string, nodeName: string): Promise<void> {
  await h.admin.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: { nodeName, containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10' }] },
    },
  });
}

type Allocations = Record<string, { podref: string }>;
const allocationsOf = async (h: Harness, pool: string): Promise<Allocations> =>
  ((await h.objects('ippools', group)).get(pool) as { spec?: { allocations?: Allocations } } | undefined)
    ?.spec?.allocations ?? {};

/**
 * The agent with its host install, and the plugin it installs: through the agent and standalone (with the
 * kubeconfig the agent wrote, so with the agent's identity), every verb; and a pod deleted from the node.
 */
export async function agentScenario(h: Harness): Promise<Set<string>> {
  const dir = h.tempDir('agent');
  const host = {
    bin: join(dir, 'opt', 'cni', 'bin'),
    conf: join(dir, 'etc', 'cni', 'net.d'),
    state: join(dir, 'var', 'lib', 'whereabouts'),
    account: join(dir, 'serviceaccount'),
    socket: join(dir, 'run', 'agent.sock'),
  };
  for (const path of [host.bin, host.conf, host.account]) mkdirSync(path, { recursive: true });
  writeFileSync(join(host.account, 'token'), h.token('agent'));
  writeFileSync(join(host.account, 'namespace'), namespace);
  writeFileSync(join(host.account, 'ca.crt'), h.ca ?? 'unused: the embedded API server speaks http\n');
  for (const pod of ['p1', 'p2', 'p3']) await createPod(h, pod, 'node-1');

  const api = new URL(h.url);
  const metricsPort = await freePort();
  const agent = h.run(
    [
      'agent',
      `--kubeconfig=${h.kubeconfig('agent')}`,
      '--node-name=node-1',
      `--socket=${host.socket}`,
      `--metrics-port=${metricsPort}`,
      `--cni-bin-dir=${host.bin}`,
      `--cni-conf-dir=${host.conf}`,
      '--host-prefix=',
      `--state-dir=${host.state}`,
      `--service-account-dir=${host.account}`,
      `--plugin=${pluginPath}`,
    ],
    {
      KUBERNETES_SERVICE_HOST: api.hostname,
      KUBERNETES_SERVICE_PORT: api.port,
      ...(h.ca === undefined ? { KUBERNETES_SERVICE_PROTOCOL: 'http' } : {}),
      WHEREABOUTS_NAMESPACE: namespace,
    },
  );
  const metrics = `http://127.0.0.1:${metricsPort}`;
  await waitFor('the agent becomes ready', () => answers200(`${metrics}/readyz`), agent);

  const plugin = join(host.bin, 'whereabouts');
  const flatFile = join(host.conf, 'whereabouts.d', 'whereabouts.conf');
  const conf = (
    standalone: boolean,
    extra: Record<string, unknown> = {},
    ipam: Record<string, unknown> = {},
  ) =>
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'net',
      type: 'macvlan',
      ...extra,
      ipam: {
        type: 'whereabouts',
        range: '198.18.0.0/24',
        configuration_path: flatFile,
        log_level: 'error',
        ...(standalone ? { agent_socket: join(dir, 'no-agent.sock') } : {}),
        ...ipam,
      },
    });
  const cni = async (
    verb: string,
    pod: string,
    standalone: boolean,
    extra?: Record<string, unknown>,
    ipam?: Record<string, unknown>,
  ) => {
    // NODENAME: the NAD names the flat file itself, so the plugin cannot find the installed nodename beside it.
    const out = await execute(
      plugin,
      { ...podEnv(verb, pod), NODENAME: 'node-1' },
      conf(standalone, extra, ipam),
    );
    if (out.code !== 0)
      throw new Error(`plugin ${verb} ${pod} (standalone: ${standalone}): ${out.stdout}${out.stderr}`);
    return out.stdout;
  };
  const held = async () => Object.values(await allocationsOf(h, '198.18.0.0-24')).map((a) => a.podref);

  for (const standalone of [false, true]) {
    const pod = standalone ? 'p3' : 'p1';
    const added = JSON.parse(await cni('ADD', pod, standalone)) as unknown;
    await cni('CHECK', pod, standalone, { prevResult: added });
    await cni('STATUS', pod, standalone);
    // CNI GC: the runtime lists only p2's attachment as valid, so `pod` (on this node) is stale.
    await cni('GC', pod, standalone, {
      'cni.dev/valid-attachments': [{ containerID: 'sandbox-p2', ifname: 'net1' }],
    });
    if ((await held()).includes(`default/${pod}`)) throw new Error(`CNI GC did not release ${pod}`);
    await cni('ADD', pod, standalone);
    await cni('DEL', pod, standalone);
  }
  // A network with node slices, node-1 holding none yet: it takes one itself (get and patch the NodeSlicePool).
  await writeNodeSlicePool(
    h.admin,
    'sliced',
    { range: '198.19.0.0/24', sliceSize: '/25' },
    [
      { nodeName: '', sliceRange: '198.19.0.0/25' },
      { nodeName: '', sliceRange: '198.19.0.128/25' },
    ],
    namespace,
  );
  for (const standalone of [false, true]) {
    const sliced = { name: 'sliced' };
    const slicedIpam = { range: '198.19.0.0/24', node_slice_size: '/25' };
    const pod = standalone ? 's2' : 's1';
    await cni('ADD', pod, standalone, sliced, slicedIpam);
    await cni('DEL', pod, standalone, sliced, slicedIpam);
  }
  // A pod deleted from the node: the agent releases its address by itself. (Grace period 0: the final
  // deletion, which the kubelet makes once the containers have stopped; none runs here.)
  await cni('ADD', 'p2', false);
  await h.admin.core.deleteNamespacedPod({ namespace: 'default', name: 'p2', gracePeriodSeconds: 0 });
  await waitFor(
    'the agent releases the deleted pod',
    async () =>
      (await held()).length === 0 && (await h.objects('overlappingrangeipreservations', group)).size === 0,
    agent,
  );

  // sticky_ips: DEL of a pod named like a StatefulSet member reads whether its set still wants it (get the
  // StatefulSet and the pod); there is no such set, so the address is released.
  await createPod(h, 'web-0', 'node-1');
  await cni('ADD', 'web-0', false, {}, { sticky_ips: true });
  await cni('DEL', 'web-0', false, {}, { sticky_ips: true });
  if ((await held()).length > 0) throw new Error('DEL with sticky_ips kept the address of a pod no set owns');
  // sticky_ips with an IPAMClaim (KubeVirt): ADD reads the pod's annotation and the claim and writes the
  // claim's status; the claim deleted while its pod runs here, the agent releases the address.
  await h.admin.custom.createNamespacedCustomObject({
    group: 'k8s.cni.cncf.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'ipamclaims',
    body: {
      apiVersion: 'k8s.cni.cncf.io/v1alpha1',
      kind: 'IPAMClaim',
      metadata: { name: 'vm.net' },
      spec: { network: 'net', interface: 'net1' },
    },
  });
  await h.admin.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: {
        name: 'virt-launcher-vm',
        annotations: {
          'k8s.v1.cni.cncf.io/networks': JSON.stringify([
            { name: 'net', interface: 'net1', 'ipam-claim-reference': 'vm.net' },
          ]),
        },
      },
      spec: { nodeName: 'node-1', containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10' }] },
    },
  });
  await cni('ADD', 'virt-launcher-vm', false, {}, { sticky_ips: true });
  await h.admin.custom.deleteNamespacedCustomObject({
    group: 'k8s.cni.cncf.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'ipamclaims',
    name: 'vm.net',
  });
  await waitFor('the agent releases the deleted claim', async () => (await held()).length === 0, agent);

  const exposed = metricNames(await (await fetch(`${metrics}/metrics`)).text());
  await agent.stop();
  return exposed;
}

/** One GC run with a leaked allocation and an orphaned reservation to clean, pushing its metrics. */
export async function gcScenario(h: Harness): Promise<Set<string>> {
  await writePool(
    h.admin,
    '10.9.0.0-24',
    '10.9.0.0/24',
    { '5': { id: 'gone', podref: 'default/gone', ifname: 'net1' } },
    namespace,
  );
  await writeReservation(h.admin, '10.9.0.7', { podref: 'default/also-gone', ifname: 'net1' }, namespace);
  await new Promise((r) => setTimeout(r, 1100)); // older than a zero grace period, at a second's resolution
  const pushgateway = await fakePushgateway();
  try {
    const gc = h.run([
      'gc',
      `--kubeconfig=${h.kubeconfig('gc')}`,
      '--grace-period=0s',
      `--pushgateway=${pushgateway.url}`,
    ]);
    const code = await gc.exited;
    if (code !== 0) throw new Error(`gc exited with ${code}:\n${gc.output()}`);
    if (
      (await allocationsOf(h, '10.9.0.0-24'))['5'] !== undefined ||
      (await h.objects('overlappingrangeipreservations', group)).has('10.9.0.7')
    )
      throw new Error(`gc did not clean up:\n${gc.output()}`);
    return metricNames(pushgateway.pushed.join('\n'));
  } finally {
    await pushgateway.close();
  }
}

/** The exporter until it has synced, with a pool, a reservation and a pod to report. */
export async function exporterScenario(h: Harness): Promise<Set<string>> {
  await createPod(h, 'exported', 'node-1');
  await writePool(
    h.admin,
    '10.8.0.0-24',
    '10.8.0.0/24',
    {
      '1': { id: 'a', podref: 'default/exported', ifname: 'net1' },
      '2': { id: 'b', podref: 'default/leaked', ifname: 'net1' },
    },
    namespace,
  );
  const port = await freePort();
  const exporter = h.run(['exporter', `--kubeconfig=${h.kubeconfig('exporter')}`, `--metrics-port=${port}`]);
  await waitFor('the exporter becomes ready', () => answers200(`http://127.0.0.1:${port}/readyz`), exporter);
  const exposed = metricNames(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  await exporter.stop();
  return exposed;
}

/**
 * The slice controller: a sliced network with one slice for two nodes (so it leaves an event), then one node
 * leaves and the other gets the slice; its /healthz and /readyz answer; then it stops (and gives its lease up).
 */
export async function controllerScenario(h: Harness): Promise<Set<string>> {
  await writeNad(
    h.admin,
    'fast',
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'fast',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range: '10.7.0.0/24', node_slice_size: '/24' },
    }),
  );
  for (const name of ['node-1', 'node-2']) await h.admin.core.createNode({ body: { metadata: { name } } });
  const port = await freePort();
  const controller = h.run([
    'controller',
    `--kubeconfig=${h.kubeconfig('controller')}`,
    '--interval=100ms',
    '--lease-duration=2s',
    '--slice-drain=0s',
    `--metrics-port=${port}`,
  ]);
  // Its probes' endpoint: alive at once, ready once a pass has asked the API server for the lease.
  await waitFor(
    'the controller answers /healthz',
    () => answers200(`http://127.0.0.1:${port}/healthz`),
    controller,
  );
  await waitFor(
    'the controller becomes ready',
    () => answers200(`http://127.0.0.1:${port}/readyz`),
    controller,
  );
  await waitFor(
    'the controller writes the NodeSlicePool and the event',
    async () =>
      (await h.objects('nodeslicepools', group)).has('fast') &&
      [...(await h.objects('events')).values()].some(
        (e) => (e as { involvedObject?: { kind?: string } }).involvedObject?.kind === 'Node',
      ),
    controller,
  );
  // node-1 leaves: once its IPPool is seen empty (here: absent), its slice goes to node-2 (a conditional
  // patch of the NodeSlicePool).
  await h.admin.core.deleteNode({ name: 'node-1' });
  await waitFor(
    'the controller gives the slice to node-2',
    async () =>
      JSON.stringify((await h.objects('nodeslicepools', group)).get('fast')).includes('"nodeName":"node-2"'),
    controller,
  );
  const exposed = metricNames(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  await controller.stop();
  return exposed;
}

export type Component = {
  /** Also the identity whose token the component (and whatever it hands its credentials to) uses. */
  readonly component: string;
  /** Its ServiceAccount in deploy/. */
  readonly serviceAccount: string;
  /** Runs it; returns the metric names it exposed. */
  readonly scenario: (h: Harness) => Promise<Set<string>>;
};

/** Every component with its ServiceAccount. A component merged later is one more row. */
export const components: readonly Component[] = [
  // The agent and the plugin, which uses the kubeconfig the agent writes from its own token.
  { component: 'agent', serviceAccount: 'whereabouts-agent', scenario: agentScenario },
  { component: 'gc', serviceAccount: 'whereabouts-gc', scenario: gcScenario },
  { component: 'exporter', serviceAccount: 'whereabouts-exporter', scenario: exporterScenario },
  { component: 'controller', serviceAccount: 'whereabouts-controller-ts', scenario: controllerScenario },
];
