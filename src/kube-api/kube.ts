// The connection of the long-running components (`KubeConnection`: the KubeApi, client-node's calls they
// make, and the watch of their informers), and client-node's implementation of it: every kubeconfig feature
// (a file, $KUBECONFIG, the in-cluster service account, exec plugins, OIDC), warm keep-alive connections and
// a timeout on every request — for the exporter, the tests, and the kubeconfigs the lean connection
// (src/kube-api/http-api.ts) cannot read.

import {
  CoreV1Api,
  type CoreV1Event,
  createConfiguration,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  ServerConfiguration,
  setHeaderOptions,
  type Middleware,
  type RequestContext,
  Watch,
} from '@kubernetes/client-node';
import { dirname } from 'node:path';
import { CniCode, errnoOf, fail, ipamError, ok, type Result } from '../errors.ts';
import {
  defaultNamespace,
  networkCode,
  statusFailure,
  type ApiOutcome,
  type KubeApi,
  type ListPage,
  type ObjectRef,
} from './api.ts';
import { fieldOf, objectOf } from '../codecs/decode.ts';
import { readKubeconfig, redactServer, withoutUserinfo } from './kubeconfig.ts';
import { decodeList } from '../codecs/list.ts';
import type { WatchFunction } from './informer.ts';

export type ConnectOptions = {
  /** A kubeconfig file; else $KUBECONFIG, else the in-cluster service account. */
  readonly kubeconfig?: string | undefined;
  /** Timeout of each request. */
  readonly requestTimeoutMs?: number;
  /** The namespace of the pools and reservations, instead of the kubeconfig context's. */
  readonly namespace?: string | undefined;
  /** A kubeconfig already read (and merged, as kubectl merges $KUBECONFIG), instead of `kubeconfig`. */
  readonly resolved?: { readonly text: string; readonly source: string } | undefined;
};

/**
 * What the long-running components run on: the KubeApi, client-node's calls they make (typed; the lean
 * connection of src/kube-api/http-api.ts answers the agent's own and hands the rest to client-node), and the
 * watch their informers use (src/kube-api/informer.ts).
 */
export type KubeConnection = KubeApi & {
  readonly watch: WatchFunction;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
};

/** client-node's connection (`connect`), with its KubeConfig. */
export type ClientNodeConnection = KubeConnection & { readonly kubeConfig: KubeConfig };

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

function loadKubeConfig(path: string | undefined, resolved?: ConnectOptions['resolved']): Result<KubeConfig> {
  const kc = new KubeConfig();
  const source = resolved?.source ?? path ?? process.env.KUBECONFIG;
  try {
    if (resolved !== undefined) kc.loadFromString(resolved.text);
    else if (source !== undefined && source !== '') {
      // What kc.loadFromFile does, but read as an untrusted file: never a FIFO, a device or a huge file.
      const text = readKubeconfig(source);
      if (!text.ok) return text;
      kc.loadFromString(text.value);
      kc.makePathsAbsolute(dirname(source));
    } else if (process.env.KUBERNETES_SERVICE_HOST !== undefined) kc.loadFromCluster();
    else
      return fail(
        ipamError(
          CniCode.InvalidConfig,
          'no kubeconfig: pass --kubeconfig, set $KUBECONFIG, or run in a pod',
        ),
      );
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

/**
 * Drops userinfo (`user:password@`) from every server URL of the config: client-node refuses to send a
 * request to such a URL, and Kubernetes has had no basic auth since 1.19 — the lean client ignores it too.
 */
function dropUserinfo(kc: KubeConfig): void {
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server: withoutUserinfo(c.server) })),
    contexts: kc.contexts,
    users: kc.users,
    currentContext: kc.currentContext,
  });
}

/** Runs a client-node call, turning its exceptions into an ApiOutcome. */
async function call<T>(run: () => Promise<T>): Promise<ApiOutcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (e) {
    if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'number' && 'body' in e) {
      // An ApiException: client-node 2 hands the Status body over as a string.
      let body: unknown = e.body;
      if (typeof body === 'string') {
        try {
          body = JSON.parse(body);
        } catch {
          body = undefined;
        }
      }
      const retryAfter = fieldOf(fieldOf(e, 'headers'), 'retry-after');
      return {
        ok: false,
        error: statusFailure(e.code, body, typeof retryAfter === 'string' ? retryAfter : undefined),
      };
    }
    return { ok: false, error: { kind: 'network', code: redactServer(networkCode(e)) } };
  }
}

