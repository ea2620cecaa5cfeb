// Where the real components the tests and benchmarks run are built and cached: one folder per pinned
// version, outside the clone, so a clean clone (CI) finds the previous build. The versions are read from the
// wrapper modules' go.mod files, the one place they are pinned. Two groups: the control plane and helm, which
// the manifest tests render the chart with (`kube:build`), and the peers we run beside ours — Whereabouts,
// cnitool and the CNI reference plugins (`peers:build`).

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
  /** How to make the built command print its version: arguments and environment. */
  readonly versionCommand?: { args: string[]; env?: Record<string, string> };
};

function pinned(module: string, path: string): string {
  const goMod = readFileSync(join(here, module, 'go.mod'), 'utf8');
  const version = new RegExp(`^(?:require |\\t)${path.replaceAll('.', '\\.')} (v\\S+)$`, 'm').exec(
    goMod,
  )?.[1];
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
const helmVersion = pinned('helm', 'helm.sh/helm/v4');

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

/** Lints and renders the chart (deploy/helm/) in the manifest tests; its version pins no cluster. */
export const helm: Component = {
  module: 'helm',
  commands: { helm: 'helm.sh/helm/v4/cmd/helm' },
  version: helmVersion,
  dir: join(cacheRoot, `helm-${helmVersion}`),
  versionCommand: { args: ['version', '--short'] },
};

const whereaboutsVersion = pinned('whereabouts', 'github.com/k8snetworkplumbingwg/whereabouts');
const pluginsVersion = pinned('cni', 'github.com/containernetworking/plugins');
const cniVersion = pinned('cni', 'github.com/containernetworking/cni');

/** A CNI plugin prints its supported versions for CNI_COMMAND=VERSION. */
const cniVersionCommand = { args: [], env: { CNI_COMMAND: 'VERSION' } };

export const whereabouts: Component = {
  module: 'whereabouts',
  commands: { whereabouts: 'github.com/k8snetworkplumbingwg/whereabouts/cmd' },
  version: whereaboutsVersion,
  dir: join(cacheRoot, `whereabouts-${whereaboutsVersion}`),
  versionCommand: cniVersionCommand,
};

/** The reference plugins in one folder, the CNI_PATH of the tests that run them. */
export const referencePlugins: Component = {
  module: 'cni',
  commands: Object.fromEntries(
    ['main/bridge', 'main/macvlan', 'main/ipvlan', 'main/loopback', 'ipam/host-local'].map((path) => [
      path.split('/')[1] ?? path,
      `github.com/containernetworking/plugins/plugins/${path}`,
    ]),
  ),
  version: pluginsVersion,
  dir: join(cacheRoot, `cni-plugins-${pluginsVersion}`),
  versionCommand: cniVersionCommand,
};

export const cnitool: Component = {
  module: 'cni',
  commands: { cnitool: 'github.com/containernetworking/cni/cnitool' },
  version: cniVersion,
  dir: join(cacheRoot, `cnitool-${cniVersion}`),
  versionCommand: { args: ['--help'] },
};

export const groups = {
  kube: [controlPlane, etcd, helm],
  peers: [whereabouts, referencePlugins, cnitool],
} as const satisfies Record<string, readonly Component[]>;

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

export type Peers = {
  /** The Whereabouts plugin executable. */
  readonly whereabouts: string;
  readonly whereaboutsVersion: string;
  /** The folder of the reference plugins (bridge, macvlan, ipvlan, loopback, host-local). */
  readonly pluginsDir: string;
  readonly pluginsVersion: string;
  readonly cnitool: string;
};

/** The built peers, or why they are not there. */
export function findPeers(): { ok: true; peers: Peers } | { ok: false; why: string } {
  const missing = groups.peers
    .flatMap((component) => Object.keys(component.commands).map((command) => binaryPath(component, command)))
    .filter((path) => !existsSync(path));
  if (missing.length > 0)
    return {
      ok: false,
      why: `${missing.join(', ')} not built (run \`npm run peers:build\`, which needs Go)`,
    };
  return {
    ok: true,
    peers: {
      whereabouts: binaryPath(whereabouts, 'whereabouts'),
      whereaboutsVersion,
      pluginsDir: referencePlugins.dir,
      pluginsVersion,
      cnitool: binaryPath(cnitool, 'cnitool'),
    },
  };
}

/** The built helm executable, or why it is not there. */
export function findHelm(): { ok: true; helm: string; version: string } | { ok: false; why: string } {
  const path = binaryPath(helm, 'helm');
  if (!existsSync(path))
    return { ok: false, why: `${path} not built (run \`npm run kube:build\`, which needs Go)` };
  return { ok: true, helm: path, version: helmVersion };
}
