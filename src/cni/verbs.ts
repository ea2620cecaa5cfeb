// What each CNI verb does once the environment and the configuration have been read and checked.

import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Owner } from '../allocator/allocation.ts';
import { releasable } from '../allocator/assign.ts';
import { podRefOf } from '../config/cni-args.ts';
import { checkForAdd, type Loaded } from '../config/load.ts';
import { readUntrustedText } from '../config/untrusted-file.ts';
import { CniCode, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { formatIP, ipOf, parseIP } from '../ip/address.ts';
import { deadlineIn } from '../ipam/retry.ts';
import { allocate, release, type TransactionContext } from '../ipam/transaction.ts';
import { isObject } from '../config/json.ts';
import { placesOf, type Place } from '../ipam/places.ts';
import type { RangeConfig } from '../config/ipam-config.ts';
import { storeFailure } from '../store/errors.ts';
import type { Logger } from '../log.ts';
import type { IpamStore } from '../store/store.ts';
import type { Invocation } from './environment.ts';
import { addResult, type AddResult } from './result.ts';

/** How long each verb may take, all retries included. The runtime's own timeout is longer. */
export const deadlines = { ADD: 60_000, DEL: 45_000, CHECK: 20_000, GC: 60_000, STATUS: 10_000 } as const;

export type VerbContext = {
  readonly loaded: Loaded;
  readonly invocation: Invocation;
  readonly store: IpamStore;
  readonly log: Logger;
  /** Environment, for NODENAME. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How long the verb may take, all retries included. */
  readonly deadlineMs: number;
};

const transaction = (ctx: VerbContext): TransactionContext => ({
  store: ctx.store,
  log: ctx.log,
  deadline: deadlineIn(ctx.deadlineMs),
  ...(ctx.loaded.config.nodeSliceSize === undefined ? {} : { node: nodeName(ctx) }),
});

/** Every pool of every range of the config (with node slices: of every slice the node holds). */
async function allPlaces(ctx: VerbContext, t: TransactionContext): Promise<Result<Place[]>> {
  const places: Place[] = [];
  for (const index of ctx.loaded.config.ranges.keys()) {
    const found = await placesOf(t, ctx.loaded.config, index);
    if (!found.ok) return found;
    places.push(...found.value);
  }
  return ok(places);
}

export async function add(ctx: VerbContext): Promise<Result<AddResult>> {
  const { loaded, invocation } = ctx;
  const checked = checkForAdd(loaded);
  if (!checked.ok) return checked;
  const owner: Owner = {
    containerId: invocation.containerId,
    podRef: checked.value.podRef,
    ifName: invocation.ifName,
  };
  const allocated = await allocate(loaded.config, owner, transaction(ctx));
  if (!allocated.ok) return allocated;
  return ok(addResult(loaded.config, allocated.value));
}

/** DEL releases what the container's interface holds; nothing held is success. */
export async function del(ctx: VerbContext): Promise<Result<undefined>> {
  const { loaded, invocation } = ctx;
  const owner: Owner = {
    containerId: invocation.containerId,
    podRef: podRefOf(loaded.args) ?? '',
    ifName: invocation.ifName,
  };
  const released = await release(loaded.config, owner, transaction(ctx));
  return released.ok ? ok(undefined) : released;
}

const checkFailed = (details: string): IpamError => ipamError(CniCode.CheckFailed, details);

/** The addresses of `prevResult` (CIDR strings), if it has any. */
function previousAddresses(netConf: Readonly<Record<string, unknown>>): Set<string> | undefined {
  const prev = netConf.prevResult;
  if (!isObject(prev) || !Array.isArray(prev.ips)) return undefined;
  return new Set(
    prev.ips.flatMap((entry) => {
      if (!isObject(entry) || typeof entry.address !== 'string') return [];
      const [ip, prefix] = entry.address.split('/');
      const parsed = parseIP(ip ?? '');
      return parsed === undefined ? [] : [`${formatIP(parsed)}/${prefix ?? ''}`];
    }),
  );
}

/** CHECK: the container's interface still holds one address per range, and prevResult shows each. */
export async function check(ctx: VerbContext): Promise<Result<undefined>> {
  const { loaded, invocation, store } = ctx;
  const previous = previousAddresses(loaded.netConf);
  const t = transaction(ctx);
  for (const index of loaded.config.ranges.keys()) {
    const places = await placesOf(t, loaded.config, index);
    if (!places.ok) return places;
    let found: { pool: string; text: string } | undefined;
    for (const { pool, range } of places.value) {
      const read = await store.readPool(pool);
      if (!read.ok) return fail(storeFailure(read.error));
      const allocation = releasable(read.value?.allocations ?? [], invocation)[0];
      if (allocation === undefined) continue;
      const { family, prefix } = range.range.subnet;
      found = { pool, text: `${formatIP(ipOf(family, allocation.address))}/${prefix}` };
      break;
    }
    if (found === undefined) {
      const pools = places.value.map((p) => p.pool).join(', ');
      return fail(
        checkFailed(
          `container ${invocation.containerId} interface ${invocation.ifName} holds no address in IPPool ${pools || `of ${(loaded.config.ranges[index] as RangeConfig).text} (the node has no slice)`}`,
        ),
      );
    }
    if (previous !== undefined && !previous.has(found.text)) {
      return fail(checkFailed(`${found.text} held in IPPool ${found.pool} is not in prevResult`));
    }
  }
  return ok(undefined);
}

/** Whereabouts' node name lookup: NODENAME, else `<configuration_path>/nodename`, else the host name. */
export function nodeName(ctx: VerbContext): string {
  const fromEnv = ctx.env.NODENAME;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const dir = ctx.loaded.config.configurationPath;
  if (dir !== undefined) {
    // The NAD names the directory: only a small regular file is read (never a FIFO or a device).
    const read = readUntrustedText(join(dir, 'nodename'), 4096);
    const text = read.ok ? read.value.trim() : '';
    if (text !== '') return text;
  }
  return hostname();
}

type Attachment = { containerId: string; ifName: string };

function validAttachments(netConf: Readonly<Record<string, unknown>>): Result<Attachment[]> {
  // libcni sends both names: the spec's `cni.dev/valid-attachments` and the older `cni.dev/attachments`.
  // No valid attachment at all arrives as `null` (Go marshals the runtime's empty list so) or as no key
  // (libcni's GC without arguments, as cnitool calls it): both mean none is valid, as in host-local.
  const list = netConf['cni.dev/valid-attachments'] ?? netConf['cni.dev/attachments'] ?? [];
  if (!Array.isArray(list))
    return fail(ipamError(CniCode.InvalidConfig, 'cni.dev/valid-attachments must be a list of attachments'));
  const attachments: Attachment[] = [];
  for (const item of list) {
    if (!isObject(item) || typeof item.containerID !== 'string' || typeof item.ifname !== 'string') {
      return fail(
        ipamError(
          CniCode.InvalidConfig,
          'cni.dev/valid-attachments entries must have containerID and ifname',
        ),
      );
    }
    attachments.push({ containerId: item.containerID, ifName: item.ifname });
  }
  return ok(attachments);
}

/**
 * GC: releases this node's stale allocations in the config's pools — those of pods scheduled on this node
 * whose (container ID, interface) the runtime no longer lists as valid. Pools are cluster-wide, and the
 * runtime only knows its own node's attachments: an allocation of a pod on another node, or of a pod the
 * API no longer knows (whose node cannot be told), is left to the cluster GC. Continues past failures.
 */
export async function gc(ctx: VerbContext): Promise<Result<undefined>> {
  const { loaded, store, log } = ctx;
  const valid = validAttachments(loaded.netConf);
  if (!valid.ok) return valid;
  const validKeys = new Set(valid.value.map((a) => `${a.containerId}\u0000${a.ifName}`));
  const node = nodeName(ctx);
  const pods = await store.podsOnNode(node);
  if (!pods.ok) return fail(storeFailure(pods.error));
  const onNode = new Set(pods.value.map((p) => p.ref));
  const stale: Owner[] = [];
  const places = await allPlaces(ctx, transaction(ctx));
  if (!places.ok) return places;
  for (const { pool: name } of places.value) {
    const pool = await store.readPool(name);
    if (!pool.ok) return fail(storeFailure(pool.error));
    for (const a of pool.value?.allocations ?? []) {
      if (onNode.has(a.podRef) && !validKeys.has(`${a.containerId}\u0000${a.ifName}`)) stale.push(a);
    }
  }
  let firstError: IpamError | undefined;
  const seen = new Set<string>();
  for (const owner of stale) {
    const key = `${owner.containerId}\u0000${owner.ifName}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const released = await release(loaded.config, owner, transaction(ctx));
    if (released.ok)
      log.verbose('GC released a stale allocation', {
        pod: owner.podRef,
        container: owner.containerId,
        ifname: owner.ifName,
        node,
      });
    else firstError ??= released.error;
  }
  return firstError === undefined ? ok(undefined) : fail(firstError);
}

/** STATUS: ready when the API server answers and serves the whereabouts resources. */
export async function status(ctx: VerbContext): Promise<Result<undefined>> {
  const probed = await ctx.store.probe();
  if (probed.ok) return ok(undefined);
  return fail(ipamError(CniCode.NotAvailable, probed.error.message));
}
