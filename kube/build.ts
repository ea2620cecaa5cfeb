// `npm run kube:build` and `npm run peers:build`: build the real components the tests and benchmarks run
// from Go modules, each in its wrapper module here, into a per-version cache outside the clone
// (binaries.ts). `kube`: kube-apiserver and kubectl of one pinned release, and etcd. `peers`: the Whereabouts
// plugin we run beside ours, cnitool and the CNI reference plugins. What is cached is not built again: a warm
// run takes seconds. Prints each binary's version and path. Needs Go; the product itself never does.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { binaryPath, controlPlane, groups, helm, type Component } from './binaries.ts';

/**
 * Version stamps: without them kube-apiserver reports `v0.0.0-master+$Format:%H$`, which kubectl cannot
 * parse, and helm reports only its minor (`v4.3`).
 */
function versionFlags(component: Component): string[] {
  if (component === helm)
    return ['-ldflags', `-X helm.sh/helm/v4/internal/version.version=${component.version}`];
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

const group = process.argv[2] ?? 'kube';
if (group !== 'kube' && group !== 'peers') {
  console.error(`usage: node kube/build.ts [kube|peers] (got ${group})`);
  process.exit(2);
}

function goVersion(): string {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    console.error(
      `${group}:build needs the Go toolchain (https://go.dev/dl/) and its module proxy; without it \`npm test\` skips the suites that run these`,
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

/** The first line a built command prints about itself. */
function versionOf(component: Component, command: string, target: string): string {
  const how = component.versionCommand ?? { args: versionArgs[command] ?? ['--version'] };
  const run = spawnSync(target, how.args, {
    encoding: 'utf8',
    env: { ...process.env, ...how.env },
    input: '',
  });
  return (
    `${run.stdout}${run.stderr}`
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line !== '') ?? '(printed nothing)'
  );
}

console.log(goVersion());
for (const component of groups[group]) {
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
    console.log(
      `${command} ${component.version}: ${versionOf(component, command, target)} — ${target} (${state})`,
    );
  }
}
