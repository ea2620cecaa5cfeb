// The executable the runtime runs, `dist/whereabouts`, is the native forwarder (forwarder/): its own Go
// tests run here (so `npm test` fails when they fail), and the built forwarder is run as a runtime runs it,
// with the TypeScript plugin beside it, in every way the agent can be there or not: present (the agent does
// the work), absent (the plugin beside it does), killed while it holds the request (code 11 and nothing
// done twice), a socket path that is not a socket, and an oversized stdin. The other suites that exec
// dist/whereabouts (executable, agent, agent-host, cni, cni-1.1, interop) run through it as well.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { startAgent, type Agent } from '../../src/agent/server.ts';
import { silentLogger } from '../../src/log.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { execute, killAll, pluginPath as forwarder, podEnv } from '../support/exec.ts';
import { networkConf } from '../support/config.ts';
import { poolsOf } from '../support/pools.ts';

const root = join(import.meta.dirname, '..', '..');

/** The Go toolchain, as cni-plugin/build.ts finds it. */
const findGo = (): string | undefined =>
  [process.env.GO, 'go', '/usr/local/go/bin/go'].find(
    (candidate) =>
      candidate !== undefined &&
      candidate !== '' &&
      spawnSync(candidate, ['version'], { stdio: 'ignore' }).status === 0,
  );
const go = findGo();

describe("the forwarder's own tests (go test)", () => {
  if (go === undefined && process.env.CI !== 'true') {
    // Outside CI a machine with Node alone builds and tests everything else; the build says the same.
    console.warn('forwarder: Go is not installed, so its Go tests are skipped here (CI runs them)');
    test.skip('go test ./... in forwarder/ (Go is not installed)', () => undefined);
    return;
  }
  test('go test ./... in forwarder/ passes', async () => {
    if (go === undefined) throw new Error('Go is not installed: CI must run the forwarder tests');
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        go,
        ['test', './...'],
        {
          cwd: join(root, 'forwarder'),
          env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
          maxBuffer: 16 << 20,
        },
        (error, stdout, stderr) => {
          resolve({
            code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
            output: stdout + stderr,
          });
        },
      );
    });
    // The whole output on failure: which Go test failed and why.
    expect(result).toEqual({ code: 0, output: expect.stringMatching(/^ok\s/m) as unknown });
  }, 300_000);
});

/** Whether dist/whereabouts is the forwarder: built without Go, it is a copy of the plugin. */
const forwarderBuilt = (): boolean => {
  const standalone = join(dirname(forwarder), 'whereabouts-ts-plugin');
  return (
    existsSync(forwarder) && existsSync(standalone) && statSync(forwarder).size !== statSync(standalone).size
  );
};

