// Why this file: `validate` reports every error of a config, but its first must stay exactly what the
// plugin answers on ADD (code and message), whatever else is wrong — checked here against the plugin's own
// loader for configs with one and with several errors.

import { checkNad, withHostLocalHint } from '../../../src/config/check-nad.ts';
import { loadConfig } from '../../../src/config/load.ts';

const kubernetes = { kubeconfig: '/etc/kubeconfig' };
const configs: Record<string, object> = {
  'bad range then bad gateway': { range: '10.0.0.0/33', gateway: 'x', kubernetes },
  'bad gateway then bad route': { range: '10.0.0.0/24', gateway: 'x', routes: [{ dst: 'y' }], kubernetes },
  'unknown key then bad dns': {
    range: '10.0.0.0/24',
    rnage: 1,
    dns: { nameservers: 'not a list' },
    kubernetes,
  },
  'two bad routes and a bad name': {
    range: '10.0.0.0/24',
    routes: [{ dst: 'a' }, { dst: '10.0.0.0/8', gw: '2001:db8::1' }],
    network_name: 'UPPER',
    kubernetes,
  },
  'slice size too small, bad kubernetes key': {
    range: '10.0.0.0/8',
    node_slice_size: '/31',
    kubernetes: { kubeconfig: '/k', extra: true },
  },
};

test.each(Object.entries(configs))("%s: the first error is the plugin's, and more are found", (_, ipam) => {
  const config = { cniVersion: '1.0.0', name: 'n', type: 'macvlan', ipam: { type: 'whereabouts', ...ipam } };
  const plugin = loadConfig({ stdin: JSON.stringify(config), cniArgs: undefined, flatFilePaths: [] });
  const [check] = checkNad({ spec: { config: JSON.stringify(config) } }, []);
  if (plugin.ok || check === undefined || check.ok) throw new Error('both must refuse the config');
  expect({ code: check.code, error: check.error }).toEqual({
    code: plugin.error.code,
    error: plugin.error.details,
  });
  expect(check.errors[0]).toEqual({ code: check.code, error: check.error });
  expect(check.errors.length).toBeGreaterThan(1);
  expect(new Set(check.errors.map((e) => e.error)).size).toBe(check.errors.length);
});

test('a valid config has no errors and the plugin accepts it too', () => {
  const config = {
    cniVersion: '1.0.0',
    name: 'n',
    type: 'macvlan',
    ipam: { type: 'whereabouts', range: '10.0.0.0/24', kubernetes },
  };
  expect(loadConfig({ stdin: JSON.stringify(config), cniArgs: undefined, flatFilePaths: [] }).ok).toBe(true);
  expect(checkNad({ spec: { config: JSON.stringify(config) } }, [])).toEqual([
    { nad: 'default/?', plugin: 'macvlan', ok: true, warnings: [] },
  ]);
});

test('host-local keys are named by their Whereabouts names, also inside ipRanges', () => {
  const ipam = {
    type: 'whereabouts',
    ipRanges: [{ subnet: '10.0.0.0/24' }],
    ranges: [[{ subnet: '10.1.0.0/24' }]],
    resolvConf: '/etc/resolv.conf',
    kubernetes,
  };
  const [check] = checkNad(
    { spec: { config: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'macvlan', ipam }) } },
    [],
  );
  if (check === undefined || check.ok) throw new Error('the config must be refused');
  expect(check.errors.map((e) => e.error)).toEqual([
    'unknown key "ranges" with value [[{"subnet":"10.1.0.0/24"}]] in ipam: this is host-local\'s key; Whereabouts calls it "ipRanges", a list of {"range", "range_start", "range_end", "exclude"}',
    'unknown key "resolvConf" with value "/etc/resolv.conf" in ipam: this is host-local\'s key; Whereabouts reads no resolv.conf: set "dns" instead',
    'unknown key "subnet" with value "10.0.0.0/24" in ipam.ipRanges[0]: this is host-local\'s key; Whereabouts calls it "range"',
  ]);
  // A mistyped Whereabouts key keeps the plugin's own guess.
  expect(withHostLocalHint('unknown key "rnage" in ipam (did you mean "range"?)')).toBe(
    'unknown key "rnage" in ipam (did you mean "range"?)',
  );
});
