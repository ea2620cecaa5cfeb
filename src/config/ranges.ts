// The `range` / `range_start` / `range_end` / `exclude` / `pick_addresses` keys of one range entry, turned
// into a Range. Where Whereabouts silently ignored a meaningless value (a start outside the range, an
// inverted start and end, a bad exclusion that only failed at ADD time), this is an error naming the key and
// the value. `pick_addresses` (a whereabouts-ts extension, named as in the upstream proposal whereabouts#674)
// lists what the range may hand out, in order: each entry must name addresses the range hands out —
// an entry outside it is a mistake to report, not to skip as the proposal does.

import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';
import { formatIP, ipOf, parseIP, type Family, type IP } from '../ip/address.ts';
import {
  broadcastOf,
  cidrContains,
  formatCidr,
  networkOf,
  normalise,
  parseCidr,
  type Cidr,
} from '../ip/cidr.ts';
import type { Interval } from '../ip/interval.ts';
import { makeRange, usableAddresses, type Range } from '../ip/range.ts';
import { readFields, stringField, stringsField, type Fields, type Schema } from './fields.ts';
import type { RangeConfig } from './ipam-config.ts';
import { quoteText } from './json.ts';

export const rangeSchema = {
  range: 'string',
  range_start: 'string',
  range_end: 'string',
  exclude: 'strings',
  pick_addresses: 'strings',
} as const satisfies Schema;

/** Most exclusions one range may list; a guard against hostile configs, far above real use. */
export const maxExclusions = 10_000;

/** Most `pick_addresses` entries of one range; as for exclusions. */
export const maxPicks = 10_000;

const invalid = (details: string): Result<never> => fail(ipamError(CniCode.InvalidConfig, details));

const familyName = (family: Family): string => (family === 4 ? 'IPv4' : 'IPv6');

/** The IPv4-mapped block ::ffff:0:0/96: such "IPv6" ranges are IPv4 ranges in disguise and are refused. */
const ipv4Mapped = (c: Cidr): boolean => c.family === 6 && c.prefix >= 96 && c.address >> 32n === 0xffffn;

/** Parses an exclusion: a CIDR, or a bare address meaning just that address. */
export function parseExclusion(text: string): Cidr | undefined {
  const cidr = parseCidr(text);
  if (cidr !== undefined) return cidr;
  const ip = parseIP(text);
  return ip === undefined
    ? undefined
    : { family: ip.family, address: ip.value, prefix: ip.family === 4 ? 32 : 128 };
}

type Bounds = { readonly subnet: Cidr; readonly start?: IP; readonly end?: IP };

/** `range` in either form: a CIDR, or `<start>-<end>/<prefix>` where the end carries the prefix. */
function parseRangeText(text: string, where: string): Result<Bounds> {
  const dash = text.indexOf('-');
  if (dash < 0) {
    const cidr = parseCidr(text);
    if (cidr === undefined) {
      return invalid(
        `${where}.range: ${quoteText(text)} is not a CIDR (such as 192.168.1.0/24) or a start-end/prefix range ` +
          `(such as 192.168.1.10-192.168.1.50/24)`,
      );
    }
    return ok({ subnet: normalise(cidr) });
  }
  const startText = text.slice(0, dash);
  const endText = text.slice(dash + 1);
  const start = parseIP(startText);
  if (start === undefined)
    return invalid(`${where}.range: ${quoteText(startText)} in ${quoteText(text)} is not an IP address`);
  const end = parseCidr(endText);
  if (end === undefined) {
    return invalid(
      `${where}.range: ${quoteText(endText)} in ${quoteText(text)} must be the last address with the prefix length, such as 192.168.1.50/24`,
    );
  }
  const subnet = normalise(end);
  if (!cidrContains(subnet, start)) {
    return invalid(
      `${where}.range: start ${formatIP(start)} is not inside ${formatCidr(subnet)} in ${quoteText(text)}`,
    );
  }
  const endIP = ipOf(end.family, end.address);
  if (start.value > endIP.value) {
    return invalid(
      `${where}.range: start ${formatIP(start)} is after end ${formatIP(endIP)} in ${quoteText(text)}`,
    );
  }
  return ok({ subnet, start, end: endIP });
}

/** `range_start` / `range_end` next to a range: inside the subnet, of its family, and agreeing with the range text. */
function boundary(
  key: 'range_start' | 'range_end',
  fields: Fields,
  bounds: Bounds,
  where: string,
): Result<IP | undefined> {
  const text = stringField(fields, key);
  const fromRange = key === 'range_start' ? bounds.start : bounds.end;
  if (text === undefined || text === '') return ok(fromRange);
  const ip = parseIP(text);
  if (ip === undefined) return invalid(`${where}.${key}: ${quoteText(text)} is not an IP address`);
  if (ip.family !== bounds.subnet.family) {
    return invalid(
      `${where}.${key}: ${formatIP(ip)} is ${familyName(ip.family)} but the range ${formatCidr(bounds.subnet)} is ${familyName(bounds.subnet.family)}`,
    );
  }
  if (!cidrContains(bounds.subnet, ip)) {
    return invalid(`${where}.${key}: ${formatIP(ip)} is outside the range ${formatCidr(bounds.subnet)}`);
  }
  if (fromRange !== undefined && fromRange.value !== ip.value) {
    return invalid(
      `${where}.${key}: ${formatIP(ip)} conflicts with ${formatIP(fromRange)} given by the start-end form of range`,
    );
  }
  return ok(ip);
}

