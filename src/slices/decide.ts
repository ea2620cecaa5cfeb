// Which layout (range and slice size) a NodeSlicePool gets on a controller pass. Pure: the controller reads
// the NADs, the NodeSlicePool and the old slice pools, and writes what this decides.
//
// - The NADs that claim one NodeSlicePool (one network name) must agree on its layout: when they do not,
//   none of them wins — the pool keeps the layout it has (or is not created) and the conflict is reported.
// - A changed layout is a migration, not a reassignment: while the slice pools of the old layout still hold
//   addresses (or could not be read), the NodeSlicePool stays as it is; once they are drained, the new
//   layout is applied and its slices assigned afresh.

/** The range (normalised CIDR text) and slice prefix a NodeSlicePool is cut by. */
export type Layout = { readonly range: string; readonly slicePrefix: number };

/** One NAD's request for a NodeSlicePool layout: `nad` is `namespace/name`. */
export type LayoutRequest<T> = { readonly nad: string; readonly layout: Layout; readonly value: T };

/** What the old layout's slice pools hold: `drained` once they have been empty long enough to switch. */
export type OldPools = { readonly held: number; readonly drained: boolean };

export type LayoutDecision<T> =
  /** Apply this request's layout: create the pool, keep it, or (`changed`) switch to it after the drain. */
  | { readonly kind: 'apply'; readonly request: LayoutRequest<T>; readonly changed: boolean }
  /** The layout changed, but the old slices still hold addresses (or were not counted yet): keep the pool. */
  | {
      readonly kind: 'draining';
      readonly request: LayoutRequest<T>;
      readonly existing: Layout;
      readonly old: OldPools | undefined;
    }
  /** NADs claiming the pool disagree on its layout: keep the pool as it is (or create none). */
  | {
      readonly kind: 'conflict';
      readonly requests: readonly LayoutRequest<T>[];
      readonly existing: Layout | undefined;
    };

export const sameLayout = (a: Layout, b: Layout): boolean =>
  a.range === b.range && a.slicePrefix === b.slicePrefix;

/**
 * Decides the layout of one NodeSlicePool from the NADs' `requests` (at least one, in a stable order), the
 * pool's `existing` layout (undefined when there is no pool) and, when the wanted layout differs from the
 * existing one, what the old slice pools hold (`old`; undefined when not counted, which never switches).
 */
export function decideLayout<T>(
  requests: readonly LayoutRequest<T>[],
  existing: Layout | undefined,
  old: OldPools | undefined,
): LayoutDecision<T> {
  const [first] = requests;
  if (first === undefined) throw new Error('decideLayout: no layout request');
  if (requests.some((c) => !sameLayout(c.layout, first.layout)))
    return { kind: 'conflict', requests, existing };
  if (existing === undefined || sameLayout(existing, first.layout))
    return { kind: 'apply', request: first, changed: false };
  if (old === undefined || !old.drained) return { kind: 'draining', request: first, existing, old };
  return { kind: 'apply', request: first, changed: true };
}

/** The NADs of a conflict, each with its layout: `ns/a (10.0.0.0/24 in /26), ns/b (10.0.0.0/24 in /27)`. */
export const describeRequests = (requests: readonly LayoutRequest<unknown>[]): string =>
  requests.map((c) => `${c.nad} (${c.layout.range} in /${c.layout.slicePrefix})`).join(', ');
