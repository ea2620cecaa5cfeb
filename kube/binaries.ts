// Where the real Kubernetes components the tests and benchmarks run are built and cached: one folder per
// pinned version, outside the clone, so a clean clone (CI) finds the previous build. The versions are read
// from the wrapper modules' go.mod files, the one place they are pinned.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const here = import.meta.dirname;

export type Component = {
  /** The wrapper module's folder. */
  readonly module: string;
  /** The Go package of each command, by the name of the executable it becomes. */
  readonly commands: Readonly<Record<string, string>>;
  readonly version: string;
  /** The cache folder of this version. */
  readonly dir: string;
};

function pinned(module: string, path: string): string {
  const goMod = readFileSync(join(here, module, 'go.mod'), 'utf8');
  const version = new RegExp(`^require ${path.replaceAll('.', '\\.')} (v\\S+)$`, 'm').exec(goMod)?.[1];
  if (version === undefined) throw new Error(`kube/${module}/go.mod does not require ${path}`);
  return version;
}

export const cacheRoot = join(
  process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== ''
    ? process.env.XDG_CACHE_HOME
    : join(homedir(), '.cache'),
  'whereabouts-ts',
);

const kubernetesVersion = pinned('control-plane', 'k8s.io/kubernetes');
const etcdVersion = pinned('etcd', 'go.etcd.io/etcd/server/v3');

export const controlPlane: Component = {
  module: 'control-plane',
  commands: {
    'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
    kubectl: 'k8s.io/kubernetes/cmd/kubectl',
  },
  version: kubernetesVersion,
  dir: join(cacheRoot, `kube-${kubernetesVersion}`),
};

export const etcd: Component = {
  module: 'etcd',
  commands: { etcd: 'go.etcd.io/etcd/server/v3' },
  version: etcdVersion,
  dir: join(cacheRoot, `etcd-${etcdVersion}`),
};

export const components: readonly Component[] = [controlPlane, etcd];

export type Binaries = {
  readonly kubeApiserver: string;
  readonly kubectl: string;
  readonly etcd: string;
  readonly kubernetesVersion: string;
};

export const binaryPath = (component: Component, command: string): string => join(component.dir, command);

/** The built binaries, or why they are not there. */
export function findBinaries(): { ok: true; binaries: Binaries } | { ok: false; why: string } {
  const paths = {
    kubeApiserver: binaryPath(controlPlane, 'kube-apiserver'),
    kubectl: binaryPath(controlPlane, 'kubectl'),
    etcd: binaryPath(etcd, 'etcd'),
  };
  const missing = Object.values(paths).filter((path) => !existsSync(path));
  if (missing.length > 0)
    return { ok: false, why: `${missing.join(', ')} not built (run \`npm run kube:build\`, which needs Go)` };
  return { ok: true, binaries: { ...paths, kubernetesVersion } };
}
