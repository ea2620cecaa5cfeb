// Runs the embedded API server in a process of its own, so that a benchmark's measurements of other
// processes do not share an event loop with it. Writes a kubeconfig to argv[2], prints "ready", and stops
// when its stdin closes. Lines on stdin, each answered with one line: `latency <ms> <extra write ms>` sets
// the latency switches, `reset` clears the counters, `stats` prints them as JSON, `pools` the pools' specs.
import { writeFileSync } from 'node:fs';
import { kubeconfigFor } from '../../src/dev-apiserver/kubeconfig.ts';
import { startApiServer } from '../../src/dev-apiserver/server.ts';
import { crdDirectory } from './cluster.ts';

const server = await startApiServer({ crdDirectories: [crdDirectory] });
writeFileSync(process.argv[2] ?? 'kubeconfig', kubeconfigFor(server.url, { namespace: 'kube-system' }), {
  mode: 0o600,
});
console.log('ready');
let pending = '';
process.stdin.on('data', (chunk: Buffer) => {
  pending += chunk.toString();
  let newline: number;
  while ((newline = pending.indexOf('\n')) >= 0) {
    const [command, ...args] = pending.slice(0, newline).trim().split(/\s+/);
    pending = pending.slice(newline + 1);
    if (command === 'latency') {
      server.faults.latencyMs = Number(args[0] ?? 0);
      server.faults.writeLatencyMs = Number(args[1] ?? 0);
      console.log('ok');
    } else if (command === 'reset') {
      server.resetStats();
      console.log('ok');
    } else if (command === 'stats') {
      console.log(JSON.stringify(server.stats));
    } else if (command === 'pools') {
      console.log(
        JSON.stringify(
          Object.fromEntries(
            [...server.objects('ippools', 'whereabouts.cni.cncf.io')].map(([k, o]) => [
              k,
              (o as { spec: unknown }).spec,
            ]),
          ),
        ),
      );
    }
  }
});
process.stdin.on('end', () => {
  void server.close().then(() => process.exit(0));
});