function exclusions(fields: Fields, subnet: Cidr, where: string): Result<Cidr[]> {
  const texts = stringsField(fields, 'exclude');
  if (texts.length > maxExclusions) {
    return invalid(`${where}.exclude lists ${texts.length} entries; at most ${maxExclusions} are allowed`);
  }
  const parsed: Cidr[] = [];
  for (const text of texts) {
    const exclusion = parseExclusion(text.trim());
    if (exclusion === undefined)
      return invalid(`${where}.exclude: ${quoteText(text)} is neither a CIDR nor an IP address`);
    if (exclusion.family !== subnet.family) {
      return invalid(
        `${where}.exclude: ${text} is ${familyName(exclusion.family)} but the range ${formatCidr(subnet)} is ${familyName(subnet.family)}`,
      );
    }
    if (broadcastOf(exclusion) < networkOf(subnet) || networkOf(exclusion) > broadcastOf(subnet)) {
      return invalid(`${where}.exclude: ${text} lies entirely outside the range ${formatCidr(subnet)}`);
    }
    parsed.push(exclusion);
  }
  return ok(parsed);
}

/**
 * `pick_addresses`: addresses and CIDR blocks, in order of preference, as address intervals; undefined when
 * the list is absent or empty. Each entry lies inside the subnet and names at least one address the range
 * hands out ([first, last] of `range`: no network or broadcast address, nothing outside range_start and
 * range_end); a block's addresses outside [first, last] are never handed out. Host bits in a block are an
 * error: `10.0.0.5/24` could mean the address or the /24.
 */
function pickList(fields: Fields, range: Range, where: string): Result<Interval[] | undefined> {
  const texts = stringsField(fields, 'pick_addresses');
  if (texts.length === 0) return ok(undefined);
  if (texts.length > maxPicks) {
    return invalid(`${where}.pick_addresses lists ${texts.length} entries; at most ${maxPicks} are allowed`);
  }
  const { subnet, first, last } = range;
  const shown = (v: bigint): string => formatIP(ipOf(subnet.family, v));
  const blocks: Interval[] = [];
  for (const [i, text] of texts.entries()) {
    const at = `${where}.pick_addresses[${i}]`;
    const block = parseExclusion(text.trim());
    if (block === undefined) return invalid(`${at}: ${quoteText(text)} is neither an IP address nor a CIDR`);
    if (block.family !== subnet.family) {
      return invalid(
        `${at}: ${text} is ${familyName(block.family)} but the range ${formatCidr(subnet)} is ${familyName(subnet.family)}`,
      );
    }
    const lo = networkOf(block);
    const hi = broadcastOf(block);
    if (lo !== block.address) {
      return invalid(
        `${at}: ${text} has host bits set: write ${shown(block.address)} for the one address or ` +
          `${formatCidr(normalise(block))} for the block`,
      );
    }
    if (lo < networkOf(subnet) || hi > broadcastOf(subnet)) {
      return invalid(`${at}: ${text} is outside the range ${formatCidr(subnet)}`);
    }
    if (hi < first || lo > last) {
      return invalid(
        `${at}: ${text} is not an address the range hands out: those are ${shown(first)} to ${shown(last)} ` +
          '(never the network or broadcast address, nor outside range_start/range_end)',
      );
    }
    blocks.push({ lo, hi });
  }
  return ok(blocks);
}

/** One range entry (the top-level keys or an `ipRanges` item) as a validated range. */
export function parseRangeEntry(entry: Fields, where: string): Result<RangeConfig> {
  const text = stringField(entry, 'range') ?? '';
  if (text === '') return invalid(`${where}.range is missing or empty`);
  const bounds = parseRangeText(text.trim(), where);
  if (!bounds.ok) return bounds;
  const { subnet } = bounds.value;
  if (ipv4Mapped(subnet)) {
    return invalid(`${where}.range: ${text} is an IPv4-mapped IPv6 range; write the IPv4 range instead`);
  }
  const start = boundary('range_start', entry, bounds.value, where);
  if (!start.ok) return start;
  const end = boundary('range_end', entry, bounds.value, where);
  if (!end.ok) return end;
  const excluded = exclusions(entry, subnet, where);
  if (!excluded.ok) return excluded;

  const range = makeRange(subnet, excluded.value, start.value?.value, end.value?.value);
  if (range.first > range.last) {
    const usable = usableAddresses(subnet);
    const shown = (v: bigint): string => formatIP(ipOf(subnet.family, v));
    return invalid(
      `${where}: range_start ${shown(range.first)} is after range_end ${shown(range.last)} ` +
        `(usable addresses of ${formatCidr(subnet)} are ${shown(usable.lo)} to ${shown(usable.hi)})`,
    );
  }
  const picks = pickList(entry, range, where);
  if (!picks.ok) return picks;
  if (picks.value === undefined) return ok({ range, text });
  const picked = makeRange(subnet, excluded.value, start.value?.value, end.value?.value, picks.value);
  return ok({ range: picked, text });
}

/** Reads and validates the entries of `ipRanges`. */
export function parseIpRanges(items: readonly unknown[], quoteValues: boolean): Result<RangeConfig[]> {
  const ranges: RangeConfig[] = [];
  for (const [i, item] of items.entries()) {
    const where = `ipam.ipRanges[${i}]`;
    const fields = readFields(item, rangeSchema, { where, quoteValues });
    if (!fields.ok) return fields;
    const range = parseRangeEntry(fields.value, where);
    if (!range.ok) return range;
    ranges.push(range.value);
  }
  return ok(ranges);
}