describe('the built forwarder, with the TypeScript plugin beside it', () => {
  if (!forwarderBuilt() && go === undefined && process.env.CI !== 'true') {
    console.warn(
      'forwarder: dist/whereabouts is the plugin itself (built without Go); its forwarder tests are skipped',
    );
    test.skip('the forwarder in every mode (built without Go)', () => undefined);
    return;
  }
  let cluster: TestCluster;
  let dir: string;
  let socket: string;
  let agent: Agent | undefined;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    if (!forwarderBuilt())
      throw new Error(
        'dist/whereabouts is not the forwarder, or the plugin is not beside it: run npm run build',
      );
  });
  beforeEach(async () => {
    cluster = await startCluster();
    dir = mkdtempSync(join(tmpdir(), 'wb-forwarder-'));
    socket = join(dir, 'agent.sock');
  });
  afterEach(async () => {
    await killAll(children);
    await agent?.close();
    agent = undefined;
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const conf = (agentSocket = socket) =>
    networkConf({
      range: '198.18.0.0/24',
      agent_socket: agentSocket,
      kubernetes: { kubeconfig: cluster.kubeconfig },
    });
  const env = (command: string, pod: string) => podEnv(command, pod, undefined, cluster.namespace);
  const holders = () =>
    Object.values(poolsOf(cluster.server).get('198.18.0.0-24')?.allocations ?? {}).map((a) => a.podref);
  const serve = async () =>
    (agent = await startAgent({
      socketPath: socket,
      store: cluster.store(),
      log: silentLogger,
      nodeName: 'node-1',
      flatFilePaths: [],
    }));
  const address = (stdout: string) => (JSON.parse(stdout) as { ips: { address: string }[] }).ips[0]?.address;

  test('agent present: the agent does the work, and its answer is what the runtime gets', async () => {
    const running = await serve();
    const added = await execute(forwarder, env('ADD', 'a'), conf());
    expect(added.code).toBe(0);
    expect(address(added.stdout)).toMatch(/^198\.18\.0\.\d+\/24$/);
    expect(running.stats.byCommand).toEqual({ ADD: 1 });
    expect(holders()).toEqual([`${cluster.namespace}/a`]);
    // An error the agent answers is passed on as it is, exit code included: no second attempt.
    const refused = await execute(forwarder, { ...env('ADD', 'a'), CNI_IFNAME: 'a/b' }, conf());
    expect(refused.code).toBe(1);
    expect((JSON.parse(refused.stdout) as { code: number }).code).toBe(4);
    expect(running.stats.requests).toBe(2);
    const deleted = await execute(forwarder, env('DEL', 'a'), conf());
    expect(deleted).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(holders()).toEqual([]);
  });

  test('agent absent: the TypeScript plugin runs with the same environment and stdin, and does the work', async () => {
    const added = await execute(forwarder, env('ADD', 'b'), conf());
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(address(added.stdout)).toMatch(/^198\.18\.0\.\d+\/24$/);
    expect(holders()).toEqual([`${cluster.namespace}/b`]);
    // Its errors too, word for word (CNI_ARGS names no pod).
    const refusal = [{ ...env('ADD', 'b2'), CNI_ARGS: 'IgnoreUnknown=1' }, conf()] as const;
    const refused = await execute(forwarder, ...refusal);
    expect(refused.code).toBe(1);
    const direct = await execute(join(dirname(forwarder), 'whereabouts-ts-plugin'), ...refusal);
    const untimed = (o: typeof direct) => ({ ...o, stderr: o.stderr.replace(/^\S+ /gm, '') });
    expect(untimed(refused)).toEqual(untimed(direct));
    expect(refused.stderr).toContain('ADD refused');
  });

  test('a socket path that is not a socket: no agent there, the plugin works standalone', async () => {
    writeFileSync(socket, 'not a socket');
    const added = await execute(forwarder, env('ADD', 'c'), conf());
    expect(added.code).toBe(0);
    expect(holders()).toEqual([`${cluster.namespace}/c`]);
  });

  test('agent killed while it holds the request: code 11, and nothing is done standalone beside it', async () => {
    // A process in the agent's place that takes the request, says so, and never answers; then it is killed.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer((c) => { let n = 0; c.on('data', (d) => { n += d.length;
           if (String(d).includes('"stdin"')) process.stdout.write('took\\n'); }); });
         s.listen(process.argv[1], () => process.stdout.write('listening\\n'));`,
        socket,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(holder);
    const lines = createInterface({ input: holder.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('listening');
    const answered = execute(forwarder, env('ADD', 'd'), conf());
    expect((await lines.next()).value).toBe('took');
    const exited = once(holder, 'exit');
    holder.kill('SIGKILL');
    await exited;
    const out = await answered;
    expect(out.code).toBe(1);
    const error = JSON.parse(out.stdout) as { cniVersion: string; code: number; details: string };
    expect(error).toMatchObject({ cniVersion: '1.0.0', code: 11 });
    expect(error.details).toContain('not repeated here');
    expect(out.stdout + out.stderr).not.toMatch(/\n\s+at /);
    // The plugin did not run standalone: no allocation beside whatever the agent may have made.
    expect(holders()).toEqual([]);
    // The socket file the killed process left: connection refused, so the next call works standalone.
    expect(existsSync(socket)).toBe(true);
    const retried = await execute(forwarder, env('ADD', 'd'), conf());
    expect(retried.code).toBe(0);
    expect(holders()).toEqual([`${cluster.namespace}/d`]);
  });

  test('oversized stdin: code 7 from the forwarder, nothing sent to the agent', async () => {
    const running = await serve();
    const out = await execute(forwarder, env('ADD', 'e'), `{"x":"${'a'.repeat(2 << 20)}"}`);
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toEqual({
      cniVersion: '1.1.0',
      code: 7,
      msg: 'Invalid network configuration',
      details: 'the configuration on stdin is larger than 1048576 bytes',
    });
    expect(running.stats.requests).toBe(0);
  });

  test('VERSION is answered by the forwarder alone, in the version asked', async () => {
    const out = await execute(forwarder, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    expect(out).toEqual({
      code: 0,
      stdout: '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
      stderr: '',
    });
  });
});
