// What the scenarios on a real kube-apiserver (kube/control-plane.ts) share: request counts from the
// server's own /metrics, and a kubeconfig of a ServiceAccount that may write pools and reservations.

import type { ControlPlane } from '../../kube/control-plane.ts';
import { group } from '../../src/store/ippool.ts';

/** `apiserver_request_total` of the whereabouts group, by `VERB resource code`. */
export async function requestCounts(plane: ControlPlane): Promise<Map<string, number>> {
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
    if (labels.get('group') !== group) continue;
    const sub = labels.get('subresource') ?? '';
    const key = `${labels.get('verb') ?? ''} ${labels.get('resource') ?? ''}${sub === '' ? '' : `/${sub}`} ${labels.get('code') ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(close + 1).trim()));
  }
  return counts;
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
 * A kubeconfig of a ServiceAccount allowed the verbs the plugin uses on pools and reservations of
 * `namespace`, as the plugin runs: not system:masters, whose requests API Priority and Fairness exempts
 * from its concurrency limits and queues.
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
        resources: ['ippools', 'overlappingrangeipreservations'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
    ],
  });
  await created(plane, `${rbac}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
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
