// An in-process Kubernetes API server: the part of the REST API this project uses, with the semantics of
// the real one — resourceVersion on every write, Status bodies for 404/409/422, JSON Patch applied to the
// latest object (a failed `test` is 422), merge patch, selectors, pagination, watch streams, the default
// etcd object size limit — plus switches for latency and faults. The plugin, agent, GC and exporter reach
// it only through a kubeconfig, like any API server; nothing in them knows it exists.
//
// This file assembles the parts and owns the listening socket: storage.ts (objects, resourceVersions,
// history), watch-hub.ts, handler.ts (one request, in order) and verbs/ (one file per verb), router.ts,
// selection.ts, admission.ts, authentication.ts, faults.ts (the seeded fault switches), stats.ts.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authenticator } from './authentication.ts';
import { faultInjector, type Faults } from './faults.ts';
import { requestListener } from './handler.ts';
import { builtInResources, loadCrds } from './resources.ts';
import type { RequestInfo } from './router.ts';
import { emptyStats, type Stats } from './stats.ts';
import { createStorage } from './storage.ts';
import { createWatchHub } from './watch-hub.ts';

export type { Faults, RequestInfo, Stats };
export { maxObjectBytes } from './admission.ts';

export type ApiServerOptions = {
  /** Directories of CRD manifests to serve. */
  readonly crdDirectories?: readonly string[];
  /** When set, every request must carry `Authorization: Bearer <token>` (else 401). */
  readonly token?: string;
  /** Bearer token → user name: every request must carry one of these tokens (else 401), and `authorize`
   *  learns whose it is — one server, several identities, as RBAC tests need. */
  readonly users?: Readonly<Record<string, string>>;
  /** When it returns false the request is answered 403 Forbidden, as RBAC would. */
  readonly authorize?: (request: RequestInfo) => boolean;
  readonly port?: number;
  readonly host?: string;
  /** The seed of the fault switches' dice: the same seed rolls the same faults for the same requests. */
  readonly faultSeed?: number;
  /** kube-apiserver's --min-request-timeout: a watch that names no timeoutSeconds ends after this long
   *  (the real server picks between this and twice this; here exactly this, for repeatable tests). */
  readonly watchTimeoutSeconds?: number;
};

export type ApiServer = {
  readonly url: string;
  /** The seed the fault switches roll with (given, or chosen at start): a failing run is replayed with it. */
  readonly faultSeed: number;
  readonly faults: Faults;
  readonly stats: Stats;
  /** Objects of one kind, by `namespace/name` (cluster-scoped: `/name`), as stored. For assertions. */
  objects(plural: string, group?: string): Map<string, Record<string, unknown>>;
  resetStats(): void;
  /** Forgets the history before now, as etcd's compaction does: older continue tokens and watch
   *  resourceVersions answer 410 Expired. */
  compact(): void;
  /** Stops and starts again on the same port with the same objects, as a restarted kube-apiserver comes
   *  back to the same etcd: every watch and connection ends, nothing stored is lost. */
  restart(): Promise<void>;
  /** From now on, the bearer token every request must carry (as after a token rotation). */
  acceptToken(token: string): void;
  close(): Promise<void>;
};

export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const defs = [...builtInResources, ...(options.crdDirectories ?? []).flatMap((d) => loadCrds(d))];
  const hub = createWatchHub();
  const storage = createStorage(defs, (event) => {
    hub.publish(event);
  });
  const injector = faultInjector(options.faultSeed);
  const stats = emptyStats();
  const authentication = authenticator(options.token, options.users);
  const host = options.host ?? '127.0.0.1';

  const server: Server = createServer(
    { keepAlive: true },
    requestListener({
      defs,
      storage,
      hub,
      injector,
      stats,
      authenticator: authentication,
      authorize: options.authorize,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? 1800,
    }),
  );
  server.on('connection', () => {
    stats.connections++;
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;
  /** Ends every watch and connection and stops listening; the objects stay. */
  const stop = async (): Promise<void> => {
    hub.endAll();
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  };

  return {
    url: `http://${host}:${port}`,
    faultSeed: injector.seed,
    faults: injector.faults,
    stats,
    acceptToken: (token) => {
      authentication.acceptToken(token);
    },
    objects: (plural, group = '') => {
      const def = defs.find((d) => d.plural === plural && d.group === group);
      if (def === undefined) throw new Error(`no resource ${plural} in group "${group}"`);
      return storage.objectsOf(def);
    },
    compact: () => {
      storage.compact();
    },
    resetStats: () => {
      Object.assign(stats, emptyStats());
    },
    close: stop,
    restart: async () => {
      await stop();
      await new Promise<void>((resolve) => server.listen(port, host, resolve));
    },
  };
}
