// Each component runs for real against the embedded API server with its own token; every request it makes is
// recorded. Then: the RBAC that deploy/ gives its ServiceAccount must allow each of those requests, and hold
// nothing that none of them used; and the alerts and the dashboard may use only metrics that some component
// really exposes (or that named outside exporters provide).
//
// One row per component. A component merged later is one more row.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alertExpressions, dashboardExpressions, metricsOf } from './support/promql.ts';
import { allows, describeCall, grantsOf, permissionsOf, type Call } from './support/rbac.ts';
import { describeWithKubectl, render, root, type K8sObject } from './support/render.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { agentScenario, controllerScenario, exporterScenario, gcScenario } from './support/scenarios.ts';

type Row = {
  /** Also the identity whose token the component (and whatever it hands its credentials to) uses. */
  readonly component: string;
  /** Its ServiceAccount in deploy/. */
  readonly serviceAccount: string;
  /** Runs it; returns the metric names it exposed. */
  readonly scenario: (h: Harness) => Promise<Set<string>>;
};

const rows: readonly Row[] = [
  // The agent and the plugin, which uses the kubeconfig the agent writes from its own token.
  { component: 'agent', serviceAccount: 'whereabouts-agent', scenario: agentScenario },
  { component: 'gc', serviceAccount: 'whereabouts-gc', scenario: gcScenario },
  { component: 'exporter', serviceAccount: 'whereabouts-exporter', scenario: exporterScenario },
  { component: 'controller', serviceAccount: 'whereabouts-controller-ts', scenario: controllerScenario },
];

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

  describe.each(rows)('$component', ({ component, serviceAccount, scenario }) => {
    let calls: Call[] = [];
    beforeAll(async () => {
      const harness = await startHarness([component]);
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
      const unused = permissionsOf(grantsOf(objects, namespace, serviceAccount))
        .filter(
          ({ grant, verb, group, resource }) =>
            !calls.some((c) =>
              allows(
                {
                  ...grant,
                  rule: { ...grant.rule, apiGroups: [group], resources: [resource], verbs: [verb] },
                },
                c,
              ),
            ),
        )
        .map((p) => p.line);
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
