// Test helpers that turn text into addresses and ranges, failing loudly on a typo in a test table.
import { formatIP, ipOf, parseIP, type Family } from '../../src/ip/address.ts';
import { broadcastOf, networkOf, normalise, parseCidr, type Cidr } from '../../src/ip/cidr.ts';
import { makeRange, type Range } from '../../src/ip/range.ts';
import { parseExclusion } from '../../src/config/ranges.ts';

export function ip(text: string): bigint {
  const parsed = parseIP(text);
  if (parsed === undefined) throw new Error(`bad test address ${text}`);
  return parsed.value;
}

export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (parsed === undefined) throw new Error(`bad test CIDR ${text}`);
  return parsed;
}

export function range(
  subnet: string,
  options: { start?: string; end?: string; exclude?: string[]; pick?: string[] } = {},
): Range {
  const exclusions = (options.exclude ?? []).map((text) => {
    const parsed = parseExclusion(text);
    if (parsed === undefined) throw new Error(`bad test exclusion ${text}`);
    return parsed;
  });
  // A pick entry is an address or a CIDR block, as in `pick_addresses`.
  const picks = options.pick?.map((text) => {
    const block = parseExclusion(text);
    if (block === undefined) throw new Error(`bad test pick ${text}`);
    return { lo: networkOf(block), hi: broadcastOf(block) };
  });
  return makeRange(
    normalise(cidr(subnet)),
    exclusions,
    options.start === undefined ? undefined : ip(options.start),
    options.end === undefined ? undefined : ip(options.end),
    picks,
  );
}

export const show = (family: Family, value: bigint | undefined): string | undefined =>
  value === undefined ? undefined : formatIP(ipOf(family, value));
