// The NodeSlicePool object as Whereabouts writes it: `spec.range`, `spec.sliceSize`, and
// `status.allocations: [{nodeName, sliceRange}]` with every slice listed (`nodeName: ""` when free).
// Decoded once here; a malformed `status.allocations` is an error naming the pool, while the spec's range
// and slice size are read as written and judged only by `sliceLayoutOf`, where the controller needs them.

import { ok } from '../errors.ts';
import { parseCidr, type Cidr } from '../ip/cidr.ts';
import type { SliceAllocation } from '../slices/layout.ts';
import { arrayAt, at, fieldOf, isObject, malformed, objectAt, stringAt, type Decoded } from './decode.ts';
import { metaOf, type ObjectMeta } from './object-meta.ts';

export type NodeSlicePool = {
  readonly meta: ObjectMeta;
  /** `spec.range` as written; undefined when absent or not a string. */
  readonly range?: string;
  /** `spec.sliceSize` as written (Whereabouts writes "26" or "/26"); undefined when absent or not a string. */
  readonly sliceSize?: string;
  /** `status.allocations`; none when the pool has no status yet. */
  readonly allocations: readonly SliceAllocation[];
};

/** A NodeSlicePool object; an error naming it when `status.allocations` is not a list of slices. */
export function decodeNodeSlicePool(object: unknown): Decoded<NodeSlicePool> {
  const spec = objectAt(object, 'spec');
  const [range, sliceSize] = [stringAt(spec, 'range'), stringAt(spec, 'sliceSize')];
  const raw = fieldOf(objectAt(object, 'status'), 'allocations');
  const list = arrayAt(objectAt(object, 'status'), 'allocations');
  if (raw !== undefined && raw !== null && list === undefined)
    return malformed('NodeSlicePool', object, `${at('status.allocations', raw)} is not a list`);
  const allocations: SliceAllocation[] = [];
  for (const [i, entry] of (list ?? []).entries()) {
    const path = `status.allocations[${i}]`;
    if (!isObject(entry)) return malformed('NodeSlicePool', object, `${at(path, entry)} is not an object`);
    const { nodeName, sliceRange } = entry;
    if (typeof nodeName !== 'string')
      return malformed('NodeSlicePool', object, `${at(`${path}.nodeName`, nodeName)} is not a string`);
    if (typeof sliceRange !== 'string')
      return malformed('NodeSlicePool', object, `${at(`${path}.sliceRange`, sliceRange)} is not a string`);
    allocations.push({ nodeName, sliceRange });
  }
  return ok({
    meta: metaOf(object),
    ...(range === undefined ? {} : { range }),
    ...(sliceSize === undefined ? {} : { sliceSize }),
    allocations,
  });
}

/** The layout a NodeSlicePool's spec gives: its range and the prefix length of its slices. */
export type SliceSpec = { readonly range: Cidr; readonly slicePrefix: number };

/**
 * The layout a NodeSlicePool object's spec gives, whatever its status holds (the controller re-slices by it);
 * an error naming the pool when its range is not a CIDR or its slice size no prefix length.
 */
export function sliceLayoutOf(object: unknown): Decoded<SliceSpec> {
  const spec = objectAt(object, 'spec');
  const range = typeof spec.range === 'string' ? parseCidr(spec.range) : undefined;
  if (range === undefined)
    return malformed('NodeSlicePool', object, `${at('spec.range', spec.range)} is not a CIDR`);
  // As the controller always read it: a prefix length with or without its `/` ("" reads as 0).
  const slicePrefix = typeof spec.sliceSize === 'string' ? Number(spec.sliceSize.replace(/^\//, '')) : NaN;
  if (!Number.isInteger(slicePrefix))
    return malformed(
      'NodeSlicePool',
      object,
      `${at('spec.sliceSize', spec.sliceSize)} is not a prefix length`,
    );
  return ok({ range, slicePrefix });
}
