// Reads every NetworkAttachmentDefinition (all namespaces, page by page) for the operator commands, reduced
// at once to the Whereabouts ranges capacity needs (src/ops/capacity.ts). Kept apart from the pure
// capacity rules: this is the only part that talks to the API server.

import { fail, ok, type Result } from '../errors.ts';
import type { KubeApi, ObjectRef } from '../store/api.ts';
import { classify, type StoreError } from '../store/errors.ts';
import { nadRangesOf, type NadRange } from './capacity.ts';

const nads: ObjectRef = { group: 'k8s.cni.cncf.io', version: 'v1', plural: 'network-attachment-definitions' };

export async function readNadRanges(api: KubeApi): Promise<Result<NadRange[], StoreError>> {
  const ranges: NadRange[] = [];
  let token: string | undefined;
  do {
    const page = await api.list(nads, { limit: 500, ...(token === undefined ? {} : { continue: token }) });
    if (!page.ok) return fail(classify(page.failure, 'list NetworkAttachmentDefinitions', api.server));
    for (const item of page.value.items) ranges.push(...nadRangesOf(item));
    token = page.value.continue;
  } while (token !== undefined);
  return ok(ranges);
}
