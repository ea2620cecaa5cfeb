// Each component runs for real against the embedded API server with its own token; every request it makes is
// recorded. Then: the RBAC that deploy/ gives its ServiceAccount — and the Helm chart's, checked the same
// way (support/renderings.ts) — must allow each of those requests, and hold nothing that none of them used
// (as our evaluator, support/rbac.ts, reads the rendered roles; the same scenarios run on a real
// kube-apiserver under its RBAC authorizer in real-cluster.test.ts); and the alerts
// and the dashboard may use only metrics that some component really exposes (or that named outside
// exporters provide).
//
// One row per component (support/scenarios.ts). A component merged later is one more row.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alertExpressions, dashboardExpressions, metricsOf } from './support/promql.ts';
import { allows, describeCall, grantsOf, unusedPermissions, type Call } from './support/rbac.ts';
import { describeWithKubectl, root, type K8sObject } from './support/render.ts';
import { helm, helmBuilt, renderings, type Rendering } from './support/renderings.ts';
import { startHarness } from './support/harness.ts';
import { components } from './support/scenarios.ts';

/** Metrics from outside this project that the alerts use, and who provides them. */
const external: Record<string, string> = {
  up: 'Prometheus, for every scrape target',
  kube_cronjob_status_last_successful_time: 'kube-state-metrics',
  kube_cronjob_created: 'kube-state-metrics',
  kube_daemonset_status_number_unavailable: 'kube-state-metrics',
};

const namespace = 'kube-system';
const exposed = new Map<string, Set<string>>();

/** The renderings whose tool is there: the chart's only where helm is built (helm.test.ts fails CI without it). */
const available = renderings.filter((r) => r !== helm || helmBuilt.ok);
const rendered = new Map<Rendering, K8sObject[]>();
const objectsOf = (r: Rendering): K8sObject[] => {
  const objects = rendered.get(r) ?? r.all();
  rendered.set(r, objects);
  return objects;
};

describeWithKubectl('each component against its RBAC', () => {
  describe.each(components)('$component', ({ component, serviceAccount, scenario }) => {
    let calls: Call[] = [];
    beforeAll(async () => {
      const harness = await startHarness({ [component]: serviceAccount });
      try {
        exposed.set(component, await scenario(harness));
      } finally {
        calls = harness.calls.get(component) ?? [];
        await harness.close();
      }
    }, 120_000);

    test('runs, making API calls with its own token', () => {
      expect(exposed.has(component)).toBe(true);
      expect(calls.length).toBeGreaterThan(0);
    });

    test.each(available)(`the RBAC of ${serviceAccount} in $name allows every call it made`, (rendering) => {
      const grants = grantsOf(objectsOf(rendering), namespace, serviceAccount);
      const denied = new Set(calls.filter((c) => !grants.some((g) => allows(g, c))).map(describeCall));
      expect([...denied].sort()).toEqual([]);
    });

    test.each(available)(
      `the RBAC of ${serviceAccount} in $name grants nothing it did not use`,
      (rendering) => {
        const unused = unusedPermissions(grantsOf(objectsOf(rendering), namespace, serviceAccount), calls);
        expect(unused).toEqual([]);
      },
    );
  });

  test('the alerts and the dashboard use only metrics that a component exposes', () => {
    const available = new Set([...exposed.values()].flatMap((names) => [...names]));
    const rule = readFileSync(join(root, 'deploy', 'monitoring', 'prometheus-rule.yaml'), 'utf8');
    const dashboard = readFileSync(join(root, 'deploy', 'monitoring', 'whereabouts-dashboard.json'), 'utf8');
    const unknown = [...alertExpressions(rule), ...dashboardExpressions(dashboard)].flatMap(
      ({ where, expr }) =>
        [...metricsOf(expr)]
          .filter((name) => !available.has(name) && !(name in external))
          .map((name) => `${where}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });
});
