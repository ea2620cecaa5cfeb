// `whereabouts-ts apiserver`: the embedded API server (src/dev-apiserver/) with this project's CRDs, on its own,
// for trying the plugin and kubectl by hand without a cluster — and the process the sandbox runs it in, so
// that the simulated nodes cannot starve it of CPU. It writes a kubeconfig (plain HTTP, no token) and prints
// its path; it keeps everything in memory and forgets it on exit.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { kubeconfigFor } from '../dev-apiserver/kubeconfig.ts';
import { startApiServer } from '../dev-apiserver/server.ts';
import { parts } from '../lifecycle.ts';
import { runUntilStopped, stopRequested } from './signals.ts';

/** Resolves when stdin ends or fails: the parent that started this server has gone. */
function stdinEnded(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.stdin.once('end', () => {
      resolve();
    });
    process.stdin.once('error', () => {
      resolve();
    });
    process.stdin.resume();
  });
}

const port = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number');
  return n;
};

type Flags = {
  port: number;
  host: string;
  kubeconfig?: string;
  namespace: string;
  crds: string;
  stopOnStdinEnd: boolean;
};

/** The command; `root` is the checkout (or the installed package), where `crds/` lies. */
export function apiserverCommand(root: string): Command {
  return new Command('apiserver')
    .description(
      'run the embedded API server with the whereabouts CRDs (in memory) and print a kubeconfig for it, for kubectl and the plugin',
    )
    .option('--port <port>', 'port to listen on (0: any free port)', port, 0)
    .option(
      '--host <address>',
      'address to listen on (the server has no authentication: keep it on loopback)',
      '127.0.0.1',
    )
    .option('--kubeconfig <path>', 'write the kubeconfig here (default: a new temporary directory)')
    .option(
      '--namespace <name>',
      "the kubeconfig context's namespace, where the plugin keeps its pools",
      'kube-system',
    )
    .option('--crds <dir>', 'directory of CustomResourceDefinition manifests to serve', join(root, 'crds'))
    .addOption(
      // For a parent process (the sandbox): stop when it closes our stdin, which it does even when it dies.
      new Option('--stop-on-stdin-end', 'stop when stdin ends').default(false).hideHelp(),
    )
    .action(async (flags: Flags, command: Command) => {
      if (!existsSync(flags.crds))
        command.error(`apiserver: no CRD manifests at ${flags.crds}: pass --crds <dir>`);
      // Listening for Ctrl-C before anything is printed: whoever reads the kubeconfig line may signal at once.
      // Repeats are ignored rather than fatal, so the kubeconfig is always removed.
      const stop = Promise.race([stopRequested(), ...(flags.stopOnStdinEnd ? [stdinEnded()] : [])]);
      const started = parts();
      const server = await startApiServer({
        crdDirectories: [flags.crds],
        port: flags.port,
        host: flags.host,
      });
      started.started('API server', () => server.close());
      const ownDir =
        flags.kubeconfig === undefined ? mkdtempSync(join(tmpdir(), 'whereabouts-apiserver-')) : undefined;
      if (ownDir !== undefined)
        started.started('kubeconfig', () => {
          rmSync(ownDir, { recursive: true, force: true });
        });
      const kubeconfig = flags.kubeconfig ?? join(ownDir as string, 'kubeconfig');
      writeFileSync(kubeconfig, kubeconfigFor(server.url, { namespace: flags.namespace }), { mode: 0o600 });
      process.stdout.write(
        [
          `embedded API server at ${server.url}`,
          `kubeconfig ${kubeconfig}`,
          '',
          `  export KUBECONFIG=${kubeconfig}`,
          '  kubectl get ippools -A',
          '',
          'objects live in memory only; Ctrl-C to stop',
          '',
        ].join('\n'),
      );
      await runUntilStopped('apiserver', started, stop);
    });
}

// Run directly (`node src/cli/apiserver.ts`, as the sandbox does from a checkout), the command loads only
// what the server needs rather than the whole CLI: a second or two less to wait on a busy machine.
// (Inside the bundled CLI, import.meta is the bundle's: the file name tells the two apart.)
if (import.meta.main && basename(import.meta.filename) === 'apiserver.ts') {
  await apiserverCommand(join(import.meta.dirname, '..', '..')).parseAsync(process.argv);
  process.exit(0);
}
