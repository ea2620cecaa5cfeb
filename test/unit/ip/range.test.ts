import { rangeCapacity, rangeOffers, usableAddresses } from '../../../src/ip/range.ts';
import { cidr, ip, range, show } from '../../support/ip.ts';

describe('usable addresses', () => {
  test.each([
    // Network and broadcast (IPv6: all-ones host) are skipped, as in Whereabouts.
    ['192.168.1.0/24', '192.168.1.1', '192.168.1.254'],
    ['10.0.0.0/30', '10.0.0.1', '10.0.0.2'],
    ['10.0.0.0/8', '10.0.0.1', '10.255.255.254'],
    ['0.0.0.0/0', '0.0.0.1', '255.255.255.254'],
    // Point-to-point subnets: both addresses (RFC 3021, RFC 6164); a host route: its one address.
    ['10.0.0.0/31', '10.0.0.0', '10.0.0.1'],
    ['10.0.0.7/32', '10.0.0.7', '10.0.0.7'],
    ['2001:db8::/127', '2001:db8::', '2001:db8::1'],
    ['2001:db8::5/128', '2001:db8::5', '2001:db8::5'],
    ['2001:db8::/126', '2001:db8::1', '2001:db8::2'],
    // A whole /64 is usable (Whereabouts reached only its first /65).
    ['2001:db8::/64', '2001:db8::1', '2001:db8::ffff:ffff:ffff:fffe'],
    ['::/0', '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'],
  ])('%s → %s … %s', (subnet, lo, hi) => {
    const usable = usableAddresses(cidr(subnet));
    expect(usable).toEqual({ lo: ip(lo), hi: ip(hi) });
  });
});

describe('ranges', () => {
  test('range_start and range_end narrow the usable part and are clamped to it', () => {
    const r = range('192.168.1.0/24', { start: '192.168.1.0', end: '192.168.1.255' });
    expect([show(4, r.first), show(4, r.last)]).toEqual(['192.168.1.1', '192.168.1.254']);
    const narrow = range('192.168.1.0/24', { start: '192.168.1.10', end: '192.168.1.20' });
    expect(rangeCapacity(narrow)).toBe(11n);
    expect(rangeOffers(narrow, ip('192.168.1.20'))).toBe(true); // the end is allocatable (whereabouts#35)
    expect(rangeOffers(narrow, ip('192.168.1.21'))).toBe(false);
  });

  test('exclusions may overlap, be unsorted, be bare addresses and reach outside the range', () => {
    const r = range('10.0.0.0/24', {
      start: '10.0.0.10',
      end: '10.0.0.100',
      exclude: ['10.0.0.64/26', '10.0.0.50', '10.0.0.0/28', '10.0.0.48/30', '10.0.0.96/27'],
    });
    // 10.0.0.0/28 clips to .10–.15; .48–.51 covers .50; .64/26 and .96/27 merge and clip to .64–.100.
    expect(r.exclusions.map((i) => [show(4, i.lo), show(4, i.hi)])).toEqual([
      ['10.0.0.10', '10.0.0.15'],
      ['10.0.0.48', '10.0.0.51'],
      ['10.0.0.64', '10.0.0.100'],
    ]);
    expect(rangeCapacity(r)).toBe(91n - 6n - 4n - 37n);
    // An excluded subnet is excluded whole, its own network and broadcast included.
    expect(rangeOffers(r, ip('10.0.0.48'))).toBe(false);
    expect(rangeOffers(r, ip('10.0.0.52'))).toBe(true);
  });

  test('capacity is exact for huge IPv6 ranges', () => {
    expect(rangeCapacity(range('2001:db8::/64', { exclude: ['2001:db8::/96'] }))).toBe(
      (1n << 64n) - 2n - ((1n << 32n) - 1n),
    );
    expect(rangeCapacity(range('::/0'))).toBe((1n << 128n) - 2n);
  });
});
