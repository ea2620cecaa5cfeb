// Retrying a store call: transient failures again, a final one at once, and never sooner than the server
// asked with Retry-After (a 429 from an API server that is starting or shedding load).
import { fail, ok } from '../../../src/errors.ts';
import { deadlineIn, refusedLimitMs, retrying } from '../../../src/ipam/retry.ts';
import { statusFailure } from '../../../src/kube-api/api.ts';
import { classify } from '../../../src/store/errors.ts';
import type { StoreResult } from '../../../src/store/store.ts';

const tooManyRequests = classify(
  statusFailure(429, {
    kind: 'Status',
    code: 429,
    reason: 'TooManyRequests',
    message: 'storage is (re)initializing',
    details: { retryAfterSeconds: 1 },
  }),
  'list ippools',
  'https://127.0.0.1:6443',
);

test('a 429 with retryAfterSeconds is transient and says how long to wait', () => {
  expect(tooManyRequests).toMatchObject({ retry: true, status: 429, retryAfterMs: 1000 });
});

test('the next try waits at least as long as the server asked', async () => {
  const tries: number[] = [];
  const result = await retrying(deadlineIn(10_000), (): Promise<StoreResult<string>> => {
    tries.push(Date.now());
    return Promise.resolve(tries.length === 1 ? fail(tooManyRequests) : ok('listed'));
  });
  expect(result).toEqual(ok('listed'));
  expect(tries).toHaveLength(2);
  expect((tries[1] ?? 0) - (tries[0] ?? 0)).toBeGreaterThanOrEqual(1000);
});

test('a failure that will not pass is returned at once', async () => {
  let calls = 0;
  const forbidden = classify(statusFailure(403, { kind: 'Status', code: 403, message: 'no' }), 'get', 's');
  const result = await retrying(deadlineIn(10_000), () => {
    calls++;
    return Promise.resolve(fail(forbidden));
  });
  expect(result).toEqual(fail(forbidden));
  expect(calls).toBe(1);
});

test('an address where nothing listens is given up on long before the deadline', async () => {
  const refused = classify({ kind: 'network', code: 'ECONNREFUSED' }, 'get', 'https://127.0.0.1:1');
  const started = Date.now();
  let calls = 0;
  const result = await retrying(deadlineIn(120_000), () => {
    calls++;
    return Promise.resolve(fail(refused));
  });
  // Still "try again later" (code 11 in the plugin), after refusedLimitMs of refusals, not the deadline.
  expect(result).toEqual(fail(refused));
  expect(refused).toMatchObject({ retry: true, refused: true });
  expect(calls).toBeGreaterThan(1);
  expect(Date.now() - started).toBeGreaterThanOrEqual(refusedLimitMs);
  expect(Date.now() - started).toBeLessThan(60_000);
}, 90_000);

test('a server that answers slowly or not at all keeps the whole deadline', async () => {
  const timeout = classify({ kind: 'network', code: 'timeout' }, 'get', 'https://127.0.0.1:1');
  const deadline = deadlineIn(refusedLimitMs + 2_000);
  const result = await retrying(deadline, () => Promise.resolve(fail(timeout)));
  expect(result).toEqual(fail(timeout));
  expect(Date.now()).toBeGreaterThanOrEqual(deadline.at - 50);
}, 90_000);

test('a plain-text 429 of API Priority and Fairness is read by its Retry-After header', () => {
  const failure = statusFailure(429, 'Too many requests, please try again later.\n', '2');
  expect(classify(failure, 'patch', 's')).toMatchObject({ retry: true, retryAfterMs: 2000 });
});
