// The agent on a node's host: what it installs (plugin, kubeconfig, flat file, node name) and keeps fresh as
// the service-account token rotates, and what it reconciles when it starts again after its pods were deleted
// while it was down.

import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { runAgent, type RunningAgent } from '../../src/agent/agent.ts';
import { install, type InstallOptions } from '../../src/agent/install.ts';
import { silentLogger } from '../../src/log.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { execute, pluginPath, podEnv } from '../support/exec.ts';
import { poolsOf, writePool, writeReservation } from '../support/pools.ts';

let cluster: TestCluster;
let dir: string;
let host: { bin: string; conf: string; state: string; account: string; socket: string };
const token = 'first-secret-token';

/** A projected service-account volume: files behind a `..data` symlink that is swapped on rotation. */
function project(files: Record<string, string>, generation: number): void {
  const data = join(host.account, `..gen-${generation}`);
  mkdirSync(data);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(data, name), content);
  symlinkSync(`..gen-${generation}`, join(host.account, '..data-new'));
  renameSync(join(host.account, '..data-new'), join(host.account, '..data'));
  for (const name of Object.keys(files))
    if (!existsSync(join(host.account, name))) symlinkSync(join('..data', name), join(host.account, name));
}

beforeEach(async () => {
  cluster = await startCluster({ token });
  dir = mkdtempSync(join(tmpdir(), 'wb-host-'));
  host = {
    bin: join(dir, 'host', 'opt', 'cni', 'bin'),
    conf: join(dir, 'host', 'etc', 'cni', 'net.d'),
    state: join(dir, 'host', 'var', 'lib', 'whereabouts'),
    account: join(dir, 'serviceaccount'),
    socket: join(dir, 'run', 'agent.sock'),
  };
  mkdirSync(host.bin, { recursive: true });
  mkdirSync(host.conf, { recursive: true });
  mkdirSync(host.account);
  project({ token, namespace: 'kube-system', 'ca.crt': 'not a real CA\n' }, 1);
});
afterEach(async () => {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

const url = () => new URL(cluster.server.url);
const installOptions = (): InstallOptions => ({
  cniBinDir: host.bin,
  cniConfDir: host.conf,
  hostPrefix: join(dir, 'host'),
  plugin: pluginPath,
  nodeName: 'node-1',
  socketPath: host.socket,
  serviceAccountDir: host.account,
  env: {
    KUBERNETES_SERVICE_HOST: url().hostname,
    KUBERNETES_SERVICE_PORT: url().port,
    KUBERNETES_SERVICE_PROTOCOL: 'http',
  },
});

const confDir = () => join(host.conf, 'whereabouts.d');
/** A NAD as a user writes it: no kubeconfig, the installed flat file supplies it. */
const nad = (flatFile = join(confDir(), 'whereabouts.conf')) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'net',
    type: 'macvlan',
    ipam: { type: 'whereabouts', range: '198.18.0.0/24', configuration_path: flatFile, log_level: 'error' },
  });
/** The installed plugin, run as the runtime would, with a flat file whose host paths point into `dir`. */
const installed = (command: string, pod: string, containerId?: string) =>
  execute(join(host.bin, 'whereabouts'), podEnv(command, pod, containerId), nad());
const allocations = () => Object.values(poolsOf(cluster.server).get('198.18.0.0-24')?.allocations ?? {});

/** The agent; the flat file it installs always names `host.socket`, where it may or may not listen. */
const start = (socketPath = host.socket) =>
  runAgent({
    connection: cluster.connection(),
    socketPath,
    nodeName: 'node-1',
    log: silentLogger,
    flatFilePaths: [],
    metricsPort: 0,
    stateDir: host.state,
    install: { ...installOptions(), hostPrefix: '' },
    tokenCheckMs: 100,
  });

