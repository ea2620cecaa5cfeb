// The NodeSlicePool object as Whereabouts writes it: `spec.range`, `spec.sliceSize`, and
// `status.allocations: [{nodeName, sliceRange}]` with every slice listed (`nodeName: ""` when free).

import type { SliceAllocation } from '../slices/layout.ts';

/** The slice assignments of a NodeSlicePool object; undefined when `status.allocations` is malformed. */
export function sliceAllocationsOf(object: Record<string, unknown>): SliceAllocation[] | undefined {
  const status = (object.status ?? {}) as { allocations?: unknown };
  if (status.allocations === undefined || status.allocations === null) return [];
  if (!Array.isArray(status.allocations)) return undefined;
  const allocations: SliceAllocation[] = [];
  for (const a of status.allocations as unknown[]) {
    const entry = (typeof a === 'object' && a !== null ? a : {}) as {
      nodeName?: unknown;
      sliceRange?: unknown;
    };
    if (typeof entry.nodeName !== 'string' || typeof entry.sliceRange !== 'string') return undefined;
    allocations.push({ nodeName: entry.nodeName, sliceRange: entry.sliceRange });
  }
  return allocations;
}
