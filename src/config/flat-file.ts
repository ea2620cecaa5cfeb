// The optional flat file (`whereabouts.d/whereabouts.conf`) that installers write on each host: IPAM keys at
// its top level that fill whatever the NAD leaves empty. Whereabouts fails every ADD when it is missing;
// here a missing file just means there is nothing to fill in.

import { join } from 'node:path';
import { CniCode, fail, ipamError, ok, type IpamError, type Result } from '../errors.ts';
import { parseJson } from './json.ts';
import { describeProblem, maxUntrustedBytes, readUntrustedText, type FileProblem } from './untrusted-file.ts';

/** Whereabouts' search order after the NAD's own `configuration_path`. */
export const defaultFlatFilePaths: readonly string[] = [
  '/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf',
  '/etc/cni/net.d/whereabouts.d/whereabouts.conf',
  '/host/etc/cni/net.d/whereabouts.d/whereabouts.conf',
];

export const flatFileName = 'whereabouts.conf';

/** A flat file larger than this is refused unread: real ones are a few hundred bytes. */
export const maxFlatFileBytes = maxUntrustedBytes;

export type FlatFile = {
  readonly path: string;
  readonly content: unknown;
  /** Found through the NAD's `configuration_path`, so chosen by whoever wrote the NAD: untrusted. */
  readonly namedByNad: boolean;
};

/** The error for a flat file that exists but cannot be used: 7 for what it is, 5 for a failed read. */
function unusable(path: string, problem: FileProblem): IpamError {
  return problem.kind === 'failed'
    ? ipamError(CniCode.IoFailure, `cannot read the flat file ${path}: ${problem.errno}`)
    : ipamError(CniCode.InvalidConfig, `the flat file ${path} ${describeProblem(problem)}`);
}

/**
 * Finds and reads the first flat file among the candidates. `configuration_path` may name the file or, as
 * the installers write it, the directory that holds it. A candidate that exists but cannot be used — not
 * a regular file, too large, unreadable — is an error (not skipped), and errors never quote the file's
 * contents. Every candidate is read through untrusted-file.ts: a NAD names the first one.
 */
export function readFlatFile(
  configurationPath: string | undefined,
  candidates: readonly string[],
): Result<FlatFile | undefined> {
  const named = configurationPath === undefined || configurationPath === '' ? [] : [configurationPath];
  for (const [i, candidate] of [...named, ...candidates].entries()) {
    let path = candidate;
    let read = readUntrustedText(path, maxFlatFileBytes);
    if (!read.ok && read.error.kind === 'directory') {
      path = join(path, flatFileName);
      read = readUntrustedText(path, maxFlatFileBytes);
    }
    if (!read.ok) {
      if (read.error.kind === 'missing') continue;
      return fail(unusable(path, read.error));
    }
    const parsed = parseJson(read.value);
    if (!parsed.ok)
      return fail(ipamError(CniCode.DecodeFailure, `the flat file ${path} is not valid: ${parsed.error}`));
    return ok({ path, content: parsed.value, namedByNad: i < named.length });
  }
  return ok(undefined);
}
