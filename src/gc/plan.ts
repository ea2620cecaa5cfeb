// Which allocations and reservations are leaked: a pure function of what GC read, so every rule is a row in
// a table test. The rules lean towards keeping: freeing the address of a live pod is the worst failure an
// IPAM can have, while a leak only waits for the next run.
//
// An allocation is leaked when its pod is gone, when the pod has finished (Succeeded / Failed), or when the
// pod's network-status shows the allocation's interface with another address (a new incarnation of the pod
// got another one). It is kept when its pod is younger than the grace period or still Pending without
// network-status, when the pod shows no network-status at all (nothing to judge by), and when it has no
// pod reference. The pool's schema records no pod UID, so a new incarnation is recognised by its addresses.
// A Terminating pod (deletionTimestamp set, still listed) has no rule of its own: it is live like any pod
// until its kubelet reports a terminal phase — written only after the containers and the sandbox stopped —
// or it is gone. A graceful delete alone says nothing about whether its containers still run (a node whose
// kubelet is down keeps its pods Terminating for good), so it frees nothing.
//
// The address-changed rule needs the mismatch twice: Multus writes network-status only after every delegate
// of a new sandbox finished, so a pod that just got a new sandbox (a node reboot) can show its new address in
// the pool and the old one in network-status for a while, however old the pod is. A mismatch is first
// recorded as a sighting (pool, offset, container ID, when); the entry is released only when a later run sees
// the same mismatch on the same entry at least a grace period after the first sighting. A sighting is dropped
// as soon as the entry changes (another container ID), goes, or the mismatch disappears — so the two
// sightings are always of consecutive runs. GC runs are separate processes: the sightings live on the pool
// (`whereabouts-ts.io/gc-suspects`), read here as given and written back by apply.
//
// An entry a StatefulSet member keeps beyond its pod (`sticky_ips`, src/allocator/keeper.ts) is judged by
// its set, not by the pod: kept while the set wants the member, released when the set is gone, scaled below
// the ordinal, or a pod of the member's name is not the set's — like an address change, only once two runs a
// grace period apart saw it so (a scale-down and back up in between keeps it). When the sets could not be
// listed, retained entries are kept. A plain entry whose pod is gone but whose set still wants the member is
// kept as well: the member's next incarnation takes it over, or its sandbox's DEL settles it. An entry an
// IPAMClaim owns is kept while the claim exists and released (`claim-gone`) once it does not — at once: a
// claim is deleted on purpose, with its virtual machine. When the claims could not be listed, it is kept.
//
// A reservation is orphaned when no pool entry of its network holds its address for its owner — matched by
// computing each live entry's reservation name, never by parsing reservation names back into addresses —
// and it is older than the grace period (an ADD takes the reservation just before the pool entry).

import type { Allocation } from '../allocator/allocation.ts';
import { formatIP, ipOf } from '../ip/address.ts';
import { isObject, stringAt } from '../codecs/decode.ts';
import { decodeEntry, type RawPool } from '../codecs/ippool.ts';
import { reservationName } from '../codecs/names.ts';
import { claimOf, isRetained, memberOf, unwanted, type SetState } from '../allocator/keeper.ts';
import { interfacesOf } from './network-status.ts';

export type PodState = {
  readonly phase: string;
  /** The StatefulSet that controls the pod, if one does. */
  readonly statefulSet?: string;
  readonly createdAt: number;
  /** The `k8s.v1.cni.cncf.io/network-status` annotation as stored, when the pod has one. */
  readonly networkStatus?: string;
};

export type PoolState = {
  readonly namespace: string;
  readonly name: string;
  readonly networkName: string;
  /** `spec.range` as written. */
  readonly range: string;
  /** The entries as read; decoded one at a time while planning. */
  readonly pool: RawPool;
  /** The pool's sightings annotation as stored, when it has one. */
  readonly suspects?: string;
  /** Whether the pool has any annotations (the write of a first sighting adds the map otherwise). */
  readonly annotated?: boolean;
};

/** The annotation on an IPPool holding GC's first sightings of address-changed entries. */
export const suspectsAnnotation = 'whereabouts-ts.io/gc-suspects';

/** A first sighting of an address-changed entry: its container ID, and when it was seen (ISO 8601). */
export type Sighting = { readonly id: string; readonly since: string };

