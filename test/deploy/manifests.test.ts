// deploy/ as `kubectl apply -k deploy/` sends it, and the Helm chart as `helm install` sends it with its
// default values (support/renderings.ts: one contract, two renderings): it renders, every object is valid for
// its kind, and the parts that must agree with each other and with the components do (host paths and flags,
// probes and ports, monitors and what they select, settings and what reads them, identities and their
// bindings). That the two render the same objects: helm.test.ts.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { schemaErrors, unknownFieldErrors } from './support/schemas.ts';
import { renderings } from './support/renderings.ts';
import {
  flag,
  named,
  podSpecOf,
  render,
  root,
  workloads,
  type Container,
  type K8sObject,
  type PodSpec,
} from './support/render.ts';

const namespace = 'kube-system';
const clusterScoped = new Set(['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'Namespace']);
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

const containerOf = (o: K8sObject, name: string): Container => {
  const found = podSpecOf(o)?.containers.find((c) => c.name === name);
  if (found === undefined) throw new Error(`${o.kind}/${o.metadata.name} has no container ${name}`);
  return found;
};

/** The volume mounted at `mountPath` in the container, with its definition in the pod. */
function volumeAt(pod: PodSpec, c: Container, mountPath: string): Record<string, unknown> | undefined {
  const mount = c.volumeMounts?.find((m) => m.mountPath === mountPath);
  return pod.volumes?.find((v) => v.name === mount?.name);
}

describe.each(renderings)('$name', (rendering) => {
  rendering.describe('as installed', () => {
    let objects: K8sObject[];
    beforeAll(() => {
      objects = rendering.all();
    });

    test('renders everything: CRDs, RBAC, agent, GC, exporter, settings, monitors, rule and dashboard', () => {
      const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(kinds).toEqual(
        expect.arrayContaining([
          'CustomResourceDefinition/ippools.whereabouts.cni.cncf.io',
          'CustomResourceDefinition/overlappingrangeipreservations.whereabouts.cni.cncf.io',
          'CustomResourceDefinition/nodeslicepools.whereabouts.cni.cncf.io',
          'DaemonSet/whereabouts-agent',
          'CronJob/whereabouts-gc',
          'Deployment/whereabouts-exporter',
          'Service/whereabouts-exporter',
          'PodMonitor/whereabouts-agent',
          'ServiceMonitor/whereabouts-exporter',
          'PrometheusRule/whereabouts-ts',
          'ConfigMap/whereabouts-dashboard',
        ]),
      );
      // The core alone (clusters without the Prometheus Operator) is everything but the monitoring kinds.
      const core = rendering.core().map((o) => `${o.kind}/${o.metadata.name}`);
      expect(core.length).toBeGreaterThan(0);
      expect(kinds.filter((k) => !core.includes(k)).sort()).toEqual([
        'ConfigMap/whereabouts-dashboard',
        'PodMonitor/whereabouts-agent',
        'PrometheusRule/whereabouts-ts',
        'ServiceMonitor/whereabouts-exporter',
      ]);
    });

    test("every object is valid against its kind's schema", async () => {
      const errors: Record<string, string[]> = {};
      for (const o of objects) {
        const found = await schemaErrors(o);
        if (found.length > 0) errors[`${o.kind}/${o.metadata.name}`] = found;
      }
      expect(errors).toEqual({});
    });

    test('no object has a field its kind does not know (a misspelt or misplaced key)', async () => {
      const errors = await unknownFieldErrors(objects);
      expect(
        Object.fromEntries(
          [...errors].map(([i, e]) => [`${objects[i]?.kind}/${objects[i]?.metadata.name}`, e]),
        ),
      ).toEqual({});
    }, 60_000);

    test('the CRDs are those of crds/, unchanged', () => {
      const fromCrds = render('crds');
      expect(objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.spec)).toEqual(
        fromCrds.map((o) => o.spec),
      );
    });

    test(`namespaced objects are in ${namespace}, where Whereabouts keeps its pools; cluster-scoped ones in none`, () => {
      const misplaced = objects
        .filter((o) =>
          clusterScoped.has(o.kind) ? o.metadata.namespace !== undefined : o.metadata.namespace !== namespace,
        )
        .map((o) => `${o.kind}/${o.metadata.name}: ${o.metadata.namespace ?? 'none'}`);
      expect(misplaced).toEqual([]);
    });

    test(`every container runs the one image, at this version (${version})`, () => {
      const images = new Set(workloads(objects).flatMap(({ pod }) => pod.containers.map((c) => c.image)));
      expect([...images]).toEqual([`ghcr.io/whereabouts-ts/whereabouts-ts:${version}`]);
    });

    test('only the agent runs as root, and nothing runs privileged, escalates, or writes its image', () => {
      const problems = workloads(objects).flatMap(({ object, pod }) =>
        pod.containers.flatMap((c) => {
          const where = `${object.kind}/${object.metadata.name}/${c.name}`;
          const security = { ...pod.securityContext, ...c.securityContext } as Record<string, unknown>;
          const root = security.runAsUser === 0;
          const wanted = {
            root: object.kind === 'DaemonSet' && object.metadata.name === 'whereabouts-agent',
            privileged: undefined,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          };
          const actual = {
            root,
            privileged: security.privileged,
            allowPrivilegeEscalation: security.allowPrivilegeEscalation,
            readOnlyRootFilesystem: security.readOnlyRootFilesystem,
            capabilities: security.capabilities,
            seccompProfile: security.seccompProfile,
          };
          const nonRootDeclared = root || security.runAsNonRoot === true;
          return [
            ...(JSON.stringify(actual) === JSON.stringify(wanted)
              ? []
              : [`${where}: ${JSON.stringify(actual)}`]),
            ...(nonRootDeclared ? [] : [`${where}: runAsNonRoot is not set`]),
          ];
        }),
      );
      expect(problems).toEqual([]);
    });

    describe('the agent DaemonSet', () => {
      const agent = () => named(objects, 'DaemonSet', 'whereabouts-agent');
      const pod = () => podSpecOf(agent()) as PodSpec;
      const container = () => containerOf(agent(), 'agent');

      test('runs on every node, whatever its taints', () => {
        expect(pod().tolerations).toEqual([{ operator: 'Exists' }]);
      });

      test("mounts each host directory where its flag points, and the host prefix turns the mount into the host's path", () => {
        const c = container();
        const prefix = flag(c, '--host-prefix') ?? '';
        const hostPathAt = (mountPath: string) =>
          (volumeAt(pod(), c, mountPath)?.hostPath as { path?: string } | undefined)?.path;
        for (const [name, hostPath] of [
          ['--cni-bin-dir', '/opt/cni/bin'],
          ['--cni-conf-dir', '/etc/cni/net.d'],
        ] as const) {
          const dir = flag(c, name);
          expect(dir).toBe(`${prefix}${hostPath}`);
          expect(hostPathAt(dir ?? '')).toBe(hostPath);
        }
        // The socket and the state are at the same path on the host and in the container.
        const socketDir = (flag(c, '--socket') ?? '').replace(/\/[^/]+$/, '');
        expect(socketDir).toBe('/run/whereabouts');
        expect(hostPathAt(socketDir)).toBe(socketDir);
        expect(hostPathAt(flag(c, '--state-dir') ?? '')).toBe('/var/lib/whereabouts');
      });

      test('has its node and namespace from the downward API', () => {
        const env = Object.fromEntries((container().env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef]));
        expect(env.NODENAME).toEqual({ fieldPath: 'spec.nodeName' });
        expect(env.WHEREABOUTS_NAMESPACE).toEqual({ fieldPath: 'metadata.namespace' });
      });

      test('has a projected service-account token, CA and namespace where --service-account-dir points, and no other', () => {
        expect(pod().automountServiceAccountToken).toBe(false);
        const volume = volumeAt(pod(), container(), flag(container(), '--service-account-dir') ?? '');
        const sources =
          (volume?.projected as { sources?: Record<string, unknown>[] } | undefined)?.sources ?? [];
        expect(sources.map((s) => Object.keys(s)[0])).toEqual([
          'serviceAccountToken',
          'configMap',
          'downwardAPI',
        ]);
        expect(sources[0]?.serviceAccountToken).toMatchObject({ path: 'token' });
        expect(JSON.stringify(sources[1])).toContain('"path":"ca.crt"');
        expect(JSON.stringify(sources[2])).toContain('"path":"namespace"');
      });
    });

    test('probes and Services reach each component on its --metrics-port, at /healthz and /readyz', () => {
      for (const [kind, name] of [
        ['DaemonSet', 'whereabouts-agent'],
        ['Deployment', 'whereabouts-exporter'],
        ['Deployment', 'whereabouts-controller-ts'],
      ] as const) {
        const c = containerOf(
          named(objects, kind, name),
          (podSpecOf(named(objects, kind, name)) as PodSpec).containers[0]?.name ?? '',
        );
        const port = c.ports?.find((p) => p.containerPort === Number(flag(c, '--metrics-port')));
        expect(port?.name).toBe('metrics');
        expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
        expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
      }
      const service = named(objects, 'Service', 'whereabouts-exporter').spec as {
        selector: Record<string, string>;
        ports: { name: string; targetPort: string }[];
      };
      const exporterLabels = (
        named(objects, 'Deployment', 'whereabouts-exporter').spec as {
          template: { metadata: { labels: Record<string, string> } };
        }
      ).template.metadata.labels;
      expect(exporterLabels).toMatchObject(service.selector);
      expect(service.ports).toEqual([expect.objectContaining({ name: 'metrics', targetPort: 'metrics' })]);
    });

    test('the controller runs two replicas, apart where it can, and a drain takes at most one of them', () => {
      const deployment = named(objects, 'Deployment', 'whereabouts-controller-ts');
      const spec = deployment.spec as {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: { metadata: { labels: Record<string, string> } };
      };
      expect(spec.replicas).toBe(2);
      // Anti-affinity to its own pods, by node, preferred (a one-node cluster still runs both).
      const terms = (
        (podSpecOf(deployment)?.affinity as Record<string, Record<string, unknown[]>> | undefined)
          ?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []
      ).map(
        (t) =>
          (t as { podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: object } } })
            .podAffinityTerm,
      );
      expect(terms).toEqual([
        { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: spec.selector.matchLabels } },
      ]);
      // The PodDisruptionBudget selects exactly the controller's pods and leaves one of the two running.
      const pdb = named(objects, 'PodDisruptionBudget', 'whereabouts-controller-ts').spec as {
        maxUnavailable?: number;
        minAvailable?: number;
        selector: { matchLabels: Record<string, string> };
      };
      expect(pdb.selector.matchLabels).toEqual(spec.selector.matchLabels);
      expect(spec.template.metadata.labels).toMatchObject(pdb.selector.matchLabels);
      expect(pdb).toMatchObject({ maxUnavailable: 1 });
      expect(pdb.minAvailable).toBeUndefined();
      const selected = workloads(objects).filter(({ object }) => {
        const labels = (object.spec as { template?: { metadata?: { labels?: Record<string, string> } } })
          .template?.metadata?.labels;
        return Object.entries(pdb.selector.matchLabels).every(([k, v]) => labels?.[k] === v);
      });
      expect(selected.map(({ object }) => `${object.kind}/${object.metadata.name}`)).toEqual([
        'Deployment/whereabouts-controller-ts',
      ]);
    });

    test('the PodMonitor selects the agent pods, the ServiceMonitor the exporter Service, each by port name', () => {
      type Monitor = {
        selector: { matchLabels: Record<string, string> };
        podMetricsEndpoints?: { port: string }[];
        endpoints?: { port: string }[];
      };
      const podMonitor = named(objects, 'PodMonitor', 'whereabouts-agent').spec as Monitor;
      const agentLabels = (
        named(objects, 'DaemonSet', 'whereabouts-agent').spec as {
          template: { metadata: { labels: Record<string, string> } };
        }
      ).template.metadata.labels;
      expect(agentLabels).toMatchObject(podMonitor.selector.matchLabels);
      expect(podMonitor.podMetricsEndpoints?.map((e) => e.port)).toEqual(['metrics']);
      const serviceMonitor = named(objects, 'ServiceMonitor', 'whereabouts-exporter').spec as Monitor;
      expect(named(objects, 'Service', 'whereabouts-exporter').metadata.labels).toMatchObject(
        serviceMonitor.selector.matchLabels,
      );
      expect(serviceMonitor.endpoints?.map((e) => e.port)).toEqual(['metrics']);
    });

    test('every setting is read by a container, every ConfigMap reference resolves, every $(VAR) in args is set', () => {
      const configMaps = objects.filter((o) => o.kind === 'ConfigMap') as (K8sObject & {
        data?: Record<string, string>;
      })[];
      const used = new Set<string>();
      const problems = workloads(objects).flatMap(({ object, pod }) =>
        pod.containers.flatMap((c) => {
          const where = `${object.kind}/${object.metadata.name}/${c.name}`;
          const env = c.env ?? [];
          const refs = env.flatMap((e) =>
            e.valueFrom?.configMapKeyRef === undefined ? [] : [e.valueFrom.configMapKeyRef],
          );
          return [
            ...refs.flatMap((ref) => {
              used.add(`${ref.name ?? ''}/${ref.key ?? ''}`);
              const map = configMaps.find((m) => m.metadata.name === ref.name);
              return map !== undefined && ref.key !== undefined && Object.hasOwn(map.data ?? {}, ref.key)
                ? []
                : [`${where}: no ConfigMap key ${ref.name ?? ''}/${ref.key ?? ''}`];
            }),
            ...[...(c.args ?? []).join(' ').matchAll(/\$\((\w+)\)/g)]
              .filter((m) => !env.some((e) => e.name === m[1]))
              .map((m) => `${where}: $(${m[1] ?? ''}) is not in its env`),
          ];
        }),
      );
      expect(problems).toEqual([]);
      const settings = configMaps.find((m) => m.metadata.name.startsWith('whereabouts-settings'));
      const unread = Object.keys(settings?.data ?? {}).filter(
        (k) => !used.has(`${settings?.metadata.name ?? ''}/${k}`),
      );
      expect(unread).toEqual([]);
    });

    test('every workload runs as a ServiceAccount of its own, bound in its namespace', () => {
      const accounts = objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name);
      const used = workloads(objects).map(({ pod }) => pod.serviceAccountName ?? 'default');
      expect(used.sort()).toEqual([...accounts].sort());
      const subjects = objects
        .filter((o) => o.kind.endsWith('Binding'))
        .flatMap((b) =>
          ((b as { subjects?: { name: string; namespace?: string }[] }).subjects ?? []).map((s) => ({
            b,
            s,
          })),
        );
      const stray = subjects
        .filter(
          ({ b, s }) => !accounts.includes(s.name) || (s.namespace ?? b.metadata.namespace) !== namespace,
        )
        .map(({ b, s }) => `${b.kind}/${b.metadata.name}: ${s.namespace ?? ''}/${s.name}`);
      expect(stray).toEqual([]);
    });

    test('the dashboard ConfigMap carries the dashboard JSON and the Grafana sidecar label', () => {
      const map = named(objects, 'ConfigMap', 'whereabouts-dashboard');
      expect(map.metadata.labels?.grafana_dashboard).toBe('1');
      const json = readFileSync(join(root, 'deploy', 'monitoring', 'whereabouts-dashboard.json'), 'utf8');
      expect((map.data as Record<string, string>)['whereabouts-ts.json']).toBe(json);
    });

    test('installed into another namespace (an overlay, helm -n), every object and binding moves with it', () => {
      const moved = rendering.inNamespace('whereabouts');
      const left = moved
        .filter((o) => !clusterScoped.has(o.kind) && o.metadata.namespace !== 'whereabouts')
        .map((o) => `${o.kind}/${o.metadata.name}`);
      const bindings = moved
        .filter((o) => o.kind.endsWith('Binding'))
        .flatMap((b) =>
          ((b as { subjects?: { namespace?: string }[] }).subjects ?? []).map(
            (s) => s.namespace ?? b.metadata.namespace,
          ),
        );
      expect(left).toEqual([]);
      expect(new Set(bindings)).toEqual(new Set(['whereabouts']));
    });
  });
});
