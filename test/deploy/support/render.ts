// Renders deploy/ as `kubectl apply -k` would, with kubectl's own kustomize: the kubectl built with the real
// control plane (`npm run kube:build`) where it is, else one on PATH.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { loadAll } from 'js-yaml';
import { binaryPath, controlPlane } from '../../../kube/binaries.ts';

export const root = join(import.meta.dirname, '..', '..', '..');

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
};

/** The kubectl that `npm run kube:build` built, when it is there. */
const built = binaryPath(controlPlane, 'kubectl');

/**
 * The kubectl whose kustomize renders deploy/: the one `npm run kube:build` built (the release the real-server
 * tests run), else one on PATH or in the usual places; undefined when there is none.
 */
export const kubectl = [
  built,
  ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'kubectl')),
  '/usr/bin/kubectl',
  '/usr/local/bin/kubectl',
].find((path) => existsSync(path));

if (kubectl === undefined) {
  process.stderr.write(
    `\n*** NO kubectl FOUND: the tests that render deploy/ are SKIPPED. Run \`npm run kube:build\` (needs Go; it builds ${built}) or install kubectl (1.21 or later) to run them. ***\n\n`,
  );
}

/** `describe` that runs only where kubectl is, so that its absence is a loud skip and not a failure. */
export const describeWithKubectl = kubectl === undefined ? describe.skip : describe;

/** The objects `kubectl kustomize <dir>` renders (dir absolute, or relative to the repository root). */
export function render(dir: string): K8sObject[] {
  if (kubectl === undefined) throw new Error('no kubectl');
  let text: string;
  try {
    text = execFileSync(kubectl, ['kustomize', isAbsolute(dir) ? dir : join(root, dir)], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? String(e);
    const version = execFileSync(kubectl, ['version', '--client'], { encoding: 'utf8' }).trim();
    throw new Error(`kubectl kustomize ${dir} failed (${version.replace(/\n/g, '; ')}):\n${stderr}`, {
      cause: e,
    });
  }
  return (loadAll(text) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
}

export const named = (objects: readonly K8sObject[], kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return found;
};

export type Container = {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, { name?: string; key?: string }> }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: Record<string, unknown>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
};

export type PodSpec = {
  serviceAccountName?: string;
  containers: Container[];
  volumes?: { name: string; [source: string]: unknown }[];
  securityContext?: Record<string, unknown>;
  [key: string]: unknown;
};

/** `--flag=value` of a container's args. */
export const flag = (c: Container, name: string): string | undefined =>
  c.args?.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);

/** The pod template of a workload, whatever its kind. */
export function podSpecOf(o: K8sObject): PodSpec | undefined {
  const spec = o.spec as Record<string, unknown> | undefined;
  if (o.kind === 'CronJob') {
    const job = (spec?.jobTemplate as { spec?: { template?: { spec?: PodSpec } } } | undefined)?.spec;
    return job?.template?.spec;
  }
  if (['Deployment', 'DaemonSet', 'StatefulSet', 'Job'].includes(o.kind))
    return (spec?.template as { spec?: PodSpec } | undefined)?.spec;
  return undefined;
}

export const workloads = (objects: readonly K8sObject[]) =>
  objects.flatMap((o) => {
    const pod = podSpecOf(o);
    return pod === undefined ? [] : [{ object: o, pod }];
  });
