// The coordination.k8s.io Lease the node-slice controller elects its leader on (src/controller/lease.ts),
// decoded once here with the other objects' codecs, so the election logic reads typed fields. A spec field
// of another type than the API's is an error naming the Lease; the election then treats it as held by an
// unknown candidate (taken over once unchanged for a lease duration), as it treated any foreign holder.

import { ok } from '../errors.ts';
import {
  at,
  fieldOf,
  isObject,
  malformed,
  objectAt,
  timestamp,
  type Decoded,
  type JsonObject,
} from './decode.ts';
import { metaOf, type ObjectMeta } from './object-meta.ts';

/** The fields of `spec` the election reads and writes. */
export type LeaseSpec = {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  /** MicroTime (RFC 3339 with microseconds). */
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
};

export type Lease = {
  readonly meta: ObjectMeta;
  readonly spec: LeaseSpec;
  /** `spec` exactly as read, fields the election does not know included: a renewal writes them back. */
  readonly storedSpec: JsonObject;
};

const strings = ['holderIdentity'] as const;
const times = ['acquireTime', 'renewTime'] as const;
const integers = ['leaseDurationSeconds', 'leaseTransitions'] as const;

export function decodeLease(object: unknown): Decoded<Lease> {
  const stored = fieldOf(object, 'spec');
  if (stored !== undefined && stored !== null && !isObject(stored))
    return malformed('Lease', object, `${at('spec', stored)} is not an object`);
  const spec = objectAt(object, 'spec');
  const decoded: { -readonly [K in keyof LeaseSpec]: LeaseSpec[K] } = {};
  for (const key of strings) {
    const value = spec[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string')
      return malformed('Lease', object, `${at(`spec.${key}`, value)} is not a string`);
    decoded[key] = value;
  }
  for (const key of times) {
    const value = spec[key];
    if (value === undefined || value === null || value === '') continue;
    const text = timestamp(value);
    if (text === undefined) return malformed('Lease', object, `${at(`spec.${key}`, value)} is not a time`);
    decoded[key] = text;
  }
  for (const key of integers) {
    const value = spec[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      return malformed('Lease', object, `${at(`spec.${key}`, value)} is not an integer`);
    decoded[key] = value;
  }
  return ok({ meta: metaOf(object), spec: decoded, storedSpec: spec });
}
