// CNI_ARGS ("K=V;K2=V2"), read the way libcni's LoadArgs reads it for Whereabouts' argument struct:
// keys are case-sensitive, a key the plugin does not know is an error unless IgnoreUnknown is true
// (container runtimes on Kubernetes always send IgnoreUnknown=1).

import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';
import { quoteText } from './json.ts';
import { isDns1123Label, isDns1123Subdomain } from './kube-names.ts';

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

/** How many unknown keys an error names. */
const shownKeys = 5;

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
      return argError(`${quoteText(pair)} is not a KEY=VALUE pair`);
    }
    if (key === 'IgnoreUnknown') {
      const flag = parseBool(value);
      if (flag === undefined)
        return argError(`IgnoreUnknown must be 1, 0, true or false, got ${quoteText(value)}`);
      ignoreUnknown = flag;
    } else if (Object.hasOwn(known, key)) {
      args[known[key as keyof typeof known]] = value;
    } else {
      unknown.push(key);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    return argError(
      `unknown keys ${unknown
        .slice(0, shownKeys)
        .map((k) => quoteText(k, 32))
        .join(', ')}${unknown.length > shownKeys ? ` and ${unknown.length - shownKeys} more` : ''} ` +
        '(set IgnoreUnknown=1 to ignore them)',
    );
  }
  return ok(args);
}

/** `<namespace>/<name>`, the pod reference stored with every allocation. */
export const podRefOf = (args: CniArgs): string | undefined =>
  args.podName === undefined || args.podName === ''
    ? undefined
    : `${args.podNamespace ?? ''}/${args.podName}`;

/**
 * The pod reference ADD stores with its allocation, from K8S_POD_NAMESPACE and K8S_POD_NAME — both
 * required, and valid Kubernetes names (a namespace is a DNS-1123 label, a pod name a DNS-1123
 * subdomain), so that nothing else is ever stored as a podref. DEL and CHECK need neither: they match the
 * container ID and interface.
 */
export function podRefFor(args: CniArgs): Result<string> {
  const { podNamespace, podName } = args;
  if (podNamespace === undefined || podName === undefined || podName === '') {
    return fail(
      ipamError(
        CniCode.InvalidEnvironment,
        'CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME: every allocation records its pod',
      ),
    );
  }
  if (!isDns1123Label(podNamespace)) {
    return argError(
      `K8S_POD_NAMESPACE ${quoteText(podNamespace)} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63 characters)`,
    );
  }
  if (!isDns1123Subdomain(podName)) {
    return argError(
      `K8S_POD_NAME ${quoteText(podName)} is not a Kubernetes pod name (lower-case letters, digits, '-' and '.', at most 253 characters)`,
    );
  }
  return ok(`${podNamespace}/${podName}`);
}
