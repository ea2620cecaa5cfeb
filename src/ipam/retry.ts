// Retrying one store call: again and again with jittered exponential backoff while the failure is
// transient and the transaction's deadline has not passed — never a fixed count, never without a pause,
// and never sooner than the server asked (429/503 Retry-After). An address where nothing listens is given
// up on after `refusedLimitMs` of nothing but refusals: the runtime retries a failed ADD anyway, and would
// rather hear "try again later" at once than wait out the whole deadline of a server that is not there. A
// slow or overloaded server, which answers or times out, still gets the full deadline.

import pRetry, { AbortError } from 'p-retry';
import { fail, ok } from '../errors.ts';
import type { StoreError } from '../store/errors.ts';
import type { StoreResult } from '../store/result.ts';

export type Deadline = { readonly at: number };

export const deadlineIn = (ms: number): Deadline => ({ at: Date.now() + ms });
export const remaining = (deadline: Deadline): number => Math.max(0, deadline.at - Date.now());

/** How long a call keeps trying while every try is refused. */
export const refusedLimitMs = 15_000;

class Transient extends Error {
  readonly error: StoreError;
  constructor(error: StoreError) {
    super(error.message);
    this.error = error;
  }
}

/** Runs `call` until it succeeds, fails for good, or the deadline passes (then the last error, as retryable). */
export async function retrying<T>(
  deadline: Deadline,
  call: () => Promise<StoreResult<T>>,
  onRetry?: (e: StoreError) => void,
): Promise<StoreResult<T>> {
  let last: StoreError | undefined;
  let refusedSince: number | undefined;
  try {
    const value = await pRetry(
      async () => {
        const result = await call();
        if (result.ok) return result.value;
        refusedSince = result.error.refused === true ? (refusedSince ?? Date.now()) : undefined;
        const refusedTooLong = refusedSince !== undefined && Date.now() - refusedSince >= refusedLimitMs;
        if (!result.error.retry || refusedTooLong) throw new AbortError(new Transient(result.error));
        last = result.error;
        throw new Transient(result.error);
      },
      {
        retries: Number.MAX_SAFE_INTEGER,
        minTimeout: 10,
        maxTimeout: 1000,
        factor: 2,
        randomize: true,
        maxRetryTime: remaining(deadline),
        onFailedAttempt: async ({ error }) => {
          if (!(error instanceof Transient)) return;
          onRetry?.(error.error);
          const asked = Math.min(error.error.retryAfterMs ?? 0, remaining(deadline));
          if (asked > 0) await new Promise((resolve) => setTimeout(resolve, asked));
        },
        shouldRetry: () => remaining(deadline) > 0,
      },
    );
    return ok(value);
  } catch (e) {
    // p-retry unwraps AbortError, so a final failure arrives here as the Transient it wrapped.
    if (e instanceof Transient) return fail(e.error);
    return fail(last ?? { retry: true, message: e instanceof Error ? e.message : String(e) });
  }
}
