// The node's own record of the attachments the agent made: which pod (or IPAMClaim) holds an address for
// which container interface, and in which pools. One small file per container interface in the state dir on
// the host (`/var/lib/whereabouts/attachments`); in memory when the agent has no state dir. The IPPool does
// not say which node an address is on, and the agent no longer receives every pool (src/agent/pool-cache.ts):
// this record is how it finds, after a pod's deletion or its own restart, the entries that are its to
// release — one read of each recorded pool, instead of a watch of them all.

import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../errors.ts';
import type { ReleaseSite } from '../ipam/transaction.ts';
import type { Logger } from '../log.ts';
import { isObject } from '../codecs/decode.ts';
import type { Served } from './server.ts';

/** One container interface: who holds it, and where. */
export type Attachment = {
  /** The entries' `podref`: the pod's, or `<namespace>/ipamclaim:<name>` when an IPAMClaim owns the address. */
  readonly podRef: string;
  readonly containerId: string;
  readonly ifName: string;
  /**
   * The pools the ADD wrote, with what a release needs to know of them. Absent in records an agent older
   * than this one wrote: such a record is completed from one list of the pools at start-up.
   */
  readonly sites?: readonly ReleaseSite[];
  /**
   * The network keeps addresses beyond a DEL (`sticky_ips`: a StatefulSet member's retained entry, an
   * IPAMClaim's address): the record stays after DEL, until the pod's or claim's deletion settles it.
   */
  readonly sticky?: boolean;
};

export type AttachmentRecords = {
  add(attachment: Attachment): void;
  remove(containerId: string, ifName: string): void;
  get(containerId: string, ifName: string): Attachment | undefined;
  list(): Attachment[];
};

// Container IDs are hex in practice, but they are the runtime's to choose: keep a file name safe whatever.
const fileName = (containerId: string, ifName: string) =>
  `${encodeURIComponent(containerId)}_${encodeURIComponent(ifName)}.json`;

const isSite = (value: unknown): value is ReleaseSite => {
  if (!isObject(value)) return false;
  const site = value;
  return (
    typeof site.pool === 'string' &&
    (site.family === 4 || site.family === 6) &&
    (site.network === undefined || typeof site.network === 'string')
  );
};

/** A record as read back from a file: anything else is skipped (the cluster GC covers what it described). */
function decodeAttachment(value: unknown): Attachment | undefined {
  if (!isObject(value)) return undefined;
  const r = value;
  if (typeof r.podRef !== 'string' || typeof r.containerId !== 'string' || typeof r.ifName !== 'string')
    return undefined;
  if (r.sites !== undefined && !(Array.isArray(r.sites) && r.sites.every(isSite))) return undefined;
  if (r.sticky !== undefined && typeof r.sticky !== 'boolean') return undefined;
  return {
    podRef: r.podRef,
    containerId: r.containerId,
    ifName: r.ifName,
    ...(r.sites === undefined ? {} : { sites: r.sites }),
    ...(r.sticky === undefined ? {} : { sticky: r.sticky }),
  };
}

/**
 * The records in `stateDir` (kept across restarts), or in memory only when there is none. The files are read
 * once, here; after that they are written through and every lookup is answered from memory, so that a pod's
 * deletion or a DEL costs no directory scan.
 */
export function attachmentRecords(stateDir: string | undefined): AttachmentRecords {
  const held = new Map<string, Attachment>();
  const dir = stateDir === undefined ? undefined : join(stateDir, 'attachments');
  if (dir !== undefined) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      try {
        const record = decodeAttachment(JSON.parse(readFileSync(join(dir, name), 'utf8')));
        if (record !== undefined) held.set(fileName(record.containerId, record.ifName), record);
      } catch {
        // torn by a power cut: the cluster GC covers what it described
      }
    }
  }
  return {
    add(attachment) {
      const name = fileName(attachment.containerId, attachment.ifName);
      if (dir !== undefined) {
        const path = join(dir, name);
        writeFileSync(`${path}.tmp`, JSON.stringify(attachment), { mode: 0o600 });
        renameSync(`${path}.tmp`, path);
      }
      held.set(name, attachment);
    },
    remove(containerId, ifName) {
      const name = fileName(containerId, ifName);
      if (dir !== undefined) rmSync(join(dir, name), { force: true });
      held.delete(name);
    },
    get: (containerId, ifName) => held.get(fileName(containerId, ifName)),
    list: () => [...held.values()],
  };
}

/**
 * Keeps the node's record in step with what the plugin was told, for every request served successfully: an
 * ADD's pools; a DEL ends the record unless the network keeps addresses beyond a DEL (`sticky_ips`), whose
 * record the pod's or the claim's deletion settles.
 */
export function recordServed(records: AttachmentRecords, log: Logger): (served: Served) => void {
  return ({ env, held, exitCode }) => {
    if (exitCode !== 0) return;
    const containerId = env.CNI_CONTAINERID ?? '';
    const ifName = env.CNI_IFNAME ?? '';
    try {
      if (env.CNI_COMMAND === 'ADD' && held !== undefined)
        records.add({ podRef: held.podRef, containerId, ifName, sites: held.sites, sticky: held.sticky });
      if (env.CNI_COMMAND === 'DEL' && records.get(containerId, ifName)?.sticky !== true)
        records.remove(containerId, ifName);
    } catch (e) {
      log.error('cannot update the attachment record', { error: errnoOf(e) ?? String(e) });
    }
  };
}
