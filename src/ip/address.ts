// IP addresses of both families as one bigint, so that every range computation is the same code for
// IPv4 and IPv6 and exact over all 128 bits.

export type Family = 4 | 6;

export type IP = { readonly family: Family; readonly value: bigint };

export const addressBits = (family: Family): number => (family === 4 ? 32 : 128);

export const familyMax = (family: Family): bigint => (1n << BigInt(addressBits(family))) - 1n;

export const ipOf = (family: Family, value: bigint): IP => ({ family, value });

const decimalPart = /^[0-9]{1,12}$/;
const hexGroup = /^[0-9a-fA-F]{1,4}$/;

/**
 * Dotted-quad IPv4. Leading zeros are decimal, as in Go's ParseIPSloppy that Whereabouts uses:
 * `00192.00168.1.5` is 192.168.1.5. (Parsers that read `010` as octal 8 would silently move a range.)
 */
function parseIPv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!decimalPart.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** RFC 4291 text form: up to eight hex groups, one `::`, an optional dotted IPv4 tail. No zone index. */
function parseIPv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const pieces = half.split(':');
    const groups: number[] = [];
    for (const [i, piece] of pieces.entries()) {
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (v4 === undefined) return undefined;
        groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (hexGroup.test(piece)) {
        groups.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  if (head === undefined || tail === undefined) return undefined;
  // A dotted tail is only allowed at the very end of the address.
  if (halves.length === 2 && halves[0]?.includes('.')) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...tail];
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/** Parses an IPv4 or IPv6 address. Returns undefined for anything that is not exactly one address. */
export function parseIP(text: string): IP | undefined {
  if (text.includes(':')) {
    const value = parseIPv6(text);
    return value === undefined ? undefined : ipOf(6, value);
  }
  const value = parseIPv4(text);
  return value === undefined ? undefined : ipOf(4, value);
}

/**
 * Text form as Go's net.IP.String() prints it, because Whereabouts derives object names from that text:
 * dotted IPv4; RFC 5952 IPv6 (lower case, longest run of two or more zero groups as `::`, first run on a tie).
 */
export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
