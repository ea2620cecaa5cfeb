import { formatIP, ipOf, parseIP } from '../../../src/ip/address.ts';

describe('parseIP', () => {
  test.each([
    ['192.168.1.5', 4, 0xc0a80105n],
    ['0.0.0.0', 4, 0n],
    ['255.255.255.255', 4, 0xffffffffn],
    // Leading zeros are decimal, as in Whereabouts (Go's ParseIPSloppy), never octal.
    ['00192.00168.1.5', 4, 0xc0a80105n],
    ['010.0.0.1', 4, 0x0a000001n],
    ['000000192.168.001.025', 4, 0xc0a80119n],
    ['::', 6, 0n],
    ['::1', 6, 1n],
    ['2001:db8::1', 6, 0x20010db8000000000000000000000001n],
    ['2001:DB8::A', 6, 0x20010db800000000000000000000000an],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', 6, 0x20010db8000000000000000000000001n],
    ['1:2:3:4:5:6:7:8', 6, 0x00010002000300040005000600070008n],
    ['1:2:3:4:5:6:7::', 6, 0x00010002000300040005000600070000n],
    ['::ffff:1.2.3.4', 6, 0xffff01020304n],
    ['::1.2.3.4', 6, 0x01020304n],
    ['64:ff9b::192.0.2.33', 6, 0x0064ff9b0000000000000000c0000221n],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 6, (1n << 128n) - 1n],
  ])('%s', (text, family, value) => {
    expect(parseIP(text)).toEqual({ family, value });
  });

  test.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.-1',
    '0x0a.0.0.1',
    '10.1',
    ' 10.0.0.1',
    '10.0.0.1 ',
    '1::2::3',
    ':1:2',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '00001::1',
    'fe80::1%eth0',
    '1.2.3.4::',
    '::1.2.3',
    'g::1',
    '10.0.0.0/8',
  ])('rejects %j', (text) => {
    expect(parseIP(text)).toBeUndefined();
  });
});

describe('formatIP prints what Go prints, because object names derive from it', () => {
  test.each([
    ['10.0.0.1', '10.0.0.1'],
    ['010.000.000.001', '10.0.0.1'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0:0:1::1', '2001:0:0:1::1'], // the longer run is compressed
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first run wins a tie
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001::', '2001::'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['fd00:0:0:10:0:0:3:1', 'fd00::10:0:0:3:1'], // two runs of two: the first wins
    ['fd00:0:0:10::', 'fd00:0:0:10::'],
    ['2001:db8:480:603d:304:403::', '2001:db8:480:603d:304:403::'],
  ])('%s → %s', (text, expected) => {
    const ip = parseIP(text);
    expect(ip).toBeDefined();
    if (ip !== undefined) expect(formatIP(ip)).toBe(expected);
  });

  test('round-trips random addresses of both families', () => {
    for (let i = 0; i < 2000; i++) {
      const v4 = BigInt(Math.floor(Math.random() * 2 ** 32));
      expect(parseIP(formatIP(ipOf(4, v4)))).toEqual(ipOf(4, v4));
      // Random groups with many zeros so that the :: placement is exercised.
      let v6 = 0n;
      for (let g = 0; g < 8; g++)
        v6 = (v6 << 16n) | (Math.random() < 0.5 ? 0n : BigInt(Math.floor(Math.random() * 65536)));
      expect(parseIP(formatIP(ipOf(6, v6)))).toEqual(ipOf(6, v6));
    }
  });
});
