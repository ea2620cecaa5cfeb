// The CNI protocol of the plugin, in process: environment and stdin in, stdout and exit code out, with the
// same store the executable opens (the lean HTTP client and kubeconfig reader), against the embedded server
// and against a real kube-apiserver over TLS (the CA from the kubeconfig's certificate-authority-data).
// Injected faults and missing CRDs on the embedded server only.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPlugin, type PluginOutput } from '../../src/cni/plugin.ts';
import { httpApi } from '../../src/kube-api/http-api.ts';
import { loadCredentials } from '../../src/kube-api/kubeconfig.ts';
import { kubeStore } from '../../src/store/store.ts';
import {
  createPod as createPodIn,
  onEveryServer,
  startCluster,
  type Cluster,
  type TestCluster,
} from '../support/cluster.ts';
import {
  poolsIn,
  reservationsIn,
  writeNodeSlicePool,
  writePool,
  writeReservation,
} from '../support/pools.ts';

let cluster: Cluster;
let dir: string;
const logLines: string[] = [];

/** Each test: a fresh cluster from `start`, a scratch folder, no log lines yet. */
function setUp(start: () => Promise<Cluster>): void {
  beforeEach(async () => {
    cluster = await start();
    dir = mkdtempSync(join(tmpdir(), 'wb-plugin-'));
    logLines.length = 0;
  });
  afterEach(async () => {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

/** A pod bound to `node` (no scheduler or kubelet here: it stays Pending), in the cluster's namespace. */
const createPod = (name: string, node: string) => createPodIn(cluster, name, node);

type Call = {
  command: string;
  conf?: unknown;
  stdin?: string;
  env?: Record<string, string | undefined>;
  container?: string;
  pod?: string;
  ifName?: string;
  deadlineMs?: number;
};

async function plugin(call: Call): Promise<PluginOutput & { json: Record<string, unknown> | undefined }> {
  const env: Record<string, string | undefined> = {
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.container ?? 'sandbox-1',
    CNI_NETNS: '/var/run/netns/test',
    CNI_IFNAME: call.ifName ?? 'net1',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${cluster.namespace};K8S_POD_NAME=${call.pod ?? 'pod-1'}`,
    ...call.env,
  };
  const output = await runPlugin({
    env,
    stdin: call.stdin ?? JSON.stringify(call.conf),
    flatFilePaths: [],
    openStore: (config) => {
      const credentials = loadCredentials(config.kubeconfig, {});
      return credentials.ok ? { ok: true, value: kubeStore(httpApi(credentials.value, 2_000)) } : credentials;
    },
    writeLog: (line) => logLines.push(line),
    ...(call.deadlineMs === undefined ? {} : { deadlineMs: call.deadlineMs }),
  });
  return {
    ...output,
    json: output.stdout === '' ? undefined : (JSON.parse(output.stdout) as Record<string, unknown>),
  };
}

const conf = (version: string, ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  cniVersion: version,
  name: 'net-a',
  type: 'macvlan',
  ...extra,
  ipam: {
    type: 'whereabouts',
    range: '10.30.0.0/24',
    kubernetes: { kubeconfig: cluster.kubeconfig },
    ...ipam,
  },
});

describe('embedded API server: no API call, faults, no CRDs', () => {
  let embedded: TestCluster;
  setUp(async () => (embedded = await startCluster()));

  describe('VERSION and the environment', () => {
    test('VERSION lists the versions spoken, in the version asked', async () => {
      expect((await plugin({ command: 'VERSION', stdin: '{"cniVersion":"0.4.0"}' })).json).toEqual({
        cniVersion: '0.4.0',
        supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
      });
      expect((await plugin({ command: 'VERSION', stdin: '' })).json?.cniVersion).toBe('1.1.0');
    });

    test.each<[string, Record<string, string | undefined>, string]>([
      ['no CNI_COMMAND', { CNI_COMMAND: undefined }, 'CNI_COMMAND is not set'],
      [
        'an unknown command',
        { CNI_COMMAND: 'UPDATE' },
        'CNI_COMMAND "UPDATE" is not one of ADD, DEL, CHECK, GC, STATUS, VERSION',
      ],
      ['ADD without netns', { CNI_NETNS: '' }, 'CNI_NETNS is not set (needed for ADD)'],
      [
        'ADD without container and interface',
        { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined },
        'CNI_CONTAINERID, CNI_IFNAME are not set (needed for ADD)',
      ],
      [
        'a bad container ID',
        { CNI_CONTAINERID: '-bad id' },
        'CNI_CONTAINERID must start with a letter or digit',
      ],
      [
        'a bad interface name',
        { CNI_IFNAME: 'much-too-long-name0' },
        'CNI_IFNAME "much-too-long-name0" is not a valid interface name',
      ],
      [
        'CNI_ARGS without the pod',
        { CNI_ARGS: 'IgnoreUnknown=1' },
        'CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME',
      ],
      [
        'malformed CNI_ARGS',
        { CNI_ARGS: 'K8S_POD_NAME' },
        'CNI_ARGS: "K8S_POD_NAME" is not a KEY=VALUE pair',
      ],
    ])('%s is error 4', async (_, env, message) => {
      const out = await plugin({ command: 'ADD', conf: conf('1.0.0'), env });
      expect(out.exitCode).toBe(1);
      expect(out.json).toMatchObject({ code: 4, msg: 'Invalid environment variables' });
      expect(String(out.json?.details)).toContain(message);
    });
  });

  describe('configuration and versions', () => {
    test('stdin that is not JSON is error 6, in the latest version, without echoing it', async () => {
      const out = await plugin({ command: 'ADD', stdin: '{"cniVersion": "1.0.0", token: hunter2' });
      expect(out.json).toMatchObject({ cniVersion: '1.1.0', code: 6 });
      expect(out.stdout).not.toContain('hunter2');
    });

    test('a config for another IPAM type is error 7', async () => {
      const out = await plugin({
        command: 'ADD',
        stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'x', ipam: { type: 'host-local' } }),
      });
      expect(out.json).toMatchObject({
        cniVersion: '1.0.0',
        code: 7,
        details: 'ipam.type is "host-local"; this plugin only handles "whereabouts"',
      });
    });

    test.each([
      ['0.2.0', 'ADD', 'cniVersion "0.2.0" is not supported'],
      ['2.0.0', 'ADD', 'cniVersion "2.0.0" is not supported'],
      ['0.3.1', 'CHECK', 'config version 0.3.1 does not allow CHECK (needs 0.4.0 or later)'],
      ['1.0.0', 'GC', 'config version 1.0.0 does not allow GC (needs 1.1.0 or later)'],
      ['1.0.0', 'STATUS', 'config version 1.0.0 does not allow STATUS (needs 1.1.0 or later)'],
    ])('cniVersion %s with %s is error 1', async (version, command, message) => {
      const out = await plugin({ command, conf: conf(version) });
      expect(out.json).toMatchObject({ code: 1, msg: 'Incompatible CNI version' });
      expect(String(out.json?.details)).toContain(message);
    });

    test('no kubeconfig anywhere is error 7 naming what to set', async () => {
      const out = await plugin({ command: 'ADD', conf: conf('1.0.0', { kubernetes: {} }) });
      expect(out.json).toMatchObject({ code: 7 });
      expect(String(out.json?.details)).toContain('no kubeconfig: set ipam.kubernetes.kubeconfig');
    });

    test('a kubeconfig that is not one is refused without quoting it', async () => {
      const bad = join(dir, 'kubeconfig');
      writeFileSync(bad, 'token: "super-secret-token\n  - [unclosed');
      const out = await plugin({ command: 'ADD', conf: conf('1.0.0', { kubernetes: { kubeconfig: bad } }) });
      expect(out.json).toMatchObject({
        code: 7,
        details: `cannot load the kubeconfig ${bad}: not a valid kubeconfig file`,
      });
      expect(out.stdout).not.toContain('secret');
    });
  });

  test('a DEL that cannot reach the API server is error 11, never a silent success', async () => {
    await plugin({ command: 'ADD', conf: conf('1.0.0') });
    embedded.server.faults.errorRates = { 503: 1 };
    const out = await plugin({ command: 'DEL', conf: conf('1.0.0'), deadlineMs: 1_500 });
    expect(out.exitCode).toBe(1);
    expect(out.json).toMatchObject({ code: 11, msg: 'Try again later' });
    expect(String(out.json?.details)).toContain('503 ServiceUnavailable');
    expect(Object.keys((await poolsIn(cluster)).get('10.30.0.0-24')?.allocations ?? {})).toHaveLength(1);
  });

  test('STATUS: 50 when the API server fails or the CRDs are missing', async () => {
    embedded.server.faults.errorRates = { 503: 1 };
    const down = await plugin({ command: 'STATUS', conf: conf('1.1.0') });
    expect(down.json).toMatchObject({ code: 50, msg: 'Plugin not available' });
    embedded.server.faults.errorRates = {};
    await cluster.close();
    cluster = embedded = await startCluster({ crdDirectories: [] });
    const noCrds = await plugin({ command: 'STATUS', conf: conf('1.1.0') });
    expect(noCrds.json).toMatchObject({ code: 50 });
    expect(String(noCrds.json?.details)).toContain('the whereabouts CRDs are not installed');
  });
});

onEveryServer((start) => {
  setUp(start);

  describe('ADD results per version', () => {
    const full = {
      ipRanges: [{ range: '2001:db8:30::/64' }],
      gateway: '10.30.0.1',
      routes: [{ dst: '0.0.0.0/0', gw: '10.30.0.1', mtu: 1400 }],
      dns: { nameservers: ['10.30.0.53'], search: ['example.org'] },
      addresses: [{ address: '192.0.2.10/24', gateway: '192.0.2.1' }],
      range_start: '10.30.0.10',
      range_end: '10.30.0.10',
    };

    test('0.3.1: version on each address; no interfaces; routes without 1.1 fields', async () => {
      const out = await plugin({ command: 'ADD', conf: conf('0.3.1', full) });
      expect(out.exitCode).toBe(0);
      expect(out.json).toEqual({
        cniVersion: '0.3.1',
        ips: [
          { version: '4', address: '10.30.0.10/24', gateway: '10.30.0.1' },
          { version: '6', address: expect.stringMatching(/^2001:db8:30::[0-9a-f]+\/64$/) as unknown },
          { version: '4', address: '192.0.2.10/24', gateway: '192.0.2.1' },
        ],
        routes: [{ dst: '0.0.0.0/0', gw: '10.30.0.1' }],
        dns: { nameservers: ['10.30.0.53'], search: ['example.org'] },
      });
    });

    test('1.1.0: no version field, the route fields of 1.1', async () => {
      const out = await plugin({ command: 'ADD', conf: conf('1.1.0', full) });
      expect(out.json?.ips).toEqual([
        { address: '10.30.0.10/24', gateway: '10.30.0.1' },
        { address: expect.stringMatching(/^2001:db8:30::/) as unknown },
        { address: '192.0.2.10/24', gateway: '192.0.2.1' },
      ]);
      expect(out.json?.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.30.0.1', mtu: 1400 }]);
    });

    test('ADD is idempotent, DEL releases and succeeds again with nothing held, printing nothing', async () => {
      const first = await plugin({ command: 'ADD', conf: conf('1.0.0') });
      expect((await plugin({ command: 'ADD', conf: conf('1.0.0') })).json).toEqual(first.json);
      expect(await plugin({ command: 'DEL', conf: conf('1.0.0') })).toMatchObject({
        exitCode: 0,
        stdout: '',
      });
      expect((await poolsIn(cluster)).get('10.30.0.0-24')?.allocations).toEqual({});
      expect(await plugin({ command: 'DEL', conf: conf('1.0.0') })).toMatchObject({
        exitCode: 0,
        stdout: '',
      });
    });
  });

  describe('CHECK, GC, STATUS', () => {
    test('CHECK passes for the held address and fails when prevResult or the pool disagree', async () => {
      const added = await plugin({ command: 'ADD', conf: conf('1.0.0') });
      expect(
        await plugin({ command: 'CHECK', conf: conf('1.0.0', {}, { prevResult: added.json }) }),
      ).toMatchObject({ exitCode: 0, stdout: '' });
      const other = await plugin({
        command: 'CHECK',
        conf: conf(
          '1.0.0',
          {},
          { prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.30.0.200/24' }] } },
        ),
      });
      expect(other.json).toMatchObject({ code: 100, msg: 'IPAM check failed' });
      expect(String(other.json?.details)).toContain('is not in prevResult');
      const unknown = await plugin({
        command: 'CHECK',
        container: 'sandbox-9',
        conf: conf('1.0.0', {}, { prevResult: added.json }),
      });
      expect(unknown.json).toMatchObject({
        code: 100,
        details: 'container sandbox-9 interface net1 holds no address in IPPool 10.30.0.0-24',
      });
    });

    test("GC releases stale attachments of this node's pods and nothing else", async () => {
      await createPod('here', 'node-a');
      await createPod('there', 'node-b');
      await plugin({ command: 'ADD', conf: conf('1.1.0'), pod: 'here', container: 'old-sandbox' });
      await plugin({ command: 'ADD', conf: conf('1.1.0'), pod: 'here', container: 'live', ifName: 'net2' });
      await plugin({ command: 'ADD', conf: conf('1.1.0'), pod: 'there', container: 'elsewhere' });
      await plugin({ command: 'ADD', conf: conf('1.1.0'), pod: 'gone', container: 'unknown-node' });
      const gc = await plugin({
        command: 'GC',
        env: { NODENAME: 'node-a' },
        conf: conf('1.1.0', {}, { 'cni.dev/attachments': [{ containerID: 'live', ifname: 'net2' }] }),
      });
      expect(gc).toMatchObject({ exitCode: 0, stdout: '' });
      const left = Object.values((await poolsIn(cluster)).get('10.30.0.0-24')?.allocations ?? {})
        .map((e) => e.id)
        .sort();
      expect(left).toEqual(['elsewhere', 'live', 'unknown-node']);
    });

    test('STATUS: ready with the API server and CRDs there', async () => {
      expect(await plugin({ command: 'STATUS', conf: conf('1.1.0') })).toMatchObject({
        exitCode: 0,
        stdout: '',
      });
    });
  });

  describe('node slices', () => {
    // 10.31.0.0/28 in /30 slices: n1 holds the first (.1–.3), n2 the third (.8–.11).
    const sliced = (
      version: string,
      extra: Record<string, unknown> = {},
      ipam: Record<string, unknown> = {},
    ) => conf(version, { range: '10.31.0.0/28', node_slice_size: '/30', ...ipam }, extra);
    beforeEach(async () => {
      await writeNodeSlicePool(
        cluster.connection(),
        'net-a',
        { range: '10.31.0.0/28', sliceSize: '/30' },
        [
          { nodeName: 'n1', sliceRange: '10.31.0.0/30' },
          { nodeName: '', sliceRange: '10.31.0.4/30' },
          { nodeName: 'n2', sliceRange: '10.31.0.8/30' },
          { nodeName: '', sliceRange: '10.31.0.12/30' },
        ],
        cluster.namespace,
      );
    });
    const addresses = (out: { json: Record<string, unknown> | undefined }) =>
      (out.json?.ips as { address: string }[] | undefined)?.map((i) => i.address);

    test('ADD on a node takes from its slices (NODENAME), a second slice when full; CHECK and DEL look in every slice', async () => {
      const n1 = { NODENAME: 'n1' };
      const first = await Promise.all(
        [1, 2, 3].map((i) =>
          plugin({ command: 'ADD', conf: sliced('1.0.0'), env: n1, pod: `p${i}`, container: `c${i}` }),
        ),
      );
      expect(first.flatMap(addresses).sort()).toEqual(['10.31.0.1/28', '10.31.0.2/28', '10.31.0.3/28']);
      const fourth = await plugin({
        command: 'ADD',
        conf: sliced('1.0.0'),
        env: n1,
        pod: 'p4',
        container: 'c4',
      });
      expect(addresses(fourth)?.[0]).toMatch(/^10\.31\.0\.[4-7]\/28$/);
      expect(
        await plugin({
          command: 'CHECK',
          conf: sliced('1.0.0', { prevResult: fourth.json }),
          env: n1,
          container: 'c4',
          pod: 'p4',
        }),
      ).toMatchObject({ exitCode: 0, stdout: '' });
      const missing = await plugin({
        command: 'CHECK',
        conf: sliced('1.0.0', { prevResult: fourth.json }),
        env: n1,
        container: 'c9',
      });
      expect(missing.json).toMatchObject({
        code: 100,
        details: 'container c9 interface net1 holds no address in IPPool n1-10.31.0.0-30, n1-10.31.0.4-30',
      });
      expect(
        await plugin({ command: 'DEL', conf: sliced('1.0.0'), env: n1, pod: 'p4', container: 'c4' }),
      ).toMatchObject({
        exitCode: 0,
      });
      expect((await poolsIn(cluster)).get('n1-10.31.0.4-30')?.allocations).toEqual({});
    });

    test('without NODENAME the node name comes from <configuration_path>/nodename', async () => {
      writeFileSync(join(dir, 'nodename'), 'n2\n');
      const out = await plugin({ command: 'ADD', conf: sliced('1.0.0', {}, { configuration_path: dir }) });
      expect(addresses(out)?.[0]).toMatch(/^10\.31\.0\.(8|9|10|11)\/28$/); // n2's slice
      expect((await poolsIn(cluster)).has('n2-10.31.0.8-30')).toBe(true);
    });

    test("GC releases this node's stale attachments in every slice of the node", async () => {
      await createPod('here', 'n1');
      const n1 = { NODENAME: 'n1' };
      for (const i of [1, 2, 3, 4])
        await plugin({
          command: 'ADD',
          conf: sliced('1.1.0'),
          env: n1,
          pod: 'here',
          container: `c${i}`,
          ifName: `net${i}`,
        });
      expect((await poolsIn(cluster)).get('n1-10.31.0.4-30')?.allocations).not.toEqual({});
      const gc = await plugin({
        command: 'GC',
        env: n1,
        conf: sliced('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'net1' }] }),
      });
      expect(gc).toMatchObject({ exitCode: 0, stdout: '' });
      const left = [...(await poolsIn(cluster)).values()].flatMap((p) =>
        Object.values(p.allocations).map((e) => e.id),
      );
      expect(left).toEqual(['c1']);
    });
  });

  describe('DEL of a config ADD refuses (a pod created under Whereabouts, which accepted it)', () => {
    /**
     * What Whereabouts stored for pod-1's net1 (sandbox-1) of a two-range network — an address in each pool,
     * the first reserved for it, the second reserved for pod-2 — beside pod-9's address and reservation.
     */
    async function whereaboutsHeld(network: string): Promise<void> {
      const connection = cluster.connection();
      const { namespace } = cluster;
      const named = (name: string) => (network === '' ? name : `${network}-${name}`);
      const entry = (id: string, pod: string) => ({ id, podref: `${namespace}/${pod}`, ifname: 'net1' });
      await writePool(
        connection,
        named('10.30.0.0-24'),
        '10.30.0.0/24',
        { '5': entry('sandbox-1', 'pod-1'), '9': entry('sandbox-9', 'pod-9') },
        namespace,
      );
      await writePool(
        connection,
        named('10.31.0.0-24'),
        '10.31.0.0/24',
        { '5': entry('sandbox-1', 'pod-1') },
        namespace,
      );
      const reservation = (address: string, pod: string) =>
        writeReservation(
          connection,
          named(address),
          { podref: `${namespace}/${pod}`, ifname: 'net1' },
          namespace,
        );
      await reservation('10.30.0.5', 'pod-1');
      await reservation('10.30.0.9', 'pod-9');
      await reservation('10.31.0.5', 'pod-2'); // another pod's reservation of the same address
    }

    const stored = async () => ({
      pools: Object.fromEntries(
        [...(await poolsIn(cluster))].map(([name, spec]) => [name, Object.keys(spec.allocations).sort()]),
      ),
      reservations: [...(await reservationsIn(cluster)).keys()].sort(),
    });

    test.each([
      ['a typo in a key', { rnage: '10.30.0.0/24' }, '', 2, 'unknown key "rnage"'],
      ['range_start outside the range', { range_start: '10.32.0.10' }, '', 7, 'range_start'],
      ['an exclude of the other family', { exclude: ['fd00::/64'] }, 'blue', 7, 'fd00::/64'],
    ])(
      '%s: DEL releases what the attachment holds; ADD still refuses, writing nothing',
      async (_, bad, network, code, why) => {
        await whereaboutsHeld(network);
        const refused = conf('1.0.0', {
          ipRanges: [{ range: '10.31.0.0/24' }],
          ...(network === '' ? {} : { network_name: network }),
          ...bad,
        });
        const before = await stored();
        const added = await plugin({ command: 'ADD', conf: refused, pod: 'pod-3', container: 'sandbox-3' });
        expect(added.exitCode).toBe(1);
        expect(added.json).toMatchObject({ code });
        expect(String(added.json?.details)).toContain(why);
        expect(await stored()).toEqual(before);

        logLines.length = 0;
        expect(await plugin({ command: 'DEL', conf: refused })).toMatchObject({ exitCode: 0, stdout: '' });
        const named = (name: string) => (network === '' ? name : `${network}-${name}`);
        expect(await stored()).toEqual({
          pools: { [named('10.30.0.0-24')]: ['9'], [named('10.31.0.0-24')]: [] },
          reservations: [named('10.30.0.9'), named('10.31.0.5')],
        });
        const log = logLines.join('');
        expect(log).toContain(`config: ADD refuses this configuration (code ${code}: `);
        expect(log).toContain(why);
        // Nothing held any more: DEL succeeds again; ADD of the config still fails the same way.
        expect(await plugin({ command: 'DEL', conf: refused })).toMatchObject({ exitCode: 0, stdout: '' });
        const again = await plugin({ command: 'ADD', conf: refused, pod: 'pod-3', container: 'sandbox-3' });
        expect(again.json).toEqual(added.json);
      },
    );

    test('without a usable kubeconfig DEL answers the config error, and nothing is released', async () => {
      await whereaboutsHeld('');
      const before = await stored();
      const missing = join(dir, 'no-such-kubeconfig');
      const refused = conf('1.0.0', { rnage: '10.30.0.0/24', kubernetes: { kubeconfig: missing } });
      const added = await plugin({ command: 'ADD', conf: refused });
      const deleted = await plugin({ command: 'DEL', conf: refused });
      expect(deleted.exitCode).toBe(1);
      expect(deleted.json).toEqual(added.json);
      expect(deleted.json).toMatchObject({ code: 2 });
      expect(logLines.join('')).toContain(`cannot load the kubeconfig ${missing}: ENOENT`);
      expect(await stored()).toEqual(before);
    });

    test('a config for another IPAM type, or CNI_ARGS naming no pod, is not released: the config error stands', async () => {
      await whereaboutsHeld('');
      const before = await stored();
      const otherType = await plugin({ command: 'DEL', conf: conf('1.0.0', { type: 'host-local' }) });
      expect(otherType.json).toMatchObject({ code: 7 });
      const noPod = await plugin({
        command: 'DEL',
        conf: conf('1.0.0', { rnage: '10.30.0.0/24' }),
        env: { CNI_ARGS: 'IgnoreUnknown=1' },
      });
      expect(noPod.json).toMatchObject({ code: 2 });
      expect(await stored()).toEqual(before);
    });

    test.each(['', '0.1.0', '0.2.0'])(
      'cniVersion "%s": DEL releases and prints nothing; ADD stays error 1',
      async (version) => {
        await plugin({ command: 'ADD', conf: conf('1.0.0') });
        const old = { ...conf(version), ...(version === '' ? { cniVersion: undefined } : {}) };
        expect((await plugin({ command: 'ADD', conf: old, container: 'sandbox-2' })).json).toMatchObject({
          code: 1,
        });
        expect(await plugin({ command: 'DEL', conf: old })).toEqual({
          exitCode: 0,
          stdout: '',
          json: undefined,
        });
        expect((await poolsIn(cluster)).get('10.30.0.0-24')?.allocations).toEqual({});
      },
    );
  });

  test('logs go to log_file at log_level, never to stdout', async () => {
    const logFile = join(dir, 'whereabouts.log');
    const out = await plugin({
      command: 'ADD',
      conf: conf('1.0.0', { log_file: logFile, log_level: 'debug' }),
    });
    expect(out.exitCode).toBe(0);
    const text = readFileSync(logFile, 'utf8');
    expect(text).toMatch(
      /^\S+ \[debug\] invoked command=ADD container=sandbox-1 ifname=net1 network=net-a$/m,
    );
    expect(text).toMatch(
      new RegExp(
        `\\[verbose\\] allocated pool=10\\.30\\.0\\.0-24 address=10\\.30\\.0\\.\\d+ pod=${cluster.namespace}/pod-1 ifname=net1`,
      ),
    );
    expect(logLines.join('')).toBe(text);
  });
});
