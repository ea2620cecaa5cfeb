// The whole configuration of one invocation: the network config from stdin, CNI_ARGS, the optional flat file
// and the runtime's `runtimeConfig.ips`, in Whereabouts' order and with its precedence.

import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';
import { rangeCapacity } from '../ip/range.ts';
import { parseCniArgs, podRefFor, podRefOf, type CniArgs } from './cni-args.ts';
import { readFields } from './fields.ts';
import { defaultFlatFilePaths, readFlatFile } from './flat-file.ts';
import { logLevels, type IpamConfig, type LogLevel } from './ipam-config.ts';
import { describeType, isObject, parseJson } from './json.ts';
import { mergeFlatFile } from './merge.ts';
import { ipamSchema, validate } from './validate.ts';

export type LoadInput = {
  /** The network configuration JSON as read from stdin. */
  readonly stdin: string;
  /** The CNI_ARGS environment variable. */
  readonly cniArgs: string | undefined;
  /** Where to look for the flat file after the NAD's `configuration_path`; Whereabouts' paths by default. */
  readonly flatFilePaths?: readonly string[];
};

export type Loaded = {
  readonly config: IpamConfig;
  readonly args: CniArgs;
  /** The network config as parsed, for the keys other verbs read (prevResult, valid attachments). */
  readonly netConf: Readonly<Record<string, unknown>>;
  /** The flat file that filled in keys, if one was found. */
  readonly flatFile?: string;
  readonly warnings: readonly string[];
};

const decodeError = (details: string) => fail(ipamError(CniCode.DecodeFailure, details));
const configError = (details: string) => fail(ipamError(CniCode.InvalidConfig, details));

function requestedIps(netConf: Readonly<Record<string, unknown>>): Result<string[]> {
  const runtimeConfig = netConf.runtimeConfig;
  if (runtimeConfig === undefined || runtimeConfig === null) return ok([]);
  if (!isObject(runtimeConfig))
    return configError(`runtimeConfig must be an object, got ${describeType(runtimeConfig)}`);
  const ips = runtimeConfig.ips;
  if (ips === undefined || ips === null) return ok([]);
  if (!Array.isArray(ips) || !ips.every((ip) => typeof ip === 'string')) {
    return configError('runtimeConfig.ips must be a list of IP addresses');
  }
  return ok(ips);
}

const sameError = (result: Result<unknown>, details: string): boolean =>
  !result.ok && result.error.details === details;

export function loadConfig(input: LoadInput): Result<Loaded> {
  const parsed = parseJson(input.stdin);
  if (!parsed.ok) return decodeError(`the network configuration on stdin is not valid JSON: ${parsed.error}`);
  const netConf = parsed.value;
  if (!isObject(netConf))
    return decodeError(`the network configuration must be a JSON object, got ${describeType(netConf)}`);
  if (netConf.ipam === undefined || netConf.ipam === null)
    return configError(`the network configuration has no "ipam" key`);
  const { cniVersion = '', name = '' } = netConf;
  if (typeof cniVersion !== 'string')
    return configError(`cniVersion must be a string, got ${describeType(cniVersion)}`);
  if (typeof name !== 'string') return configError(`name must be a string, got ${describeType(name)}`);

  const args = parseCniArgs(input.cniArgs);
  if (!args.ok) return args;
  const nad = readFields(netConf.ipam, ipamSchema, { where: 'ipam', quoteValues: true });
  if (!nad.ok) return nad;

  const configurationPath = nad.value.get('configuration_path') as string | undefined;
  const flat = readFlatFile(configurationPath, input.flatFilePaths ?? defaultFlatFilePaths);
  if (!flat.ok) return flat;
  let fields = nad.value;
  if (flat.value !== undefined) {
    const flatFields = readFields(flat.value.content, ipamSchema, {
      where: `the flat file ${flat.value.path}`,
      quoteValues: false,
    });
    if (!flatFields.ok) return flatFields;
    fields = mergeFlatFile(nad.value, flatFields.value);
  }

  const ips = requestedIps(netConf);
  if (!ips.ok) return ips;
  const context = { cniName: name, cniVersion, args: args.value, requestedIps: ips.value, quoteValues: true };
  const validated = validate(fields, context);
  if (!validated.ok) {
    // A file named by the NAD's configuration_path is untrusted: an error about a value it supplied must
    // not quote that value. Errors that the NAD's own keys produce as well are safe to show.
    const untrusted = flat.value?.namedByNad === true ? flat.value.path : undefined;
    if (untrusted !== undefined && !sameError(validate(nad.value, context), validated.error.details)) {
      return configError(
        `a key taken from the flat file ${untrusted} (named by ipam.configuration_path) is invalid; ` +
          'its value is not shown because the NAD names that file',
      );
    }
    return validated;
  }
  return ok({
    config: validated.value.config,
    args: args.value,
    netConf,
    warnings: validated.value.warnings,
    ...(flat.value === undefined ? {} : { flatFile: flat.value.path }),
  });
}

