// Input a hostile namespace user or a broken runtime can send (issue 15, findings 10 and 11): each is
// refused with the CNI error a person can act on, quotes no secret and nothing unbounded, writes nothing to
// the API server, and never blocks the process — a NAD may name a FIFO or a device wherever it names a file.

import { killAll } from '../support/exec.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from '../../src/agent/server.ts';
import { forwardToAgent } from '../../src/cni/agent-client.ts';
import { runPlugin, type PluginInput, type PluginOutput } from '../../src/cni/plugin.ts';
import { silentLogger } from '../../src/log.ts';
import { httpApi } from '../../src/kube-api/http-api.ts';
import { connect } from '../../src/kube-api/kube.ts';
import { loadCredentials, renderKubeconfig } from '../../src/kube-api/kubeconfig.ts';
import { kubeStore } from '../../src/store/store.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';

const group = 'whereabouts.cni.cncf.io';

let cluster: TestCluster;
let dir: string;
const logLines: string[] = [];
const children: ChildProcess[] = [];
beforeEach(async () => {
  cluster = await startCluster();
  dir = mkdtempSync(join(tmpdir(), 'wb-hostile-'));
  logLines.length = 0;
});
afterEach(async () => {
  await killAll(children);
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Everything the API server stores for the plugin: pools, reservations, node slices — in any namespace. */
const stored = (): string[] =>
  ['ippools', 'overlappingrangeipreservations', 'nodeslicepools'].flatMap((plural) => [
    ...cluster.server.objects(plural, group).keys(),
  ]);

type Call = {
  command?: string;
  ipam?: Record<string, unknown>;
  netConf?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  input?: Partial<PluginInput>;
};

async function plugin(call: Call = {}): Promise<PluginOutput & { json: Record<string, unknown> }> {
  const output = await runPlugin({
    env: {
      CNI_COMMAND: call.command ?? 'ADD',
      CNI_CONTAINERID: 'sandbox-1',
      CNI_NETNS: '/var/run/netns/test',
      CNI_IFNAME: 'net1',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1',
      ...call.env,
    },
    stdin: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'net-h',
      type: 'macvlan',
      ...call.netConf,
      ipam: {
        type: 'whereabouts',
        range: '10.60.0.0/24',
        kubernetes: { kubeconfig: cluster.kubeconfig },
        ...call.ipam,
      },
    }),
    flatFilePaths: [],
    openStore: (config) => {
      const credentials = loadCredentials(config.kubeconfig, {});
      return credentials.ok ? { ok: true, value: kubeStore(httpApi(credentials.value, 2_000)) } : credentials;
    },
    writeLog: (line) => logLines.push(line),
    ...call.input,
  });
  return { ...output, json: JSON.parse(output.stdout || '{}') as Record<string, unknown> };
}

/**
 * A FIFO with a writer that sends `content` once a reader opens it: code that reads the FIFO (blocking)
 * gets the content and returns instead of hanging, so the test fails rather than stalls on such code.
 */
function fifoWithWriter(name: string, content: string): string {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  const writer = spawn('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', content, path], { stdio: 'ignore' });
  children.push(writer);
  return path;
}

