// The plugin's side of the node agent: the invocation (CNI environment and stdin) goes over the agent's
// unix socket, and the agent's answer comes back as it would have been printed. When the agent is not
// there, refuses the request, or the exchange breaks off (the agent went away), the plugin does the work
// itself: every verb is idempotent, so doing again what the agent may already have done returns the same
// result. But when the agent took the request and is still at it past the timeout, the plugin must not
// start a second transaction for the same attachment beside it — a failing one's rollback would release
// what the other just handed out — so it answers "try again later" instead (`busy`). The same when the
// agent answers 503: it is stopping, finishes what it took and starts nothing new (src/agent/server.ts).

import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import type { PluginOutput } from './plugin.ts';

/** The environment a plugin passes on: the CNI variables, nothing else of the runtime's. */
export const forwardedEnvironment = (
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> =>
  Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('CNI_') && e[1] !== undefined),
  );

export type Forwarded =
  { readonly output: PluginOutput } | { readonly unavailable: string } | { readonly busy: string };

/** The agent's answer from a complete HTTP/1.1 response (the agent always sends a Content-Length). */
function readAnswer(response: Buffer): Forwarded {
  const end = response.indexOf('\r\n\r\n');
  const head = response.subarray(0, Math.max(end, 0)).toString('latin1');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? '0';
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
  const body = end < 0 ? undefined : response.subarray(end + 4);
  if (status === '503') {
    // The agent is stopping: it may still run a transaction of this attachment, so never standalone.
    let reason: unknown;
    try {
      reason = (JSON.parse(body?.toString('utf8') ?? '') as { busy?: unknown }).busy;
    } catch {
      // no reason given
    }
    return { busy: typeof reason === 'string' ? reason : 'the node agent is stopping (503); try again' };
  }
  if (status === '200' && body !== undefined && length !== undefined && body.length === Number(length)) {
    try {
      const answer = JSON.parse(body.toString('utf8')) as Partial<PluginOutput>;
      if (typeof answer.stdout === 'string' && typeof answer.exitCode === 'number')
        return { output: { stdout: answer.stdout, exitCode: answer.exitCode } };
    } catch {
      // fall through: an answer we cannot read
    }
  }
  if (status === '421' && body !== undefined) {
    // Declined before any work: the plugin serves this network itself.
    try {
      const declined = (JSON.parse(body.toString('utf8')) as { declined?: unknown }).declined;
      if (typeof declined === 'string')
        return { unavailable: `the node agent does not serve it: ${declined}` };
    } catch {
      // fall through
    }
  }
  return { unavailable: `the agent answered ${status} without a complete result` };
}

/**
 * One request over the socket. Plain `node:net` and a hand-written HTTP/1.1 exchange rather than
 * `node:http`: loading the HTTP client is a good part of what a forwarded ADD costs a fresh process.
 */
export function forwardToAgent(
  socketPath: string,
  env: Record<string, string>,
  stdin: string,
  timeoutMs: number,
): Promise<Forwarded> {
  if (!existsSync(socketPath)) return Promise.resolve({ unavailable: `no agent socket at ${socketPath}` });
  const body = Buffer.from(JSON.stringify({ env, stdin }));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(socketPath);
    let sent = false;
    socket.setTimeout(timeoutMs, () => {
      if (!sent) {
        socket.destroy(new Error('timeout'));
        return;
      }
      socket.destroy();
      resolve({
        busy: `the node agent at ${socketPath} took the request but did not answer within ${timeoutMs / 1000} s; not repeated here, so that two transactions never run for one attachment`,
      });
    });
    socket.on('connect', () => {
      sent = true;
      // Not end(): the agent's server drops a half-closed connection; it closes once it has answered.
      socket.write(
        Buffer.concat([
          Buffer.from(
            `POST /v1/cni HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
          ),
          body,
        ]),
      );
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      resolve(readAnswer(Buffer.concat(chunks)));
    });
    socket.on('error', (e) => {
      resolve({
        unavailable: `the agent at ${socketPath} did not answer (${'code' in e && typeof e.code === 'string' ? e.code : e.message})`,
      });
    });
  });
}
