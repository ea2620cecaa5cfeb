// deploy/ on a real kube-apiserver (kube/control-plane.ts; skipped with the reason where it is not built):
// `kubectl apply --server-side -k deploy/core` as an operator runs it, so the server's own validation judges
// every object (CRDs, RBAC, DaemonSet, CronJob, Deployments, Service, ConfigMap), and the server keeps each as
// rendered. Then each component runs as its own ServiceAccount of deploy/, with a token from the TokenRequest
// API, under the real RBAC authorizer: the scenarios of components.test.ts, through a proxy that records every
// request (support/recorder.ts). Each component does its work; the server refuses none of its requests; the
// real authorizer allows each of them to its ServiceAccount (SubjectAccessReview) and none to a ServiceAccount
// without bindings; the rules the real server gives the ServiceAccount (SelfSubjectRulesReview) are exactly
// the rendered ones; and each of them was used.

import { join } from 'node:path';
import { onRealServer } from '../support/cluster.ts';
import { accessReview, grantLines, rulesReview } from './support/authorizer.ts';
import { namespace, serviceAccountToken, startHarness } from './support/harness.ts';
import { allows, describeCall, grantsOf, unusedPermissions, type Call } from './support/rbac.ts';
import { render, root, type K8sObject } from './support/render.ts';
import { components } from './support/scenarios.ts';

const core = join(root, 'deploy', 'core');
/** A ServiceAccount bound to nothing: what every authenticated ServiceAccount may do anyway. */
const unbound = 'whereabouts-test-unbound';

/** Where `live` differs from `rendered`, one path each: fields rendered but not kept, or kept otherwise. */
function changes(rendered: unknown, live: unknown, path: string): string[] {
  if (Array.isArray(rendered)) {
    if (!Array.isArray(live) || live.length !== rendered.length)
      return [`${path}: ${JSON.stringify(rendered)} became ${JSON.stringify(live)}`];
    return rendered.flatMap((item, i) => changes(item, live[i], `${path}[${i}]`));
  }
  if (typeof rendered === 'object' && rendered !== null) {
    if (typeof live !== 'object' || live === null || Array.isArray(live))
      return [`${path}: ${JSON.stringify(rendered)} became ${JSON.stringify(live)}`];
    return Object.entries(rendered).flatMap(([key, value]) =>
      changes(value, (live as Record<string, unknown>)[key], `${path}.${key}`),
    );
  }
  return rendered === live ? [] : [`${path}: ${JSON.stringify(rendered)} became ${JSON.stringify(live)}`];
}

const distinct = (calls: readonly Call[]): Call[] => [
  ...new Map(
    calls.map((c) => [JSON.stringify([c.verb, c.group, c.resource, c.namespace, c.name]), c]),
  ).values(),
];

const described = (c: Call) => `${describeCall(c)}${c.name === undefined ? '' : ` named ${c.name}`}`;

onRealServer((plane) => {
  let rendered: K8sObject[] = [];
  let applied: { code: number; stdout: string; stderr: string } | undefined;
  /** The rules of a ServiceAccount without bindings (system:basic-user's and the like). */
  let baseline = new Set<string>();

  beforeAll(async () => {
    rendered = render('deploy/core');
    applied = await plane().kubectl(['apply', '--server-side', '-k', core]);
    const created = await plane().request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: unbound },
    });
    if (created.status !== 201) throw new Error(`cannot create ${unbound}: ${created.status}`);
    baseline = await rulesReview(plane(), await serviceAccountToken(plane(), unbound), namespace);
  }, 120_000);

  test('kubectl apply --server-side -k deploy/core succeeds, with no warning', () => {
    expect({ code: applied?.code, stderr: applied?.stderr }).toEqual({ code: 0, stderr: '' });
    expect(applied?.stdout.trim().split('\n')).toHaveLength(rendered.length);
  });

  test('the server keeps every object as rendered: nothing pruned, nothing rewritten', async () => {
    const got = await plane().kubectl(['get', '-k', core, '-o', 'json']);
    expect(got.stderr).toBe('');
    const live = (JSON.parse(got.stdout) as { items: K8sObject[] }).items;
    const changed = rendered.flatMap((o) => {
      const stored = live.find((l) => l.kind === o.kind && l.metadata.name === o.metadata.name);
      return stored === undefined
        ? [`${o.kind}/${o.metadata.name}: not stored`]
        : changes(o, stored, `${o.kind}/${o.metadata.name}`);
    });
    expect(changed).toEqual([]);
  });

  describe.each(components)('$component as $serviceAccount', ({ component, serviceAccount, scenario }) => {
    let failure: unknown;
    let calls: Call[] = [];
    let refused: string[] = [];
    let errors: string[] = [];
    let rules = new Set<string>();
    beforeAll(async () => {
      const harness = await startHarness({ [component]: serviceAccount }, plane());
      try {
        await scenario(harness);
      } catch (e) {
        failure = e; // reported by the first test; the others still say what the server refused
      } finally {
        calls = harness.calls.get(component) ?? [];
        refused = harness.refused.get(component) ?? [];
        errors = harness.errors.get(component) ?? [];
        await harness.close();
      }
      // The token outlives the harness: it is valid for an hour.
      rules = await rulesReview(plane(), harness.token(component), namespace);
    }, 180_000);

    test('does its work with a token from the TokenRequest API, making API calls', () => {
      if (failure !== undefined)
        throw new Error(
          `the error answers to its requests:\n${[...new Set(errors)].join('\n')}\n\n${failure instanceof Error ? failure.message : JSON.stringify(failure)}`,
        );
      expect(calls.length).toBeGreaterThan(0);
    });

    test('the server refuses none of its requests', () => {
      expect(refused).toEqual([]);
    });

    test(`the real authorizer allows each call to ${serviceAccount}, as our evaluator does, and none to a ServiceAccount without bindings`, async () => {
      const grants = grantsOf(rendered, namespace, serviceAccount);
      const denied: string[] = [];
      const ours: string[] = [];
      const toUnbound: string[] = [];
      for (const call of distinct(calls)) {
        const review = await accessReview(plane(), namespace, serviceAccount, call);
        if (!review.allowed) denied.push(described(call));
        if (!grants.some((g) => allows(g, call))) ours.push(described(call));
        if ((await accessReview(plane(), namespace, unbound, call)).allowed) toUnbound.push(described(call));
      }
      expect({ denied, ours, toUnbound }).toEqual({ denied: [], ours: [], toUnbound: [] });
    });

    test(`the real server gives ${serviceAccount} exactly the rules that deploy/ renders, and it used each`, () => {
      const own = [...rules].filter((line) => !baseline.has(line)).sort();
      expect(own).toEqual([...grantLines(grantsOf(rendered, namespace, serviceAccount))].sort());
      expect(unusedPermissions(grantsOf(rendered, namespace, serviceAccount), calls)).toEqual([]);
    });
  });
});
