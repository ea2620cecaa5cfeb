import { renderKubeconfig } from '../kube-api/kubeconfig.ts';

/**
 * A kubeconfig for a plain-HTTP API server such as the embedded one. `insecure-skip-tls-verify` is what
 * lets client-node speak `http:`; the namespace of the context is where whereabouts keeps its objects.
 */
export const kubeconfigFor = (server: string, options: { namespace?: string; token?: string } = {}): string =>
  renderKubeconfig({ server, insecure: true, ...options });
