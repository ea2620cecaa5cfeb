// Jest's global setup: says once, before any suite runs, whether the real-server suites run, and if not why
// (`onRealServer` skips them, or fails them under CI=true).
import { findBinaries } from '../../kube/binaries.ts';

export default function reportServers(): void {
  const found = findBinaries();
  if (found.ok) {
    console.log(
      `\nreal-server suites: against kube-apiserver ${found.binaries.kubernetesVersion} (${found.binaries.kubeApiserver})`,
    );
  } else if (process.env.CI === 'true') {
    console.log(`\nreal-server suites: FAIL under CI=true: ${found.why}`);
  } else {
    console.log(`\nreal-server suites: SKIPPED: ${found.why}`);
  }
}
