// A PromQL evaluator for the subset the pool alerts use, at one instant, over a component's /metrics text:
// so a test can show that an alert's own expression (read from deploy/monitoring/prometheus-rule.yaml)
// becomes true for the figures the exporter reports — not just that the figures look right. Parsed with
// Prometheus' own grammar (@prometheus-io/lezer-promql); anything outside the subset throws, naming it,
// rather than being evaluated wrongly. Semantics follow Prometheus: comparisons filter (or give 0/1 with
// `bool`), binary operators between vectors match one-to-one on all labels but the name (or `on`/
// `ignoring`), aggregations keep the `by` labels.

import { parser } from '@prometheus-io/lezer-promql';

/** A node of the parse tree (lezer's SyntaxNode, named through the parser so no other package is needed). */
type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];
export type Labels = Readonly<Record<string, string>>;
export type Sample = { readonly labels: Labels; readonly value: number };
type Value =
  | { readonly kind: 'scalar'; readonly value: number }
  | { readonly kind: 'vector'; readonly samples: Sample[] };

/** The samples of a Prometheus text exposition (`name{a="b"} 1`; comments and HELP/TYPE lines skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = { __name__: match[1] as string };
    for (const l of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const raw = match[3] as string;
    samples.push({ labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return samples;
}

const unsupported = (what: string, expr: string, n: SyntaxNode): never => {
  throw new Error(`PromQL ${what} is not supported by this evaluator: ${expr.slice(n.from, n.to)}`);
};

const children = (n: SyntaxNode): SyntaxNode[] => {
  const list: SyntaxNode[] = [];
  for (let c = n.firstChild; c !== null; c = c.nextSibling) list.push(c);
  return list;
};

const unquote = (text: string): string =>
  JSON.parse(text.startsWith("'") ? `"${text.slice(1, -1)}"` : text) as string;

const withoutName = (labels: Labels): Record<string, string> => {
  const { __name__: _, ...rest } = labels;
  return rest;
};

const signature = (
  labels: Labels,
  on: readonly string[] | undefined,
  ignoring: readonly string[],
): string => {
  const kept = Object.entries(withoutName(labels))
    .filter(([k]) => (on === undefined ? !ignoring.includes(k) : on.includes(k)))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(kept);
};

const arithmetic: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => a / b,
  Mod: (a, b) => a % b,
  Pow: (a, b) => a ** b,
};
const comparison: Record<string, (a: number, b: number) => boolean> = {
  Eql: (a, b) => a === b,
  Neq: (a, b) => a !== b,
  Gtr: (a, b) => a > b,
  Gte: (a, b) => a >= b,
  Lss: (a, b) => a < b,
  Lte: (a, b) => a <= b,
};

function selector(expr: string, n: SyntaxNode, samples: readonly Sample[]): Sample[] {
  const id = n.getChild('Identifier');
  if (id === null) return unsupported('a selector without a metric name', expr, n);
  const name = expr.slice(id.from, id.to);
  const matchers = (n.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map((m) => {
    const label = m.getChild('LabelName');
    const op = m.getChild('MatchOp')?.firstChild;
    const value = m.getChild('StringLiteral');
    if (label === null || op == null || value === null) return unsupported('this matcher', expr, m);
    const text = unquote(expr.slice(value.from, value.to));
    const regex = new RegExp(`^(?:${text})$`);
    const test: Record<string, (v: string) => boolean> = {
      EqlSingle: (v) => v === text,
      Neq: (v) => v !== text,
      EqlRegex: (v) => regex.test(v),
      NeqRegex: (v) => !regex.test(v),
    };
    return {
      label: expr.slice(label.from, label.to),
      test: test[op.name] ?? unsupported('this match', expr, m),
    };
  });
  if ((n.getChild('LabelMatchers')?.getChildren('QuotedLabelMatcher') ?? []).length > 0)
    return unsupported('a quoted label matcher', expr, n);
  return samples.filter(
    (s) => s.labels.__name__ === name && matchers.every((m) => m.test(s.labels[m.label] ?? '')),
  );
}

function aggregate(expr: string, n: SyntaxNode, samples: readonly Sample[]): Sample[] {
  const op = n.getChild('AggregateOp')?.firstChild?.name ?? '';
  const body = n.getChild('FunctionCallBody');
  const args = body === null ? [] : children(body);
  if (args.length !== 1) return unsupported('an aggregation with parameters', expr, n);
  const input = evaluateNode(expr, args[0] as SyntaxNode, samples);
  if (input.kind !== 'vector') return unsupported('an aggregation of a scalar', expr, n);
  const modifier = n.getChild('AggregateModifier');
  const grouping = (modifier?.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map((l) =>
    expr.slice(l.from, l.to),
  );
  const by = modifier === null || modifier.getChild('By') !== null;
  const groups = new Map<string, { labels: Record<string, string>; values: number[] }>();
  for (const s of input.samples) {
    const labels = Object.fromEntries(
      Object.entries(withoutName(s.labels)).filter(([k]) =>
        by ? grouping.includes(k) : !grouping.includes(k),
      ),
    );
    const key = signature(labels, undefined, []);
    const group = groups.get(key) ?? { labels, values: [] };
    group.values.push(s.value);
    groups.set(key, group);
  }
  const fold: Record<string, (v: number[]) => number> = {
    Sum: (v) => v.reduce((a, b) => a + b, 0),
    Min: (v) => Math.min(...v),
    Max: (v) => Math.max(...v),
    Avg: (v) => v.reduce((a, b) => a + b, 0) / v.length,
    Count: (v) => v.length,
  };
  const f = fold[op] ?? unsupported(`the aggregation ${op}`, expr, n);
  return [...groups.values()].map((g) => ({ labels: g.labels, value: f(g.values) }));
}

function binary(expr: string, n: SyntaxNode, samples: readonly Sample[]): Value {
  const parts = children(n);
  const [lhsNode, opNode] = parts;
  const rhsNode = parts.at(-1);
  if (lhsNode === undefined || opNode === undefined || rhsNode === undefined)
    return unsupported('this binary expression', expr, n);
  const op = opNode.name;
  const returnBool = n.getChild('BoolModifier') !== null;
  const matching = n.getChild('MatchingModifierClause');
  if (matching?.getChild('GroupLeft') != null || matching?.getChild('GroupRight') != null)
    return unsupported('group_left/group_right', expr, n);
  const matchLabels = (matching?.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map((l) =>
    expr.slice(l.from, l.to),
  );
  const on = matching?.getChild('On') != null ? matchLabels : undefined;
  const ignoring = matching?.getChild('Ignoring') != null ? matchLabels : [];
  const lhs = evaluateNode(expr, lhsNode, samples);
  const rhs = evaluateNode(expr, rhsNode, samples);

  if (op === 'And' || op === 'Or' || op === 'Unless') {
    if (lhs.kind !== 'vector' || rhs.kind !== 'vector')
      return unsupported('a set operator on scalars', expr, n);
    const right = new Set(rhs.samples.map((s) => signature(s.labels, on, ignoring)));
    if (op === 'And')
      return {
        kind: 'vector',
        samples: lhs.samples.filter((s) => right.has(signature(s.labels, on, ignoring))),
      };
    if (op === 'Unless')
      return {
        kind: 'vector',
        samples: lhs.samples.filter((s) => !right.has(signature(s.labels, on, ignoring))),
      };
    const left = new Set(lhs.samples.map((s) => signature(s.labels, on, ignoring)));
    return {
      kind: 'vector',
      samples: [...lhs.samples, ...rhs.samples.filter((s) => !left.has(signature(s.labels, on, ignoring)))],
    };
  }
  const compare = comparison[op];
  const compute = arithmetic[op];
  if (compare === undefined && compute === undefined) return unsupported(`the operator ${op}`, expr, n);
  const apply = (a: number, b: number): number | undefined =>
    compute !== undefined
      ? compute(a, b)
      : returnBool
        ? Number(compare?.(a, b))
        : compare?.(a, b)
          ? a
          : undefined;
  // The metric name goes for arithmetic and `bool`; a filtering comparison keeps the sample as it was.
  const labelsOf = (l: Labels): Labels => (compute !== undefined || returnBool ? withoutName(l) : l);

  if (lhs.kind === 'scalar' && rhs.kind === 'scalar') {
    if (compare !== undefined && !returnBool)
      return unsupported('a comparison of scalars without bool', expr, n);
    return { kind: 'scalar', value: apply(lhs.value, rhs.value) ?? NaN };
  }
  if (lhs.kind === 'vector' && rhs.kind === 'scalar')
    return {
      kind: 'vector',
      samples: lhs.samples.flatMap((s) => {
        const v = apply(s.value, rhs.value);
        return v === undefined ? [] : [{ labels: labelsOf(s.labels), value: v }];
      }),
    };
  if (lhs.kind === 'scalar' && rhs.kind === 'vector')
    return {
      kind: 'vector',
      samples: rhs.samples.flatMap((s) => {
        // A filtering comparison keeps the vector's value: `1 < x` keeps x.
        const v =
          compute !== undefined || returnBool
            ? apply(lhs.value, s.value)
            : compare?.(lhs.value, s.value)
              ? s.value
              : undefined;
        return v === undefined ? [] : [{ labels: labelsOf(s.labels), value: v }];
      }),
    };
  if (lhs.kind !== 'vector' || rhs.kind !== 'vector') return unsupported('these operands', expr, n);
  const right = new Map<string, Sample>();
  for (const s of rhs.samples) {
    const key = signature(s.labels, on, ignoring);
    if (right.has(key))
      throw new Error(`PromQL: many-to-one match on the right of ${expr.slice(n.from, n.to)}`);
    right.set(key, s);
  }
  return {
    kind: 'vector',
    samples: lhs.samples.flatMap((s) => {
      const other = right.get(signature(s.labels, on, ignoring));
      const v = other === undefined ? undefined : apply(s.value, other.value);
      if (v === undefined) return [];
      // One-to-one: `on` keeps only its labels, `ignoring` drops its own.
      const base = labelsOf(s.labels);
      const labels = Object.fromEntries(
        Object.entries(base).filter(([k]) => (on === undefined ? !ignoring.includes(k) : on.includes(k))),
      );
      return [{ labels: compute !== undefined || returnBool ? labels : base, value: v }];
    }),
  };
}

function evaluateNode(expr: string, n: SyntaxNode, samples: readonly Sample[]): Value {
  switch (n.name) {
    case 'PromQL':
    case 'ParenExpr': {
      const [inner] = children(n);
      return inner === undefined
        ? unsupported('an empty expression', expr, n)
        : evaluateNode(expr, inner, samples);
    }
    case 'NumberDurationLiteral': {
      const value = Number(expr.slice(n.from, n.to));
      return Number.isNaN(value) ? unsupported('a duration', expr, n) : { kind: 'scalar', value };
    }
    case 'VectorSelector':
      return { kind: 'vector', samples: selector(expr, n, samples) };
    case 'AggregateExpr':
      return { kind: 'vector', samples: aggregate(expr, n, samples) };
    case 'BinaryExpr':
      return binary(expr, n, samples);
    case 'UnaryExpr': {
      const [op, inner] = children(n);
      if (inner === undefined) return unsupported('this unary expression', expr, n);
      const v = evaluateNode(expr, inner, samples);
      const sign = expr.slice(op?.from ?? 0, op?.to ?? 0) === '-' ? -1 : 1;
      return v.kind === 'scalar'
        ? { kind: 'scalar', value: sign * v.value }
        : {
            kind: 'vector',
            samples: v.samples.map((s) => ({ labels: withoutName(s.labels), value: sign * s.value })),
          };
    }
    default:
      return unsupported(n.name, expr, n);
  }
}

/** The instant vector an expression gives over these samples (a scalar result as one sample without labels). */
export function evaluate(expr: string, samples: readonly Sample[]): Sample[] {
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) throw new Error(`PromQL syntax error at ${node.from}: ${expr}`);
    },
  });
  const value = evaluateNode(expr, tree.topNode, samples);
  return value.kind === 'scalar' ? [{ labels: {}, value: value.value }] : value.samples;
}