describe('install', () => {
  test('puts the plugin, kubeconfig, flat file and node name on the host, with the right modes', () => {
    const report = install(installOptions());
    expect(report).toEqual({
      ok: true,
      value: { plugin: 'written', kubeconfig: 'written', flatFile: 'written', nodeName: 'written' },
    });
    expect(readFileSync(join(host.bin, 'whereabouts')).equals(readFileSync(pluginPath))).toBe(true);
    expect(statSync(join(host.bin, 'whereabouts')).mode & 0o777).toBe(0o755);
    // The forwarder's fallback, the TypeScript plugin, beside it.
    const standalone = join(dirname(pluginPath), 'whereabouts-ts-plugin');
    expect(readFileSync(join(host.bin, 'whereabouts-ts-plugin')).equals(readFileSync(standalone))).toBe(true);
    expect(statSync(join(host.bin, 'whereabouts-ts-plugin')).mode & 0o777).toBe(0o755);
    expect(statSync(join(confDir(), 'whereabouts.kubeconfig')).mode & 0o777).toBe(0o600);
    expect(statSync(join(confDir(), 'whereabouts.conf')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(confDir(), 'nodename'), 'utf8')).toBe('node-1\n');
    // Host paths: the mount prefix is gone.
    expect(JSON.parse(readFileSync(join(confDir(), 'whereabouts.conf'), 'utf8'))).toEqual({
      datastore: 'kubernetes',
      configuration_path: '/etc/cni/net.d/whereabouts.d',
      kubernetes: { kubeconfig: '/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig' },
      agent_socket: host.socket,
    });
    expect(readdirSync(confDir()).sort()).toEqual(['nodename', 'whereabouts.conf', 'whereabouts.kubeconfig']);
  });

  test('the installed plugin allocates with the kubeconfig made from the service account', async () => {
    install({ ...installOptions(), hostPrefix: '' }); // host paths = these paths, so the plugin finds them
    const added = await installed('ADD', 'p1');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(allocations()).toEqual([expect.objectContaining({ podref: 'default/p1' })]);
  });

  test('a second install changes nothing; a new plugin replaces the old by rename, beside untouched files', () => {
    install(installOptions());
    const before = statSync(join(host.bin, 'whereabouts')).ino;
    expect(install(installOptions())).toEqual({
      ok: true,
      value: { plugin: 'unchanged', kubeconfig: 'unchanged', flatFile: 'unchanged', nodeName: 'unchanged' },
    });
    expect(statSync(join(host.bin, 'whereabouts')).ino).toBe(before);

    writeFileSync(join(host.bin, 'macvlan'), 'another plugin');
    writeFileSync(join(host.bin, '.whereabouts.whereabouts-ts.tmp'), 'half a copy, left by a crash');
    writeFileSync(join(host.bin, '.someone-elses.tmp'), 'not ours');
    const newer = join(dir, 'newer-plugin');
    writeFileSync(newer, '#!/bin/sh\necho newer\n');
    expect(install({ ...installOptions(), plugin: newer }).ok).toBe(true);
    expect(statSync(join(host.bin, 'whereabouts')).ino).not.toBe(before);
    expect(readFileSync(join(host.bin, 'whereabouts'), 'utf8')).toBe('#!/bin/sh\necho newer\n');
    expect(readdirSync(host.bin).sort()).toEqual([
      '.someone-elses.tmp',
      'macvlan',
      'whereabouts',
      'whereabouts-ts-plugin',
    ]);
    expect(readFileSync(join(host.bin, 'macvlan'), 'utf8')).toBe('another plugin');
  });

  test("an operator's flat file keeps its other keys; one that is not JSON is set aside, not lost", () => {
    mkdirSync(confDir());
    const flatFile = join(confDir(), 'whereabouts.conf');
    writeFileSync(flatFile, JSON.stringify({ reconciler_cron_expression: '30 4 * * *', log_level: 'debug' }));
    install(installOptions());
    expect(JSON.parse(readFileSync(flatFile, 'utf8'))).toMatchObject({
      reconciler_cron_expression: '30 4 * * *',
      log_level: 'debug',
      agent_socket: host.socket,
    });
    writeFileSync(flatFile, '{ not json');
    install(installOptions());
    expect(readFileSync(`${flatFile}.bak`, 'utf8')).toBe('{ not json');
    expect(JSON.parse(readFileSync(flatFile, 'utf8'))).toMatchObject({ agent_socket: host.socket });
  });

  test('fails clearly, without the token in the message, when it cannot install', () => {
    const noToken = { ...installOptions(), serviceAccountDir: join(dir, 'nowhere') };
    const missing = install(noToken);
    expect(missing.ok || missing.error.file).toBe(join(dir, 'nowhere', 'token'));
    expect(missing.ok || missing.error.reason).toMatch(/service-account token/);
    const noApi = install({ ...installOptions(), env: {} });
    expect(noApi.ok || noApi.error.reason).toMatch(/KUBERNETES_SERVICE_HOST/);
    chmodSync(host.bin, 0o500);
    const readOnly = install(installOptions());
    chmodSync(host.bin, 0o755);
    if (process.getuid?.() !== 0) expect(readOnly).toMatchObject({ ok: false, error: { reason: 'EACCES' } });
    expect(JSON.stringify([install(noToken), readOnly])).not.toContain(token);
  });
});

