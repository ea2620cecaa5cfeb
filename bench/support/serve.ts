// Runs the embedded API server in a process of its own, so that a benchmark's measurements of other
// processes do not share an event loop with it. Writes a kubeconfig to argv[2], prints "ready", and stops
// when its stdin closes.
import { writeFileSync } from 'node:fs';
import { kubeconfigFor } from '../../src/apiserver/kubeconfig.ts';
import { startApiServer } from '../../src/apiserver/server.ts';
import { crdDirectory } from './cluster.ts';

const server = await startApiServer({ crdDirectories: [crdDirectory] });
writeFileSync(process.argv[2] ?? 'kubeconfig', kubeconfigFor(server.url, { namespace: 'kube-system' }), {
  mode: 0o600,
});
console.log('ready');
process.stdin.resume();
process.stdin.on('end', () => {
  void server.close().then(() => process.exit(0));
});
