// What each CNI verb does once the environment and the configuration have been read and checked. Each verb
// takes the roles of the store it uses (src/store/store.ts): the transaction's pools, reservations and
// slices, the directory of pods and owners where a verb asks about them, the probe for STATUS alone.

import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Owner } from '../allocator/allocation.ts';
import { releasable } from '../allocator/assign.ts';
import { claimPodRef, isRetained, memberOf, unwanted } from '../allocator/keeper.ts';
import { elementFor, selectionElements } from './network-selection.ts';
import { podRefOf } from '../config/cni-args.ts';
import { checkForAdd, type Loaded, type ReleaseOnly } from '../config/load.ts';
import { readUntrustedText } from '../config/untrusted-file.ts';
import { CniCode, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { formatIP, ipOf, parseIP } from '../ip/address.ts';
import { deadlineIn, retrying } from '../ipam/retry.ts';
import {
  allocate,
  release,
  releaseAt,
  siteOf,
  type Disposition,
  type ReleaseSite,
  type TransactionContext,
  type TransactionStore,
} from '../ipam/transaction.ts';
import { isObject } from '../config/json.ts';
import { placesOf, type Place, type PlaceContext } from '../ipam/places.ts';
import type { RangeConfig } from '../config/ipam-config.ts';
import { storeFailure } from '../store/errors.ts';
import { networkNameOf } from '../codecs/names.ts';
import type { Logger } from '../log.ts';
import type { Directory, IpamStore, PoolStore, Probe, ReservationStore, SliceStore } from '../store/store.ts';
import type { Invocation } from './environment.ts';
import { addResult, type AddResult } from './result.ts';

/** How long each verb may take, all retries included. The runtime's own timeout is longer. */
export const deadlines = { ADD: 60_000, DEL: 45_000, CHECK: 20_000, GC: 60_000, STATUS: 10_000 } as const;

/** One verb's invocation, with the roles of the store it uses (`S`): every one when the plugin runs a verb. */
export type VerbContext<S = IpamStore> = {
  readonly loaded: Loaded;
  readonly invocation: Invocation;
  readonly store: S;
  readonly log: Logger;
  /** Environment, for NODENAME. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How long the verb may take, all retries included. */
  readonly deadlineMs: number;
  /** Told what a successful ADD holds (the node agent records it: src/agent/attachments.ts). */
  readonly onHeld?: (held: Held) => void;
};

/** What an attachment holds after its ADD: whose entries, in which pools, and whether a DEL may keep them. */
export type Held = {
  /** The entries' `podref`: the pod's, or its IPAMClaim's. */
  readonly podRef: string;
  readonly sites: readonly ReleaseSite[];
  /** `sticky_ips`: a DEL may keep the entries (a StatefulSet member's, an IPAMClaim's). */
  readonly sticky: boolean;
};

/** Where the verb finds a range's pools, within the verb's deadline. */
const placeContext = (ctx: VerbContext<SliceStore>): PlaceContext => ({
  store: ctx.store,
  deadline: deadlineIn(ctx.deadlineMs),
  ...(ctx.loaded.config.nodeSliceSize === undefined ? {} : { node: nodeName(ctx) }),
});

const transaction = (ctx: VerbContext<TransactionStore>): TransactionContext => ({
  ...placeContext(ctx),
  store: ctx.store,
  log: ctx.log,
});

/** Every pool of every range of the config (with node slices: of every slice the node holds). */
async function allPlaces(ctx: VerbContext<unknown>, t: PlaceContext): Promise<Result<Place[]>> {
  const places: Place[] = [];
  for (const index of ctx.loaded.config.ranges.keys()) {
    const found = await placesOf(t, ctx.loaded.config, index);
    if (!found.ok) return found;
    places.push(...found.value);
  }
  return ok(places);
}

export async function add(ctx: VerbContext<TransactionStore & Directory>): Promise<Result<AddResult>> {
  const { loaded, invocation } = ctx;
  const checked = checkForAdd(loaded);
  if (!checked.ok) return checked;
  const claim = loaded.config.stickyIps ? await claimOf(ctx, checked.value.podRef) : ok(undefined);
  if (!claim.ok) return claim;
  const owner: Owner = {
    containerId: invocation.containerId,
    podRef: claim.value?.podRef ?? checked.value.podRef,
    ifName: invocation.ifName,
  };
  const t = transaction(ctx);
  const allocated = await allocate(loaded.config, owner, t);
  if (!allocated.ok) return allocated;
  if (claim.value !== undefined) {
    const { namespace, name, pod } = claim.value;
    const ips = allocated.value.map(
      ({ range, address }) =>
        `${formatIP(ipOf(range.range.subnet.family, address))}/${range.range.subnet.prefix}`,
    );
    const written = await retrying(t.deadline, () =>
      ctx.store.writeClaimStatus(namespace, name, { ips, ownerPod: pod }),
    );
    if (!written.ok) return fail(storeFailure(written.error));
    // Deleted meanwhile: its address is released by whoever saw the deletion (the agent, GC), not handed out.
    if (written.value === 'gone')
      return fail(ipamError(CniCode.TryAgainLater, `IPAMClaim ${namespace}/${name} was deleted during ADD`));
  }
  ctx.onHeld?.({
    podRef: owner.podRef,
    sites: allocated.value.map((a) => siteOf(loaded.config, a)),
    sticky: loaded.config.stickyIps,
  });
  return ok(addResult(loaded.config, allocated.value));
}

/** The IPAMClaim an attachment's address belongs to (src/cni/network-selection.ts says how it is found). */
type ClaimOwner = {
  readonly podRef: string;
  readonly namespace: string;
  readonly name: string;
  readonly pod: string;
};

async function claimOf(ctx: VerbContext<Directory>, podRef: string): Promise<Result<ClaimOwner | undefined>> {
  const [namespace = '', pod = ''] = podRef.split('/');
  const deadline = deadlineIn(Math.min(ctx.deadlineMs / 3, 10_000));
  const annotation = await retrying(deadline, () => ctx.store.podNetworks(namespace, pod));
  if (!annotation.ok) return fail(storeFailure(annotation.error));
  const elements = annotation.value === undefined ? [] : selectionElements(annotation.value);
  const element = elementFor(elements ?? [], ctx.invocation.ifName);
  const name = element?.ipamClaimReference;
  if (name === undefined || name === '') return ok(undefined);
  const claim = await retrying(deadline, () => ctx.store.readClaim(namespace, name));
  if (!claim.ok) return fail(storeFailure(claim.error));
  if (claim.value === undefined)
    return fail(
      ipamError(
        CniCode.TryAgainLater,
        `pod ${podRef} interface ${ctx.invocation.ifName} names IPAMClaim ${namespace}/${name}, which does not exist (yet)`,
      ),
    );
  const network = ctx.loaded.config.cniName;
  if (claim.value.network !== network)
    return fail(
      ipamError(
        CniCode.InvalidConfig,
        `IPAMClaim ${namespace}/${name} is for network "${claim.value.network}", not this network "${network}": pod ${podRef} interface ${ctx.invocation.ifName} does not get its address`,
      ),
    );
  return ok({ podRef: claimPodRef(namespace, name), namespace, name, pod });
}

/**
 * DEL releases what the container's interface holds; nothing held is success. With `sticky_ips`, a
 * StatefulSet member's address is kept for its next incarnation while the set still wants the member —
 * decided from the set and the pod as the API server has them (the pod may be gone already); when they
 * cannot be read, the address is released as without `sticky_ips`, and the log says so. An IPAMClaim's
 * address is never released by DEL, of either pod of a migration (src/ipam/transaction.ts `releaseIn`).
 */
export async function del(ctx: VerbContext<TransactionStore & Directory>): Promise<Result<undefined>> {
  const { loaded, invocation } = ctx;
  const owner: Owner = {
    containerId: invocation.containerId,
    podRef: podRefOf(loaded.args) ?? '',
    ifName: invocation.ifName,
  };
  const disposition = loaded.config.stickyIps ? await stickyDisposition(ctx, owner.podRef) : 'release';
  const released = await release(loaded.config, owner, transaction(ctx), disposition);
  return released.ok ? ok(undefined) : released;
}

async function stickyDisposition(ctx: VerbContext<Directory>, podRef: string): Promise<Disposition> {
  const member = memberOf(podRef);
  if (member === undefined) return 'release';
  const facts = await retrying(deadlineIn(Math.min(ctx.deadlineMs / 3, 10_000)), () =>
    ctx.store.memberFacts(member),
  );
  if (!facts.ok) {
    ctx.log.error('sticky_ips: cannot read the StatefulSet of the pod; its address is released', {
      pod: podRef,
      error: facts.error.message,
    });
    return 'release';
  }
  const why = unwanted(member, facts.value);
  if (why !== undefined) ctx.log.verbose('sticky_ips: the address is not kept', { pod: podRef, why });
  return why === undefined ? 'retain' : 'release';
}

/** What DEL of a config ADD refuses works with: the config's release-only reading instead of the config. */
export type RefusedDelContext = Omit<VerbContext<PoolStore & ReservationStore>, 'loaded'> & {
  readonly release: ReleaseOnly;
};

/**
 * DEL of a config ADD refuses — a pod created under Whereabouts, which accepted it, must still be deletable.
 * Without a valid config the ranges are unknown, so every IPPool of the namespace is looked in: each entry of
 * the container ID and interface is released with the normal release (`releaseAt`: conditional writes, then
 * the reservation, only while it names the entry's pod and interface). The network name of each pool's
 * reservations is read from the pool's name, as GC and the agent read it.
 */
export async function delRefused(ctx: RefusedDelContext): Promise<Result<undefined>> {
  const { invocation, release: only } = ctx;
  const owner: Owner = {
    containerId: invocation.containerId,
    podRef: only.podRef,
    ifName: invocation.ifName,
  };
  const deadline = deadlineIn(ctx.deadlineMs);
  const listed = await retrying(deadline, () => ctx.store.listPools());
  if (!listed.ok) return fail(storeFailure(listed.error));
  const node = nodeNameFrom(ctx.env, only.configurationPath);
  const sites: ReleaseSite[] = listed.value
    .filter(({ snapshot }) => releasable(snapshot.allocations, invocation).length > 0)
    .map(({ range, snapshot }) => ({
      pool: snapshot.name,
      family: snapshot.family,
      network: networkNameOf(snapshot.name, range, [], node),
    }));
  const released = await releaseAt({ store: ctx.store, log: ctx.log, deadline }, sites, owner);
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
export async function check(ctx: VerbContext<PoolStore & SliceStore>): Promise<Result<undefined>> {
  const { loaded, invocation, store } = ctx;
  const previous = previousAddresses(loaded.netConf);
  const t = placeContext(ctx);
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
export const nodeName = (ctx: Pick<VerbContext<unknown>, 'env' | 'loaded'>): string =>
  nodeNameFrom(ctx.env, ctx.loaded.config.configurationPath);

function nodeNameFrom(env: VerbContext['env'], dir: string | undefined): string {
  const fromEnv = env.NODENAME;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
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
export async function gc(ctx: VerbContext<TransactionStore & Directory>): Promise<Result<undefined>> {
  const { loaded, store, log } = ctx;
  const valid = validAttachments(loaded.netConf);
  if (!valid.ok) return valid;
  const validKeys = new Set(valid.value.map((a) => `${a.containerId}\u0000${a.ifName}`));
  const node = nodeName(ctx);
  const pods = await store.podsOnNode(node);
  if (!pods.ok) return fail(storeFailure(pods.error));
  const onNode = new Set(pods.value.map((p) => p.ref));
  const stale: Owner[] = [];
  const places = await allPlaces(ctx, placeContext(ctx));
  if (!places.ok) return places;
  for (const { pool: name } of places.value) {
    const pool = await store.readPool(name);
    if (!pool.ok) return fail(storeFailure(pool.error));
    for (const a of pool.value?.allocations ?? []) {
      // A retained entry belongs to no container: the cluster GC and the agent decide it.
      if (isRetained(a)) continue;
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
export async function status(ctx: VerbContext<Probe>): Promise<Result<undefined>> {
  const probed = await ctx.store.probe();
  if (probed.ok) return ok(undefined);
  return fail(ipamError(CniCode.NotAvailable, probed.error.message));
}
