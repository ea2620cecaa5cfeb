// The fault switches of the embedded server, for tests and benchmarks: latency, injected 500/503/429
// answers, dropped connections and writes whose answer is lost after they committed. Every die is rolled
// from one generator seeded with `seed`, so the same seed rolls the same faults for the same sequence of
// requests: a failing test prints its seed and replays with WHEREABOUTS_TS_FAULT_SEED=<seed>
// (test/support/environment.ts, test/support/cluster.ts), anything else with the `faultSeed` option.

import { seededRandom } from '../random.ts';
import { isWrite, type RequestInfo } from './router.ts';
import * as status from './status.ts';
import type { HttpError } from './status.ts';

/** Switches for tests and benchmarks; change them at any time on `server.faults`. */
export type Faults = {
  /** Delay before every request is handled. */
  latencyMs: number;
  /** Extra delay for writes (POST, PUT, PATCH, DELETE). */
  writeLatencyMs: number;
  /** Probability per request of answering 500, 503 or 429 (with Retry-After) instead of handling it. */
  errorRates: { 500?: number; 503?: number; 429?: number };
  retryAfterSeconds: number;
  /** Probability per request of closing the connection without handling the request. */
  dropRate: number;
  /** Probability per write of committing it and then closing the connection without an answer. */
  lostResponseRate: number;
  /** Which requests the error, drop and loss switches apply to; all but watches by default. */
  appliesTo: (request: RequestInfo) => boolean;
};

export type FaultInjector = {
  /** The seed the dice roll with (given, or chosen at start): a failing run is replayed with it. */
  readonly seed: number;
  readonly faults: Faults;
  /** Waits out the configured latency (watches wait for nothing). */
  delay(request: RequestInfo): Promise<void>;
  /** Before handling: `drop` to close the connection, an error to answer with, or undefined to go on. */
  intercept(request: RequestInfo): 'drop' | HttpError | undefined;
  /** After a write committed: whether its answer is lost (the connection closed instead). */
  losesResponse(request: RequestInfo): boolean;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function faultInjector(seed = Math.floor(Math.random() * 2 ** 32)): FaultInjector {
  const roll = seededRandom(seed);
  const faults: Faults = {
    latencyMs: 0,
    writeLatencyMs: 0,
    errorRates: {},
    retryAfterSeconds: 1,
    dropRate: 0,
    lostResponseRate: 0,
    appliesTo: (r) => r.verb !== 'watch',
  };
  return {
    seed,
    faults,
    delay: async (request) => {
      if (request.verb === 'watch') return;
      const ms = faults.latencyMs + (isWrite(request.verb) ? faults.writeLatencyMs : 0);
      if (ms > 0) await sleep(ms);
    },
    intercept: (request) => {
      if (!faults.appliesTo(request)) return undefined;
      if (roll() < faults.dropRate) return 'drop';
      // One die for the three error codes: each takes its own slice of [0, 1).
      let dice = roll();
      for (const code of [500, 503, 429] as const) {
        const rate = faults.errorRates[code] ?? 0;
        if (dice < rate)
          return code === 500
            ? status.internalError('injected fault')
            : code === 503
              ? status.serviceUnavailable()
              : status.tooManyRequests(faults.retryAfterSeconds);
        dice -= rate;
      }
      return undefined;
    },
    losesResponse: (request) =>
      isWrite(request.verb) && faults.appliesTo(request) && roll() < faults.lostResponseRate,
  };
}
