// `whereabouts-ts <command>`: one CLI for every long-running piece. The plugin itself is a separate,
// minimal executable (cni-plugin/), because its start-up is paid on every pod.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { runSandbox } from '../sandbox/sandbox.ts';

const root = join(import.meta.dirname, '..', '..');

const positiveInteger = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

const program = new Command('whereabouts-ts').description(
  'Cluster-wide IPAM for Kubernetes secondary networks',
);

program
  .command('sandbox')
  .description(
    'run the system locally: the embedded API server, simulated nodes running the real plugin, and a live view',
  )
  .option('--nodes <n>', 'simulated nodes', positiveInteger, 3)
  .option('--port <port>', 'port of the embedded API server (0: any free port)', positiveInteger, 0)
  .option('--duration <seconds>', 'stop by itself after this long (0: run until Ctrl-C)', positiveInteger, 0)
  .option('--plugin <path>', 'the plugin executable', join(root, 'dist', 'whereabouts'))
  .action(async (options: { nodes: number; port: number; duration: number; plugin: string }) => {
    if (!existsSync(options.plugin)) {
      program.error(`${options.plugin} does not exist: build it with npm run build`);
    }
    await runSandbox({
      plugin: options.plugin,
      crdDirectory: join(root, 'crds'),
      nodes: options.nodes,
      port: options.port,
      durationSeconds: options.duration,
      live: process.stdout.isTTY,
      write: (text) => process.stdout.write(text),
    });
  });

await program.parseAsync();
