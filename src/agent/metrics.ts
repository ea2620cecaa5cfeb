// The node agent's metrics, on its own registry (served at /metrics with the process metrics): the plugin
// requests it serves, its group commit, the releases it makes on its own (pod or claim deleted, start-up
// reconcile), and its informers (lists and watches opened and failed, and whether each cache follows the
// API server now).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InformerOptions } from '../kube-api/informer.ts';
import type { Served } from './server.ts';

export type AgentMetrics = ReturnType<typeof agentMetrics>;

export function agentMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: readonly string[] = []) =>
    new Counter({ name, help, labelNames, registers });
  return {
    registry,
    requests: counter('whereabouts_agent_requests_total', 'Plugin requests served, by verb and result', [
      'verb',
      'result',
    ]),
    latency: new Histogram({
      name: 'whereabouts_agent_request_seconds',
      help: 'Time to serve a plugin request, by verb',
      labelNames: ['verb'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    batches: new Histogram({
      name: 'whereabouts_agent_batch_size',
      help: 'Changes per group-committed pool patch',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    fallbacks: counter(
      'whereabouts_agent_batch_fallbacks_total',
      'Group commits whose tests failed and were settled one by one',
    ),
    releasedOnDelete: counter(
      'whereabouts_agent_released_on_pod_delete_total',
      'Allocations released when a pod of this node was deleted',
    ),
    keptForMembers: counter(
      'whereabouts_agent_kept_for_statefulset_total',
      'Deleted pods whose addresses were kept because their StatefulSet still wants the member (sticky_ips)',
    ),
    releasedOnClaimDelete: counter(
      'whereabouts_agent_released_on_claim_delete_total',
      'Allocations released when an IPAMClaim whose owner pod runs on this node was deleted',
    ),
    foreignAttachments: counter(
      'whereabouts_agent_foreign_attachments_total',
      'Attachments this node recorded whose pod runs on another node (kept; a node-name mismatch between the agent and its pods?)',
    ),
    releasedOnReconcile: counter(
      'whereabouts_agent_released_on_reconcile_total',
      'Allocations released at start-up because their pod had left this node while the agent was down',
    ),
    watchStarts: counter(
      'whereabouts_agent_watch_starts_total',
      'Lists and watches the API server accepted, by resource (a watch is re-opened whenever the server ends it)',
      ['resource', 'request'],
    ),
    watchFailures: counter(
      'whereabouts_agent_watch_failures_total',
      'Failed lists and watches, by resource (each is retried with backoff)',
      ['resource'],
    ),
  };
}

/** What every informer of the agent is given: its backoff, and its lists, watches and failures counted. */
export function informerOptions(
  metrics: AgentMetrics,
  resource: string,
  backoff: InformerOptions['backoff'],
): Pick<InformerOptions, 'backoff' | 'onOpen' | 'onFailure'> {
  return {
    ...(backoff === undefined ? {} : { backoff }),
    onOpen: (request: 'list' | 'watch') => {
      metrics.watchStarts.inc({ resource, request });
    },
    onFailure: () => {
      metrics.watchFailures.inc({ resource });
    },
  };
}

/** Counts a request served, and what the group commit did since the last one. */
export function observeServed(
  metrics: AgentMetrics,
  stats: () => { readonly patches: number; readonly items: number; readonly fallbacks: number },
): (served: Served) => void {
  let reported = { ...stats() };
  return ({ env, exitCode, seconds }) => {
    const verb = env.CNI_COMMAND ?? '';
    metrics.requests.inc({ verb, result: exitCode === 0 ? 'ok' : 'error' });
    metrics.latency.observe({ verb }, seconds);
    const now = stats();
    if (now.patches > reported.patches)
      metrics.batches.observe((now.items - reported.items) / (now.patches - reported.patches));
    metrics.fallbacks.inc(now.fallbacks - reported.fallbacks);
    reported = { ...now };
  };
}

/** The gauges read when scraped: whether each cache is fresh, and the pools held in memory. */
export function cacheGauges(
  metrics: AgentMetrics,
  fresh: Readonly<Record<string, () => boolean>>,
  held: () => { readonly watched: number; readonly copies: number },
): void {
  new Gauge({
    name: 'whereabouts_agent_watch_fresh',
    help: '1 while the watch cache of the resource follows the API server, 0 while a list or watch is failing',
    labelNames: ['resource'],
    registers: [metrics.registry],
    collect() {
      for (const [resource, isFresh] of Object.entries(fresh)) this.set({ resource }, isFresh() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'whereabouts_agent_pools_held',
    help: "IPPools the agent holds in memory: this node's slice pools (watched), and copies of the pools it is writing (held a few seconds)",
    labelNames: ['kind'],
    registers: [metrics.registry],
    collect() {
      const now = held();
      this.set({ kind: 'watched' }, now.watched);
      this.set({ kind: 'copies' }, now.copies);
    },
  });
}
