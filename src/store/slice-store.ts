// The NodeSlicePool role of the store, as a node uses it: read a sliced range's slice assignments, and
// assign a free slice to a node with a write that applies only while that slice is still free
// (conditional-write.ts). The controller that creates and re-slices NodeSlicePools writes them itself.

import { fail, ok } from '../errors.ts';
import type { SliceAllocation } from '../slices/layout.ts';
import type { KubeApi } from '../kube-api/api.ts';
import { assignSliceWrite, nodeSlicePoolRef, send } from './conditional-write.ts';
import { decodeNodeSlicePool } from '../codecs/nodeslicepool.ts';
import { getIfExists, type StoreResult } from './result.ts';

export type SliceStore = {
  /** The namespace of the NodeSlicePools. */
  readonly namespace: string;
  /** The slice assignments of a NodeSlicePool; undefined when it does not exist. */
  readSlices(name: string): Promise<StoreResult<SliceAllocation[] | undefined>>;
  /**
   * Assigns the slice at `index` of the NodeSlicePool to `node` if that entry is still exactly `free`:
   * `changed` when it is not (assigned meanwhile, re-sliced, or the pool is gone).
   */
  assignSlice(
    name: string,
    index: number,
    free: SliceAllocation,
    node: string,
  ): Promise<StoreResult<'assigned' | 'changed'>>;
};

async function readSlices(api: KubeApi, name: string): Promise<StoreResult<SliceAllocation[] | undefined>> {
  const what = `get NodeSlicePool ${api.namespace}/${name}`;
  const result = await getIfExists(api, nodeSlicePoolRef({ namespace: api.namespace, name }), what);
  if (!result.ok || result.value === undefined) return result as StoreResult<undefined>;
  const pool = decodeNodeSlicePool(result.value);
  return pool.ok
    ? ok([...pool.value.allocations])
    : fail({ retry: false, message: `${pool.error}; delete it and the controller writes it again` });
}

/** The NodeSlicePools of the API's namespace on the API server. */
export function kubeSlices(api: KubeApi): SliceStore {
  const { namespace } = api;
  return {
    namespace,
    readSlices: (name) => readSlices(api, name),
    async assignSlice(name, index, free, node) {
      const result = await send(api, assignSliceWrite({ namespace, name }, index, free, node));
      if (!result.ok) return result;
      return ok(result.value === 'done' ? 'assigned' : 'changed');
    },
  };
}
