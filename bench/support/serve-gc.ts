// The API server process for the gc-plan scenario, seeded directly with a large cluster: 200 pools holding
// 100,000 allocations, and 100,000 pods, of which the pods of 10% of the allocations are gone (replaced by
// unrelated pods, so the pod count stays 100,000). Writes a kubeconfig to argv[2] and prints "ready".
import { writeFileSync } from 'node:fs';
import { kubeconfigFor } from '../../src/dev-apiserver/kubeconfig.ts';
import { startApiServer } from '../../src/dev-apiserver/server.ts';
import { networkStatusAnnotation } from '../../src/gc/network-status.ts';
import { crdDirectory } from './cluster.ts';

const pools = 200;
const perPool = 500;
const server = await startApiServer({ crdDirectories: [crdDirectory] });
const ippools = server.objects('ippools', 'whereabouts.cni.cncf.io');
const pods = server.objects('pods');
const created = new Date(Date.now() - 86_400_000).toISOString();
let resourceVersion = 1;
const metadata = (name: string, namespace: string) => ({
  name,
  namespace,
  uid: `uid-${name}`,
  resourceVersion: String(resourceVersion++),
  creationTimestamp: created,
});

let podCount = 0;
for (let p = 0; p < pools; p++) {
  const allocations: Record<string, unknown> = {};
  for (let i = 1; i <= perPool; i++) {
    const n = p * perPool + i;
    const podName = `app-${n}`;
    allocations[String(i)] = { id: `container-${n}`, podref: `ns-${n % 50}/${podName}`, ifname: 'net1' };
    const leaked = n % 10 === 0;
    const name = leaked ? `other-${n}` : podName;
    const address = `10.${p}.${i >> 8}.${i & 255}`;
    pods.set(`ns-${n % 50}/${name}`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...metadata(name, `ns-${n % 50}`),
        annotations: leaked
          ? {}
          : {
              [networkStatusAnnotation]: JSON.stringify([
                { name: 'ns/net', interface: 'net1', ips: [address] },
              ]),
            },
      },
      spec: { nodeName: `node-${n % 100}`, containers: [{ name: 'app', image: 'app' }] },
      status: { phase: 'Running' },
    });
    podCount++;
  }
  const name = `net-${p}-10.${p}.0.0-23`;
  ippools.set(`kube-system/${name}`, {
    apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
    kind: 'IPPool',
    metadata: metadata(name, 'kube-system'),
    spec: { range: `10.${p}.0.0/23`, allocations },
  });
}
writeFileSync(process.argv[2] ?? 'kubeconfig', kubeconfigFor(server.url, { namespace: 'kube-system' }), {
  mode: 0o600,
});
console.log(`ready ${podCount} pods`);
process.stdin.resume();
process.stdin.on('end', () => {
  void server.close().then(() => process.exit(0));
});
