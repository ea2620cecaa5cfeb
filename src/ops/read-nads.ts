// Reads every NetworkAttachmentDefinition (all namespaces, page by page) for the operator commands, reduced
// at once to the Whereabouts ranges capacity needs (src/ops/capacity.ts). Kept apart from the pure
// capacity rules: this is the only part that talks to the API server.

import { ok, type Result } from '../errors.ts';
import type { KubeApi, ObjectRef } from '../kube-api/api.ts';
import type { StoreError } from '../store/errors.ts';
import { eachPage } from '../store/paging.ts';
import { nadRangesOf, type NadRange } from './capacity.ts';

const nads: ObjectRef = { group: 'k8s.cni.cncf.io', version: 'v1', plural: 'network-attachment-definitions' };

export async function readNadRanges(api: KubeApi): Promise<Result<NadRange[], StoreError>> {
  const ranges: NadRange[] = [];
  const listed = await eachPage(api, nads, 'list NetworkAttachmentDefinitions', (item) =>
    ranges.push(...nadRangesOf(item)),
  );
  return listed.ok ? ok(ranges) : listed;
}
