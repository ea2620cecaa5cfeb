// `npm run kube:build`: builds the real Kubernetes components the tests and benchmarks run — kube-apiserver
// and kubectl of one pinned release, and etcd — from Go modules, each in its wrapper module here, into a
// per-version cache outside the clone (binaries.ts). What is cached is not built again: a warm run takes
// seconds. Prints each binary's version and path. Needs Go; the product itself never does.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { binaryPath, components, controlPlane, type Component } from './binaries.ts';

/** Without these the server reports `v0.0.0-master+$Format:%H$`, which kubectl cannot parse. */
function versionFlags(component: Component): string[] {
  if (component !== controlPlane) return [];
  const [major, minor] = component.version.replace(/^v/, '').split('.');
  const stamp = (pkg: string) => [
    `-X ${pkg}.gitVersion=${component.version}`,
    `-X ${pkg}.gitMajor=${major ?? ''}`,
    `-X ${pkg}.gitMinor=${minor ?? ''}`,
    `-X ${pkg}.gitTreeState=clean`,
  ];
  return [
    '-ldflags',
    [...stamp('k8s.io/component-base/version'), ...stamp('k8s.io/client-go/pkg/version')].join(' '),
  ];
}

function goVersion(): string {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    console.error(
      'kube:build needs the Go toolchain (https://go.dev/dl/) and its module proxy; without it `npm test` skips the real-server suites',
    );
    process.exit(1);
  }
  return go.stdout.trim();
}

const versionArgs: Record<string, string[]> = {
  'kube-apiserver': ['--version'],
  kubectl: ['version', '--client'],
  etcd: ['--version'],
};

console.log(goVersion());
for (const component of components) {
  mkdirSync(component.dir, { recursive: true });
  for (const [command, pkg] of Object.entries(component.commands)) {
    const target = binaryPath(component, command);
    let state = 'cached';
    if (!existsSync(target)) {
      const started = Date.now();
      console.log(`building ${command} ${component.version} (${pkg}) …`);
      const partial = join(component.dir, `.${command}.partial`);
      const build = spawnSync('go', ['build', ...versionFlags(component), '-o', partial, pkg], {
        cwd: join(import.meta.dirname, component.module),
        env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' },
        stdio: 'inherit',
      });
      if (build.status !== 0) {
        console.error(`go build ${pkg} failed (exit ${build.status ?? build.signal})`);
        process.exit(1);
      }
      renameSync(partial, target);
      state = `built in ${Math.round((Date.now() - started) / 1000)} s`;
    }
    const version = execFileSync(target, versionArgs[command] ?? ['--version'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(0, 1)
      .join(' ');
    console.log(`${command}: ${version.trim()} — ${target} (${state})`);
  }
}
