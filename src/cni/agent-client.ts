// The plugin's side of the node agent: the invocation (CNI environment and stdin) goes over the agent's
// unix socket, and the agent's answer comes back as it would have been printed. When the agent is not
// there, or the exchange breaks off, the plugin does the work itself: every verb is idempotent, so doing
// again what the agent may already have done returns the same result.

import { existsSync } from 'node:fs';
import { request } from 'node:http';
import type { PluginOutput } from './plugin.ts';

/** The environment a plugin passes on: the CNI variables, nothing else of the runtime's. */
export const forwardedEnvironment = (
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> =>
  Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('CNI_') && e[1] !== undefined),
  );

export type Forwarded = { readonly output: PluginOutput } | { readonly unavailable: string };

export function forwardToAgent(
  socketPath: string,
  env: Record<string, string>,
  stdin: string,
  timeoutMs: number,
): Promise<Forwarded> {
  if (!existsSync(socketPath)) return Promise.resolve({ unavailable: `no agent socket at ${socketPath}` });
  const body = JSON.stringify({ env, stdin });
  return new Promise((resolve) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: '/v1/cni',
        timeout: timeoutMs,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<PluginOutput>;
            if (
              res.statusCode === 200 &&
              typeof answer.stdout === 'string' &&
              typeof answer.exitCode === 'number'
            ) {
              resolve({ output: { stdout: answer.stdout, exitCode: answer.exitCode } });
              return;
            }
          } catch {
            // fall through: an answer we cannot read
          }
          resolve({ unavailable: `the agent answered ${res.statusCode ?? 0} without a result` });
        });
        res.on('error', () => {
          resolve({ unavailable: 'the agent connection broke off' });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      resolve({
        unavailable: `the agent at ${socketPath} did not answer (${'code' in e && typeof e.code === 'string' ? e.code : e.message})`,
      });
    });
    req.end(body);
  });
}
