// The real RBAC authorizer's answers: whether it allows one request to a ServiceAccount
// (SubjectAccessReview, asked as the admin) and which rules it holds (SelfSubjectRulesReview, asked with
// the ServiceAccount's own token).

import { request } from 'node:https';
import type { ControlPlane } from '../../../kube/control-plane.ts';
import type { Call, Grant, Rule } from './rbac.ts';

const authorization = '/apis/authorization.k8s.io/v1';

/** The user and groups of `namespace/name` as kube-apiserver authenticates its tokens. */
const serviceAccountUser = (namespace: string, name: string) => ({
  user: `system:serviceaccount:${namespace}:${name}`,
  groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
});

/** Whether the real authorizer allows `call` to the ServiceAccount `namespace/name`, and why. */
export async function accessReview(
  plane: ControlPlane,
  namespace: string,
  name: string,
  call: Call,
): Promise<{ allowed: boolean; reason: string }> {
  const [resource = '', subresource] = call.resource.split('/');
  const answer = await plane.request('POST', `${authorization}/subjectaccessreviews`, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      ...serviceAccountUser(namespace, name),
      resourceAttributes: {
        verb: call.verb,
        group: call.group,
        resource,
        ...(subresource === undefined ? {} : { subresource }),
        ...(call.namespace === undefined ? {} : { namespace: call.namespace }),
        ...(call.name === undefined ? {} : { name: call.name }),
      },
    },
  });
  if (answer.status !== 201)
    throw new Error(`SubjectAccessReview: ${answer.status} ${JSON.stringify(answer.body)}`);
  const status = (answer.body as { status?: { allowed?: boolean; reason?: string } }).status;
  return { allowed: status?.allowed === true, reason: status?.reason ?? '' };
}

/** One POST with `token` as the bearer. */
function postAs(plane: ControlPlane, token: string, path: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${plane.url}${path}`,
      {
        method: 'POST',
        ca: plane.ca,
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json',
        },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => {
          if (response.statusCode !== 201) reject(new Error(`POST ${path}: ${response.statusCode} ${text}`));
          else resolve(JSON.parse(text));
        });
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * The resource rules the real authorizer gives the holder of `token` in `namespace` (its ClusterRoleBindings'
 * and that namespace's RoleBindings'), one line per verb, group and resource.
 */
export async function rulesReview(
  plane: ControlPlane,
  token: string,
  namespace: string,
): Promise<Set<string>> {
  const review = (await postAs(plane, token, `${authorization}/selfsubjectrulesreviews`, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectRulesReview',
    spec: { namespace },
  })) as { status?: { resourceRules?: Rule[]; incomplete?: boolean; evaluationError?: string } };
  if (review.status?.incomplete === true)
    throw new Error(`SelfSubjectRulesReview incomplete: ${review.status.evaluationError ?? ''}`);
  return ruleLines(review.status?.resourceRules ?? []);
}

/** Each (verb, group, resource, names) that the rules give, as one line. */
export function ruleLines(rules: readonly Rule[]): Set<string> {
  return new Set(
    rules.flatMap((rule) =>
      (rule.apiGroups ?? []).flatMap((group) =>
        (rule.resources ?? []).flatMap((resource) =>
          rule.verbs.map(
            (verb) =>
              `${verb} ${group === '' ? 'core' : group}/${resource}${
                rule.resourceNames !== undefined && rule.resourceNames.length > 0
                  ? ` [${[...rule.resourceNames].sort().join(', ')}]`
                  : ''
              }`,
          ),
        ),
      ),
    ),
  );
}

/** The lines of what the grants give (as ruleLines). */
export const grantLines = (grants: readonly Grant[]): Set<string> => ruleLines(grants.map((g) => g.rule));
