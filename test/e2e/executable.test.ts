// The built executable itself: what the container runtime sees from it, whatever the input, and its
// verbs against the embedded API server and a real kube-apiserver.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { createPod, onEveryServer, onRealServer, type Cluster } from '../support/cluster.ts';
import { execute, pluginPath as plugin, podEnv } from '../support/exec.ts';
import { poolsIn, reservationsIn } from '../support/pools.ts';

const run = (env: Record<string, string>, stdin: string | Buffer) => execute(plugin, env, stdin, 30_000);

beforeAll(() => {
  if (!existsSync(plugin)) throw new Error('dist/whereabouts is missing: run npm run build');
});

test('VERSION answers at once, in the version asked', async () => {
  const out = await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  expect(out).toEqual({
    code: 0,
    stdout: '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
    stderr: '',
  });
});

test.each<[string, Record<string, string>, string | Buffer, number]>([
  ['no command', {}, '{}', 4],
  [
    'stdin that is not JSON',
    { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' },
    'not json',
    6,
  ],
  [
    'binary garbage',
    { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' },
    Buffer.from([0, 255, 1, 2, 128]),
    6,
  ],
  [
    'a 2 MiB config',
    { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' },
    `{"x":"${'a'.repeat(2 << 20)}"}`,
    7,
  ],
])(
  '%s: a CNI error on stdout with its code, a non-zero exit, no stack trace',
  async (_, env, stdin, code) => {
    const out = await run(env, stdin);
    expect(out.code).toBe(1);
    const error = JSON.parse(out.stdout) as { code: number; msg: string; details: string };
    expect(error.code).toBe(code);
    expect(error.msg.length).toBeGreaterThan(0);
    expect(out.stdout + out.stderr).not.toMatch(/\n\s+at /);
  },
);

// The executable against an API server, as a container runtime runs it: the kubeconfig of the NAD, over
// plain HTTP on the embedded server, over TLS on the real one (http-api.ts's TLS client and the CA from
// the kubeconfig's certificate-authority-data, as the agent installs it).
onEveryServer((start) => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await start();
  });
  afterEach(async () => {
    await cluster.close();
  });

  const conf = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'net-e',
      type: 'macvlan',
      ...extra,
      ipam: { type: 'whereabouts', range: '10.40.0.0/24', kubernetes: { kubeconfig: cluster.kubeconfig } },
    });
  const env = (command: string, pod: string, containerId = `sandbox-${pod}`, more = {}) => ({
    ...podEnv(command, pod, containerId, cluster.namespace),
    ...more,
  });
  const entries = async () =>
    Object.values((await poolsIn(cluster)).get('10.40.0.0-24')?.allocations ?? {}).sort((a, b) =>
      a.id.localeCompare(b.id),
    );

  test('ADD (twice: the same address), CHECK, DEL (twice), STATUS', async () => {
    const added = await run(env('ADD', 'web'), conf());
    expect(added).toMatchObject({
      code: 0,
      stderr: expect.stringContaining('[verbose] allocated') as unknown,
    });
    const result = JSON.parse(added.stdout) as { ips: { address: string }[] };
    expect(result.ips).toEqual([{ address: expect.stringMatching(/^10\.40\.0\.\d+\/24$/) as unknown }]);
    const address = result.ips[0]?.address.split('/')[0] ?? '';
    expect(await entries()).toEqual([
      { id: 'sandbox-web', podref: `${cluster.namespace}/web`, ifname: 'net1' },
    ]);
    expect((await reservationsIn(cluster)).get(address)).toEqual({
      podref: `${cluster.namespace}/web`,
      ifname: 'net1',
      containerid: 'sandbox-web',
    });
    expect((await run(env('ADD', 'web'), conf())).stdout).toBe(added.stdout);

    expect(await run(env('CHECK', 'web'), conf({ prevResult: result }))).toMatchObject({
      code: 0,
      stdout: '',
    });
    const unknown = await run(env('CHECK', 'web', 'sandbox-other'), conf({ prevResult: result }));
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ code: 100 });

    expect(await run(env('DEL', 'web'), conf())).toMatchObject({ code: 0, stdout: '' });
    expect(await entries()).toEqual([]);
    expect((await reservationsIn(cluster)).size).toBe(0);
    expect(await run(env('DEL', 'web'), conf())).toMatchObject({ code: 0, stdout: '' });
    expect(await run(env('STATUS', 'web'), conf())).toMatchObject({ code: 0, stdout: '' });
  });

  test("GC releases the stale attachments of this node's pods, and nothing else", async () => {
    for (const [name, node] of [
      ['here', 'node-a'],
      ['there', 'node-b'],
    ] as const)
      await createPod(cluster, name, node);
    for (const [pod, container] of [
      ['here', 'stale'],
      ['there', 'elsewhere'],
    ] as const)
      expect((await run(env('ADD', pod, container), conf())).code).toBe(0);
    expect((await run(env('ADD', 'here', 'live', { CNI_IFNAME: 'net2' }), conf())).code).toBe(0);
    const gc = await run(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin', NODENAME: 'node-a' },
      conf({ 'cni.dev/valid-attachments': [{ containerID: 'live', ifname: 'net2' }] }),
    );
    expect(gc).toMatchObject({ code: 0, stdout: '' });
    expect((await entries()).map((e) => e.id)).toEqual(['elsewhere', 'live']);
    expect([...(await reservationsIn(cluster)).values()].map((r) => r.containerid).sort()).toEqual([
      'elsewhere',
      'live',
    ]);
  });
});