/** Sightings by offset key. */
export type Sightings = Readonly<Record<string, Sighting>>;

/** The most sightings one pool records (about 100 bytes each; annotations are limited to 256 KiB in all). */
export const maxSightings = 1000;

/** The sightings of a pool to write: only pools whose sightings changed. */
export type SightingsWrite = {
  readonly namespace: string;
  readonly pool: string;
  /** The annotation as read (the write only happens while it is still exactly this). */
  readonly previous?: string;
  readonly annotated: boolean;
  /** What to record; empty: remove the annotation. */
  readonly next: Sightings;
};

export type ReservationState = {
  readonly namespace: string;
  readonly name: string;
  readonly podRef: string;
  readonly ifName: string;
  readonly resourceVersion: string;
  readonly createdAt: number;
};

export type ReleaseReason =
  'pod-gone' | 'pod-finished' | 'address-changed' | 'member-unwanted' | 'claim-gone';

export type Release = {
  readonly namespace: string;
  readonly pool: string;
  readonly key: string;
  /** The entry as read: the release only happens while it is still exactly this. */
  readonly stored: unknown;
  readonly address: string;
  readonly podRef: string;
  readonly ifName: string;
  readonly containerId: string;
  readonly reason: ReleaseReason;
};

export type ReservationDeletion = {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  readonly podRef: string;
  readonly reason: 'orphaned';
};

export type Plan = {
  readonly releases: readonly Release[];
  /** Address-changed entries seen for the first time (or not yet a grace period ago): kept for now. */
  readonly suspects: number;
  readonly sightings: readonly SightingsWrite[];
  readonly deletions: readonly ReservationDeletion[];
  /** Allocations looked at, for the summary. */
  readonly allocations: number;
};

export type PlanInput = {
  readonly pools: readonly PoolState[];
  readonly reservations: readonly ReservationState[];
  /** Pods by `namespace/name`. */
  readonly pods: ReadonlyMap<string, PodState>;
  /** StatefulSets by `namespace/name`; absent when they could not be listed (retained entries are kept). */
  readonly statefulSets?: ReadonlyMap<string, Exclude<SetState, 'absent'>>;
  /** IPAMClaims by `namespace/name`; absent when they could not be listed (their entries are kept). */
  readonly claims?: ReadonlySet<string>;
  readonly now: number;
  readonly graceMs: number;
};

/** The sightings stored on a pool; unreadable ones read as none (the next run records them afresh). */
export function sightingsOf(annotation: string | undefined): Map<string, Sighting> {
  const sightings = new Map<string, Sighting>();
  if (annotation === undefined) return sightings;
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    return sightings;
  }
  if (!isObject(parsed)) return sightings;
  for (const [key, value] of Object.entries(parsed)) {
    const [id, since] = [stringAt(value, 'id'), stringAt(value, 'since')];
    if (id !== undefined && since !== undefined && !Number.isNaN(Date.parse(since))) {
      sightings.set(key, { id, since });
    }
  }
  return sightings;
}

const sameSightings = (a: ReadonlyMap<string, Sighting>, b: Sightings): boolean =>
  a.size === Object.keys(b).length &&
  [...a].every(([key, s]) => b[key]?.id === s.id && b[key].since === s.since);

/** Whether the entry's StatefulSet member is still wanted; undefined when no set decides it. */
function memberWanted(a: Allocation, pod: PodState | undefined, input: PlanInput): boolean | undefined {
  const member = memberOf(a.podRef);
  if (member === undefined || input.statefulSets === undefined) return undefined;
  const set = input.statefulSets.get(`${member.namespace}/${member.set}`) ?? 'absent';
  const owner =
    pod === undefined ? 'absent' : pod.statefulSet === undefined ? {} : { statefulSet: pod.statefulSet };
  return unwanted(member, { set, pod: owner }) === undefined;
}

