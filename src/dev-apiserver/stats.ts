// Counters of what the embedded server was asked and answered, for tests and benchmarks to assert on
// (`server.stats`): requests, writes and connections, answers by verb and by status code.

export type Stats = {
  /** TCP connections accepted: with keep-alive clients, far fewer than requests. */
  connections: number;
  requests: number;
  writes: number;
  /** Answers with 409 (AlreadyExists or Conflict) or 422 (failed patch test, invalid object). */
  conflicts: number;
  byVerb: Record<string, number>;
  byStatus: Record<number, number>;
};

export const emptyStats = (): Stats => ({
  connections: 0,
  requests: 0,
  writes: 0,
  conflicts: 0,
  byVerb: {},
  byStatus: {},
});

/** Counts one answer with `code`. */
export function countAnswer(stats: Stats, code: number): void {
  stats.byStatus[code] = (stats.byStatus[code] ?? 0) + 1;
  if (code === 409 || code === 422) stats.conflicts++;
}
