// The sandbox's own check at the end of a run: what the pools and reservations hold must be exactly what
// the running pods were given — no address held twice, no allocation or reservation of a pod that does not
// run (a DEL lost, or an ADD that finished after its DEL), no running pod without its addresses. Pure, so
// that the rules are tested apart from the processes that produce the state.

import { formatIP, ipOf, parseIP } from '../ip/address.ts';
import { decodeEntry, rawPool } from '../codecs/ippool.ts';
import { reservationName } from '../codecs/names.ts';
import type { JsonObject } from '../codecs/decode.ts';
import { metaOf } from '../codecs/object-meta.ts';
import { decodeReservation } from '../codecs/reservation.ts';

/** A pod the sandbox believes runs, with the addresses (no prefix) its ADDs answered, per interface. */
export type RunningPod = {
  readonly podRef: string;
  readonly containerId: string;
  /** Interface name → the addresses ADD answered for it. */
  readonly addresses: ReadonlyMap<string, readonly string[]>;
};

export type InvariantReport = {
  /** One line per violation. */
  readonly violations: readonly string[];
  /** Of those: addresses held by two holders, and allocations or reservations of pods that do not run. */
  readonly duplicates: number;
  readonly strays: number;
  readonly allocations: number;
  readonly reservations: number;
};

/**
 * `uncertain`: container IDs whose last plugin call was cut short (killed at stop) or failed on DEL: they
 * may or may not hold addresses, so nothing is concluded about them either way.
 */
export function checkInvariants(
  running: readonly RunningPod[],
  pools: readonly JsonObject[],
  reservations: readonly JsonObject[],
  uncertain: ReadonlySet<string> = new Set(),
): InvariantReport {
  const violations: string[] = [];
  let duplicates = 0;
  let strays = 0;
  const byContainer = new Map(running.map((p) => [p.containerId, p]));

  // What the running pods were told they hold; an address answered to two of them is a duplicate already.
  const expected = new Map<string, { pod: RunningPod; ifName: string }>();
  for (const pod of running)
    for (const [ifName, addresses] of pod.addresses)
      for (const text of addresses) {
        const address = canonical(text);
        const other = expected.get(address);
        if (other !== undefined) {
          duplicates++;
          violations.push(`${address} was given to ${other.pod.podRef} and to ${pod.podRef}`);
        }
        expected.set(address, { pod, ifName });
      }

  // What the pools hold.
  const held = new Map<string, { containerId: string; ifName: string; podRef: string }>();
  let allocations = 0;
  for (const object of pools) {
    const decoded = rawPool(object);
    const name = metaOf(object).name || '?';
    if (!decoded.ok) {
      violations.push(decoded.error);
      continue;
    }
    const pool = decoded.value;
    for (const [key, value] of Object.entries(pool.entries)) {
      const entry = decodeEntry(pool, key, value);
      if (entry === undefined) continue;
      allocations++;
      const address = formatIP(ipOf(pool.family, entry.address));
      const holder = { containerId: entry.containerId, ifName: entry.ifName, podRef: entry.podRef };
      const other = held.get(address);
      if (other !== undefined) {
        duplicates++;
        violations.push(`${address} is allocated to ${other.podRef} and to ${holder.podRef}`);
      }
      held.set(address, holder);
      if (uncertain.has(entry.containerId)) continue;
      const pod = byContainer.get(entry.containerId);
      const mine = expected.get(address);
      if (pod === undefined) {
        strays++;
        violations.push(`${address} (IPPool ${name}) is allocated to ${entry.podRef}, which does not run`);
      } else if (mine?.pod !== pod || mine.ifName !== entry.ifName) {
        strays++;
        violations.push(
          `${address} (IPPool ${name}) is allocated to ${entry.podRef} ${entry.ifName}, which was not given it`,
        );
      }
    }
  }
  for (const [address, { pod, ifName }] of expected)
    if (held.get(address)?.containerId !== pod.containerId)
      violations.push(`${pod.podRef} ${ifName} runs with ${address}, which no pool holds for it`);

  // Reservations: one per held address (the sandbox's networks set no network_name: bare names), naming
  // the pod that holds it.
  const reserved = new Set<string>();
  for (const object of reservations) {
    const { meta, spec } = decodeReservation(object);
    const { name } = meta;
    reserved.add(name);
    if (spec.containerid !== undefined && uncertain.has(spec.containerid)) continue;
    const holder = expected.get(addressOfName(name));
    if (holder === undefined || holder.pod.podRef !== spec.podref) {
      strays++;
      violations.push(
        `reservation ${name} names ${spec.podref || '?'}, which does not run with that address`,
      );
    }
  }
  for (const [address, { pod }] of expected)
    if (!reserved.has(reservationNameOf(address)))
      violations.push(`${pod.podRef} runs with ${address}, which has no reservation`);

  return { violations, duplicates, strays, allocations, reservations: reservations.length };
}

/** An address as formatIP writes it (the plugin's answers carry a prefix; IPv6 has several spellings). */
function canonical(text: string): string {
  const bare = text.split('/')[0] ?? text;
  const ip = parseIP(bare);
  return ip === undefined ? bare : formatIP(ip);
}

function reservationNameOf(address: string): string {
  const ip = parseIP(address);
  return ip === undefined ? address : reservationName(ip, '');
}

function addressOfName(name: string): string {
  const v4 = parseIP(name);
  if (v4 !== undefined) return formatIP(v4);
  const v6 = parseIP(name.replace(/-/g, ':'));
  return v6 === undefined ? name : formatIP(v6);
}
