// Each component runs for real against the embedded API server with its own token; every request it makes is
// recorded. Then: the RBAC that deploy/ gives its ServiceAccount must allow each of those requests, and hold
// nothing that none of them used (as our evaluator, support/rbac.ts, reads the rendered roles; the same
// scenarios run on a real kube-apiserver under its RBAC authorizer in real-cluster.test.ts); and the alerts
// and the dashboard may use only metrics that some component really exposes (or that named outside
// exporters provide).
//
// One row per component (support/scenarios.ts). A component merged later is one more row.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alertExpressions, dashboardExpressions, metricsOf } from './support/promql.ts';
import { allows, describeCall, grantsOf, unusedPermissions, type Call } from './support/rbac.ts';
import { describeWithKubectl, render, root, type K8sObject } from './support/render.ts';
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

describeWithKubectl('each component against its RBAC', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render('deploy');
  });

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

    test(`the RBAC of ${serviceAccount} allows every call it made`, () => {
      const grants = grantsOf(objects, namespace, serviceAccount);
      const denied = new Set(calls.filter((c) => !grants.some((g) => allows(g, c))).map(describeCall));
      expect([...denied].sort()).toEqual([]);
    });

    test(`the RBAC of ${serviceAccount} grants nothing it did not use`, () => {
      const unused = unusedPermissions(grantsOf(objects, namespace, serviceAccount), calls);
      expect(unused).toEqual([]);
    });
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
