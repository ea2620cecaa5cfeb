// What the scenarios on a real kube-apiserver (kube/control-plane.ts) share: request counts from the
// server's own /metrics, and a kubeconfig of a ServiceAccount holding what an IPAM plugin needs — ours
// (pools, reservations; its node agent: pods and nodes read cluster-wide) and Whereabouts' (its Lease).

import type { ControlPlane } from '../../kube/control-plane.ts';
import { group } from '../../src/codecs/ippool.ts';

/** Resources as `group/resource` (the core group empty: `/pods`). */
export type Counted = (group: string, resource: string) => boolean;

/** Every resource of the whereabouts group: pools, reservations, node slices. */
export const whereaboutsResources: Counted = (g) => g === group;

/**
 * What an IPAM plugin or its node agent touches: the whereabouts group, Leases (Whereabouts' leader
 * election), pods and nodes (the agent's watch and reads). kube-apiserver's own identity Lease (kube-system,
 * renewed every 10 s) is among the Leases: metrics carry no namespace.
 */
export const ipamResources: Counted = (g, resource) =>
  g === group ||
  (g === 'coordination.k8s.io' && resource === 'leases') ||
  (g === '' && (resource === 'pods' || resource === 'nodes'));

/** `apiserver_request_total` of the resources `counted` keeps (the whereabouts group's by default), by `VERB resource code`. */
export async function requestCounts(
  plane: ControlPlane,
  counted: Counted = whereaboutsResources,
): Promise<Map<string, number>> {
  const answer = await plane.request('GET', '/metrics');
  if (answer.status !== 200 || typeof answer.body !== 'string')
    throw new Error(`GET /metrics: ${answer.status}`);
  const counts = new Map<string, number>();
  for (const line of answer.body.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const close = line.lastIndexOf('}');
    const labels = new Map(
      [...line.slice(0, close).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    const resource = labels.get('resource') ?? '';
    if (!counted(labels.get('group') ?? '', resource)) continue;
    const sub = labels.get('subresource') ?? '';
    const key = `${labels.get('verb') ?? ''} ${resource}${sub === '' ? '' : `/${sub}`} ${labels.get('code') ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(close + 1).trim()));
  }
  return counts;
}

/**
 * Bytes the API server sent about one resource of the whereabouts group, from its own /metrics: the `_sum` of
 * the histograms `apiserver_response_sizes` (responses, by verb) and `apiserver_watch_events_sizes` (every
 * event to every watcher), as `metric verb` (`watch` for the events). Counts since the server started.
 */
export async function bytesSent(plane: ControlPlane, resource: string): Promise<Map<string, number>> {
  const answer = await plane.request('GET', '/metrics');
  if (answer.status !== 200 || typeof answer.body !== 'string')
    throw new Error(`GET /metrics: ${answer.status}`);
  const bytes = new Map<string, number>();
  for (const line of answer.body.split('\n')) {
    const metric = /^(apiserver_response_sizes|apiserver_watch_events_sizes)_sum\{/.exec(line)?.[1];
    if (metric === undefined) continue;
    const close = line.lastIndexOf('}');
    const labels = new Map(
      [...line.slice(0, close).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    if (labels.get('group') !== group || labels.get('resource') !== resource) continue;
    const key = `${metric} ${labels.get('verb') ?? 'watch'}`;
    bytes.set(key, (bytes.get(key) ?? 0) + Number(line.slice(close + 1).trim()));
  }
  return bytes;
}

export const difference = (after: Map<string, number>, before: Map<string, number>): Map<string, number> =>
  new Map(
    [...after]
      .map(([key, n]): [string, number] => [key, n - (before.get(key) ?? 0)])
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => a.localeCompare(b)),
  );

export const sum = (counts: Map<string, number>, keep: (key: string) => boolean = () => true): number =>
  [...counts].filter(([key]) => keep(key)).reduce((total, [, n]) => total + n, 0);

export const writeVerbs = new Set(['POST', 'PATCH', 'PUT', 'DELETE', 'APPLY']);

/** Creates an object as the admin; throws unless the server answers 201. */
async function created(plane: ControlPlane, path: string, body: unknown): Promise<unknown> {
  const answer = await plane.request('POST', path, body);
  if (answer.status !== 201) throw new Error(`POST ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/**
 * A kubeconfig of a ServiceAccount allowed what an IPAM plugin uses, as the plugin runs: not
 * system:masters, whose requests API Priority and Fairness exempts from its concurrency limits and queues.
 * In `namespace`: pools, reservations and node slices (ours and Whereabouts'), Leases (Whereabouts' leader
 * election: get, create, update), Events (the slice controller's). Cluster-wide (a ClusterRole named after
 * the namespace): reading pods and nodes, as our node agent does.
 */
export async function writerKubeconfig(plane: ControlPlane, namespace: string): Promise<string> {
  const name = 'whereabouts';
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}`;
  await created(plane, `/api/v1/namespaces/${namespace}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name },
  });
  await created(plane, `${rbac}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name },
    rules: [
      {
        apiGroups: [group],
        resources: ['ippools', 'overlappingrangeipreservations', 'nodeslicepools'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    ],
  });
  await created(plane, `${rbac}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
  const clusterRole = `whereabouts-${namespace}`;
  await created(plane, '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: clusterRole },
    rules: [{ apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
  });
  await created(plane, '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: clusterRole },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
  const request = (await created(plane, `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  })) as { status?: { token?: string } };
  const token = request.status?.token;
  if (token === undefined) throw new Error('TokenRequest answered no token');
  return plane.kubeconfig({ token, namespace });
}
