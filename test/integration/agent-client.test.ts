// The plugin's side of the node agent over a real unix socket: when the plugin may do the work itself, and
// when it must not because the agent may still be doing it.

import { linkSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forwardToAgent, type Forwarded } from '../../src/cni/agent-client.ts';
import { runPlugin } from '../../src/cni/plugin.ts';
import { podEnv } from '../support/exec.ts';

let dir: string;
let server: Server | undefined;
const sockets: Socket[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wb-agent-client-'));
});
/** Stops the fake agent (its socket file goes with it). */
async function closeServer(): Promise<void> {
  await new Promise<void>((r) => {
    if (server === undefined) r();
    else
      server.close(() => {
        r();
      });
  });
  server = undefined;
}
afterEach(async () => {
  for (const s of sockets) s.destroy();
  await closeServer();
  rmSync(dir, { recursive: true, force: true });
});

/** A socket whose "agent" does `onConnection` with every connection. */
async function fakeAgent(onConnection: (s: Socket) => void): Promise<string> {
  const path = join(dir, 'agent.sock');
  server = createServer((s) => {
    sockets.push(s);
    onConnection(s);
  });
  await new Promise<void>((r) => server?.listen(path, r));
  return path;
}

const stdin = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'net',
  type: 'macvlan',
  ipam: { type: 'whereabouts', range: '10.1.0.0/24', kubernetes: { kubeconfig: '/nonexistent' } },
});

/** The plugin's answer to an ADD when the agent answered `forwarded`; fails the test if it works standalone. */
async function pluginGiven(forwarded: Forwarded) {
  let opened = false;
  const output = await runPlugin({
    env: podEnv('ADD', 'a'),
    stdin,
    flatFilePaths: [],
    forward: () => Promise.resolve('output' in forwarded ? forwarded.output : forwarded),
    openStore: () => {
      opened = true;
      throw new Error('must not work standalone');
    },
    writeLog: () => undefined,
  });
  expect(opened).toBe(false);
  return output;
}

test('no agent socket, or an agent that hangs up: the plugin may work standalone', async () => {
  expect(await forwardToAgent(join(dir, 'none.sock'), podEnv('ADD', 'a'), stdin, 1_000)).toEqual({
    unavailable: expect.stringContaining('no agent socket') as unknown,
  });
  const hangsUp = await fakeAgent((s) => s.destroy());
  expect(await forwardToAgent(hangsUp, podEnv('ADD', 'a'), stdin, 1_000)).toHaveProperty('unavailable');
});

test('a socket nobody listens on (connection refused): the plugin may work standalone', async () => {
  // A socket file whose agent is gone without removing it: a second name of it outlives the listener.
  const listening = await fakeAgent((s) => s.destroy());
  const dead = join(dir, 'dead.sock');
  linkSync(listening, dead);
  await closeServer();
  expect(await forwardToAgent(dead, podEnv('ADD', 'a'), stdin, 1_000)).toEqual({
    unavailable: expect.stringContaining('ECONNREFUSED') as unknown,
  });
});

/** An "agent" that reads the whole request and answers it with `status` and `body`. */
const answering = (status: string, body: string) =>
  fakeAgent((s) => {
    let request = '';
    s.on('data', (d: Buffer) => {
      request += d.toString();
      const end = request.indexOf('\r\n\r\n');
      const length = Number(/content-length: *(\d+)/i.exec(request)?.[1] ?? 'NaN');
      if (end >= 0 && Buffer.byteLength(request) - end - 4 >= length)
        s.end(
          `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
    });
  });

test('an agent that is stopping (503): busy with its reason, code 11, never standalone', async () => {
  const stopping = await answering(
    '503 Service Unavailable',
    JSON.stringify({ busy: 'the node agent is stopping; not run, try again' }),
  );
  const forwarded = await forwardToAgent(stopping, podEnv('ADD', 'a'), stdin, 30_000);
  expect(forwarded).toEqual({ busy: 'the node agent is stopping; not run, try again' });

  const output = await pluginGiven(forwarded);
  const error = JSON.parse(output.stdout) as { code: number; details: string };
  expect(error.code).toBe(11);
  expect(error.details).toContain('stopping');

  // A 503 without a reason it can read is busy all the same.
  for (const s of sockets.splice(0)) s.destroy();
  await closeServer();
  const bare = await answering('503 Service Unavailable', 'not json');
  expect(await forwardToAgent(bare, podEnv('ADD', 'a'), stdin, 30_000)).toEqual({
    busy: expect.stringContaining('stopping') as unknown,
  });
});

test('an agent that took the request and does not answer in time: busy, never standalone beside it', async () => {
  const received: string[] = [];
  const silent = await fakeAgent((s) => s.on('data', (d: Buffer) => received.push(d.toString())));
  const forwarded = await forwardToAgent(silent, podEnv('ADD', 'a'), stdin, 300);
  expect(forwarded).toEqual({ busy: expect.stringContaining('did not answer within 0.3 s') as unknown });
  expect(received.join('')).toContain('POST /v1/cni');

  // The plugin answers "try again later" and opens no store of its own.
  const output = await pluginGiven(forwarded);
  expect(output.exitCode).toBe(1);
  const error = JSON.parse(output.stdout) as { code: number; details: string };
  expect(error.code).toBe(11);
  expect(error.details).toContain('not repeated');
});
