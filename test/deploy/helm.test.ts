// The Helm chart (deploy/helm/whereabouts-ts) against the kustomize base it mirrors: `helm lint` passes; with
// its default values `helm template` renders the same objects as `kubectl kustomize deploy/` — the same kinds,
// names and namespaces, and the same fields once Helm's own labels and the settings ConfigMap's hash are set
// aside — so the two cannot drift apart unnoticed; its CRDs, rule and dashboard are deploy/'s; each value a
// user sets lands where it should and nowhere else; and what it renders with other values (every value
// changed, each distribution's layout) is valid for the models and for a real kube-apiserver. The manifest
// contract and the RBAC checks run over the chart as well: manifests.test.ts, components.test.ts.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { onRealServer } from '../support/cluster.ts';
import { schemaErrors, unknownFieldErrors } from './support/schemas.ts';
import {
  describeWithKubectl,
  flag,
  named,
  podSpecOf,
  root,
  workloads,
  type K8sObject,
  type PodSpec,
} from './support/render.ts';
import {
  chartDir,
  helm,
  helmBuilt,
  helmLabels,
  identity,
  kustomize,
  normalised,
  renderChart,
  runHelm,
} from './support/renderings.ts';
import { describeWhenBuilt } from '../support/built.ts';

/** `values` over `defaults` as Helm coalesces them: maps merged key by key, anything else replaced. */
function merged(defaults: unknown, values: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(defaults) || !isMap(values)) return values;
  return Object.fromEntries(
    [...new Set([...Object.keys(defaults), ...Object.keys(values)])].map((k) => [
      k,
      k in values ? merged(defaults[k], values[k]) : defaults[k],
    ]),
  );
}

const byIdentity = (objects: readonly K8sObject[]) =>
  [...objects].sort((a, b) => identity(a).localeCompare(identity(b)));

const layoutsDir = join(root, 'deploy', 'helm', 'layouts');
const layouts = readdirSync(layoutsDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''));

/** The host paths a layout file sets. */
const layoutDirs = (layout: string) =>
  (
    load(readFileSync(join(layoutsDir, `${layout}.yaml`), 'utf8')) as {
      cni: { binDir: string; confDir: string };
    }
  ).cni;

const components = {
  agent: ['DaemonSet', 'whereabouts-agent'],
  gc: ['CronJob', 'whereabouts-gc'],
  exporter: ['Deployment', 'whereabouts-exporter'],
  controller: ['Deployment', 'whereabouts-controller-ts'],
} as const;
type Component = keyof typeof components;
const names = Object.keys(components) as Component[];

/** Values that differ per component, so that each can be found in its own pod and nowhere else. */
const own = (c: Component) => ({
  podAnnotations: { 'example.com/component': c },
  nodeSelector: { 'example.com/pool': c },
  tolerations: [{ key: `example.com/${c}`, operator: 'Exists', effect: 'NoSchedule' }],
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'example.com/zone', operator: 'In', values: [c] }] }],
      },
    },
  },
  priorityClassName: `${c}-priority`,
  resources: {
    requests: { cpu: '1', memory: `${100 + names.indexOf(c)}Mi` },
    limits: { memory: `${200 + names.indexOf(c)}Mi` },
  },
  podSecurityContext: { fsGroup: 1000 + names.indexOf(c) },
  securityContext: { readOnlyRootFilesystem: false, runAsGroup: 2000 + names.indexOf(c) },
});

/** Every value the chart has, set to something other than its default. */
const everyValueChanged = {
  image: { repository: 'registry.example/wb', tag: '9.9.9', pullPolicy: 'Always' },
  imagePullSecrets: [{ name: 'registry-creds' }],
  cni: { binDir: '/var/lib/cni/bin', confDir: '/etc/kubernetes/cni/net.d' },
  settings: { gcGracePeriod: '1h', gcPushgatewayUrl: 'http://pgw:9091', logLevel: 'debug' },
  ...Object.fromEntries(names.map((c) => [c, own(c)])),
  agent: { ...own('agent'), maxUnavailable: 1 },
  gc: { ...own('gc'), schedule: '0 * * * *' },
  controller: { ...own('controller'), replicas: 3, podDisruptionBudget: { maxUnavailable: 2 } },
  monitoring: { podMonitor: { enabled: false } },
};

