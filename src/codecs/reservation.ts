// The OverlappingRangeIPReservation object as Whereabouts writes it: named after the address it reserves
// (src/codecs/names.ts), its spec the pod and interface holding it: `{podref, ifname, containerid}`
// (Whereabouts never writes `containerid`; we do). Decoded once here for the store, GC and the sandbox.
// Never fails: the name carries the address, and an owner field of another type than a string reads as
// absent, so such a reservation is nobody's — never matched to a pod, which is how every reader treated it.

import { objectAt, stringAt } from './decode.ts';
import { metaOf, type ObjectMeta } from './object-meta.ts';

/** The spec as read (the same shape as conditional-write.ts' `ReservationEntry`, which writes it). */
export type ReservationSpec = {
  readonly podref: string;
  readonly ifname?: string;
  readonly containerid?: string;
};

export type ReservationFacts = {
  readonly meta: ObjectMeta;
  /** `podref` '' when absent; `ifname`, `containerid` only when set. */
  readonly spec: ReservationSpec;
};

export function decodeReservation(object: unknown): ReservationFacts {
  const spec = objectAt(object, 'spec');
  const [ifname, containerid] = [stringAt(spec, 'ifname'), stringAt(spec, 'containerid')];
  return {
    meta: metaOf(object),
    spec: {
      podref: stringAt(spec, 'podref') ?? '',
      ...(ifname === undefined ? {} : { ifname }),
      ...(containerid === undefined ? {} : { containerid }),
    },
  };
}