/** A kubeconfig's text with its cluster's CA given as `ca` instead. */
function withCa(text: string, ca: Record<string, string>): string {
  const config = load(text) as { clusters: { cluster: Record<string, unknown> }[] };
  for (const { cluster } of config.clusters) {
    delete cluster['certificate-authority-data'];
    Object.assign(cluster, ca);
  }
  return dump(config);
}

onRealServer((plane) => {
  test('a kubeconfig that names its CA by a file beside it (certificate-authority, relative)', async () => {
    const namespace = await plane().namespace('ca');
    const dir = mkdtempSync(join(tmpdir(), 'wb-ca-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), plane().ca);
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        withCa(plane().kubeconfig({ namespace }), { 'certificate-authority': 'ca.crt' }),
      );
      const conf = JSON.stringify({
        cniVersion: '1.1.0',
        name: 'net-e',
        type: 'macvlan',
        ipam: { type: 'whereabouts', range: '10.42.0.0/24', kubernetes: { kubeconfig } },
      });
      expect(await run(podEnv('STATUS', 'web'), conf)).toMatchObject({ code: 0, stdout: '' });
      const added = await run(podEnv('ADD', 'web', 'sandbox-web', namespace), conf);
      expect(added.code).toBe(0);
      expect(added.stdout).toMatch(/"address":"10\.42\.0\.\d+\/24"/);
      expect(await run(podEnv('DEL', 'web', 'sandbox-web', namespace), conf)).toMatchObject({
        code: 0,
        stdout: '',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a kubeconfig whose CA did not sign the server certificate: a clear error at once, not "try again later"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wb-ca-'));
    try {
      const other = join(dir, 'ca.crt');
      const made = await execute(
        [
          'openssl',
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          join(dir, 'ca.key'),
          '-out',
          other,
          '-days',
          '1',
          '-subj',
          '/CN=another CA',
        ],
        {},
        '',
      );
      expect(made.code).toBe(0);
      const kubeconfig = join(dir, 'kubeconfig');
      // The admin's token with another CA: the server is there and would accept the token.
      writeFileSync(
        kubeconfig,
        withCa(plane().kubeconfig(), {
          'certificate-authority-data': readFileSync(other).toString('base64'),
        }),
      );
      const conf = JSON.stringify({
        cniVersion: '1.1.0',
        name: 'net-e',
        type: 'macvlan',
        ipam: { type: 'whereabouts', range: '10.41.0.0/24', kubernetes: { kubeconfig } },
      });
      const started = Date.now();
      const out = await run(podEnv('ADD', 'web'), conf);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(out.code).toBe(1);
      expect(JSON.parse(out.stdout)).toEqual({
        cniVersion: '1.1.0',
        code: 999,
        msg: expect.any(String) as unknown,
        details: `get IPPool kube-system/10.41.0.0-24: the API server ${plane().url} presented a TLS certificate that the kubeconfig does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); check the server address and its CA (certificate-authority-data) in the kubeconfig`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
