// Reading and appending to files whose path someone else chose — a NAD's `configuration_path`,
// `kubernetes.kubeconfig`, `log_file`, and the files these name. Whoever may create a NAD may name a FIFO
// (an open or a read blocks until another process writes), a device (`/dev/zero` never ends), a directory
// or a huge file; in the node agent a blocking read would stall every other pod's request with it. So a
// path is opened without blocking (O_NONBLOCK), checked on the open descriptor (fstat: no race with a
// rename), and used only when it is a regular file, read up to a limit. Anything but a regular file or a
// directory is refused before it is even opened. The one place that opens such paths.

import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { errnoOf, fail, ok, type Result } from '../errors.ts';

/** The default size limit: a flat file or kubeconfig is a few KiB; this is far above any real one. */
export const maxUntrustedBytes = 1 << 20;

/** Why a file was not used. */
export type FileProblem =
  | { readonly kind: 'missing' }
  | { readonly kind: 'directory' }
  /** A FIFO, a device or a socket: `what` says which. */
  | { readonly kind: 'not-regular'; readonly what: string }
  | { readonly kind: 'too-large'; readonly limit: number }
  /** The open or read failed: the errno code (EACCES, ELOOP, …). */
  | { readonly kind: 'failed'; readonly errno: string };

/** How the problem reads after "the <thing> <path> ": "is a FIFO, not a regular file". */
export function describeProblem(problem: FileProblem): string {
  switch (problem.kind) {
    case 'missing':
      return 'does not exist';
    case 'directory':
      return 'is a directory, not a regular file';
    case 'not-regular':
      return `is ${problem.what}, not a regular file`;
    case 'too-large':
      return `is larger than ${problem.limit} bytes`;
    case 'failed':
      return `cannot be read: ${problem.errno}`;
  }
}

function kindOf(stat: Stats): FileProblem | undefined {
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return { kind: 'directory' };
  const what = stat.isFIFO()
    ? 'a FIFO'
    : stat.isCharacterDevice()
      ? 'a character device'
      : stat.isBlockDevice()
        ? 'a block device'
        : stat.isSocket()
          ? 'a socket'
          : 'not a plain file';
  return { kind: 'not-regular', what };
}

/**
 * Opens without blocking. A path that is something else than a regular file or a directory is refused
 * before it is opened at all: opening a device can act (`/dev/watchdog` arms the node's watchdog). The
 * caller checks the descriptor again (the path may have changed in between).
 */
function opened(path: string, flags: number, mode?: number): Result<number, FileProblem> {
  try {
    const problem = kindOf(statSync(path));
    if (problem !== undefined && problem.kind !== 'directory') return fail(problem);
  } catch {
    // absent (created by O_CREAT, or the open says why) or not reachable: the open tells
  }
  try {
    return ok(openSync(path, flags | constants.O_NONBLOCK | constants.O_NOCTTY, mode));
  } catch (e) {
    const errno = errnoOf(e) ?? 'unknown error';
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return fail({ kind: 'missing' });
    if (errno === 'EISDIR') return fail({ kind: 'directory' });
    // A FIFO with no reader, or a device without its hardware, refuses a non-blocking open for writing.
    if (errno === 'ENXIO') return fail({ kind: 'not-regular', what: 'a FIFO or a device' });
    return fail({ kind: 'failed', errno });
  }
}

/**
 * The content of a regular file of at most `maxBytes`, read without ever blocking on what the path turns
 * out to be. Symbolic links are followed; what they lead to is checked.
 */
export function readUntrustedFile(path: string, maxBytes = maxUntrustedBytes): Result<Buffer, FileProblem> {
  const fd = opened(path, constants.O_RDONLY);
  if (!fd.ok) return fd;
  try {
    const stat = fstatSync(fd.value);
    const problem = kindOf(stat);
    if (problem !== undefined) return fail(problem);
    if (stat.size > maxBytes) return fail({ kind: 'too-large', limit: maxBytes });
    // The size may change while reading: read to the end, but never past the limit.
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) return fail({ kind: 'too-large', limit: maxBytes });
      const n = readSync(fd.value, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) return fail({ kind: 'too-large', limit: maxBytes });
    }
    return ok(buffer.subarray(0, length));
  } catch (e) {
    return fail({ kind: 'failed', errno: errnoOf(e) ?? 'unknown error' });
  } finally {
    closeSync(fd.value);
  }
}

/** `readUntrustedFile` as UTF-8 text. */
export function readUntrustedText(path: string, maxBytes = maxUntrustedBytes): Result<string, FileProblem> {
  const read = readUntrustedFile(path, maxBytes);
  return read.ok ? ok(read.value.toString('utf8')) : read;
}

/** Identifies a file across paths (hard and symbolic links): device and inode. */
export type FileIdentity = { readonly dev: number; readonly ino: number };

/**
 * Appends `text` to a regular file, creating it (mode `mode`) when absent; never writes to a FIFO, a
 * device or a directory, never blocks, and refuses the files in `protect` — whatever path leads there.
 */
export function appendUntrustedFile(
  path: string,
  text: string,
  options: { readonly mode?: number; readonly protect?: readonly FileIdentity[] } = {},
): Result<void, FileProblem | { readonly kind: 'protected' }> {
  const fd = opened(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, options.mode ?? 0o644);
  if (!fd.ok) return fd;
  try {
    const stat = fstatSync(fd.value);
    const problem = kindOf(stat);
    if (problem !== undefined) return fail(problem);
    if (options.protect?.some((p) => p.dev === stat.dev && p.ino === stat.ino) === true)
      return fail({ kind: 'protected' });
    writeSync(fd.value, text);
    return ok(undefined);
  } catch (e) {
    return fail({ kind: 'failed', errno: errnoOf(e) ?? 'unknown error' });
  } finally {
    closeSync(fd.value);
  }
}

/** The identity of a regular file, for `protect`; undefined when there is none to protect at that path. */
export function identityOf(path: string): FileIdentity | undefined {
  try {
    const stat = statSync(path);
    return stat.isFile() ? { dev: stat.dev, ino: stat.ino } : undefined;
  } catch {
    return undefined;
  }
}
