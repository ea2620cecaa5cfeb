// The node's own record of the attachments the agent made: which pod (or IPAMClaim) holds an address for
// which container interface, and in which pools. One small file per container interface in the state dir on
// the host (`/var/lib/whereabouts/attachments`); in memory when the agent has no state dir. The IPPool does
// not say which node an address is on, and the agent no longer receives every pool (src/agent/pool-cache.ts):
// this record is how it finds, after a pod's deletion or its own restart, the entries that are its to
// release — one read of each recorded pool, instead of a watch of them all.

import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReleaseSite } from '../ipam/transaction.ts';

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
  if (typeof value !== 'object' || value === null) return false;
  const site = value as Record<string, unknown>;
  return (
    typeof site.pool === 'string' &&
    (site.family === 4 || site.family === 6) &&
    (site.network === undefined || typeof site.network === 'string')
  );
};

/** A record as read back from a file: anything else is skipped (the cluster GC covers what it described). */
function decodeAttachment(value: unknown): Attachment | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
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

/** The records in `stateDir` (kept across restarts), or in memory when there is none. */
export function attachmentRecords(stateDir: string | undefined): AttachmentRecords {
  if (stateDir === undefined) {
    const held = new Map<string, Attachment>();
    return {
      add: (a) => held.set(fileName(a.containerId, a.ifName), a),
      remove: (containerId, ifName) => held.delete(fileName(containerId, ifName)),
      get: (containerId, ifName) => held.get(fileName(containerId, ifName)),
      list: () => [...held.values()],
    };
  }
  const dir = join(stateDir, 'attachments');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const read = (name: string): Attachment | undefined => {
    try {
      return decodeAttachment(JSON.parse(readFileSync(join(dir, name), 'utf8')));
    } catch {
      return undefined; // gone meanwhile, or torn by a power cut
    }
  };
  return {
    add(attachment) {
      const path = join(dir, fileName(attachment.containerId, attachment.ifName));
      writeFileSync(`${path}.tmp`, JSON.stringify(attachment), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    },
    remove(containerId, ifName) {
      rmSync(join(dir, fileName(containerId, ifName)), { force: true });
    },
    get: (containerId, ifName) => read(fileName(containerId, ifName)),
    list() {
      return readdirSync(dir)
        .filter((name) => name.endsWith('.json'))
        .flatMap((name) => read(name) ?? []);
    },
  };
}
