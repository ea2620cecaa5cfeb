// The standalone plugin's node lock (src/cni/node-lock.ts): turns are exclusive per slot, a release wakes a
// waiter, a holder that dies frees its turn, and a wait that runs out is given up on, not hung on.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { nodeLock } from '../../../src/cni/node-lock.ts';

const key = () => `test-${randomUUID()}`;

describe('node lock', () => {
  test('one holder at a time per slot; each release lets the next in', async () => {
    const name = key();
    let holding = 0;
    let most = 0;
    const turn = async () => {
      const lock = await nodeLock(name, 10_000);
      expect(lock.kind).toBe('held');
      holding++;
      most = Math.max(most, holding);
      await new Promise((r) => setTimeout(r, 5));
      holding--;
      if (lock.kind === 'held') lock.release();
    };
    await Promise.all(Array.from({ length: 8 }, turn));
    expect(most).toBe(1);
  });

  test('with slots, at most that many hold at once', async () => {
    const name = key();
    let holding = 0;
    let most = 0;
    const turn = async () => {
      const lock = await nodeLock(name, 10_000, undefined, 3);
      expect(lock.kind).toBe('held');
      holding++;
      most = Math.max(most, holding);
      await new Promise((r) => setTimeout(r, 10));
      holding--;
      if (lock.kind === 'held') lock.release();
    };
    await Promise.all(Array.from({ length: 9 }, turn));
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(3);
  });

  test('a wait that runs out is skipped, and the waiter is told it waited', async () => {
    const name = key();
    const first = await nodeLock(name, 1000);
    let waited = 0;
    const second = await nodeLock(name, 50, () => waited++);
    expect(second).toEqual({ kind: 'skipped', why: expect.stringContaining('50 ms') as string });
    expect(waited).toBeGreaterThan(0);
    if (first.kind === 'held') first.release();
    expect((await nodeLock(name, 1000)).kind).toBe('held');
  });

  test('a holder that dies without releasing frees the lock', async () => {
    const name = key();
    // A child process takes the lock and is killed while holding it.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { createHash } = await import('node:crypto');
         const { createServer } = await import('node:net');
         const name = '\\0whereabouts-ts/lock/' + createHash('sha256').update(${JSON.stringify(name)}).digest('hex').slice(0, 32);
         createServer().listen(name, () => console.log('held'));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await once(child.stdout, 'data');
    const waiting = nodeLock(name, 10_000);
    child.kill('SIGKILL');
    const lock = await waiting;
    expect(lock.kind).toBe('held');
    if (lock.kind === 'held') lock.release();
  });
});
