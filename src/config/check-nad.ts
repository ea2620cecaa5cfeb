// Checks NetworkAttachmentDefinitions before they are used: every Whereabouts IPAM config in them, through
// the same loader the plugin runs, so an operator sees the plugin's own error (code and message) at review
// time instead of at the next pod's ADD. For a migration from Whereabouts above all: whereabouts-ts refuses
// unknown keys and bad values that Whereabouts let through. Unlike the plugin, which stops at the first
// error, a check reports every error of a config at once (the first is the one the plugin would give),
// names host-local's keys by their Whereabouts names, says why a NAD was skipped, and warns about a bridge
// that would take an address the pool hands out.

import { formatIP, ipOf } from '../ip/address.ts';
import { networkOf } from '../ip/cidr.ts';
import { rangeOffers } from '../ip/range.ts';
import type { IpamError } from '../errors.ts';
import { parseCniArgs } from './cni-args.ts';
import { readFields } from './fields.ts';
import { readFlatFile } from './flat-file.ts';
import type { IpamConfig } from './ipam-config.ts';
import { loadConfig } from './load.ts';
import { mergeFlatFile } from './merge.ts';
import { ipamSchema, validateAll } from './validate.ts';

export type CheckError = { readonly code: number; readonly error: string };

export type NadCheck =
  | { readonly nad: string; readonly plugin: string; readonly ok: true; readonly warnings: readonly string[] }
  | {
      readonly nad: string;
      readonly plugin: string;
      readonly ok: false;
      /** The first error: the code and message the plugin gives on ADD. */
      readonly code: number;
      readonly error: string;
      /** Every error found, the first included. */
      readonly errors: readonly CheckError[];
    };

type Nad = { metadata?: { namespace?: string; name?: string }; spec?: { config?: unknown } };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The NADs in a parsed document: one NAD, a `List`, or an array of them. */
export function nadsIn(document: unknown): Nad[] {
  if (Array.isArray(document)) return document.flatMap(nadsIn);
  if (!isObject(document)) return [];
  if (Array.isArray(document.items)) return document.items.flatMap(nadsIn);
  return document.kind === 'NetworkAttachmentDefinition' ? [document] : [];
}

/** The objects of a parsed document that are not NADs, as `Kind namespace/name`: what validate skipped. */
export function otherObjectsIn(document: unknown): string[] {
  if (Array.isArray(document)) return document.flatMap(otherObjectsIn);
  if (!isObject(document)) return document === null || document === undefined ? [] : ['a non-object'];
  if (Array.isArray(document.items)) return document.items.flatMap(otherObjectsIn);
  if (document.kind === 'NetworkAttachmentDefinition') return [];
  const meta = isObject(document.metadata) ? document.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '?';
  const where = typeof meta.namespace === 'string' ? `${meta.namespace}/${name}` : name;
  return [`${typeof document.kind === 'string' ? document.kind : 'an object without kind'} ${where}`];
}

/** A plugin config whose `ipam` is Whereabouts'. */
export type WhereaboutsPlugin = Record<string, unknown> & { readonly ipam: Record<string, unknown> };

const usesWhereabouts = (plugin: Record<string, unknown>): plugin is WhereaboutsPlugin =>
  isObject(plugin.ipam) && plugin.ipam.type === 'whereabouts';

/**
 * The plugin configs of a parsed `spec.config` that use Whereabouts: the config itself, or each plugin of a
 * conflist (with the list's `cniVersion` and `name`, as libcni passes them).
 */
export function whereaboutsPlugins(config: unknown): WhereaboutsPlugin[] {
  if (!isObject(config)) return [];
  const plugins: Record<string, unknown>[] = Array.isArray(config.plugins)
    ? config.plugins.filter(isObject).map((p) => ({ ...p, cniVersion: config.cniVersion, name: config.name }))
    : [config];
  return plugins.filter(usesWhereabouts);
}

const nadId = (nad: Nad) => `${nad.metadata?.namespace ?? 'default'}/${nad.metadata?.name ?? '?'}`;

/** Why a NAD has nothing for the plugin to check, or undefined when it has a Whereabouts config (or a bad one). */
export function skipReason(nad: Nad): string | undefined {
  const text = nad.spec?.config;
  if (text === undefined || text === null || text === '')
    return 'no spec.config: Multus reads this network from a file on the nodes, which is not checked here';
  if (typeof text !== 'string') return undefined;
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(config) || whereaboutsPlugins(config).length > 0) return undefined;
  const plugins = Array.isArray(config.plugins) ? config.plugins.filter(isObject) : [config];
  const ipamOf = (p: Record<string, unknown>) =>
    `${typeof p.type === 'string' ? p.type : '?'}: ${
      isObject(p.ipam) ? `ipam ${typeof p.ipam.type === 'string' ? p.ipam.type : 'without type'}` : 'no ipam'
    }`;
  return `no plugin uses whereabouts IPAM (${plugins.map(ipamOf).join('; ') || 'no plugins'})`;
}

/**
 * host-local's IPAM keys, by lower-case name, and what a Whereabouts config says instead: a NAD moved from
 * host-local to whereabouts by changing `type` alone keeps them, and Whereabouts' own decoder ignored them.
 */
const hostLocalKeys: Readonly<Record<string, string>> = {
  subnet: 'Whereabouts calls it "range"',
  rangestart: 'Whereabouts calls it "range_start"',
  rangeend: 'Whereabouts calls it "range_end"',
  ranges: 'Whereabouts calls it "ipRanges", a list of {"range", "range_start", "range_end", "exclude"}',
  datadir: 'Whereabouts has none: allocations are kept in the Kubernetes API; remove it',
  resolvconf: 'Whereabouts reads no resolv.conf: set "dns" instead',
};

