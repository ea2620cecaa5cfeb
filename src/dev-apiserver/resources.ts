// The kinds the embedded API server serves: the core objects the project uses, and custom resources loaded
// from CRD manifests (this project's `crds/`).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import type { Schema } from './schema.ts';

export type ResourceDef = {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Custom resources: schema-validated, PUT needs a resourceVersion, no strategic merge patch. */
  readonly custom: boolean;
  /** Whether PUT without metadata.resourceVersion is refused (custom resources and Leases). */
  readonly conditionalUpdateOnly: boolean;
  /** Whether `status` is written only through …/status (and ignored in writes of the object itself). */
  readonly statusSubresource?: boolean;
  readonly schema?: Schema;
  /** The field selector labels the kind supports, and their values for an object. */
  readonly fields: (object: Record<string, unknown>) => Record<string, string | undefined>;
};

type Obj = Record<string, unknown>;
const at = (object: Obj, ...path: string[]): unknown =>
  path.reduce<unknown>(
    (node, key) => (typeof node === 'object' && node !== null ? (node as Obj)[key] : undefined),
    object,
  );
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

const metadataFields = (o: Obj): Record<string, string | undefined> => ({
  'metadata.name': text(at(o, 'metadata', 'name')),
  'metadata.namespace': text(at(o, 'metadata', 'namespace')),
});

export const apiVersionOf = (def: ResourceDef): string =>
  def.group === '' ? def.version : `${def.group}/${def.version}`;

const core = (
  plural: string,
  kind: string,
  namespaced: boolean,
  extra?: (o: Obj) => Record<string, string | undefined>,
): ResourceDef => ({
  group: '',
  version: 'v1',
  plural,
  kind,
  namespaced,
  custom: false,
  conditionalUpdateOnly: false,
  fields: (o) => ({ ...metadataFields(o), ...extra?.(o) }),
});

export const builtInResources: readonly ResourceDef[] = [
  {
    ...core('pods', 'Pod', true, (o) => ({
      'spec.nodeName': text(at(o, 'spec', 'nodeName')) ?? '',
      'spec.host': text(at(o, 'spec', 'nodeName')) ?? '',
      'status.phase': text(at(o, 'status', 'phase')) ?? '',
    })),
    statusSubresource: true,
  },
  core('nodes', 'Node', false),
  core('namespaces', 'Namespace', false),
  core('events', 'Event', true, (o) => ({
    'involvedObject.kind': text(at(o, 'involvedObject', 'kind')) ?? '',
    'involvedObject.name': text(at(o, 'involvedObject', 'name')) ?? '',
    'involvedObject.namespace': text(at(o, 'involvedObject', 'namespace')) ?? '',
    'involvedObject.uid': text(at(o, 'involvedObject', 'uid')) ?? '',
    reason: text(o.reason) ?? '',
    type: text(o.type) ?? '',
  })),
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    kind: 'Lease',
    namespaced: true,
    custom: false,
    conditionalUpdateOnly: true,
    fields: metadataFields,
  },
  // Read by `sticky_ips` (the plugin's DEL, the agent, GC); no controller acts on them here.
  {
    group: 'apps',
    version: 'v1',
    plural: 'statefulsets',
    kind: 'StatefulSet',
    namespaced: true,
    custom: false,
    conditionalUpdateOnly: false,
    statusSubresource: true,
    fields: metadataFields,
  },
  // Multus' NetworkAttachmentDefinition (its CRD, which a cluster with Multus has), without a schema.
  {
    group: 'k8s.cni.cncf.io',
    version: 'v1',
    plural: 'network-attachment-definitions',
    kind: 'NetworkAttachmentDefinition',
    namespaced: true,
    custom: true,
    conditionalUpdateOnly: true,
    fields: metadataFields,
  },
  {
    group: 'events.k8s.io',
    version: 'v1',
    plural: 'events',
    kind: 'Event',
    namespaced: true,
    custom: false,
    conditionalUpdateOnly: false,
    fields: metadataFields,
  },
];

type Crd = {
  kind?: string;
  spec?: {
    group?: string;
    scope?: string;
    names?: { plural?: string; kind?: string };
    versions?: {
      name?: string;
      served?: boolean;
      schema?: { openAPIV3Schema?: Schema };
      subresources?: { status?: unknown };
    }[];
  };
};

/** Reads every CustomResourceDefinition in the YAML files of a directory, or in one YAML file. */
export function loadCrds(directory: string): ResourceDef[] {
  const defs: ResourceDef[] = [];
  const files = statSync(directory).isFile()
    ? [directory]
    : readdirSync(directory)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => join(directory, f));
  for (const file of files) {
    for (const document of loadAll(readFileSync(file, 'utf8')) as Crd[]) {
      if (document.kind !== 'CustomResourceDefinition') continue;
      const { group, scope, names, versions } = document.spec ?? {};
      if (group === undefined || names?.plural === undefined || names.kind === undefined) {
        throw new Error(`${file}: CustomResourceDefinition without group or names`);
      }
      for (const version of versions ?? []) {
        if (version.served === false || version.name === undefined) continue;
        defs.push({
          group,
          version: version.name,
          plural: names.plural,
          kind: names.kind,
          namespaced: scope !== 'Cluster',
          custom: true,
          conditionalUpdateOnly: true,
          ...(version.subresources?.status === undefined ? {} : { statusSubresource: true }),
          ...(version.schema?.openAPIV3Schema === undefined
            ? {}
            : { schema: version.schema.openAPIV3Schema }),
          fields: metadataFields,
        });
      }
    }
  }
  return defs;
}
