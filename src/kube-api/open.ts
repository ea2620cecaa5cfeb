// Which KubeApi a command-line tool gets: the lean HTTP client wherever the kubeconfig allows it (a
// fraction of the memory and start-up of client-node, which matters to a GC job listing 100,000 pods), and
// client-node for kubeconfigs only it understands (exec and auth-provider plugins).

import { ok, type Result } from '../errors.ts';
import type { KubeApi } from './api.ts';
import { httpApi } from './http-api.ts';
import { connect } from './kube.ts';
import { loadCredentials, needsPlugin } from './kubeconfig.ts';

export function openKubeApi(
  kubeconfig: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  requestTimeoutMs = 30_000,
): Result<KubeApi> {
  const credentials = loadCredentials(kubeconfig, env);
  if (credentials.ok) return ok(httpApi(credentials.value, requestTimeoutMs));
  if (credentials.error.details.includes(needsPlugin)) return connect({ kubeconfig, requestTimeoutMs });
  return credentials;
}