describeWhenBuilt('the Helm chart', helmBuilt, () => {
  test('helm lint --strict passes, with the defaults and with each layout of deploy/helm/layouts', () => {
    expect(runHelm(['lint', '--strict', chartDir])).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    for (const layout of layouts)
      expect(runHelm(['lint', '--strict', chartDir, '--values', join(layoutsDir, `${layout}.yaml`)])).toMatch(
        /0 chart\(s\) failed/,
      );
  });

  describeWithKubectl('against the kustomize base', () => {
    test.each([
      ['with the default values', () => helm.all(), () => kustomize.all()],
      ['with monitoring.enabled=false, deploy/core', () => helm.core(), () => kustomize.core()],
      [
        'installed into another namespace',
        () => helm.inNamespace('ipam'),
        () => kustomize.inNamespace('ipam'),
      ],
    ])('%s it renders the same kinds, names and namespaces', (_, chart, base) => {
      // The settings ConfigMap's hash differs (each tool hashes its own way): compared as <hash>.
      const identities = (objects: K8sObject[]) => objects.map(normalised).map(identity).sort();
      expect(identities(chart())).toEqual(identities(base()));
    });

    test("with the default values every object is the base's, field for field (Helm's labels and the settings hash aside)", () => {
      const chart = byIdentity(helm.all());
      const base = byIdentity(kustomize.all());
      // Helm's labels are on every object the chart renders from its templates (crds/ is not templated).
      for (const o of chart.filter((o) => o.kind !== 'CustomResourceDefinition'))
        expect(Object.keys(o.metadata.labels ?? {})).toEqual(expect.arrayContaining(helmLabels));
      expect(chart.map(normalised)).toEqual(base.map(normalised));
    });

    test('the settings ConfigMap is named after its content, so a changed value rolls what reads it', () => {
      const name = (objects: K8sObject[]) =>
        objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('whereabouts-settings-'))
          ?.metadata.name;
      const before = name(renderChart());
      const after = name(renderChart({ values: { settings: { logLevel: 'debug' } } }));
      expect(before).toMatch(/^whereabouts-settings-[a-z0-9]{10}$/);
      expect(after).toMatch(/^whereabouts-settings-[a-z0-9]{10}$/);
      expect(after).not.toBe(before);
      expect(name(renderChart())).toBe(before);
    });
  });

  test("its copies of crds/, the PrometheusRule and the dashboard are deploy/'s", () => {
    const copy = (path: string) => readFileSync(join(chartDir, path), 'utf8');
    const original = (path: string) => readFileSync(join(root, path), 'utf8');
    expect(copy('files/prometheus-rule.yaml')).toBe(original('deploy/monitoring/prometheus-rule.yaml'));
    expect(copy('files/whereabouts-dashboard.json')).toBe(
      original('deploy/monitoring/whereabouts-dashboard.json'),
    );
    const crds = readdirSync(join(root, 'crds')).filter(
      (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
    );
    expect(readdirSync(join(chartDir, 'crds')).sort()).toEqual([...crds].sort());
    for (const file of crds) {
      const ours = load(copy(`crds/${file}`)) as K8sObject;
      const theirs = load(original(`crds/${file}`)) as K8sObject;
      expect({ ...ours, metadata: { ...ours.metadata, labels: undefined } }).toEqual({
        ...theirs,
        metadata: { ...theirs.metadata, labels: undefined },
      });
      expect(ours.metadata.labels).toEqual({ 'app.kubernetes.io/part-of': 'whereabouts-ts' });
    }
  });

  describe('its values', () => {
    let custom: K8sObject[];
    beforeAll(() => {
      custom = renderChart({ values: everyValueChanged });
    });

    const podOf = (objects: K8sObject[], c: Component) =>
      podSpecOf(named(objects, components[c][0], components[c][1])) as PodSpec & Record<string, unknown>;
    const templateOf = (objects: K8sObject[], c: Component) => {
      const spec = named(objects, components[c][0], components[c][1]).spec as Record<string, unknown>;
      const template = (
        c === 'gc' ? (spec.jobTemplate as { spec: { template: unknown } }).spec.template : spec.template
      ) as { metadata: { annotations?: Record<string, string> } };
      return template.metadata;
    };

    test('image.{repository,tag,pullPolicy} and imagePullSecrets reach every container and pod', () => {
      const problems = workloads(custom).flatMap(({ object, pod }) => [
        ...(JSON.stringify(pod.imagePullSecrets) === '[{"name":"registry-creds"}]'
          ? []
          : [`${object.metadata.name}: imagePullSecrets ${JSON.stringify(pod.imagePullSecrets)}`]),
        ...pod.containers
          .filter(
            (c) =>
              c.image !== 'registry.example/wb:9.9.9' ||
              (c as { imagePullPolicy?: string }).imagePullPolicy !== 'Always',
          )
          .map((c) => `${object.metadata.name}/${c.name}: ${c.image ?? ''}`),
      ]);
      expect(workloads(custom)).toHaveLength(names.length);
      expect(problems).toEqual([]);
    });

    test.each(names)(
      "%s: its scheduling, resources, security contexts and pod annotations are its own values, not another's",
      (c) => {
        const want = own(c);
        const fields = (objects: K8sObject[]) => {
          const pod = podOf(objects, c);
          const container = pod.containers[0] as Record<string, unknown>;
          return {
            nodeSelector: pod.nodeSelector,
            tolerations: pod.tolerations,
            affinity: pod.affinity,
            priorityClassName: pod.priorityClassName,
            podSecurityContext: pod.securityContext,
            annotations: templateOf(objects, c).annotations,
            resources: container.resources,
            securityContext: container.securityContext,
          };
        };
        // Helm merges a map of values into the chart's default map and replaces a list: the defaults' keys
        // stay unless set (`null` removes one), so the secure contexts change only in the fields set.
        expect(fields(custom)).toEqual(
          merged(fields(renderChart()), {
            nodeSelector: want.nodeSelector,
            tolerations: want.tolerations,
            affinity: want.affinity,
            priorityClassName: want.priorityClassName,
            podSecurityContext: want.podSecurityContext,
            annotations: want.podAnnotations,
            resources: want.resources,
            securityContext: want.securityContext,
          }),
        );
      },
    );

    test('controller.replicas and controller.podDisruptionBudget set the Deployment and its budget; the budget can be left out', () => {
      expect(
        (named(custom, 'Deployment', 'whereabouts-controller-ts').spec as { replicas: number }).replicas,
      ).toBe(3);
      expect(named(custom, 'PodDisruptionBudget', 'whereabouts-controller-ts').spec).toMatchObject({
        maxUnavailable: 2,
      });
      const without = renderChart({ values: { controller: { podDisruptionBudget: { enabled: false } } } });
      expect(without.filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
    });

    test('settings.* are the settings ConfigMap, which the components read', () => {
      const objects = renderChart({
        values: { settings: { gcGracePeriod: '1h', gcPushgatewayUrl: 'http://pgw:9091', logLevel: 'debug' } },
      });
      const settings = objects.find((o) =>
        o.metadata.name.startsWith('whereabouts-settings-'),
      ) as K8sObject & {
        data: Record<string, string>;
      };
      expect(settings.data).toEqual({
        'gc-grace-period': '1h',
        'gc-pushgateway-url': 'http://pgw:9091',
        'log-level': 'debug',
      });
    });

    test.each([
      [{ monitoring: { enabled: false } }, []],
      [{ monitoring: { podMonitor: { enabled: false } } }, ['ServiceMonitor', 'PrometheusRule', 'ConfigMap']],
      [{ monitoring: { serviceMonitor: { enabled: false } } }, ['PodMonitor', 'PrometheusRule', 'ConfigMap']],
      [{ monitoring: { prometheusRule: { enabled: false } } }, ['PodMonitor', 'ServiceMonitor', 'ConfigMap']],
      [{ monitoring: { dashboard: { enabled: false } } }, ['PodMonitor', 'ServiceMonitor', 'PrometheusRule']],
    ])('monitoring objects are switched by %j', (values, kinds) => {
      const monitoring = renderChart({ values }).filter(
        (o) =>
          o.apiVersion.startsWith('monitoring.coreos.com/') ||
          (o.kind === 'ConfigMap' && o.metadata.name === 'whereabouts-dashboard'),
      );
      expect(monitoring.map((o) => o.kind).sort()).toEqual([...kinds].sort());
    });

    test.each([
      [{ monitoring: { enable: false } }, /at '\/monitoring': additional properties 'enable' not allowed/],
      [{ controller: { schedule: '* * * * *' } }, /at '\/controller': additional properties 'schedule'/],
      [{ controller: { replicas: 'two' } }, /at '\/controller\/replicas': got string, want integer/],
      [{ settings: { logLevel: 'info' } }, /at '\/settings\/logLevel'/],
      [{ cni: { binDir: 'opt/cni/bin' } }, /at '\/cni\/binDir'/],
      [{ image: { pullPolicy: 'always' } }, /at '\/image\/pullPolicy'/],
    ])('a misspelt or mistyped value, %j, is refused before anything is rendered', (values, message) => {
      expect(() => renderChart({ values })).toThrow(message);
    });

    test('a default key set to null is removed (Helm), and the schema still holds', () => {
      const objects = renderChart({
        values: { agent: { nodeSelector: null, securityContext: { readOnlyRootFilesystem: null } } },
      });
      const pod = podOf(objects, 'agent');
      expect(pod.nodeSelector).toBeUndefined();
      expect(pod.containers[0]?.securityContext).not.toHaveProperty('readOnlyRootFilesystem');
      expect(pod.containers[0]?.securityContext).toMatchObject({
        runAsUser: 0,
        capabilities: { drop: ['ALL'] },
      });
    });

    test('an install with every value changed is still valid for each kind, with no unknown field', async () => {
      const errors: Record<string, string[]> = {};
      for (const o of custom) {
        const found = await schemaErrors(o);
        if (found.length > 0) errors[`${o.kind}/${o.metadata.name}`] = found;
      }
      const unknown = await unknownFieldErrors(custom);
      expect({ errors, unknown: [...unknown] }).toEqual({ errors: {}, unknown: [] });
    }, 60_000);
  });

  describe.each(layouts)('the %s layout (deploy/helm/layouts)', (layout) => {
    test("the agent mounts the layout's CNI directories and its flags point at them through the host prefix", () => {
      const { binDir, confDir } = layoutDirs(layout);
      const objects = renderChart({ valuesFiles: [join(layoutsDir, `${layout}.yaml`)] });
      const pod = agentPod(objects);
      const agent = pod.containers[0];
      if (agent === undefined) throw new Error('no agent container');
      const prefix = flag(agent, '--host-prefix');
      expect(prefix).toBe('/host');
      for (const [name, hostDir] of [
        ['--cni-bin-dir', binDir],
        ['--cni-conf-dir', confDir],
      ] as const) {
        const dir = flag(agent, name);
        expect(dir).toBe(`${prefix ?? ''}${hostDir}`);
        const mount = agent.volumeMounts?.find((m) => m.mountPath === dir);
        const volume = pod.volumes?.find((v) => v.name === mount?.name);
        expect((volume?.hostPath as { path?: string } | undefined)?.path).toBe(hostDir);
      }
      // Nothing else changes but what the layout sets on the agent.
      const others = (objects: K8sObject[]) =>
        objects
          .filter((o) => o.kind !== 'DaemonSet')
          .map(normalised)
          .sort((a, b) => identity(a).localeCompare(identity(b)));
      expect(others(objects)).toEqual(others(renderChart()));
    });
  });

  function agentPod(objects: K8sObject[]): PodSpec {
    return podSpecOf(named(objects, 'DaemonSet', 'whereabouts-agent')) as PodSpec;
  }
});

// The real kube-apiserver judges what the chart renders with values other than the defaults (the defaults
// are the base's objects, which real-cluster.test.ts applies): a server-side dry run, with kubectl's strict
// field validation, of every value changed and of each layout. The Prometheus Operator's kinds are left out
// (the test server has no such CRDs; their schemas are checked above).
describeWhenBuilt('the Helm chart on a real server', helmBuilt, () => {
  onRealServer((plane) => {
    const cases: [string, () => K8sObject[]][] = [
      ['with every value changed', () => renderChart({ values: everyValueChanged })],
      ...layouts.map((layout): [string, () => K8sObject[]] => [
        `with the ${layout} layout`,
        () => renderChart({ valuesFiles: [join(layoutsDir, `${layout}.yaml`)] }),
      ]),
    ];
    test.each(cases)('accepts every object it renders %s, with no warning', async (_, objects) => {
      const applicable = objects().filter((o) => !o.apiVersion.startsWith('monitoring.coreos.com/'));
      const applied = await plane().kubectl(
        ['apply', '--server-side', '--dry-run=server', '--validate=strict', '-f', '-'],
        { input: applicable.map((o) => dump(o)).join('---\n') },
      );
      expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
      expect(applied.stdout.trim().split('\n')).toHaveLength(applicable.length);
    });
  });
});