describe('finding 11: bad input is refused before anything is written', () => {
  test.each([
    ['range ""', { range: '' }],
    ['range null', { range: null }],
    ['no range key', { range: undefined }],
  ])('%s with no ipRanges: ADD is error 7, not an empty success', async (_, ipam) => {
    const out = await plugin({ ipam });
    expect(out.exitCode).toBe(1);
    expect(out.json).toMatchObject({ code: 7, msg: 'Invalid network configuration' });
    expect(String(out.json.details)).toContain('ipam has no range');
    expect(String(out.json.details)).toContain('ipam.range');
    expect(stored()).toEqual([]);
  });

  test('no range: DEL still succeeds, so pods of such a network can be deleted', async () => {
    const out = await plugin({ command: 'DEL', ipam: { range: '' } });
    expect(out).toMatchObject({ exitCode: 0, stdout: '' });
    expect(stored()).toEqual([]);
  });

  test('static addresses only (no range) stay valid, as in Whereabouts', async () => {
    const out = await plugin({ ipam: { range: '', addresses: [{ address: '192.0.2.10/24' }] } });
    expect(out.exitCode).toBe(0);
    expect(out.json.ips).toEqual([{ address: '192.0.2.10/24' }]);
    expect(stored()).toEqual([]);
  });

  test.each(['a..b', 'a.-b', 'a-.b', '.a', 'a.'])(
    'network_name %j (not a DNS-1123 subdomain) is error 7',
    async (networkName) => {
      const out = await plugin({ ipam: { network_name: networkName } });
      expect(out.json).toMatchObject({ code: 7 });
      expect(String(out.json.details)).toContain('ipam.network_name');
      expect(stored()).toEqual([]);
    },
  );

  test('a network_name with dots between valid parts is fine', async () => {
    const out = await plugin({ ipam: { network_name: 'blue.example' } });
    expect(out.exitCode).toBe(0);
    expect(stored()).toContain('kube-system/blue.example-10.60.0.0-24');
  });

  test.each(['10.60.0.5\u0000', '10.60.0.5/24\u0000', '10.60.0.5/\u000024', '10.60.0.5/2\u00004'])(
    'runtimeConfig.ips %j (a NUL byte) is error 7, quoted escaped',
    async (ip) => {
      const out = await plugin({ netConf: { runtimeConfig: { ips: [ip] } } });
      expect(out.json).toMatchObject({ code: 7 });
      expect(String(out.json.details)).toContain('runtimeConfig.ips');
      expect(String(out.json.details)).not.toContain('\u0000');
      expect(stored()).toEqual([]);
    },
  );

  test('runtimeConfig.ips as address or CIDR still works', async () => {
    const out = await plugin({ netConf: { runtimeConfig: { ips: ['10.60.0.7/24'] } } });
    expect(out.json.ips).toEqual([{ address: '10.60.0.7/24' }]);
  });

  test.each([
    ['a pod name of 10,000 characters', { K8S_POD_NAME: 'p'.repeat(10_000) }, 'K8S_POD_NAME'],
    ['a pod name with a slash', { K8S_POD_NAME: 'a/b' }, 'K8S_POD_NAME'],
    ['a pod name in upper case', { K8S_POD_NAME: 'Pod-1' }, 'K8S_POD_NAME'],
    ['a namespace with a slash', { K8S_POD_NAMESPACE: 'kube/system' }, 'K8S_POD_NAMESPACE'],
    ['a namespace of 64 characters', { K8S_POD_NAMESPACE: 'n'.repeat(64) }, 'K8S_POD_NAMESPACE'],
    ['a namespace with a dot', { K8S_POD_NAMESPACE: 'a.b' }, 'K8S_POD_NAMESPACE'],
  ])('%s is error 4 and no podref is stored', async (_, args, key) => {
    const { K8S_POD_NAME = 'pod-1', K8S_POD_NAMESPACE = 'default' } = args as Record<string, string>;
    const out = await plugin({
      env: {
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${K8S_POD_NAMESPACE};K8S_POD_NAME=${K8S_POD_NAME}`,
      },
    });
    expect(out.json).toMatchObject({ code: 4, msg: 'Invalid environment variables' });
    expect(String(out.json.details)).toContain(key);
    expect(out.stdout.length).toBeLessThan(1_000);
    expect(stored()).toEqual([]);
  });

  test('a pod name of 253 characters (the longest Kubernetes allows) is stored', async () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(name).toHaveLength(253);
    const out = await plugin({ env: { CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` } });
    expect(out.exitCode).toBe(0);
  });

  test('a DEL whose pod name is not valid still releases by container and interface', async () => {
    expect((await plugin()).exitCode).toBe(0);
    const out = await plugin({ command: 'DEL', env: { CNI_ARGS: `K8S_POD_NAME=${'x'.repeat(300)}` } });
    expect(out).toMatchObject({ exitCode: 0, stdout: '' });
  });

  test('a 100 KB CNI_COMMAND is not echoed back whole', async () => {
    const command = 'A'.repeat(100_000);
    const out = await plugin({ command });
    expect(out.json).toMatchObject({ code: 4 });
    expect(out.stdout.length).toBeLessThan(1_000);
    expect(String(out.json.details)).toContain('is not one of ADD, DEL, CHECK, GC, STATUS, VERSION');
    expect(String(out.json.details)).toContain('100000 characters');
  });

  test('a 100 KB CNI_ARGS pair or key list is not echoed back whole', async () => {
    const pair = await plugin({ env: { CNI_ARGS: `X${'='.repeat(100_000)}` } });
    expect(pair.json).toMatchObject({ code: 4 });
    expect(pair.stdout.length).toBeLessThan(1_000);
    const keys = Array.from({ length: 5_000 }, (_, i) => `K${i}=v`).join(';');
    const unknown = await plugin({ env: { CNI_ARGS: keys } });
    expect(unknown.json).toMatchObject({ code: 4 });
    expect(unknown.stdout.length).toBeLessThan(1_000);
  });

  test('a fully excluded range is error 7 and creates no pool', async () => {
    const out = await plugin({ ipam: { range: '10.60.0.0/30', exclude: ['10.60.0.0/30'] } });
    expect(out.json).toMatchObject({ code: 7 });
    expect(String(out.json.details)).toContain('10.60.0.0/30');
    expect(stored()).toEqual([]);
  });

  test('a fully excluded range still hands out a requested address ("exclude a block, hand it out by request")', async () => {
    const out = await plugin({
      ipam: { range: '10.60.0.0/30', exclude: ['10.60.0.0/30'] },
      netConf: { runtimeConfig: { ips: ['10.60.0.2/30'] } },
    });
    expect(out.json.ips).toEqual([{ address: '10.60.0.2/30' }]);
  });

  test('a fully excluded second range fails the ADD before the first range writes', async () => {
    const out = await plugin({
      ipam: { ipRanges: [{ range: '10.61.0.0/30', exclude: ['10.61.0.1', '10.61.0.2'] }] },
    });
    expect(out.json).toMatchObject({ code: 7 });
    expect(stored()).toEqual([]);
  });

  test.each(['10.60.0.0', '10.60.0.255/24'])(
    'a requested address that is not usable (%s) is error 7 and creates no pool',
    async (ip) => {
      const out = await plugin({ netConf: { runtimeConfig: { ips: [ip] } } });
      expect(out.json).toMatchObject({ code: 7 });
      expect(String(out.json.details)).toContain('not a usable address of 10.60.0.0/24');
      expect(stored()).toEqual([]);
    },
  );
});