describe('the running agent', () => {
  let running: RunningAgent | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });

  test('rewrites the kubeconfig when the projected token rotates, and the plugin keeps working', async () => {
    running = await start(join(dir, 'elsewhere.sock')); // the plugin must use the kubeconfig itself
    expect((await installed('ADD', 'before')).code).toBe(0);

    project({ token: 'rotated-token', namespace: 'kube-system', 'ca.crt': 'not a real CA\n' }, 2);
    cluster.server.acceptToken('rotated-token');
    const kubeconfig = join(confDir(), 'whereabouts.kubeconfig');
    const deadline = Date.now() + 5_000;
    while (!readFileSync(kubeconfig, 'utf8').includes('rotated-token') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(kubeconfig, 'utf8')).toContain('rotated-token');
    expect(statSync(kubeconfig).mode & 0o777).toBe(0o600);
    const after = await installed('ADD', 'after');
    expect(after.code).toBe(0);
    expect(
      allocations()
        .map((a) => a.podref)
        .sort(),
    ).toEqual(['default/after', 'default/before']);
  });

  test('after a restart, releases what pods gone meanwhile held, and keeps what a pod that may still run holds', async () => {
    const { core } = cluster.connection();
    const pods = ['kept', 'gone', 'finished', 'terminating', 'moved', 'elsewhere'];
    for (const name of pods)
      await core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name },
          // `elsewhere` runs on another node, though its ADD reached this node's agent.
          spec: { nodeName: name === 'elsewhere' ? 'node-2' : 'node-1', containers: [] },
        },
      });
    running = await start();
    for (const name of pods) expect((await installed('ADD', name)).code).toBe(0);
    const records = () => readdirSync(join(host.state, 'attachments')).sort();
    expect(records()).toHaveLength(pods.length);
    await running.stop();
    running = undefined;

    // While the agent is down (nobody calls DEL: the node was off): `gone` is deleted for good (a force
    // delete, or the pod GC after the node went); `finished` and `terminating` are deleted gracefully and
    // stay Terminating — the kubelet reported `finished` stopped, not `terminating`, which may still run;
    // `moved` gets a new sandbox, whose ADD (standalone, the agent being down) moves its allocation.
    await core.deleteNamespacedPod({ namespace: 'default', name: 'gone', gracePeriodSeconds: 0 });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'finished' });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'terminating' });
    await core.patchNamespacedPodStatus(
      { namespace: 'default', name: 'finished', body: { status: { phase: 'Succeeded' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect((await installed('ADD', 'moved', 'sandbox-moved-2')).code).toBe(0);
    expect(allocations()).toHaveLength(pods.length);

    running = await start();
    const deadline = Date.now() + 5_000;
    while ((await fetch(`${running.metricsUrl}/readyz`)).status !== 200 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50)); // ready once reconciled
    expect(
      allocations()
        .map((a) => `${a.podref} ${a.id}`)
        .sort(),
    ).toEqual([
      'default/elsewhere sandbox-elsewhere',
      'default/kept sandbox-kept',
      'default/moved sandbox-moved-2',
      'default/terminating sandbox-terminating',
    ]);
    expect(records()).toEqual([
      'sandbox-elsewhere_net1.json',
      'sandbox-kept_net1.json',
      'sandbox-terminating_net1.json',
    ]);
    // `finished` is released by the start-up reconcile or by the pod watch seeing it, whichever is first
    // (the watch's count follows its reservation, maybe after /readyz said 200).
    const released = async () => {
      const metrics = await (await fetch(`${(running as RunningAgent).metricsUrl}/metrics`)).text();
      const count = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1]);
      return (
        count('whereabouts_agent_released_on_reconcile_total') +
        count('whereabouts_agent_released_on_pod_delete_total')
      );
    };
    const counted = Date.now() + 5_000;
    while ((await released()) < 2 && Date.now() < counted) await new Promise((r) => setTimeout(r, 50));
    expect(await released()).toBe(2);

    // DEL through the agent removes the record with the allocation.
    expect((await installed('DEL', 'kept')).code).toBe(0);
    expect(records()).toEqual(['sandbox-elsewhere_net1.json', 'sandbox-terminating_net1.json']);
  });
});