/**
 * What a DEL of a config that `loadConfig` refuses still needs, to release what the attachment holds: the
 * pod (from CNI_ARGS) and where the API server is (`kubernetes.kubeconfig` of the NAD, else of the flat
 * file), with the log settings. Read leniently — whatever else the config says wrong — but only from a
 * Whereabouts network config: stdin a JSON object whose `ipam.type` is "whereabouts", and CNI_ARGS readable
 * and naming the pod. Keys are matched as Go matched them, an exact match first, then case-insensitively.
 */
export type ReleaseOnly = {
  readonly podRef: string;
  readonly kubeconfig?: string;
  readonly configurationPath?: string;
  readonly flatFile?: string;
  readonly logFile?: string;
  readonly logLevel: LogLevel;
};

function lenientField(object: Readonly<Record<string, unknown>>, key: string): unknown {
  if (Object.hasOwn(object, key)) return object[key];
  const lower = key.toLowerCase();
  const found = Object.keys(object).find((k) => k.toLowerCase() === lower);
  return found === undefined ? undefined : object[found];
}

const lenientString = (object: unknown, key: string): string | undefined => {
  const value = isObject(object) ? lenientField(object, key) : undefined;
  return typeof value === 'string' && value !== '' ? value : undefined;
};

export function loadForRelease(input: LoadInput): Result<ReleaseOnly> {
  const refused = (why: string) => configError(`the configuration cannot be read even for a release: ${why}`);
  const parsed = parseJson(input.stdin);
  const ipam = parsed.ok && isObject(parsed.value) ? lenientField(parsed.value, 'ipam') : undefined;
  if (!isObject(ipam)) return refused('no ipam object');
  if (lenientString(ipam, 'type') !== 'whereabouts') return refused('ipam.type is not "whereabouts"');
  const args = parseCniArgs(input.cniArgs);
  if (!args.ok) return args;
  const podRef = podRefOf(args.value);
  if (podRef === undefined) return refused('CNI_ARGS names no pod (K8S_POD_NAME)');
  const configurationPath = lenientString(ipam, 'configuration_path');
  const flat = readFlatFile(configurationPath, input.flatFilePaths ?? defaultFlatFilePaths);
  if (!flat.ok) return flat;
  const flatContent = flat.value?.content;
  // The NAD's value wins wherever it says something, as in mergeFlatFile.
  const either = (read: (source: unknown) => string | undefined): string | undefined =>
    read(ipam) ?? read(flatContent);
  const kubeconfig = either((source) =>
    lenientString(isObject(source) ? lenientField(source, 'kubernetes') : undefined, 'kubeconfig'),
  );
  const logFile = either((source) => lenientString(source, 'log_file'));
  const level = (either((source) => lenientString(source, 'log_level')) ?? '').toLowerCase();
  return ok({
    podRef,
    logLevel: (logLevels as readonly string[]).includes(level) ? (level as LogLevel) : 'verbose',
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    ...(configurationPath === undefined ? {} : { configurationPath }),
    ...(flat.value === undefined ? {} : { flatFile: flat.value.path }),
    ...(logFile === undefined ? {} : { logFile }),
  });
}

/**
 * What ADD needs beyond a valid config, decided before anything is read or written: the pod (valid
 * Kubernetes names), and something to hand out — a range or a static address — with every range able to
 * give an address (one wholly excluded can only give a requested one). DEL needs none of this: a pod of a
 * network that never gave it anything must still be deletable.
 */
export function checkForAdd(loaded: Loaded): Result<{ readonly podRef: string }> {
  const podRef = podRefFor(loaded.args);
  if (!podRef.ok) return podRef;
  const { ranges, addresses } = loaded.config;
  if (ranges.length === 0 && addresses.length === 0) {
    return configError(
      'ipam has no range: set ipam.range (such as "10.10.0.0/24") or ipam.ipRanges — ipam.range is empty or ' +
        'missing here and in the flat file, so ADD would give the pod no address',
    );
  }
  for (const r of ranges) {
    if (r.requested === undefined && rangeCapacity(r.range) === 0n) {
      return configError(
        `range ${r.text} has no address to hand out: every usable address is excluded or outside ` +
          'range_start/range_end; shorten exclude or widen the range (only a requested address, runtimeConfig.ips, can be given from it)',
      );
    }
  }
  return ok({ podRef: podRef.value });
}
