// Kubernetes RBAC, evaluated over rendered manifests: which rules a ServiceAccount holds, whether they
// allow a request, and which of them no request used.

import type { K8sObject } from './render.ts';

/** One API request as the authorizer sees it (namespace undefined: a cluster-wide request). */
export type Call = {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
};

export type Rule = {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
};

/** A rule as granted: where it applies (a namespace, or everywhere) and from which role. */
export type Grant = { readonly rule: Rule; readonly namespace: string | undefined; readonly role: string };

type Subject = { kind: string; name: string; namespace?: string };
type Binding = K8sObject & { roleRef: { kind: string; name: string }; subjects?: Subject[] };

/** Every rule bound to the ServiceAccount `namespace/name`, through RoleBindings and ClusterRoleBindings. */
export function grantsOf(objects: readonly K8sObject[], namespace: string, name: string): Grant[] {
  const roles = (kind: string, roleName: string, roleNamespace: string | undefined) =>
    objects.find(
      (o) =>
        o.kind === kind &&
        o.metadata.name === roleName &&
        (kind === 'ClusterRole' || o.metadata.namespace === roleNamespace),
    ) as (K8sObject & { rules?: Rule[] }) | undefined;
  return objects
    .filter((o): o is Binding => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
    .filter((b) =>
      (b.subjects ?? []).some(
        (s) =>
          s.kind === 'ServiceAccount' &&
          s.name === name &&
          (s.namespace ?? (b.kind === 'RoleBinding' ? b.metadata.namespace : undefined)) === namespace,
      ),
    )
    .flatMap((b) => {
      const where = b.kind === 'RoleBinding' ? b.metadata.namespace : undefined;
      const role = roles(b.roleRef.kind, b.roleRef.name, b.metadata.namespace);
      if (role === undefined)
        throw new Error(`${b.kind} ${b.metadata.name} refers to a missing ${b.roleRef.kind}`);
      return (role.rules ?? []).map((rule) => ({
        rule,
        namespace: where,
        role: `${role.kind}/${role.metadata.name}`,
      }));
    });
}

const has = (list: readonly string[] | undefined, value: string) =>
  list !== undefined && (list.includes('*') || list.includes(value));

/** Whether one grant allows one call, as the RBAC authorizer decides. */
export function allows(grant: Grant, call: Call): boolean {
  const { rule } = grant;
  if (grant.namespace !== undefined && grant.namespace !== call.namespace) return false;
  if (!has(rule.apiGroups, call.group) || !has(rule.resources, call.resource) || !has(rule.verbs, call.verb))
    return false;
  // resourceNames restrict requests that name an object; list, watch and create name none.
  if (rule.resourceNames !== undefined && rule.resourceNames.length > 0)
    return call.name !== undefined && rule.resourceNames.includes(call.name);
  return true;
}

export const describeCall = (c: Call): string =>
  `${c.verb} ${c.group === '' ? 'core' : c.group}/${c.resource}${c.namespace === undefined ? ' (all namespaces)' : ` in ${c.namespace}`}`;

/** Each (role, group, resource, verb) that the grants give, as one line; for finding unused permissions. */
export function permissionsOf(
  grants: readonly Grant[],
): { line: string; grant: Grant; verb: string; group: string; resource: string }[] {
  return grants.flatMap((grant) =>
    (grant.rule.apiGroups ?? []).flatMap((group) =>
      (grant.rule.resources ?? []).flatMap((resource) =>
        grant.rule.verbs.map((verb) => ({
          line: `${grant.role}: ${verb} ${group === '' ? 'core' : group}/${resource}`,
          grant,
          verb,
          group,
          resource,
        })),
      ),
    ),
  );
}

/** The permissions (one line each, as permissionsOf) of `grants` that none of `calls` used. */
export const unusedPermissions = (grants: readonly Grant[], calls: readonly Call[]): string[] =>
  permissionsOf(grants)
    .filter(
      ({ grant, verb, group, resource }) =>
        !calls.some((c) =>
          allows(
            { ...grant, rule: { ...grant.rule, apiGroups: [group], resources: [resource], verbs: [verb] } },
            c,
          ),
        ),
    )
    .map((p) => p.line);
