// `whereabouts-ts sandbox` (what `npm start` runs): the command-line side of src/sandbox/ — its flags, Ctrl-C
// (the first SIGINT or SIGTERM stops the run; the repeats that `npm start` adds, since npm forwards the
// terminal's SIGINT to a child that received it already, are ignored), a stdout that may close early
// (`| head`) without an unhandled EPIPE, and the exit status: 1 when the sandbox's invariant check fails.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { runSandbox } from '../sandbox/sandbox.ts';
import { stopRequested } from './signals.ts';

const count = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new InvalidArgumentError(`must be a whole number of at least ${min}`);
  return n;
};

type Flags = { nodes: number; port: number; duration: number; plugin: string; maxInFlight: number };

/** The command; `root` is the checkout (or the installed package), where `dist/` and `crds/` lie. */
export function sandboxCommand(root: string): Command {
  const command: Command = new Command('sandbox')
    .description(
      'run the system locally: the embedded API server (in a process of its own), simulated nodes running the real plugin as a kubelet would, and a live view; checks at the end that the pools hold exactly the running pods',
    )
    .option('--nodes <n>', 'simulated nodes', count(1), 3)
    .option('--port <port>', 'port of the embedded API server (0: any free port)', count(0), 0)
    .option('--duration <seconds>', 'stop by itself after this long (0: run until Ctrl-C)', count(0), 0)
    .option('--max-in-flight <n>', 'plugin calls a simulated node runs at once', count(1), 2)
    .option('--plugin <path>', 'the plugin executable', join(root, 'dist', 'whereabouts'))
    .action(async (flags: Flags) => {
      if (!existsSync(flags.plugin))
        command.error(`${flags.plugin} does not exist: build it with npm run build`);
      // A reader that goes away (`| head`, a closed terminal) must not crash the run with EPIPE.
      process.stdout.on('error', () => undefined);
      const stop = stopRequested();
      // From a checkout, the command's own file (it runs alone, loading far less than the whole CLI);
      // from the bundle, the bundle's `apiserver` command.
      const own = join(import.meta.dirname, 'apiserver.ts');
      const script = existsSync(own) ? own : process.argv[1];
      if (script === undefined) return command.error('sandbox: cannot tell which script is running');
      const report = await runSandbox({
        plugin: flags.plugin,
        // The API server runs as this same CLI's `apiserver` command, so the simulation cannot starve it.
        apiServer: [
          process.execPath,
          ...process.execArgv,
          script,
          ...(script === own ? [] : ['apiserver']),
          '--crds',
          join(root, 'crds'),
        ],
        nodes: flags.nodes,
        port: flags.port,
        durationSeconds: flags.duration,
        maxInFlightPerNode: flags.maxInFlight,
        live: process.stdout.isTTY,
        write: (text) => {
          if (process.stdout.writable) process.stdout.write(text);
        },
        stop,
      }).catch((e: unknown) => command.error(`sandbox: ${e instanceof Error ? e.message : String(e)}`));
      process.exitCode = report.violations.length === 0 ? 0 : 1;
    });
  return command;
}
