// The `whereabouts` executable: the container runtime runs it from the CNI bin directory for every ADD,
// DEL, CHECK, GC, STATUS and VERSION. Bundled into one file and built into a single executable (see
// build.ts), so the host needs no Node.js.

import type { PluginOutput } from '../src/cni/plugin.ts';
import { versionAnswer } from '../src/cni/versions.ts';
import { CniCode } from '../src/errors.ts';

/** Network configurations are a few KiB; anything near this is hostile. */
const maxStdinBytes = 1 << 20;
/** No invocation may outlive this, whatever hangs: the runtime gets an answer it can act on. */
const hardLimitMs = 120_000;
/** How long the agent may take to answer: its longest verb deadline (60 s) and some room. */
const agentTimeoutMs = 75_000;
/**
 * Standalone processes of one node writing one network at once (src/cni/node-lock.ts). Four measured as
 * fast as one on a burst of 100 ADDs, with a quarter of the waiters woken by each release (docs/decisions.md);
 * four concurrent patches of a pool cost the API server a few conflict retries, not a live-lock.
 */
const lockSlots = 4;

const failure = (code: number, msg: string, details: string): PluginOutput => ({
  stdout: `${JSON.stringify({ cniVersion: '1.1.0', code, msg, details })}\n`,
  exitCode: 1,
});

function readStdin(): Promise<string | PluginOutput> {
  if (process.stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxStdinBytes) {
        resolve(
          failure(
            CniCode.InvalidConfig,
            'Invalid network configuration',
            `the configuration on stdin is larger than ${maxStdinBytes} bytes`,
          ),
        );
        process.stdin.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    process.stdin.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    process.stdin.on('error', () => {
      resolve(failure(CniCode.IoFailure, 'I/O failure', 'cannot read the configuration from stdin'));
    });
  });
}

function finish(output: PluginOutput): void {
  // Exit as soon as stdout is written: kept-alive API connections must not hold the process open.
  process.stdout.write(output.stdout, () => process.exit(output.exitCode));
}

async function main(): Promise<void> {
  setTimeout(() => {
    finish(
      failure(
        CniCode.TryAgainLater,
        'Try again later',
        `the plugin did not finish within ${hardLimitMs / 1000} s`,
      ),
    );
  }, hardLimitMs).unref();
  const stdin = await readStdin();
  if (typeof stdin !== 'string') {
    finish(stdin);
    return;
  }
  // VERSION is answered before the rest of the plugin — the Kubernetes client above all — is even
  // evaluated: the bundler turns the dynamic imports below into code that runs only when reached.
  if (process.env.CNI_COMMAND === 'VERSION') {
    finish({ stdout: versionAnswer(stdin), exitCode: 0 });
    return;
  }
  const [{ runPlugin }, { forwardToAgent, forwardedEnvironment }] = await Promise.all([
    import('../src/cni/plugin.ts'),
    import('../src/cni/agent-client.ts'),
  ]);
  finish(
    await runPlugin({
      env: process.env,
      stdin,
      // The node agent does the work when it is there (its verbs are idempotent, so falling back after a
      // broken-off exchange is safe; not while it is still working, see agent-client.ts); otherwise the
      // plugin does it itself.
      forward: async (socketPath) => {
        const forwarded = await forwardToAgent(
          socketPath,
          forwardedEnvironment(process.env),
          stdin,
          agentTimeoutMs,
        );
        return 'output' in forwarded ? forwarded.output : forwarded;
      },
      // Standalone, the processes of one node take turns per network: concurrent patches of one pool
      // live-lock a real API server (src/cni/node-lock.ts).
      lock: async (key, waitMs, onWait) =>
        (await import('../src/cni/node-lock.ts')).nodeLock(key, waitMs, onWait, lockSlots),
      // The API client is evaluated only when the plugin works standalone: through the agent, a pod's ADD
      // costs little more than VERSION.
      openStore: async (config) => {
        const [{ loadCredentials }, { httpApi }, { kubeStore }] = await Promise.all([
          import('../src/kube-api/kubeconfig.ts'),
          import('../src/kube-api/http-api.ts'),
          import('../src/store/store.ts'),
        ]);
        const credentials = loadCredentials(config.kubeconfig, process.env);
        return credentials.ok ? { ok: true, value: kubeStore(httpApi(credentials.value)) } : credentials;
      },
    }),
  );
}

main().catch((e: unknown) => {
  // A bug, not an input problem: say so without a stack trace on stdout.
  process.stderr.write(`whereabouts: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  finish(failure(CniCode.Internal, 'Internal error', e instanceof Error ? e.message : String(e)));
});
