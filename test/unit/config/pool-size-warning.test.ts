// A range without node slices keeps every allocation in one IPPool, which the API server refuses past its
// object size limit (about 10,000 allocations): the plugin's config check and `check-nad` warn about a range
// that can hand out more, naming node_slice_size and smaller ipRanges — and still accept the config.

import { checkNad } from '../../../src/config/check-nad.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { poolAllocationLimit } from '../../../src/config/validate.ts';

const kubernetes = { kubeconfig: '/etc/kubeconfig' };
const networkConfig = (ipam: object) => ({
  cniVersion: '1.0.0',
  name: 'n',
  type: 'macvlan',
  ipam: { type: 'whereabouts', kubernetes, ...ipam },
});

/** The plugin's warnings for a config; it must accept the config. */
function pluginWarnings(ipam: object): readonly string[] {
  const loaded = loadConfig({
    stdin: JSON.stringify(networkConfig(ipam)),
    cniArgs: undefined,
    flatFilePaths: [],
  });
  if (!loaded.ok) throw new Error(loaded.error.details);
  return loaded.value.warnings;
}

const warningFor = (range: string) =>
  `range ${range} has more addresses than one IPPool can hold (about 10,000 allocations, under the API server's object size limit): past that, every ADD in it fails; set node_slice_size, or split the range into smaller ipRanges`;

test('the limit is below the 11,150 allocations measured with 32-character pod refs', () => {
  expect(poolAllocationLimit).toBe(10_000);
});

test.each<[string, object, string[]]>([
  ['a /16', { range: '10.0.0.0/16' }, ['10.0.0.0/16']],
  ['an IPv6 /64 in ipRanges', { ipRanges: [{ range: '2001:db8::/64' }] }, ['2001:db8::/64']],
  [
    'each large range of a dual-stack config',
    { range: '10.0.0.0/24', ipRanges: [{ range: '10.1.0.0/18' }, { range: '2001:db8::/64' }] },
    ['10.1.0.0/18', '2001:db8::/64'],
  ],
  [
    'one address over the limit (start-end form)',
    { range: '10.0.0.1-10.0.39.17/16' },
    ['10.0.0.1-10.0.39.17/16'],
  ],
  ['exactly the limit', { range: '10.0.0.1-10.0.39.16/16' }, []],
  ['a /16 cut down to the limit by range_end', { range: '10.0.0.0/16', range_end: '10.0.39.16' }, []],
  [
    'a /16 with most of it excluded',
    { range: '10.0.0.0/16', exclude: ['10.0.128.0/17', '10.0.64.0/18', '10.0.32.0/19'] },
    [],
  ],
  ['a /24', { range: '10.0.0.0/24' }, []],
  ['a /16 with node slices', { range: '10.0.0.0/16', node_slice_size: '/24' }, []],
  ['an IPv6 /64 with node slices', { range: '2001:db8::/64', node_slice_size: '/77' }, []],
])('%s', (_, ipam, warned) => {
  expect(pluginWarnings(ipam)).toEqual(warned.map(warningFor));
});

test('check-nad gives the same warning, and the NAD is ok', () => {
  const config = networkConfig({ range: '10.0.0.0/16', gateway: '10.0.0.1' });
  expect(
    checkNad({ metadata: { namespace: 'apps', name: 'big' }, spec: { config: JSON.stringify(config) } }, []),
  ).toEqual([{ nad: 'apps/big', plugin: 'macvlan', ok: true, warnings: [warningFor('10.0.0.0/16')] }]);
});