const unknownKey = /^unknown key ("(?:[^"\\]|\\.)*")/;

/** A message about an unknown key that is host-local's, with what to write instead of a guess. */
export function withHostLocalHint(message: string): string {
  const quoted = unknownKey.exec(message)?.[1];
  if (quoted === undefined) return message;
  let key: unknown;
  try {
    key = JSON.parse(quoted);
  } catch {
    return message;
  }
  const hint = typeof key === 'string' ? hostLocalKeys[key.toLowerCase()] : undefined;
  if (hint === undefined) return message;
  return `${message.replace(/ \(did you mean "[^"]*"\?\)$/, '')}: this is host-local's key; ${hint}`;
}

const asCheckError = (e: IpamError): CheckError => ({ code: e.code, error: withHostLocalHint(e.details) });

/**
 * The ipam keys the plugin would reject one by one (unknown, or of the wrong type), each with its error,
 * and the ipam object without them, so that the rest of the config can still be checked.
 */
function badKeys(ipam: Record<string, unknown>): { errors: CheckError[]; rest: Record<string, unknown> } {
  const errors: CheckError[] = [];
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(ipam)) {
    const alone = readFields({ [key]: value }, ipamSchema, { where: 'ipam', quoteValues: true });
    if (alone.ok) rest[key] = value;
    else errors.push(asCheckError(alone.error));
  }
  return { errors, rest };
}

/**
 * The errors validateAll finds in a config whose keys are all known: what loadConfig validates, from the
 * same merge of the NAD's keys with the flat file. Empty when the config fails before validation.
 */
function validationErrors(plugin: Record<string, unknown>, flatFilePaths: readonly string[]): CheckError[] {
  const nad = readFields(plugin.ipam, ipamSchema, { where: 'ipam', quoteValues: true });
  if (!nad.ok) return [];
  const flat = readFlatFile(nad.value.get('configuration_path') as string | undefined, flatFilePaths);
  if (!flat.ok) return [];
  let fields = nad.value;
  if (flat.value !== undefined) {
    const flatFields = readFields(flat.value.content, ipamSchema, {
      where: `the flat file ${flat.value.path}`,
      quoteValues: false,
    });
    if (!flatFields.ok) return [];
    fields = mergeFlatFile(nad.value, flatFields.value);
  }
  const args = parseCniArgs(undefined);
  if (!args.ok) return [];
  const all = validateAll(fields, {
    cniName: typeof plugin.name === 'string' ? plugin.name : '',
    cniVersion: typeof plugin.cniVersion === 'string' ? plugin.cniVersion : '',
    args: args.value,
    requestedIps: [],
    quoteValues: true,
  });
  return all.ok ? [] : all.errors.map(asCheckError);
}

/**
 * A bridge with `isGateway` gives itself the gateway of the IPAM result, else the first address of the
 * subnet — which the pool hands out too unless it is excluded or before range_start.
 */
function bridgeWarnings(plugin: Record<string, unknown>, config: IpamConfig): string[] {
  if (plugin.type !== 'bridge' || plugin.isGateway !== true || config.gateway !== undefined) return [];
  return config.ranges.map((r) => {
    const { subnet } = r.range;
    const first = ipOf(subnet.family, networkOf(subnet) + 1n);
    const taken = rangeOffers(r.range, first.value)
      ? `, which the pool also hands out to pods: set ipam.gateway to ${formatIP(first)} and keep it out of the range (exclude ${formatIP(first)}/${subnet.family === 4 ? 32 : 128}, or a range_start after it)`
      : `; set ipam.gateway to ${formatIP(first)} so that pods are told their gateway`;
    return `bridge "isGateway" is set but ipam has no "gateway": the bridge takes the first address of ${r.text}, ${formatIP(first)}${taken}`;
  });
}

/** Each Whereabouts config in the NAD, loaded as the plugin loads it, with every error it has. */
export function checkNad(nad: Nad, flatFilePaths: readonly string[]): NadCheck[] {
  const id = nadId(nad);
  const failed = (plugin: string, errors: readonly CheckError[]): NadCheck => {
    const [first = { code: 7, error: 'invalid' }] = errors;
    return { nad: id, plugin, ok: false, code: first.code, error: first.error, errors };
  };
  let config: unknown;
  try {
    config = typeof nad.spec?.config === 'string' ? JSON.parse(nad.spec.config) : undefined;
  } catch {
    return [failed('', [{ code: 6, error: 'spec.config is not valid JSON' }])];
  }
  if (!isObject(config)) return [failed('', [{ code: 6, error: 'spec.config is not a JSON object' }])];
  return whereaboutsPlugins(config).map((p) => {
    const plugin = typeof p.type === 'string' ? p.type : '?';
    // Keys the plugin rejects on their own come first, as its loader reads them first; the rest of the
    // config is then checked without them.
    const keys = badKeys(p.ipam);
    const cleaned = { ...p, ipam: keys.rest };
    const loaded = loadConfig({ stdin: JSON.stringify(cleaned), cniArgs: undefined, flatFilePaths });
    if (loaded.ok) {
      if (keys.errors.length > 0) return failed(plugin, keys.errors);
      return {
        nad: id,
        plugin,
        ok: true,
        warnings: [...loaded.value.warnings, ...bridgeWarnings(p, loaded.value.config)],
      };
    }
    // The loader's error; then, when it came from validation, the others validation finds.
    const first = asCheckError(loaded.error);
    const all = validationErrors(cleaned, flatFilePaths);
    const more = all[0]?.error === first.error ? all.slice(1) : [];
    return failed(plugin, [...keys.errors, first, ...more]);
  });
}
