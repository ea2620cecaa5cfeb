import {
  broadcastOf,
  cidrContains,
  formatCidr,
  networkOf,
  normalise,
  parseCidr,
} from '../../../src/ip/cidr.ts';
import { parseIP } from '../../../src/ip/address.ts';

const cidr = (text: string) => {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(`bad test CIDR ${text}`);
  return c;
};

describe('CIDRs', () => {
  test.each([
    ['192.168.2.225/28', '192.168.2.224/28'],
    ['10.10.10.0/16', '10.10.0.0/16'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255/32', '255.255.255.255/32'],
    ['00192.00168.1.5/24', '192.168.1.0/24'],
    ['2001::1/116', '2001::/116'],
    ['fd00:0:0:10:0:0:3:1/64', 'fd00:0:0:10::/64'],
    ['abcd::1/64', 'abcd::/64'],
    ['::1/0', '::/0'],
    ['2001:db8::1/128', '2001:db8::1/128'],
  ])('%s normalises to %s', (text, expected) => {
    expect(formatCidr(normalise(cidr(text)))).toBe(expected);
  });

  test.each([
    '10.0.0.0',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/8/8',
    '2001::/129',
    '10.0.0.0/ 8',
    '10.0.0.0/08a',
    '/8',
  ])('rejects %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  test('network, broadcast and membership are exact over all of IPv6', () => {
    const wide = cidr('2001:db8::/32');
    expect(networkOf(wide)).toBe(0x20010db8n << 96n);
    expect(broadcastOf(wide)).toBe((0x20010db8n << 96n) | ((1n << 96n) - 1n));
    expect(cidrContains(wide, parseIP('2001:db8:ffff::1')!)).toBe(true);
    expect(cidrContains(wide, parseIP('2001:db9::')!)).toBe(false);
    expect(cidrContains(cidr('10.0.0.0/8'), parseIP('::a00:1')!)).toBe(false); // other family
  });
});
