// The one shutdown sequence (src/lifecycle.ts): parts stop last-started first, each stop awaited before the
// next begins, a failed stop reported by name without keeping the others running, once however often asked.

import { parts, StopFailed } from '../../../src/lifecycle.ts';

test('stops the last part started first, each stop awaited before the next', async () => {
  const order: string[] = [];
  const running = parts();
  for (const name of ['connection', 'cache', 'server'])
    running.started(name, async () => {
      order.push(`${name} stopping`);
      await new Promise((resolve) => setImmediate(resolve));
      order.push(`${name} stopped`);
    });
  expect(running.stopping()).toBe(false);
  await running.stop();
  expect(order).toEqual([
    'server stopping',
    'server stopped',
    'cache stopping',
    'cache stopped',
    'connection stopping',
    'connection stopped',
  ]);
});

test('a failed stop is reported by name, and the parts started before it still stop', async () => {
  const stopped: string[] = [];
  const running = parts();
  running.started('first', () => stopped.push('first'));
  running.started('broken', () => {
    throw new Error('socket busy');
  });
  running.started('last', () => Promise.reject(new Error('port gone')));
  const failure = await running.stop().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(stopped).toEqual(['first']);
  expect(failure).toBeInstanceOf(StopFailed);
  expect((failure as StopFailed).failures.map((f) => f.part)).toEqual(['last', 'broken']);
  expect((failure as StopFailed).message).toContain('broken did not stop cleanly: socket busy');
});

test('stops once, however often asked; a part that starts after the stop began is stopped at once', async () => {
  let stops = 0;
  const running = parts();
  running.started('counted', () => {
    stops++;
  });
  const first = running.stop();
  expect(running.stop()).toBe(first);
  let late = false;
  running.started('late', () => {
    late = true;
  });
  await first;
  expect(stops).toBe(1);
  expect(late).toBe(true);
});
