// Node slices (`node_slice_size`): a range divided into equal CIDR blocks, each assigned to at most one node,
// recorded as Whereabouts records them in a NodeSlicePool (`status.allocations: [{nodeName, sliceRange}]`,
// every slice listed, `nodeName: ""` for a free one). Pure: the controller and the plugin build on this.

import { broadcastOf, formatCidr, hostMask, networkOf, parseCidr, type Cidr } from '../ip/cidr.ts';
import { fail, ok, type Result } from '../errors.ts';
import { clipRange, rangeCapacity, type Range } from '../ip/range.ts';

/** One entry of `status.allocations`. */
export type SliceAllocation = { readonly nodeName: string; readonly sliceRange: string };

/**
 * The most slices one range is divided into. Every slice is one entry of the NodeSlicePool (as Whereabouts
 * writes it), and the object must stay far below the API server's 1.5 MiB limit; a /64 cut into /120s would
 * be 2^56 entries.
 */
export const maxSlices = 8192;

/** The slices of `range`, lowest first; an error when there would be more than `maxSlices`. */
export function divide(range: Cidr, slicePrefix: number): Result<Cidr[], string> {
  const bits = slicePrefix - range.prefix;
  if (bits < 0) return fail(`slice size /${slicePrefix} is larger than the range ${formatCidr(range)}`);
  if (bits > 13 || 1 << bits > maxSlices)
    return fail(
      `${formatCidr(range)} in /${slicePrefix} slices would be 2^${bits} slices; at most ${maxSlices} are supported: choose a larger node_slice_size`,
    );
  const base = networkOf(range);
  const step = hostMask(range.family, slicePrefix) + 1n;
  return ok(
    Array.from({ length: 1 << bits }, (_, i) => ({
      family: range.family,
      address: base + BigInt(i) * step,
      prefix: slicePrefix,
    })),
  );
}

/** What `assignSlices` decided: every slice of the layout with its node ("" when free). */
export type SliceAssignment = {
  readonly allocations: SliceAllocation[];
  /** Nodes left without a slice because every slice is taken. */
  readonly unassigned: string[];
};

/** Which slices may be handed to a node: those where the range has an address to give. */
export type Usable = (sliceRange: string) => boolean;

const anySlice: Usable = () => true;

/** Whether a slice of a node that is gone must stay with it for now (its pool still holds addresses). */
export type Retained = (allocation: SliceAllocation) => boolean;

const noneRetained: Retained = () => false;

/**
 * Brings the slice assignments in line with the nodes: slices of nodes that are gone become free unless
 * `retained`, slices not in the layout (the range or size changed) are dropped, and every node without a
 * slice takes the lowest free usable one, nodes in the order given. A node keeps every slice it has; no
 * slice ever has two nodes.
 */
export function assignSlices(
  layout: readonly Cidr[],
  current: readonly SliceAllocation[],
  nodes: readonly string[],
  usable: Usable = anySlice,
  retained: Retained = noneRetained,
): SliceAssignment {
  const live = new Set(nodes);
  const holder = new Map<string, string>();
  for (const a of current)
    if (a.nodeName !== '' && (live.has(a.nodeName) || retained(a)) && !holder.has(a.sliceRange))
      holder.set(a.sliceRange, a.nodeName);
  const slices = layout.map(formatCidr);
  const held = new Set(slices.flatMap((s) => (holder.has(s) ? [holder.get(s)] : [])));
  const free = slices.filter((s) => !holder.has(s) && usable(s));
  const unassigned: string[] = [];
  for (const node of nodes) {
    if (held.has(node)) continue;
    const slice = free.shift();
    if (slice === undefined) unassigned.push(node);
    else {
      holder.set(slice, node);
      held.add(node);
    }
  }
  return {
    allocations: slices.map((sliceRange) => ({ nodeName: holder.get(sliceRange) ?? '', sliceRange })),
    unassigned,
  };
}

/**
 * The index of the lowest free usable slice; undefined when there is none. A node whose slices are full
 * takes it with a conditional write of that entry (src/ipam/places.ts `takeSlice`).
 */
export function lowestFreeSlice(
  current: readonly SliceAllocation[],
  usable: Usable = anySlice,
): number | undefined {
  const i = current.findIndex((a) => a.nodeName === '' && usable(a.sliceRange));
  return i < 0 ? undefined : i;
}

export const slicesOf = (current: readonly SliceAllocation[], node: string): string[] =>
  current.filter((a) => a.nodeName === node).map((a) => a.sliceRange);

/** Whether `range` has an address to hand out inside the slice (the `Usable` of a range). */
export function offersIn(range: Range): Usable {
  return (sliceRange) => {
    const slice = parseCidr(sliceRange);
    const part = slice === undefined ? undefined : withinSlice(range, slice);
    return part !== undefined && rangeCapacity(part) > 0n;
  };
}

/**
 * The part of `range` inside one slice: the range's own `range_start`/`range_end`, exclusions and pick
 * list still apply (Whereabouts' Fast IPAM dropped them). Undefined when nothing of the range falls in the
 * slice (with `pick_addresses`: when the list names no address there).
 */
export const withinSlice = (range: Range, slice: Cidr): Range | undefined =>
  clipRange(range, networkOf(slice), broadcastOf(slice));
