// PromQL of the alerts and the dashboard: parsed with Prometheus' own grammar (the one its web UI uses),
// which gives the syntax errors and the metric names each expression selects.

import { parser } from '@prometheus-io/lezer-promql';
import { load } from 'js-yaml';

export type Expression = { readonly where: string; readonly expr: string };

/** Functions whose argument is a range vector (`x[5m]`): the grammar accepts an instant vector there. */
const rangeFunctions = new Set([
  'rate',
  'irate',
  'increase',
  'delta',
  'idelta',
  'deriv',
  'changes',
  'resets',
  'avg_over_time',
  'min_over_time',
  'max_over_time',
  'sum_over_time',
  'count_over_time',
  'last_over_time',
  'quantile_over_time',
  'stddev_over_time',
  'present_over_time',
  'absent_over_time',
]);

/** What is wrong with an expression: grammar errors, and range functions given an instant vector. */
export function problemsOf(expr: string): string[] {
  const problems: string[] = [];
  parser.parse(expr).iterate({
    enter: (node) => {
      if (node.type.isError)
        problems.push(
          `syntax error at character ${node.from}: …${expr.slice(Math.max(0, node.from - 20), node.from)}⟨here⟩${expr.slice(node.from, node.from + 20)}`,
        );
      if (node.name === 'VectorSelector' && node.node.getChild('Identifier') === null)
        problems.push(`selector without a metric name: ${expr.slice(node.from, node.to)}`);
      if (node.name === 'FunctionCall') {
        const name = node.node.getChild('FunctionIdentifier');
        const fn = name === null ? '' : expr.slice(name.from, name.to);
        const body = node.node.getChild('FunctionCallBody');
        const range = body?.getChild('MatrixSelector') ?? body?.getChild('SubqueryExpr') ?? null;
        if (rangeFunctions.has(fn) && range === null)
          problems.push(`${fn}() needs a range vector: ${expr.slice(node.from, node.to)}`);
      }
    },
  });
  return problems;
}

/** The metric names an expression selects. */
export function metricsOf(expr: string): Set<string> {
  const names = new Set<string>();
  parser.parse(expr).iterate({
    enter: (node) => {
      if (node.name === 'VectorSelector') {
        const identifier = node.node.getChild('Identifier');
        if (identifier !== null) names.add(expr.slice(identifier.from, identifier.to));
      }
    },
  });
  return names;
}

type Rule = {
  alert?: string;
  record?: string;
  expr?: unknown;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};
export type RuleGroup = { name: string; rules: Rule[] };

export function ruleGroupsOf(yamlText: string): RuleGroup[] {
  const rule = load(yamlText) as { spec?: { groups?: RuleGroup[] } };
  return rule.spec?.groups ?? [];
}

export function alertExpressions(yamlText: string): Expression[] {
  return ruleGroupsOf(yamlText).flatMap((g) =>
    g.rules.map((r) => ({
      where: `alert ${r.alert ?? r.record ?? '?'}`,
      expr: typeof r.expr === 'string' ? r.expr : '',
    })),
  );
}

/** Grafana's variables, replaced by values of the same kind so that the query parses as Prometheus sees it. */
export const withGrafanaVariables = (expr: string): string =>
  expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m').replace(/\$\{(\w+)\}|\$(\w+)/g, '.*');

type Panel = {
  title?: string;
  type?: string;
  targets?: { expr?: string; refId?: string }[];
  panels?: Panel[];
};

export function dashboardExpressions(jsonText: string): Expression[] {
  const dashboard = JSON.parse(jsonText) as {
    panels?: Panel[];
    templating?: { list?: { name: string; query?: { query?: string } | string }[] };
  };
  const panels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  const queries = panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      where: `panel "${p.title ?? '?'}" ${t.refId ?? ''}`,
      expr: withGrafanaVariables(t.expr ?? ''),
    })),
  );
  // Template variables: label_values(<selector>, <label>) takes a series selector.
  const variables = (dashboard.templating?.list ?? []).flatMap((v) => {
    const query = typeof v.query === 'string' ? v.query : v.query?.query;
    const selector = query === undefined ? undefined : /^label_values\((.+),\s*\w+\)$/.exec(query)?.[1];
    return selector === undefined ? [] : [{ where: `variable ${v.name}`, expr: selector }];
  });
  return [...queries, ...variables];
}