describe('finding 11: a server URL with user:password@ never shows the password', () => {
  const secrets = [
    's3cretPW',
    Buffer.from('alice:s3cretPW').toString('base64'),
    Buffer.from('s3cretPW').toString('base64'),
  ];
  const withUserinfo = (url: string) => url.replace('://', '://alice:s3cretPW@');

  async function guarded(): Promise<string> {
    await cluster.close();
    cluster = await startCluster({ token: 'the-right-token' });
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      renderKubeconfig({ server: withUserinfo(cluster.url), insecure: true, token: 'a-wrong-token' }),
    );
    return kubeconfig;
  }

  test('the plugin (lean client): the error names the server without its userinfo', async () => {
    const kubeconfig = await guarded();
    const out = await plugin({ ipam: { kubernetes: { kubeconfig } } });
    expect(out.json).toMatchObject({ code: 999 });
    expect(String(out.json.details)).toContain('401');
    expect(String(out.json.details)).toContain(cluster.url.replace('://', '://***@'));
    for (const secret of secrets) {
      expect(out.stdout).not.toContain(secret);
      expect(logLines.join('')).not.toContain(secret);
    }
    expect(stored()).toEqual([]);
  });

  test('client-node (agent, GC, CLI): the error names the server without its userinfo', async () => {
    const kubeconfig = await guarded();
    const connection = connect({ kubeconfig, requestTimeoutMs: 5_000 });
    if (!connection.ok) throw new Error(connection.error.details);
    expect(connection.value.server).toBe(cluster.url.replace('://', '://***@'));
    const read = await kubeStore(connection.value).readPool('10.60.0.0-24');
    expect(read.ok).toBe(false);
    const message = read.ok ? '' : read.error.message;
    expect(message).toContain('401');
    for (const secret of secrets) expect(message).not.toContain(secret);
  });

  test('the userinfo is not sent: with the right token both clients work as without it', async () => {
    await cluster.close();
    cluster = await startCluster({ token: 'the-right-token' });
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      renderKubeconfig({ server: withUserinfo(cluster.url), insecure: true, token: 'the-right-token' }),
    );
    expect((await plugin({ ipam: { kubernetes: { kubeconfig } } })).exitCode).toBe(0);
    const connection = connect({ kubeconfig, requestTimeoutMs: 5_000 });
    if (!connection.ok) throw new Error(connection.error.details);
    const read = await kubeStore(connection.value).readPool('10.60.0.0-24');
    expect(read.ok).toBe(true);
  });
});

