// The exporter's watches, each on the shared informer (src/kube-api/informer.ts: resumes, relists, backs off),
// cluster-wide: IPPools, OverlappingRangeIPReservations, NodeSlicePools and NetworkAttachmentDefinitions,
// each change handed to what the exporter knows (src/exporter/watched.ts).

import type { Logger } from '../log.ts';
import { group, version } from '../codecs/ippool.ts';
import { startInformer, type Informer, type InformerFailure } from '../kube-api/informer.ts';
import { customCollection } from '../kube-api/collection.ts';
import type { KubeConnection } from '../kube-api/kube.ts';
import type { ExporterMetrics } from './gauges.ts';
import type { Seen, Watched } from './watched.ts';

type Resource = { readonly group: string; readonly version: string; readonly plural: string };
type Backoff = { readonly initialMs?: number; readonly maxMs?: number } | undefined;

const whereabouts = (plural: string): Resource => ({ group, version, plural });
const nadResource: Resource = {
  group: 'k8s.cni.cncf.io',
  version: 'v1',
  plural: 'network-attachment-definitions',
};

/** A cluster-wide informer of one custom resource. */
function watchAll(
  connection: KubeConnection,
  { group, version, plural }: Resource,
  onChange: (type: Seen, o: unknown) => void,
  onFailure: (failure: InformerFailure) => void,
  backoff: Backoff,
): Informer {
  return startInformer({
    watch: connection.watch,
    ...customCollection(connection, { group, version, plural }),
    // IPPools are large (up to the object size limit each): a few per page.
    pageSize: plural === 'ippools' ? 20 : 500,
    ...(backoff === undefined ? {} : { backoff }),
    onChange: (change, o) => {
      onChange(change === 'deleted' ? 'delete' : 'set', o);
    },
    onFailure,
  });
}

export type ExporterWatches = {
  /** Resolves once every watch has listed — the NADs' or found them unreadable. */
  readonly synced: Promise<void>;
  stop(): void;
};

export function startWatches(
  connection: KubeConnection,
  watched: Watched,
  metrics: ExporterMetrics,
  options: { readonly log: Logger; readonly backoff: Backoff },
): ExporterWatches {
  const failed = (resource: string) => (failure: InformerFailure) => {
    metrics.watchErrors.inc({ resource });
    options.log.error(
      `${resource} ${failure.stage} failed; again in ${(failure.retryInMs / 1000).toFixed(1)} s`,
      { error: failure.message },
    );
  };
  const watch = (resource: Resource, onChange: (type: Seen, o: unknown) => void) =>
    watchAll(connection, resource, onChange, failed(resource.plural), options.backoff);
  const pools = watch(whereabouts('ippools'), watched.pool);
  const reserved = watch(whereabouts('overlappingrangeipreservations'), watched.reservation);
  const slicePools = watch(whereabouts('nodeslicepools'), watched.slicePool);
  // Without the NAD CRD, or without permission to read NADs (an upgrade that kept the old ClusterRole), the
  // figures fall back to the pools' CIDRs rather than the exporter never becoming ready; the failures are
  // counted under resource="network-attachment-definitions".
  let nadsUnreadable = () => {};
  const unreadable = new Promise<void>((resolve) => (nadsUnreadable = resolve));
  const nads = watchAll(
    connection,
    nadResource,
    watched.nad,
    (failure) => {
      failed(nadResource.plural)(failure);
      if (failure.code === 403 || failure.code === 404) nadsUnreadable();
    },
    options.backoff,
  );
  const informers = [pools, reserved, slicePools, nads];
  return {
    synced: Promise.all([
      pools.synced,
      reserved.synced,
      slicePools.synced,
      Promise.race([nads.synced, unreadable]),
    ]).then(() => undefined),
    stop: () => {
      for (const informer of informers) informer.stop();
    },
  };
}
