// The optional flat file (`whereabouts.d/whereabouts.conf`) that installers write on each host: IPAM keys at
// its top level that fill whatever the NAD leaves empty. Whereabouts fails every ADD when it is missing;
// here a missing file just means there is nothing to fill in.

import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CniCode, errnoOf, fail, ipamError, ok, type Result } from '../errors.ts';
import { parseJson } from './json.ts';

/** Whereabouts' search order after the NAD's own `configuration_path`. */
export const defaultFlatFilePaths: readonly string[] = [
  '/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf',
  '/etc/cni/net.d/whereabouts.d/whereabouts.conf',
  '/host/etc/cni/net.d/whereabouts.d/whereabouts.conf',
];

export const flatFileName = 'whereabouts.conf';

/** A flat file larger than this is refused unread: real ones are a few hundred bytes. */
export const maxFlatFileBytes = 1 << 20;

export type FlatFile = {
  readonly path: string;
  readonly content: unknown;
  /** Found through the NAD's `configuration_path`, so chosen by whoever wrote the NAD: untrusted. */
  readonly namedByNad: boolean;
};

/**
 * Finds and reads the first flat file among the candidates. `configuration_path` may name the file or, as
 * the installers write it, the directory that holds it. A candidate that exists but cannot be read is an
 * error (not skipped), and errors never quote the file's contents.
 */
export function readFlatFile(
  configurationPath: string | undefined,
  candidates: readonly string[],
): Result<FlatFile | undefined> {
  const named = configurationPath === undefined || configurationPath === '' ? [] : [configurationPath];
  for (const [i, candidate] of [...named, ...candidates].entries()) {
    let path = candidate;
    let size: number;
    try {
      let stat = statSync(path);
      if (stat.isDirectory()) {
        path = join(path, flatFileName);
        stat = statSync(path);
      }
      size = stat.size;
    } catch (e) {
      if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') continue;
      return fail(
        ipamError(CniCode.IoFailure, `cannot read the flat file ${path}: ${errnoOf(e) ?? 'unknown error'}`),
      );
    }
    if (size > maxFlatFileBytes) {
      return fail(
        ipamError(CniCode.InvalidConfig, `the flat file ${path} is larger than ${maxFlatFileBytes} bytes`),
      );
    }
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      return fail(
        ipamError(CniCode.IoFailure, `cannot read the flat file ${path}: ${errnoOf(e) ?? 'unknown error'}`),
      );
    }
    const parsed = parseJson(text);
    if (!parsed.ok)
      return fail(ipamError(CniCode.DecodeFailure, `the flat file ${path} is not valid: ${parsed.error}`));
    return ok({ path, content: parsed.value, namedByNad: i < named.length });
  }
  return ok(undefined);
}
