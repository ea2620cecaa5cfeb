// A stopping node agent never leaves a plugin to work standalone beside a transaction it still runs: the
// requests it took finish with their real answers, requests that arrive (or are still queued) after the stop
// began are answered "busy" (code 11: the runtime tries again), and the socket goes only once nothing of its
// work is left. Events, not time, order every step: the ADD in flight is held inside the store's claim until
// the test lets it go.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type Agent } from '../../src/agent/server.ts';
import { forwardToAgent, type Forwarded } from '../../src/cni/agent-client.ts';
import { runPlugin, type PluginOutput } from '../../src/cni/plugin.ts';
import { CniCode, fail, ipamError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import type { IpamStore } from '../../src/store/store.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { podEnv } from '../support/exec.ts';
import { networkConf } from '../support/config.ts';
import { poolsOf } from '../support/pools.ts';

let cluster: TestCluster;
let dir: string;
let socket: string;
let agent: Agent | undefined;
/** Lets every held claim go on (also after a failed test, so that the agent can stop). */
let letGo: () => void = () => undefined;
/** Settled when a claim has reached the store and is held there. */
let held: Promise<void>;
/** The claims that reached the store, settled once they are done. */
const claims: Promise<unknown>[] = [];

beforeEach(async () => {
  cluster = await startCluster();
  dir = mkdtempSync(join(tmpdir(), 'wb-agent-stop-'));
  socket = join(dir, 'run', 'agent.sock');
});
afterEach(async () => {
  letGo();
  await agent?.close();
  agent = undefined;
  await Promise.allSettled(claims.splice(0));
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An agent on the embedded cluster whose claims wait, once they reached the store, until `letGo()`. */
async function holdingAgent(options: { drainTimeoutMs?: number } = {}): Promise<Agent> {
  const store = cluster.store();
  let reached: () => void = () => undefined;
  held = new Promise((resolve) => (reached = resolve));
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  const holding: IpamStore = {
    ...store,
    claimOffset: (...args) => {
      reached();
      const claimed = gate.then(() => store.claimOffset(...args));
      claims.push(claimed);
      return claimed;
    },
  };
  agent = await startAgent({
    socketPath: socket,
    store: holding,
    log: silentLogger,
    nodeName: 'node-1',
    flatFilePaths: [],
    ...options,
  });
  return agent;
}

const conf = () =>
  networkConf({
    range: '198.18.0.0/24',
    agent_socket: socket,
    kubernetes: { kubeconfig: cluster.kubeconfig },
  });
const env = (command: string, pod: string) => podEnv(command, pod, undefined, cluster.namespace);

/**
 * The plugin as the executable runs it, through the agent: what it printed, what the agent answered, and
 * whether it worked standalone (it opens a store only then).
 */
async function plugin(command: string, pod: string) {
  let answer: Forwarded | undefined;
  let standalone = false;
  const output: PluginOutput = await runPlugin({
    env: env(command, pod),
    stdin: conf(),
    flatFilePaths: [],
    forward: async (path) => {
      answer = await forwardToAgent(path, env(command, pod), conf(), 30_000);
      return 'output' in answer ? answer.output : answer;
    },
    openStore: () => {
      standalone = true;
      return fail(ipamError(CniCode.Internal, 'the plugin must not work standalone beside the agent'));
    },
    writeLog: () => undefined,
  });
  return { output, answer, standalone };
}

const addressesIn = (pool = '198.18.0.0-24') =>
  Object.values(poolsOf(cluster.server).get(pool)?.allocations ?? {}).map((a) => a.podref);

test('stop: the ADD in flight finishes with its real answer, a new request is answered busy (code 11), the socket goes last', async () => {
  const running = await holdingAgent();
  const inFlight = plugin('ADD', 'a');
  await held; // the ADD is inside its transaction

  const stopped = running.close();
  // A request that arrives once the stop began: "try again later", not "no agent here".
  const late = await plugin('ADD', 'b');
  expect(late.answer).toEqual({ busy: expect.stringContaining('stopping') as unknown });
  expect(late.standalone).toBe(false);
  expect(late.output.exitCode).toBe(1);
  expect((JSON.parse(late.output.stdout) as { code: number }).code).toBe(11);
  // The agent still has work: its socket stays.
  expect(existsSync(socket)).toBe(true);

  letGo();
  const first = await inFlight;
  expect(first.standalone).toBe(false);
  expect(first.answer).toMatchObject({ output: { exitCode: 0 } });
  expect((JSON.parse(first.output.stdout) as { ips: { address: string }[] }).ips[0]?.address).toMatch(
    /^198\.18\.0\.\d+\/24$/,
  );
  await stopped;
  expect(existsSync(socket)).toBe(false);
  expect(addressesIn()).toEqual([`${cluster.namespace}/a`]);
  expect(running.stats.byCommand).toEqual({ ADD: 1 });

  // Once the agent is gone, the plugin works standalone, as before.
  expect(await forwardToAgent(socket, env('ADD', 'c'), conf(), 30_000)).toEqual({
    unavailable: expect.stringContaining('no agent socket') as unknown,
  });
});

test('stop: a request of the same attachment queued behind the ADD in flight is answered busy, not run', async () => {
  const running = await holdingAgent();
  const add = plugin('ADD', 'a');
  await held;
  const del = plugin('DEL', 'a');
  // The DEL has reached the agent and waits behind the ADD of its attachment.
  await until(() => running.stats.requests === 2);

  const stopped = running.close();
  letGo();
  const [added, deleted] = await Promise.all([add, del]);
  expect(added.answer).toMatchObject({ output: { exitCode: 0 } });
  expect(deleted.answer).toEqual({ busy: expect.stringContaining('stopping') as unknown });
  expect(deleted.standalone).toBe(false);
  expect((JSON.parse(deleted.output.stdout) as { code: number }).code).toBe(11);
  await stopped;
  // The DEL did not run: the runtime sends it again, to the next agent or to the plugin standalone.
  expect(addressesIn()).toEqual([`${cluster.namespace}/a`]);
});

test('stop: a request still running when the drain bound is reached is answered busy, never dropped', async () => {
  const running = await holdingAgent({ drainTimeoutMs: 0 });
  const inFlight = plugin('ADD', 'a');
  await held;
  await running.close();
  const answered = await inFlight;
  expect(answered.answer).toEqual({ busy: expect.stringContaining('stopping') as unknown });
  expect(answered.standalone).toBe(false);
  expect(existsSync(socket)).toBe(false);
});

/** Waits for a condition of this process (checked at every turn of the event loop). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
