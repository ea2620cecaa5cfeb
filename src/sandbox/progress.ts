// What the sandbox shows while it runs: each plugin call as an event (kept for the view, or printed as one
// line when the output is not a terminal), the counters of pods and calls, and the live view redrawn in
// place every second from the pools the API server holds.

import { listObjects, poolRow } from './api-server.ts';
import type { Run } from './run.ts';
import { renderView, type PoolRow, type SandboxEvent } from './view.ts';

/** Keeps an event for the view; prints it as a line when there is no live view. */
export function record(run: Run, event: SandboxEvent): void {
  run.events.push(event);
  if (run.events.length > 200) run.events.shift();
  if (!run.options.live)
    run.options.write(
      `${event.at.toISOString()} ${event.node} ${event.verb} ${event.pod} ${event.network}: ${event.outcome}\n`,
    );
}

/** The pods by state, the calls, and the failed pods with their retries. */
export function counters(run: Run) {
  const { pods, counts } = run;
  return {
    running: pods.filter((p) => p.state === 'running').length,
    starting: pods.filter((p) => p.state === 'starting').length,
    failed: pods.filter((p) => p.state === 'failed').length,
    calls: counts.calls,
    failedCalls: counts.failed,
    failedPods: pods
      .filter((p) => p.state === 'failed')
      .map((p) => ({
        name: p.name,
        node: p.node,
        failures: p.failures,
        retryInMs: p.retryAt - Date.now(),
      })),
  };
}

async function poolRows(run: Run): Promise<PoolRow[] | undefined> {
  const pools = await listObjects(run.server.url, 'ippools');
  return pools?.map(poolRow);
}

/** Redraws the view every second on a terminal (one redraw at a time); clear the interval to end it. */
export function startLiveView(run: Run): NodeJS.Timeout {
  let drawing = false;
  return setInterval(() => {
    if (!run.options.live || drawing) return;
    drawing = true;
    void poolRows(run)
      .then((rows) => {
        if (!run.state.stopping)
          run.options.write(`\u001b[H\u001b[2J${renderView(rows ?? [], run.events, counters(run))}`);
      })
      .finally(() => (drawing = false));
  }, 1000);
}
