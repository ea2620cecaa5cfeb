// Until the plugin allocates from node slices, a network with `node_slice_size` is refused rather than
// served from the whole range: Whereabouts' Fast IPAM keeps such a network's addresses in per-node pools
// (`<node>-<slice>`), which a whole-range pool does not see, so serving it would hand out addresses twice.

import type { IpamConfig } from '../config/ipam-config.ts';
import { CniCode, ipamError, type IpamError } from '../errors.ts';

export function unsupportedSlices(config: IpamConfig): IpamError | undefined {
  if (config.nodeSliceSize === undefined) return undefined;
  return ipamError(
    CniCode.InvalidConfig,
    `node_slice_size is set (per-node slices, Whereabouts' Fast IPAM), which this version of whereabouts-ts does not serve yet: ` +
      `its addresses live in per-node pools that a whole-range allocation would not see. Keep this network on Whereabouts, or remove node_slice_size from a network that never used it`,
  );
}
