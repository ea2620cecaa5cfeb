// The NetworkAttachmentDefinition (k8s.cni.cncf.io/v1) as the controller and the operator commands read it
// from the API server: its `spec.config`, the CNI config as a JSON string. A config that is not a string is
// an error naming the NAD; no config at all (Multus then reads the network from a file on the nodes) is ''.
// (`whereabouts-ts validate` reads NADs from files, not through here: src/config/check-nad.ts.)

import { ok } from '../errors.ts';
import { at, fieldOf, malformed, objectAt, type Decoded } from './decode.ts';
import { metaOf, type ObjectMeta } from './object-meta.ts';

export type Nad = {
  readonly meta: ObjectMeta;
  /** `spec.config`; '' when absent. */
  readonly config: string;
};

export function decodeNad(object: unknown): Decoded<Nad> {
  const config = fieldOf(objectAt(object, 'spec'), 'config');
  if (config !== undefined && config !== null && typeof config !== 'string')
    return malformed('NetworkAttachmentDefinition', object, `${at('spec.config', config)} is not a string`);
  return ok({ meta: metaOf(object), config: config ?? '' });
}
