// CNI_ARGS ("K=V;K2=V2"), read the way libcni's LoadArgs reads it for Whereabouts' argument struct:
// keys are case-sensitive, a key the plugin does not know is an error unless IgnoreUnknown is true
// (container runtimes on Kubernetes always send IgnoreUnknown=1).

import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';

export type CniArgs = {
  readonly podName?: string;
  readonly podNamespace?: string;
  readonly podUid?: string;
  readonly infraContainerId?: string;
  /** `IP=` static addresses, comma-separated CIDRs (raw text, checked with the config). */
  readonly ip?: string;
  /** `GATEWAY=` gateways for the static addresses, comma-separated. */
  readonly gateway?: string;
};

const known = {
  K8S_POD_NAME: 'podName',
  K8S_POD_NAMESPACE: 'podNamespace',
  K8S_POD_UID: 'podUid',
  K8S_POD_INFRA_CONTAINER_ID: 'infraContainerId',
  IP: 'ip',
  GATEWAY: 'gateway',
} as const satisfies Record<string, keyof CniArgs>;

const argError = (details: string) => fail(ipamError(CniCode.InvalidEnvironment, `CNI_ARGS: ${details}`));

function parseBool(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower === '1' || lower === 'true') return true;
  if (lower === '0' || lower === 'false') return false;
  return undefined;
}

export function parseCniArgs(text: string | undefined): Result<CniArgs> {
  const args: { -readonly [K in keyof CniArgs]: CniArgs[K] } = {};
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const pair of (text ?? '').split(';')) {
    if (pair === '') continue;
    const parts = pair.split('=');
    const [key, value] = parts;
    if (parts.length !== 2 || key === undefined || key === '' || value === undefined) {
      return argError(`"${pair}" is not a KEY=VALUE pair`);
    }
    if (key === 'IgnoreUnknown') {
      const flag = parseBool(value);
      if (flag === undefined) return argError(`IgnoreUnknown must be 1, 0, true or false, got "${value}"`);
      ignoreUnknown = flag;
    } else if (Object.hasOwn(known, key)) {
      args[known[key as keyof typeof known]] = value;
    } else {
      unknown.push(key);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    return argError(
      `unknown keys ${unknown.map((k) => `"${k}"`).join(', ')} (set IgnoreUnknown=1 to ignore them)`,
    );
  }
  return ok(args);
}

/** `<namespace>/<name>`, the pod reference stored with every allocation. */
export const podRefOf = (args: CniArgs): string | undefined =>
  args.podName === undefined || args.podName === ''
    ? undefined
    : `${args.podNamespace ?? ''}/${args.podName}`;