describe('finding 10: files a NAD names are regular files of bounded size, read without blocking', () => {
  test('configuration_path naming a FIFO is error 7; the FIFO is not read', async () => {
    const fifo = fifoWithWriter('flat.conf', JSON.stringify({ range: '10.60.0.0/24' }));
    const out = await plugin({ ipam: { configuration_path: fifo } });
    expect(out.json).toMatchObject({ code: 7 });
    expect(String(out.json.details)).toBe(`the flat file ${fifo} is a FIFO, not a regular file`);
    expect(stored()).toEqual([]);
  });

  test('kubernetes.kubeconfig naming a FIFO is error 7; the FIFO is not read', async () => {
    const fifo = fifoWithWriter('kubeconfig', readFileSync(cluster.kubeconfig, 'utf8'));
    const out = await plugin({ ipam: { kubernetes: { kubeconfig: fifo } } });
    expect(out.json).toMatchObject({ code: 7 });
    expect(String(out.json.details)).toBe(`the kubeconfig ${fifo} is a FIFO, not a regular file`);
    expect(stored()).toEqual([]);
  });

  test.each(['/dev/null', '/dev/zero', '/dev/urandom'])(
    'configuration_path or kubeconfig naming %s is error 7 at once',
    async (device) => {
      const flat = await plugin({ ipam: { configuration_path: device } });
      expect(flat.json).toMatchObject({
        code: 7,
        details: `the flat file ${device} is a character device, not a regular file`,
      });
      const kube = await plugin({ ipam: { kubernetes: { kubeconfig: device } } });
      expect(kube.json).toMatchObject({
        code: 7,
        details: `the kubeconfig ${device} is a character device, not a regular file`,
      });
      expect(stored()).toEqual([]);
    },
  );

  test('a kubeconfig larger than 1 MiB is error 7, unread', async () => {
    const big = join(dir, 'big.kubeconfig');
    writeFileSync(big, `# ${'x'.repeat(1 << 20)}\n${readFileSync(cluster.kubeconfig, 'utf8')}`);
    const out = await plugin({ ipam: { kubernetes: { kubeconfig: big } } });
    expect(out.json).toMatchObject({
      code: 7,
      details: `the kubeconfig ${big} is larger than 1048576 bytes`,
    });
  });

  test('in the agent (log_file ignored), a NAD cannot make it write a file', async () => {
    // The node's flat file, as the agent finds it; the NAD names it as its log_file.
    const flat = join(dir, 'whereabouts.conf');
    writeFileSync(flat, '{"log_level": "debug"}');
    const out = await plugin({
      ipam: { log_file: flat },
      input: { logFile: 'ignore', flatFilePaths: [flat] },
    });
    expect(out.exitCode).toBe(0);
    expect(readFileSync(flat, 'utf8')).toBe('{"log_level": "debug"}');
    const absent = join(dir, 'created.log');
    expect((await plugin({ ipam: { log_file: absent }, input: { logFile: 'ignore' } })).exitCode).toBe(0);
    expect(existsSync(absent)).toBe(false);
    expect(logLines.join('')).toContain('log_file is ignored');
  });

  test('standalone, log_file naming the flat file or the kubeconfig is refused: the config stays valid', async () => {
    const flat = join(dir, 'whereabouts.conf');
    const flatText = '{"log_level": "debug"}';
    writeFileSync(flat, flatText);
    const kubeconfigText = readFileSync(cluster.kubeconfig, 'utf8');
    const input = { flatFilePaths: [flat] };
    expect((await plugin({ ipam: { log_file: flat }, input })).exitCode).toBe(0);
    expect((await plugin({ ipam: { log_file: cluster.kubeconfig }, command: 'DEL', input })).exitCode).toBe(
      0,
    );
    expect(readFileSync(flat, 'utf8')).toBe(flatText);
    expect(readFileSync(cluster.kubeconfig, 'utf8')).toBe(kubeconfigText);
    expect(logLines.join('')).toContain('cannot append to log_file');
    // ADDs keep working on the node.
    expect((await plugin({ input, env: { CNI_CONTAINERID: 's2' } })).exitCode).toBe(0);
  });

  test('standalone, log_file as a regular file (or absent: created) is appended to', async () => {
    const logFile = join(dir, 'whereabouts.log');
    expect((await plugin({ ipam: { log_file: logFile, log_level: 'debug' } })).exitCode).toBe(0);
    expect(readFileSync(logFile, 'utf8')).toContain('[debug] invoked command=ADD');
  });
});

