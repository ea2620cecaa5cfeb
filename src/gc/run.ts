// One GC run: collect, plan, and (unless a dry run) apply; with the figures for the summary line.

import type { Result } from '../errors.ts';
import { fail, ok } from '../errors.ts';
import type { KubeApi } from '../kube-api/api.ts';
import type { StoreError } from '../store/errors.ts';
import { applyPlan, type Applied } from './apply.ts';
import { collect } from './collect.ts';
import { planCollection, type Plan } from './plan.ts';

export type GcOptions = { readonly dryRun: boolean; readonly graceMs: number; readonly now?: () => number };

export type GcReport = {
  readonly plan: Plan;
  readonly applied?: Applied;
  readonly pods: number;
  readonly pools: number;
  readonly reservations: number;
  readonly skippedPools: readonly string[];
  readonly collectMs: number;
  readonly planMs: number;
  readonly applyMs: number;
};

export async function runGc(api: KubeApi, options: GcOptions): Promise<Result<GcReport, StoreError>> {
  const started = performance.now();
  const collected = await collect(api, { pods: true, keepers: true });
  if (!collected.ok) return fail(collected.error);
  const planned = performance.now();
  const { pools, reservations, pods, skipped, statefulSets, claims } = collected.value;
  const plan = planCollection({
    pools,
    reservations,
    pods,
    ...(statefulSets === undefined ? {} : { statefulSets }),
    ...(claims === undefined ? {} : { claims }),
    now: (options.now ?? Date.now)(),
    graceMs: options.graceMs,
  });
  const applying = performance.now();
  const applied = options.dryRun ? undefined : await applyPlan(api, plan);
  return ok({
    plan,
    ...(applied === undefined ? {} : { applied }),
    pods: pods.size,
    pools: pools.length,
    reservations: reservations.length,
    skippedPools: skipped,
    collectMs: planned - started,
    planMs: applying - planned,
    applyMs: performance.now() - applying,
  });
}

/** The one-line summary GC logs. */
export function summary(report: GcReport): string {
  const { plan, applied } = report;
  const base =
    `GC: ${report.pools} pools, ${plan.allocations} allocations, ${report.reservations} reservations, ${report.pods} pods; ` +
    `leaked ${plan.releases.length} allocations and ${plan.deletions.length} reservations`;
  const timing = `; collect ${report.collectMs.toFixed(0)} ms, plan ${report.planMs.toFixed(0)} ms, apply ${report.applyMs.toFixed(0)} ms`;
  const skipped =
    report.skippedPools.length === 0 ? '' : `; skipped unreadable pools: ${report.skippedPools.join('; ')}`;
  const suspects =
    plan.suspects === 0
      ? ''
      : `; kept ${plan.suspects} allocations whose address changed or whose StatefulSet no longer wants them until a later run sees it again`;
  if (applied === undefined) return `${base} (dry run: nothing changed)${suspects}${skipped}${timing}`;
  return (
    `${base}; released ${applied.released.length}, deleted ${applied.deleted.length}, ` +
    `left ${applied.changed} that changed meanwhile, ${applied.errors.length} errors${suspects}${skipped}${timing}`
  );
}

/** The dry run's table: one line per leak and why. */
export function planTable(plan: Plan): string {
  const rows = [
    ['KIND', 'NAMESPACE/NAME', 'ADDRESS', 'POD', 'IFNAME', 'REASON'],
    ...plan.releases.map((r) => [
      'allocation',
      `${r.namespace}/${r.pool}`,
      r.address,
      r.podRef,
      r.ifName,
      r.reason,
    ]),
    ...plan.deletions.map((d) => ['reservation', `${d.namespace}/${d.name}`, '', d.podRef, '', d.reason]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return `${rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
