// The sandbox's embedded API server, a process of its own (so that the simulation cannot starve it): how it
// starts (its URL read from the line it prints), how the sandbox notices it is gone, how it stops (stdin
// closed, then SIGKILL when it takes too long), and what the sandbox reads from it — the whereabouts
// objects, and each IPPool as a row of the view. Every child the sandbox starts runs in a process group of
// its own, stopped as a whole (`killGroup`).

import { spawn, type ChildProcess } from 'node:child_process';
import type { SandboxOptions } from './sandbox.ts';
import type { PoolRow } from './view.ts';
import { normalise, parseCidr } from '../ip/cidr.ts';
import { makeRange, rangeCapacity } from '../ip/range.ts';
import { decodeEntry, rawPool } from '../codecs/ippool.ts';
import { arrayAt, isObject, objectAt, stringAt, type JsonObject } from '../codecs/decode.ts';
import { metaOf } from '../codecs/object-meta.ts';

const group = 'whereabouts.cni.cncf.io/v1alpha1';

/** The API server once it is up. */
export type ApiServer = {
  readonly child: ChildProcess;
  readonly url: string;
  /** Settles when its process exits. */
  readonly gone: Promise<void>;
  /** Whether its process has exited. */
  readonly exited: () => boolean;
};

/** Watches a started API server process for its exit. */
export function watchServer(started: { child: ChildProcess; url: string }): ApiServer {
  const { child, url } = started;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return { child, url, gone, exited };
}

/** Signals a child's whole process group, unless it has exited already. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Starts the API server process and waits for the line that names its URL; undefined when stopped first. */
export async function startServer(
  options: SandboxOptions,
  kubeconfig: string,
  stop: Promise<unknown> | undefined,
): Promise<{ child: ChildProcess; url: string } | undefined> {
  const [command, ...args] = options.apiServer;
  // Its own process group: the terminal's Ctrl-C reaches the sandbox, which stops the server last.
  const child = spawn(
    command,
    [...args, '--port', String(options.port), '--kubeconfig', kubeconfig, '--stop-on-stdin-end'],
    { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stdin.on('error', () => undefined);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let stdout = '';
  const url = await new Promise<string | undefined>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const found = /embedded API server at (\S+)/.exec(stdout)?.[1];
      if (found !== undefined && stdout.includes('\n', stdout.indexOf(found))) resolve(found);
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`the API server process exited (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    child.once('error', reject);
    void stop?.then(() => {
      resolve(undefined);
    });
    setTimeout(() => {
      reject(new Error('the API server process did not start within 120 s'));
    }, 120_000).unref();
  }).catch(async (e: unknown) => {
    await stopServer(child);
    throw e;
  });
  if (url === undefined) {
    await stopServer(child);
    return undefined;
  }
  child.stdout.resume();
  return { child, url };
}

/** Closes the server's stdin (it stops on that) and waits for it; SIGKILL when it takes too long. */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  child.stdin?.end();
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => {
    killGroup(child, 'SIGKILL');
  }, 2000);
  await exited;
  clearTimeout(timer);
}

/** Every object of a whereabouts kind, in all namespaces; undefined when the server does not answer. */
export async function listObjects(url: string, plural: string): Promise<JsonObject[] | undefined> {
  try {
    const response = await fetch(`${url}/apis/${group}/${plural}`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return undefined;
    return arrayAt(await response.json(), 'items')?.filter(isObject);
  } catch {
    return undefined;
  }
}

export function poolRow(object: JsonObject): PoolRow {
  const { name } = metaOf(object);
  const range = stringAt(objectAt(object, 'spec'), 'range') ?? '';
  const pool = rawPool(object);
  const cidr = parseCidr(range);
  let used = 0;
  if (pool.ok)
    for (const [key, value] of Object.entries(pool.value.entries))
      if (decodeEntry(pool.value, key, value) !== undefined) used++;
  return {
    name,
    range,
    used,
    capacity: cidr === undefined ? 0n : rangeCapacity(makeRange(normalise(cidr), [])),
  };
}