describe('finding 10: the node agent', () => {
  const request = (ipam: Record<string, unknown>, container = 'sandbox-1') => ({
    env: {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: container,
      CNI_NETNS: '/var/run/netns/test',
      CNI_IFNAME: 'net1',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1',
    },
    stdin: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'net-h',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range: '10.60.0.0/24', ...ipam },
    }),
  });

  async function agentWith(flat: string) {
    const socketPath = join(dir, 'agent.sock');
    const agent = await startAgent({
      socketPath,
      store: cluster.store(),
      log: silentLogger,
      nodeName: 'node-1',
      flatFilePaths: [flat],
    });
    const send = async (ipam: Record<string, unknown>, container?: string) => {
      const { env, stdin } = request(ipam, container);
      const answer = await forwardToAgent(socketPath, env, stdin, 30_000);
      if (!('output' in answer)) throw new Error(JSON.stringify(answer));
      return JSON.parse(answer.output.stdout) as Record<string, unknown>;
    };
    return { agent, send };
  }

  test('a NAD whose configuration_path is a FIFO gets error 7; the agent goes on serving', async () => {
    const flat = join(dir, 'whereabouts.conf');
    writeFileSync(flat, '{}');
    const { agent, send } = await agentWith(flat);
    try {
      const fifo = fifoWithWriter('nad.conf', '{}');
      expect(await send({ configuration_path: fifo })).toMatchObject({
        code: 7,
        details: `the flat file ${fifo} is a FIFO, not a regular file`,
      });
      expect(stored()).toEqual([]);
      expect((await send({}, 'sandbox-2')).ips).toHaveLength(1);
    } finally {
      await agent.close();
    }
  });

  test("a NAD's log_file naming the node's flat file: the agent writes nothing there", async () => {
    const flat = join(dir, 'whereabouts.conf');
    writeFileSync(flat, '{"log_level": "debug"}');
    const { agent, send } = await agentWith(flat);
    try {
      expect((await send({ log_file: flat })).ips).toHaveLength(1);
      expect(readFileSync(flat, 'utf8')).toBe('{"log_level": "debug"}');
      const created = join(dir, 'created.log');
      expect((await send({ log_file: created }, 'sandbox-2')).ips).toHaveLength(1);
      expect(existsSync(created)).toBe(false);
    } finally {
      await agent.close();
    }
  });
});
