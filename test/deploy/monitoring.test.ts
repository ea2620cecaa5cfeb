// The PrometheusRule and the Grafana dashboard as files: they parse, every expression is valid PromQL, and
// each alert says how bad it is and what it means. (Which metrics they may use: components.test.ts.)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alertExpressions, dashboardExpressions, problemsOf, ruleGroupsOf } from './support/promql.ts';
import { root } from './support/render.ts';

const ruleText = readFileSync(join(root, 'deploy', 'monitoring', 'prometheus-rule.yaml'), 'utf8');
const dashboardText = readFileSync(join(root, 'deploy', 'monitoring', 'whereabouts-dashboard.json'), 'utf8');

describe('the PromQL checker', () => {
  test.each([
    ['rate(x[5m]', /syntax error/],
    ['sum by (a (x)', /syntax error/],
    ['rate(x)', /needs a range vector/],
    ['{__name__="x"}', /without a metric name/],
  ])('finds what is wrong with %s', (expr, problem) => {
    expect(problemsOf(expr).join('\n')).toMatch(problem);
  });

  test('accepts valid PromQL', () => {
    expect(
      problemsOf('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[5m]))) > 1 unless on (a) y'),
    ).toEqual([]);
  });
});

describe('the PrometheusRule', () => {
  const groups = ruleGroupsOf(ruleText);
  const alerts = groups.flatMap((g) => g.rules);

  test('has the alerts the operator needs: pool nearly full and exhausted, GC failing, errors rising, agent down', () => {
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'WhereaboutsPoolNearlyFull',
        'WhereaboutsPoolExhausted',
        'WhereaboutsGCNotSucceeding',
        'WhereaboutsAllocationErrors',
        'WhereaboutsAgentDown',
      ]),
    );
  });

  test('every expression is valid PromQL', () => {
    const problems = alertExpressions(ruleText).flatMap(({ where, expr }) =>
      problemsOf(expr).map((p) => `${where}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  test('every alert has a unique name, a severity, a summary and a description', () => {
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    const incomplete = alerts
      .filter(
        (a) =>
          !['info', 'warning', 'critical'].includes(a.labels?.severity ?? '') ||
          (a.annotations?.summary ?? '') === '' ||
          (a.annotations?.description ?? '') === '',
      )
      .map((a) => a.alert);
    expect(incomplete).toEqual([]);
  });

  test('the 90% alert stops where the exhausted alert starts', () => {
    const nearlyFull = alerts.find((a) => a.alert === 'WhereaboutsPoolNearlyFull');
    expect(String(nearlyFull?.expr)).toMatch(/>= 0\.9 < 1/);
  });

  test('every alert is documented in docs/alerts.md', () => {
    const docs = readFileSync(join(root, 'docs', 'alerts.md'), 'utf8');
    expect(alerts.map((a) => a.alert ?? '').filter((name) => !docs.includes(name))).toEqual([]);
  });
});

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(dashboardText) as {
    uid: string;
    title: string;
    panels: {
      title: string;
      type: string;
      targets?: unknown[];
      gridPos: { x: number; y: number; w: number; h: number };
    }[];
  };

  test('is a dashboard with the panels an operator needs', () => {
    expect(dashboard.uid).toBe('whereabouts-ts');
    expect(dashboard.panels.map((p) => p.title)).toEqual(
      expect.arrayContaining(['Pool usage', 'Allocation latency', 'Errors', 'GC releases (last run)']),
    );
  });

  test('every query is valid PromQL (with Grafana variables in place)', () => {
    const expressions = dashboardExpressions(dashboardText);
    expect(expressions.length).toBeGreaterThan(10);
    const problems = expressions.flatMap(({ where, expr }) => problemsOf(expr).map((p) => `${where}: ${p}`));
    expect(problems).toEqual([]);
  });

  test('panels do not overlap on the 24-column grid', () => {
    const cells = new Map<string, string>();
    const overlaps: string[] = [];
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const other = cells.get(`${x},${y}`);
          if (other !== undefined) overlaps.push(`${p.title} / ${other}`);
          cells.set(`${x},${y}`, p.title);
        }
    }
    expect([...new Set(overlaps)]).toEqual([]);
  });
});
