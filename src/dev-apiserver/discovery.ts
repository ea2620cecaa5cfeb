// The embedded API server's discovery documents: what kubectl (and any client-go program) reads before it
// can name a resource — the version, the legacy core group (`/api`, `/api/v1`), the group list (`/apis`),
// each group (`/apis/<group>`) and each group version's resource list (`/apis/<group>/<version>`). Without
// them `kubectl get ippools -A` fails with "Couldn't get current server API group list". Only the
// unaggregated (v1) documents are served: kubectl asks for aggregated discovery first and falls back to
// these when the answer is plain `application/json`. There is no OpenAPI document; kubectl does without.

import type { ResourceDef } from './resources.ts';

/** What `/version` answers: a Kubernetes version kubectl does not warn about, marked as the embedded one. */
export const versionInfo = {
  major: '1',
  minor: '34',
  gitVersion: 'v1.34.0-whereabouts-ts-embedded',
  gitCommit: '',
  gitTreeState: 'clean',
  buildDate: '1970-01-01T00:00:00Z',
  goVersion: '',
  compiler: 'node',
  platform: `${process.platform}/${process.arch}`,
} as const;

/** The short names the real API server gives the built-in kinds (and Multus' CRD gives its own). */
const shortNames: Readonly<Record<string, readonly string[]>> = {
  '/pods': ['po'],
  '/nodes': ['no'],
  '/namespaces': ['ns'],
  '/events': ['ev'],
  'k8s.cni.cncf.io/network-attachment-definitions': ['net-attach-def'],
};

const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

const groupVersionOf = (group: string, version: string): string =>
  group === '' ? version : `${group}/${version}`;

/** The versions each group serves, in the order the definitions name them (the first is preferred). */
function groupsOf(defs: readonly ResourceDef[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const def of defs) {
    const versions = groups.get(def.group) ?? [];
    if (!versions.includes(def.version)) versions.push(def.version);
    groups.set(def.group, versions);
  }
  return groups;
}

function apiGroup(name: string, versions: readonly string[]) {
  const list = versions.map((version) => ({ groupVersion: groupVersionOf(name, version), version }));
  return { name, versions: list, preferredVersion: list[0] };
}

function resourceList(defs: readonly ResourceDef[], group: string, version: string) {
  const served = defs.filter((d) => d.group === group && d.version === version);
  if (served.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersionOf(group, version),
    resources: served.flatMap((d) => [
      {
        name: d.plural,
        singularName: d.kind.toLowerCase(),
        namespaced: d.namespaced,
        kind: d.kind,
        verbs,
        ...(shortNames[`${d.group}/${d.plural}`] === undefined
          ? {}
          : { shortNames: shortNames[`${d.group}/${d.plural}`] }),
      },
      ...(d.statusSubresource === true
        ? [
            {
              name: `${d.plural}/status`,
              singularName: '',
              namespaced: d.namespaced,
              kind: d.kind,
              verbs: ['get', 'patch', 'update'],
            },
          ]
        : []),
    ]),
  };
}

/** A document that is not JSON: sent as it is, with its content type. */
export class RawDocument {
  readonly contentType: string;
  readonly body: Buffer;
  constructor(contentType: string, body: Buffer) {
    this.contentType = contentType;
    this.body = body;
  }
}

/**
 * `kubectl apply` validates what it sends: it asks `/openapi/v3` whether the server validates fields itself,
 * and else validates against `/openapi/v2`, which it reads as protobuf. Both are served empty: no path
 * claims server-side field validation, and the empty v2 document (zero bytes of protobuf) names no kind,
 * which kubectl takes as "nothing to validate against" — the server's own schema validation still applies.
 */
const openApi: Readonly<Record<string, unknown>> = {
  '/openapi/v3': { paths: {} },
  '/openapi/v2': new RawDocument(
    'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
    Buffer.alloc(0),
  ),
};

/**
 * The discovery document at `pathname`, or undefined when the path is not one (a resource path, or a group
 * or version the server does not serve: the caller answers those 404 as kube-apiserver does).
 */
export function discoveryDocument(defs: readonly ResourceDef[], pathname: string): unknown {
  if (Object.hasOwn(openApi, pathname)) return openApi[pathname];
  const parts = pathname.split('/').filter((p) => p !== '');
  if (parts.length === 1 && parts[0] === 'version') return versionInfo;
  if (parts[0] === 'api') {
    if (parts.length === 1) {
      const core = groupsOf(defs).get('');
      return core === undefined
        ? undefined
        : {
            kind: 'APIVersions',
            versions: core,
            serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }],
          };
    }
    if (parts.length === 2) return resourceList(defs, '', parts[1] as string);
    return undefined;
  }
  if (parts[0] === 'apis' && parts.length <= 3) {
    const groups = groupsOf(defs);
    if (parts.length === 1)
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...groups]
          .filter(([name]) => name !== '')
          .map(([name, versions]) => apiGroup(name, versions)),
      };
    const versions = parts[1] === undefined || parts[1] === '' ? undefined : groups.get(parts[1]);
    if (versions === undefined) return undefined;
    if (parts.length === 2)
      return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(parts[1] as string, versions) };
    if (parts.length === 3) return resourceList(defs, parts[1] as string, parts[2] as string);
  }
  return undefined;
}