function leaked(a: Allocation, address: string, input: PlanInput): ReleaseReason | undefined {
  if (a.podRef === '') return undefined;
  const pod = input.pods.get(a.podRef);
  const claim = claimOf(a.podRef);
  if (claim !== undefined)
    return input.claims === undefined || input.claims.has(`${claim.namespace}/${claim.name}`)
      ? undefined
      : 'claim-gone';
  if (isRetained(a)) return memberWanted(a, pod, input) === false ? 'member-unwanted' : undefined;
  if (pod === undefined) return memberWanted(a, pod, input) === true ? undefined : 'pod-gone';
  if (pod.phase === 'Succeeded' || pod.phase === 'Failed') return 'pod-finished';
  if (input.now - pod.createdAt < input.graceMs) return undefined;
  const interfaces = interfacesOf(pod.networkStatus);
  if (interfaces === undefined) return undefined;
  const shown = interfaces.get(a.ifName);
  if (shown !== undefined && shown.length > 0 && !shown.includes(address)) return 'address-changed';
  return undefined;
}

function endsInLiveAddress(r: ReservationState, live: ReadonlySet<string>): boolean {
  const parts = r.name.split('-');
  return parts.some((_, i) => live.has(`${r.namespace}/${parts.slice(i).join('-')}`));
}

export function planCollection(input: PlanInput): Plan {
  const releases: Release[] = [];
  // Reservation names the live entries need, with their owners: `namespace/name` → `podRef\0ifName`.
  const needed = new Map<string, string>();
  // Every live address as a reservation name without a network (`namespace/10.0.0.5`): a pool name does not
  // always tell its network — Whereabouts' Fast IPAM per-node pools are `[<network>-]<node>-<slice>` — so a
  // reservation whose name ends in a live address is never deleted, whatever network it names.
  const liveAddresses = new Set<string>();
  const sightings: SightingsWrite[] = [];
  let suspects = 0;
  let allocations = 0;
  for (const pool of input.pools) {
    const previous = sightingsOf(pool.suspects);
    const next: Record<string, Sighting> = {};
    let recorded = 0;
    for (const [key, value] of Object.entries(pool.pool.entries)) {
      const a = decodeEntry(pool.pool, key, value);
      if (a === undefined) continue;
      allocations++;
      const ip = ipOf(pool.pool.family, a.address);
      const address = formatIP(ip);
      let reason = leaked(a, address, input);
      if (reason === 'address-changed' || reason === 'member-unwanted') {
        const seen = previous.get(key);
        if (seen === undefined || seen.id !== a.containerId) {
          // First sighting (or the entry changed since the last one): remembered, kept.
          reason = undefined;
          suspects++;
          if (recorded < maxSightings) {
            next[key] = { id: a.containerId, since: new Date(input.now).toISOString() };
            recorded++;
          }
        } else if (input.now - Date.parse(seen.since) < input.graceMs) {
          // Seen before, but not yet a grace period ago: the first sighting stands.
          reason = undefined;
          suspects++;
          next[key] = seen;
          recorded++;
        }
      }
      if (reason === undefined) {
        liveAddresses.add(`${pool.namespace}/${reservationName(ip, '')}`);
        needed.set(
          `${pool.namespace}/${reservationName(ip, pool.networkName)}`,
          `${a.podRef}\u0000${a.ifName}`,
        );
      } else {
        releases.push({
          namespace: pool.namespace,
          pool: pool.name,
          key: a.key,
          stored: a.stored,
          address,
          podRef: a.podRef,
          ifName: a.ifName,
          containerId: a.containerId,
          reason,
        });
      }
    }
    if (!sameSightings(previous, next) || (pool.suspects !== undefined && previous.size === 0)) {
      sightings.push({
        namespace: pool.namespace,
        pool: pool.name,
        ...(pool.suspects === undefined ? {} : { previous: pool.suspects }),
        annotated: pool.annotated ?? pool.suspects !== undefined,
        next,
      });
    }
  }
  const deletions: ReservationDeletion[] = [];
  for (const r of input.reservations) {
    const owner = needed.get(`${r.namespace}/${r.name}`);
    if (owner === `${r.podRef}\u0000${r.ifName}`) continue;
    // Held by a live entry of another owner: a conflict for a person to look at, not for GC to settle.
    if (owner !== undefined) continue;
    if (endsInLiveAddress(r, liveAddresses)) continue;
    if (input.now - r.createdAt < input.graceMs) continue;
    deletions.push({
      namespace: r.namespace,
      name: r.name,
      resourceVersion: r.resourceVersion,
      podRef: r.podRef,
      reason: 'orphaned',
    });
  }
  return { releases, suspects, sightings, deletions, allocations };
}
