// What the exporter knows of the cluster, kept from its watches (src/exporter/watches.ts) and its scans
// (src/exporter/scan.ts): per pool only what capacity and use need — its range and the addresses it holds,
// not the entries — the NADs' ranges, the NodeSlicePools' slices, the reservations' namespaces, and the
// last scan's leak candidates and orphaned reservations. The pools' figures are computed once per change of
// pools, NADs or NodeSlicePools, not per gauge.

import { retainedId } from '../allocator/keeper.ts';
import { indexNads, nadRangesOf, type NadRange } from '../ops/capacity.ts';
import { addressesOf, usageOf, type PoolUsage } from '../ops/inventory.ts';
import { fieldOf, objectAt, textAt } from '../codecs/decode.ts';
import { rawPool } from '../codecs/ippool.ts';
import { networkNameOf, nodeSliceOf, type SliceLayout } from '../codecs/names.ts';
import { decodeNodeSlicePool } from '../codecs/nodeslicepool.ts';
import { keyOf, metaOf } from '../codecs/object-meta.ts';

/** What a watch reports: an object set (added or modified) or deleted. */
export type Seen = 'set' | 'delete';

// `node_slice_pool`: the NodeSlicePool whose slice a node's slice pool is, "" for a whole-range pool. A full
// slice is routine (the node takes another); alerts on full pools leave slice pools out.
export const poolLabels = ['pool', 'namespace', 'range', 'node_slice_pool'] as const;
export type Labelled = {
  readonly usage: PoolUsage;
  readonly labels: Record<(typeof poolLabels)[number], string>;
};
type Shape = { namespace: string; name: string; range: string; addresses: bigint[]; retained: number };
export type Layout = { readonly namespace: string; readonly range: string } & SliceLayout;

export type Watched = ReturnType<typeof watchedState>;

export function watchedState() {
  const shapes = new Map<string, Shape>();
  /** The ranges of each NAD's Whereabouts configs, by NAD key. */
  const nadRanges = new Map<string, NadRange[]>();
  const reservations = new Map<string, string>(); // key → namespace
  /** NodeSlicePools by key: their slices, for `whereabouts_node_slices` and the `node_slice_pool` label. */
  const layouts = new Map<string, Layout>();
  let figures: Labelled[] | undefined;
  const scanned = {
    leaks: new Map<string, number>(), // pool key → leak candidates
    orphaned: new Map<string, number>(), // namespace → orphaned reservations
  };

  return {
    scanned,
    pool: (type: Seen, o: unknown): void => {
      figures = undefined;
      const key = keyOf(o);
      const decoded = type === 'set' ? rawPool(o) : undefined;
      if (decoded?.ok !== true) {
        shapes.delete(key);
        return;
      }
      const pool = decoded.value;
      const { name, namespace } = metaOf(o);
      // Retained entries (sticky_ips) are counted apart too: held for a StatefulSet member with no pod now.
      const retained = Object.values(pool.entries).filter((e) => fieldOf(e, 'id') === retainedId).length;
      shapes.set(key, { namespace, name, range: pool.range, addresses: addressesOf(pool), retained });
    },
    reservation: (type: Seen, o: unknown): void => {
      if (type === 'set') reservations.set(keyOf(o), metaOf(o).namespace);
      else reservations.delete(keyOf(o));
    },
    slicePool: (type: Seen, o: unknown): void => {
      figures = undefined;
      if (type === 'delete') {
        layouts.delete(keyOf(o));
        return;
      }
      const decoded = decodeNodeSlicePool(o);
      const { namespace, name } = metaOf(o);
      const range = textAt(objectAt(o, 'spec'), 'range');
      layouts.set(keyOf(o), {
        namespace,
        name,
        range,
        allocations: decoded.ok ? decoded.value.allocations : [],
      });
    },
    nad: (type: Seen, o: unknown): void => {
      figures = undefined;
      if (type === 'delete') nadRanges.delete(keyOf(o));
      else nadRanges.set(keyOf(o), nadRangesOf(o));
    },
    /** Every pool's figures and labels. */
    figures: (): Labelled[] => {
      if (figures !== undefined) return figures;
      const nads = indexNads([...nadRanges.values()].flat());
      figures = [...shapes.values()].map((p) => {
        const inNamespace = [...layouts.values()].filter((l) => l.namespace === p.namespace);
        const networkName = networkNameOf(p.name, p.range, inNamespace);
        const usage = usageOf(p.namespace, { ...p, networkName }, nads);
        const slice = nodeSliceOf(p.name, p.range, inNamespace);
        const labels = {
          pool: p.name,
          namespace: p.namespace,
          range: p.range,
          node_slice_pool: slice?.nodeSlicePool ?? '',
        };
        return { usage, labels };
      });
      return figures;
    },
    retainedIn: (poolKey: string): number => shapes.get(poolKey)?.retained ?? 0,
    layouts: (): Iterable<Layout> => layouts.values(),
    /** Reservations per namespace. */
    reservationCounts: (): Map<string, number> => {
      const counts = new Map<string, number>();
      for (const namespace of reservations.values()) counts.set(namespace, (counts.get(namespace) ?? 0) + 1);
      return counts;
    },
  };
}
