import { dump } from 'js-yaml';

/**
 * A kubeconfig for a plain-HTTP API server such as the embedded one. `insecure-skip-tls-verify` is what
 * lets client-node speak `http:`; the namespace of the context is where whereabouts keeps its objects.
 */
export function kubeconfigFor(server: string, options: { namespace?: string; token?: string } = {}): string {
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'embedded', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'whereabouts', user: options.token === undefined ? {} : { token: options.token } }],
    contexts: [
      {
        name: 'whereabouts',
        context: {
          cluster: 'embedded',
          user: 'whereabouts',
          ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
        },
      },
    ],
    'current-context': 'whereabouts',
  });
}
