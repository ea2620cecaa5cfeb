import { addressBits, familyMax, formatIP, ipOf, parseIP, type Family, type IP } from './address.ts';

/** An address with a prefix length, as written: `192.168.2.225/28` keeps its host bits here. */
export type Cidr = { readonly family: Family; readonly address: bigint; readonly prefix: number };

const prefixText = /^[0-9]{1,3}$/;

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixPart = text.slice(slash + 1);
  if (ip === undefined || !prefixText.test(prefixPart)) return undefined;
  const prefix = Number(prefixPart);
  if (prefix > addressBits(ip.family)) return undefined;
  return { family: ip.family, address: ip.value, prefix };
}

export const hostMask = (family: Family, prefix: number): bigint =>
  (1n << BigInt(addressBits(family) - prefix)) - 1n;

export const networkOf = (c: Cidr): bigint =>
  c.address & (familyMax(c.family) ^ hostMask(c.family, c.prefix));

export const broadcastOf = (c: Cidr): bigint => networkOf(c) | hostMask(c.family, c.prefix);

/** The network the CIDR denotes, host bits cleared: `192.168.2.225/28` becomes `192.168.2.224/28`. */
export const normalise = (c: Cidr): Cidr => ({ ...c, address: networkOf(c) });

export const cidrContains = (c: Cidr, ip: IP): boolean =>
  ip.family === c.family && ip.value >= networkOf(c) && ip.value <= broadcastOf(c);

export const formatCidr = (c: Cidr): string => `${formatIP(ipOf(c.family, c.address))}/${c.prefix}`;
