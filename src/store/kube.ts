// A connection to the Kubernetes API with @kubernetes/client-node: the kubeconfig (a file, $KUBECONFIG, or
// the pod's service account), the namespace whereabouts keeps its objects in, warm keep-alive connections
// and a timeout on every request.

import {
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  KubeConfig,
  ServerConfiguration,
  type Middleware,
  type RequestContext,
} from '@kubernetes/client-node';
import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';

/** Whereabouts' default namespace when the kubeconfig's context names none. */
export const defaultNamespace = 'kube-system';

export type KubeConnection = {
  readonly kubeConfig: KubeConfig;
  /** Where IPPools, reservations and leases live: the current context's namespace, or kube-system. */
  readonly namespace: string;
  readonly server: string;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
};

export type ConnectOptions = {
  /** A kubeconfig file; else $KUBECONFIG, else the in-cluster service account. */
  readonly kubeconfig?: string | undefined;
  /** Timeout of each request. */
  readonly requestTimeoutMs?: number;
};

const errnoOf = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;

/**
 * client-node 2.0 builds a new connection pool for every request. This middleware hands every request
 * the first pool instead, so connections stay warm, and gives each request its own timeout.
 */
function warmConnections(timeoutMs: number): Middleware {
  let shared: ReturnType<RequestContext['getDispatcher']>;
  return {
    pre: (context: RequestContext) => {
      if (shared === undefined) shared = context.getDispatcher();
      else context.setDispatcher(shared);
      if (context.getSignal() === undefined) context.setSignal(AbortSignal.timeout(timeoutMs));
      return Promise.resolve(context);
    },
    post: (response) => Promise.resolve(response),
  };
}

function loadKubeConfig(path: string | undefined): Result<KubeConfig> {
  const kc = new KubeConfig();
  const source = path ?? process.env.KUBECONFIG;
  try {
    if (source !== undefined && source !== '') kc.loadFromFile(source);
    else if (process.env.KUBERNETES_SERVICE_HOST !== undefined) kc.loadFromCluster();
    else {
      return fail(
        ipamError(
          CniCode.InvalidConfig,
          'no kubeconfig: set ipam.kubernetes.kubeconfig (the installer writes it into the flat file), $KUBECONFIG, or run in a pod',
        ),
      );
    }
  } catch (e) {
    // Never the loader's message: YAML errors quote the file, and the file holds credentials.
    const errno = errnoOf(e);
    return fail(
      ipamError(
        errno === undefined ? CniCode.InvalidConfig : CniCode.IoFailure,
        `cannot load the kubeconfig ${source ?? ''}: ${errno ?? 'not a valid kubeconfig file'}`,
      ),
    );
  }
  return ok(kc);
}

export function connect(options: ConnectOptions = {}): Result<KubeConnection> {
  const loaded = loadKubeConfig(options.kubeconfig);
  if (!loaded.ok) return loaded;
  const kc = loaded.value;
  const cluster = kc.getCurrentCluster();
  if (cluster === null) {
    return fail(ipamError(CniCode.InvalidConfig, 'the kubeconfig has no current context with a cluster'));
  }
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [warmConnections(options.requestTimeoutMs ?? 10_000)],
  });
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return ok({
    kubeConfig: kc,
    namespace: namespace === undefined || namespace === '' ? defaultNamespace : namespace,
    server: cluster.server,
    custom: new CustomObjectsApi(configuration),
    core: new CoreV1Api(configuration),
    coordination: new CoordinationV1Api(configuration),
  });
}
