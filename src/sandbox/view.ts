// The sandbox's live view: a table of the pools (range, used / capacity, %), how many pods run, start and
// failed (failed pods are retried after a back-off), and the latest plugin calls.

export type SandboxEvent = {
  readonly at: Date;
  readonly node: string;
  readonly verb: 'ADD' | 'DEL';
  readonly pod: string;
  readonly network: string;
  readonly outcome: string;
};

/** One IPPool as the view shows it: capacity is the CIDR's assignable addresses. */
export type PoolRow = {
  readonly name: string;
  readonly range: string;
  readonly used: number;
  readonly capacity: bigint;
};

export type Counters = {
  readonly running: number;
  readonly starting: number;
  readonly failed: number;
  readonly calls: number;
  readonly failedCalls: number;
  /** The failed pods: their node, how often their ADD failed, and when it is tried again. */
  readonly failedPods?: readonly { name: string; node: string; failures: number; retryInMs: number }[];
};

const pad = (text: string, width: number): string =>
  text.length >= width ? text.slice(0, width) : text + ' '.repeat(width - text.length);

export function renderView(
  pools: readonly PoolRow[],
  events: readonly SandboxEvent[],
  counters: Counters,
): string {
  const lines = [
    'whereabouts-ts sandbox — Ctrl-C to stop',
    `pods: ${counters.running} running, ${counters.starting} starting, ${counters.failed} failed — plugin calls: ${counters.calls}, ${counters.failedCalls} failed`,
    '',
    `${pad('POOL', 28)}${pad('RANGE', 24)}${pad('USED/SIZE', 16)}%`,
  ];
  for (const { name, range, used, capacity } of pools) {
    const percent = capacity === 0n ? 0 : (used * 100) / Number(capacity);
    const shown = capacity < 1_000_000_000n ? String(capacity) : Number(capacity).toExponential(1);
    const percentText = percent < 0.01 && used > 0 ? '<0.01' : percent.toFixed(percent < 1 ? 2 : 0);
    lines.push(`${pad(name, 28)}${pad(range, 24)}${pad(`${used}/${shown}`, 16)}${percentText}`);
  }
  if (counters.failedPods !== undefined && counters.failedPods.length > 0) {
    lines.push('', 'FAILED PODS (ADD failed; torn down, tried again after a back-off)');
    for (const pod of counters.failedPods.slice(0, 8))
      lines.push(
        `${pad(pod.name, 10)}${pad(pod.node, 8)}${pod.failures} failure${pod.failures === 1 ? '' : 's'}, next try in ${Math.max(0, Math.ceil(pod.retryInMs / 1000))} s`,
      );
    if (counters.failedPods.length > 8) lines.push(`… and ${counters.failedPods.length - 8} more`);
  }
  lines.push('', 'RECENT');
  for (const e of events.slice(-12)) {
    lines.push(
      `${e.at.toISOString().slice(11, 19)} ${pad(e.node, 8)} ${pad(e.verb, 4)} ${pad(e.pod, 9)} ${pad(e.network, 8)} ${e.outcome}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
