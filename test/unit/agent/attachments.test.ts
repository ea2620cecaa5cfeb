// The node's record of its attachments: kept across restarts in the state dir (or in memory without one),
// read back defensively — a torn or foreign file is skipped, never trusted — and older records (pod,
// container and interface only) still read.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachmentRecords, type Attachment } from '../../../src/agent/attachments.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wb-records-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const record: Attachment = {
  podRef: 'ns/web-0',
  containerId: 'abc123',
  ifName: 'net1',
  sites: [
    { pool: '10.1.0.0-16', family: 4, network: '' },
    { pool: 'fd00--64', family: 6 },
  ],
  sticky: true,
};

test.each([
  ['in the state dir', () => attachmentRecords(dir)],
  ['in memory', () => attachmentRecords(undefined)],
])('%s: added, read back, found by container and interface, removed', (_, open) => {
  const records = open();
  records.add(record);
  records.add({ podRef: 'ns/other', containerId: 'def', ifName: 'net1', sites: [], sticky: false });
  expect(records.get('abc123', 'net1')).toEqual(record);
  expect(records.get('abc123', 'net2')).toBeUndefined();
  expect(
    records
      .list()
      .map((r) => r.podRef)
      .sort(),
  ).toEqual(['ns/other', 'ns/web-0']);
  records.remove('abc123', 'net1');
  expect(records.list().map((r) => r.podRef)).toEqual(['ns/other']);
});

test('kept across a restart; a record of an older agent (no pools) reads as such', () => {
  attachmentRecords(dir).add(record);
  writeFileSync(
    join(dir, 'attachments', 'old_net1.json'),
    JSON.stringify({ podRef: 'ns/old', containerId: 'old', ifName: 'net1' }),
  );
  const again = attachmentRecords(dir);
  expect(again.get('abc123', 'net1')).toEqual(record);
  expect(again.get('old', 'net1')).toEqual({ podRef: 'ns/old', containerId: 'old', ifName: 'net1' });
});

test('torn, foreign or malformed files are skipped when read back, never trusted', () => {
  const records = attachmentRecords(dir);
  records.add(record);
  const files = join(dir, 'attachments');
  writeFileSync(join(files, 'torn_net1.json'), '{"podRef": "ns/x", "contai');
  writeFileSync(
    join(files, 'family_net1.json'),
    JSON.stringify({ ...record, containerId: 'f', sites: [{ pool: 'p', family: 5 }] }),
  );
  writeFileSync(
    join(files, 'sticky_net1.json'),
    JSON.stringify({ ...record, containerId: 's', sticky: 'yes' }),
  );
  writeFileSync(join(files, 'array_net1.json'), '[]');
  expect(readdirSync(files)).toHaveLength(5);
  expect(attachmentRecords(dir).list()).toEqual([record]);
});

test('a container ID of any characters makes a safe file name', () => {
  const records = attachmentRecords(dir);
  records.add({ ...record, containerId: '../../etc/passwd' });
  expect(readdirSync(join(dir, 'attachments'))).toEqual(['..%2F..%2Fetc%2Fpasswd_net1.json']);
  expect(records.get('../../etc/passwd', 'net1')?.podRef).toBe('ns/web-0');
});
