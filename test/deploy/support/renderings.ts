// The two ways whereabouts-ts is installed, behind one shape: the kustomize base (`kubectl kustomize deploy/`)
// and the Helm chart (`helm template deploy/helm/whereabouts-ts`). The manifest contract
// (manifests.test.ts) and the RBAC checks (components.test.ts) run over each, so the chart is held to exactly
// what the base is held to, without a second copy of the checks. helm is the one `npm run kube:build` builds
// (kube/helm/); where it is not built the chart's suites skip with the reason, and fail under CI=true.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { loadAll } from 'js-yaml';
import { findHelm } from '../../../kube/binaries.ts';
import { describeWhenBuilt, type Built } from '../../support/built.ts';
import { describeWithKubectl, render, root, type K8sObject } from './render.ts';

export const chartDir = join(root, 'deploy', 'helm', 'whereabouts-ts');

/** The namespace both install into by default (the kustomize base's; the chart's with `-n kube-system`). */
export const defaultNamespace = 'kube-system';

const found = findHelm();

export const helmBuilt: Built = found.ok ? { ok: true } : { ok: false, why: found.why };

/** The built helm; only called inside a suite declared with `describeWhenBuilt(…, helmBuilt, …)`. */
export function helmPath(): string {
  if (!found.ok) throw new Error(found.why);
  return found.helm;
}

/** Runs helm with its cache, config and data in a temporary folder: the tests leave nothing in $HOME. */
export function runHelm(args: readonly string[]): string {
  const home = mkdtempSync(join(tmpdir(), 'wb-helm-'));
  try {
    return execFileSync(helmPath(), args, {
      encoding: 'utf8',
      stdio: 'pipe',
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
      },
    });
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    throw new Error(`helm ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? String(e)}`, { cause: e });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

const parse = (text: string): K8sObject[] =>
  (loadAll(text) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);

export type ChartOptions = {
  readonly namespace?: string;
  /** Values as a YAML/JSON document (helm's -f). */
  readonly values?: unknown;
  /** Values files (helm's -f), absolute or relative to the repository root. */
  readonly valuesFiles?: readonly string[];
};

/** The objects `helm template` renders from the chart, CRDs included (as `helm install` creates them). */
export function renderChart(options: ChartOptions = {}): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'wb-values-'));
  try {
    const files = (options.valuesFiles ?? []).map((f) => (isAbsolute(f) ? f : join(root, f)));
    if (options.values !== undefined) {
      const file = join(dir, 'values.json');
      writeFileSync(file, JSON.stringify(options.values));
      files.push(file);
    }
    return parse(
      runHelm([
        'template',
        'whereabouts-ts',
        chartDir,
        '--namespace',
        options.namespace ?? defaultNamespace,
        '--include-crds',
        ...files.flatMap((f) => ['--values', f]),
      ]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One way of installing: its objects as installed by default, without monitoring, and in another namespace. */
export type Rendering = {
  readonly name: string;
  /** Declares a suite that needs this rendering's tool (skipped, or failed under CI, without it). */
  readonly describe: (name: string, body: () => void) => void;
  /** Everything, monitoring included (`kubectl apply -k deploy/`; `helm install` with the defaults). */
  all(): K8sObject[];
  /** Without the Prometheus Operator kinds and the dashboard (`deploy/core`; `monitoring.enabled=false`). */
  core(): K8sObject[];
  /** Everything, installed into `namespace` instead (an overlay's `namespace:`; `helm install -n`). */
  inNamespace(namespace: string): K8sObject[];
};

export const kustomize: Rendering = {
  name: 'the kustomize base deploy/',
  describe: (name, body) => {
    describeWithKubectl(name, body);
  },
  all: () => render('deploy'),
  core: () => render('deploy/core'),
  inNamespace: (namespace) => {
    const dir = mkdtempSync(join(tmpdir(), 'wb-overlay-'));
    try {
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        `namespace: ${namespace}\nresources:\n  - ${relative(dir, join(root, 'deploy'))}\n`,
      );
      return render(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export const helm: Rendering = {
  name: 'the Helm chart deploy/helm/whereabouts-ts',
  describe: (name, body) => {
    describeWhenBuilt(name, helmBuilt, body);
  },
  all: () => renderChart(),
  core: () => renderChart({ values: { monitoring: { enabled: false } } }),
  inNamespace: (namespace) => renderChart({ namespace }),
};

export const renderings: readonly Rendering[] = [kustomize, helm];

/** The labels Helm adds to every object and the base does not have (the chart's own bookkeeping). */
export const helmLabels = [
  'helm.sh/chart',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
];

/**
 * An object as the comparison sees it: without Helm's own labels, and with the settings ConfigMap's content
 * hash (kustomize's and the chart's are computed differently) replaced by `<hash>` wherever it is named.
 */
export function normalised(o: K8sObject): K8sObject {
  const copy = JSON.parse(
    JSON.stringify(o).replace(/whereabouts-settings-[a-z0-9]+/g, 'whereabouts-settings-<hash>'),
  ) as K8sObject;
  const labels = copy.metadata.labels;
  if (labels !== undefined) for (const key of helmLabels) Reflect.deleteProperty(labels, key);
  return copy;
}

/** `Kind namespace/name`, the identity of an object in a comparison. */
export const identity = (o: K8sObject): string =>
  `${o.kind} ${o.metadata.namespace === undefined ? '' : `${o.metadata.namespace}/`}${o.metadata.name}`;