/** client-node's Watch on `kubeConfig`, for src/kube-api/informer.ts. */
export function clientNodeWatch(kubeConfig: KubeConfig): WatchFunction {
  const watcher = new Watch(kubeConfig);
  return (path, query, onEvent, onDone) => watcher.watch(path, query, onEvent, onDone);
}

export function connect(options: ConnectOptions = {}): Result<ClientNodeConnection> {
  const loaded = loadKubeConfig(options.kubeconfig, options.resolved);
  if (!loaded.ok) return loaded;
  const kc = loaded.value;
  const cluster = kc.getCurrentCluster();
  if (cluster === null)
    return fail(ipamError(CniCode.InvalidConfig, 'the kubeconfig has no current context with a cluster'));
  // Messages name the server as written, less its userinfo: `https://***@host` says there is some.
  const shownServer = redactServer(cluster.server);
  dropUserinfo(kc);
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(withoutUserinfo(cluster.server), {}),
    authMethods: { default: kc },
    promiseMiddleware: [warmConnections(options.requestTimeoutMs ?? 10_000)],
  });
  const custom = new CustomObjectsApi(configuration);
  const core = new CoreV1Api(configuration);
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const target = (ref: ObjectRef) => ({
    group: ref.group,
    version: ref.version,
    plural: ref.plural,
    namespace: ref.namespace ?? '',
    name: ref.name ?? '',
  });

  return ok({
    kubeConfig: kc,
    watch: clientNodeWatch(kc),
    core,
    custom,
    server: shownServer,
    namespace:
      options.namespace !== undefined && options.namespace !== ''
        ? options.namespace
        : contextNamespace === undefined || contextNamespace === ''
          ? defaultNamespace
          : contextNamespace,
    // Pods are the one core kind read one by one (`sticky_ips`: a StatefulSet member's pod); the rest are
    // custom resources, or served like them (StatefulSets).
    get: (ref) =>
      call(async () =>
        ref.group === '' && ref.plural === 'pods'
          ? objectOf(await core.readNamespacedPod({ namespace: ref.namespace ?? '', name: ref.name ?? '' }))
          : objectOf(await custom.getNamespacedCustomObject(target(ref))),
      ),
    // Events are the one core kind created (the slice controller's); the rest are custom resources.
    create: (ref, body) =>
      call(async () =>
        ref.group === '' && ref.plural === 'events'
          ? objectOf(
              await core.createNamespacedEvent({
                namespace: ref.namespace ?? '',
                body: body as unknown as CoreV1Event,
              }),
            )
          : objectOf(await custom.createNamespacedCustomObject({ ...target(ref), body })),
      ),
    jsonPatch: (ref, operations) =>
      call(async () =>
        objectOf(
          ref.subresource === 'status'
            ? await custom.patchNamespacedCustomObjectStatus(
                { ...target(ref), body: operations },
                setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
              )
            : await custom.patchNamespacedCustomObject(
                { ...target(ref), body: operations },
                setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
              ),
        ),
      ),
    delete: (ref, resourceVersion) =>
      call(async () => {
        await custom.deleteNamespacedCustomObject({
          ...target(ref),
          ...(resourceVersion === undefined ? {} : { body: { preconditions: { resourceVersion } } }),
        });
        return undefined;
      }),
    list: (ref, options = {}) =>
      call(async (): Promise<ListPage> => {
        const query = {
          ...(options.limit === undefined ? {} : { limit: options.limit }),
          ...(options.continue === undefined ? {} : { _continue: options.continue }),
          ...(options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector }),
        };
        // Pods and nodes are the core kinds listed (GC, the slice controller); the rest are custom resources
        // (NetworkAttachmentDefinitions included).
        const list: unknown =
          ref.group === '' && ref.plural === 'nodes'
            ? await core.listNode(query)
            : ref.group === '' && ref.plural === 'pods'
              ? ref.namespace === undefined
                ? await core.listPodForAllNamespaces(query)
                : await core.listNamespacedPod({ namespace: ref.namespace, ...query })
              : ref.namespace === undefined
                ? await custom.listClusterCustomObject({
                    group: ref.group,
                    version: ref.version,
                    plural: ref.plural,
                    ...query,
                  })
                : await custom.listNamespacedCustomObject({
                    group: ref.group,
                    version: ref.version,
                    plural: ref.plural,
                    namespace: ref.namespace,
                    ...query,
                  });
        return decodeList(list);
      }),
  });
}