describe('switching a node from Whereabouts in place', () => {
  /** A node and a cluster as Whereabouts left them: its installer's files, its pools and reservations. */
  async function whereaboutsWasHere(): Promise<void> {
    mkdirSync(confDir());
    writeFileSync(join(host.bin, 'whereabouts'), 'the Go binary');
    writeFileSync(
      join(confDir(), 'whereabouts.conf'),
      JSON.stringify({
        datastore: 'kubernetes',
        configuration_path: '/etc/cni/net.d/whereabouts.d',
        kubernetes: { kubeconfig: '/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig' },
        reconciler_cron_expression: '30 4 * * *',
      }),
    );
    writeFileSync(join(confDir(), 'whereabouts.kubeconfig'), 'apiVersion: v1\nkind: Config\n', {
      mode: 0o600,
    });
    writeFileSync(join(confDir(), 'nodename'), 'node-1');
    const connection = cluster.connection();
    // Offsets from the start of the range, as Whereabouts keys them; its entries carry no node.
    await writePool(connection, '10.20.0.0-24', '10.20.0.0/24', {
      '1': { id: 'sandbox-old-1', podref: 'default/old-1', ifname: 'net1' },
      '5': { id: 'sandbox-old-2', podref: 'default/old-2', ifname: 'net1' },
    });
    await writePool(connection, '2001-db8-20---64', '2001:db8:20::/64', {
      '1': { id: 'sandbox-old-1', podref: 'default/old-1', ifname: 'net1' },
      '5': { id: 'sandbox-old-2', podref: 'default/old-2', ifname: 'net1' },
    });
    for (const [name, podref] of [
      ['10.20.0.1', 'default/old-1'],
      ['10.20.0.5', 'default/old-2'],
      ['2001-db8-20--1', 'default/old-1'],
      ['2001-db8-20--5', 'default/old-2'],
    ] as const)
      await writeReservation(connection, name, { podref, ifname: 'net1' });
    for (const name of ['old-1', 'old-2'])
      await connection.core.createNamespacedPod({
        namespace: 'default',
        body: { metadata: { name }, spec: { nodeName: 'node-1', containers: [] } },
      });
  }

  /** A dual-stack NAD as it was written for Whereabouts (no kubeconfig: the flat file supplies it). */
  const dualStack = () =>
    JSON.stringify({
      cniVersion: '0.3.1',
      name: 'dual',
      type: 'macvlan',
      ipam: {
        type: 'whereabouts',
        range: '10.20.0.0/24',
        ipRanges: [{ range: '2001:db8:20::/64' }],
        configuration_path: join(confDir(), 'whereabouts.conf'),
      },
    });
  const plugin = (command: string, pod: string) =>
    execute(join(host.bin, 'whereabouts'), podEnv(command, pod), dualStack());
  const addressesOf = (stdout: string) =>
    (JSON.parse(stdout) as { ips: { address: string }[] }).ips.map((ip) => ip.address);

  test('pools and reservations Whereabouts wrote are honoured after the switch, and stay readable for it', async () => {
    await whereaboutsWasHere();
    const running = await start();
    try {
      // The installer took over Whereabouts' files: our plugin, its flat-file settings kept.
      expect(readFileSync(join(host.bin, 'whereabouts')).equals(readFileSync(pluginPath))).toBe(true);
      expect(JSON.parse(readFileSync(join(confDir(), 'whereabouts.conf'), 'utf8'))).toMatchObject({
        reconciler_cron_expression: '30 4 * * *',
        agent_socket: host.socket,
      });

      // A pod Whereabouts addressed keeps its addresses on a new ADD.
      const old = await plugin('ADD', 'old-1');
      expect(old.code).toBe(0);
      expect(addressesOf(old.stdout)).toEqual(['10.20.0.1/24', '2001:db8:20::1/64']);

      // New pods never get an address Whereabouts handed out.
      const added = await Promise.all(Array.from({ length: 20 }, (_, i) => plugin('ADD', `new-${i}`)));
      expect(added.filter((r) => r.code !== 0)).toEqual([]);
      const given = added.flatMap((r) => addressesOf(r.stdout));
      expect(new Set(given).size).toBe(40);
      for (const taken of ['10.20.0.1/24', '10.20.0.5/24', '2001:db8:20::1/64', '2001:db8:20::5/64'])
        expect(given).not.toContain(taken);

      // DEL of a pod Whereabouts addressed releases its entries and its reservations.
      expect((await plugin('DEL', 'old-2')).code).toBe(0);
      const v4 = poolsOf(cluster.server).get('10.20.0.0-24')?.allocations ?? {};
      expect(Object.values(v4).map((a) => a.podref)).not.toContain('default/old-2');
      const reservations = cluster.server.objects(
        'overlappingrangeipreservations',
        'whereabouts.cni.cncf.io',
      );
      expect(reservations.has('kube-system/10.20.0.5')).toBe(false);
      expect(reservations.has('kube-system/2001-db8-20--5')).toBe(false);
      expect(reservations.has('kube-system/10.20.0.1')).toBe(true);

      // What we wrote is in Whereabouts' format: offset keys, {id, podref, ifname}, its reservation names.
      const entry = Object.entries(v4).find(([, a]) => a.podref === 'default/new-0');
      const address = addressesOf(added[0]?.stdout ?? '')[0] ?? '';
      expect(entry?.[0]).toBe(String(Number(address.split('/')[0]?.split('.')[3])));
      expect(entry?.[1]).toEqual({ id: 'sandbox-new-0', podref: 'default/new-0', ifname: 'net1' });
      expect(reservations.get(`kube-system/${address.split('/')[0] ?? ''}`)).toMatchObject({
        spec: { podref: 'default/new-0', ifname: 'net1' },
      });
    } finally {
      await running.stop();
    }
  });
});
