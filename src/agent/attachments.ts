// The node's own record of the attachments the agent made: one small file per container interface in the
// state dir on the host (`/var/lib/whereabouts/attachments`). The IPPool does not say which node an address
// is on, so without this record an agent that restarts — or a node that comes back after its pods were
// deleted elsewhere — could not tell which allocations were its own to release.

import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One container interface: who holds it. The pool entries are found again by these three. */
export type Attachment = { readonly podRef: string; readonly containerId: string; readonly ifName: string };

export type AttachmentRecords = {
  add(attachment: Attachment): void;
  remove(containerId: string, ifName: string): void;
  list(): Attachment[];
};

// Container IDs are hex in practice, but they are the runtime's to choose: keep a file name safe whatever.
const fileName = (containerId: string, ifName: string) =>
  `${encodeURIComponent(containerId)}_${encodeURIComponent(ifName)}.json`;

const isAttachment = (value: unknown): value is Attachment =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Attachment).podRef === 'string' &&
  typeof (value as Attachment).containerId === 'string' &&
  typeof (value as Attachment).ifName === 'string';

export function attachmentRecords(stateDir: string): AttachmentRecords {
  const dir = join(stateDir, 'attachments');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return {
    add(attachment) {
      const path = join(dir, fileName(attachment.containerId, attachment.ifName));
      writeFileSync(`${path}.tmp`, JSON.stringify(attachment), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    },
    remove(containerId, ifName) {
      rmSync(join(dir, fileName(containerId, ifName)), { force: true });
    },
    list() {
      return readdirSync(dir)
        .filter((name) => name.endsWith('.json'))
        .flatMap((name) => {
          try {
            const value: unknown = JSON.parse(readFileSync(join(dir, name), 'utf8'));
            return isAttachment(value) ? [value] : [];
          } catch {
            return []; // torn by a power cut: the cluster GC covers what it described
          }
        });
    },
  };
}
