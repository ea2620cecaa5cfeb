// `whereabouts-ts validate`: NADs checked with the plugin's own rules, as a process reading what
// `kubectl get net-attach-def -A -o yaml` prints: every error of a config at once, host-local's keys named
// by their Whereabouts names, skipped NADs with the reason, and the bridge isGateway warning.

import { join } from 'node:path';
import { execute } from '../support/exec.ts';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

const nad = (name: string, config: object) => ({
  apiVersion: 'k8s.cni.cncf.io/v1',
  kind: 'NetworkAttachmentDefinition',
  metadata: { namespace: 'apps', name },
  spec: { config: JSON.stringify(config) },
});

/** What `kubectl get -o yaml` prints for several objects: a List (JSON is YAML). */
const list = JSON.stringify({
  apiVersion: 'v1',
  kind: 'List',
  items: [
    nad('good', {
      cniVersion: '1.0.0',
      name: 'good',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range: '10.1.0.0/24' },
    }),
    nad('typo', {
      cniVersion: '1.0.0',
      name: 'typo',
      type: 'macvlan',
      ipam: { type: 'whereabouts', rnage: '10.1.0.0/24' },
    }),
    nad('conflist', {
      cniVersion: '1.0.0',
      name: 'chained',
      plugins: [{ type: 'bridge', ipam: { type: 'whereabouts', range: '10.2.0.0/33' } }, { type: 'tuning' }],
    }),
    nad('fast-ipam', {
      cniVersion: '1.0.0',
      name: 'fast',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range: '10.3.0.0/16', node_slice_size: '/30' },
    }),
    nad('host-local', { cniVersion: '1.0.0', name: 'hl', type: 'macvlan', ipam: { type: 'host-local' } }),
  ],
});

test('each whereabouts config is checked; the invalid ones are named with the code and error the plugin would give', async () => {
  const result = await execute([process.execPath, cli, 'validate', '-'], {}, list, 30_000);
  expect(result.code).toBe(1);
  const lines = result.stdout.trim().split('\n');
  expect(lines[0]).toBe('ok    apps/good (macvlan)');
  expect(lines[1]).toMatch(/^FAIL {2}apps\/typo \(macvlan\): code 2: .*"rnage".*did you mean "range"/);
  expect(lines[2]).toMatch(/^FAIL {2}apps\/conflist \(bridge\): code 7: .*10\.2\.0\.0\/33/);
  expect(lines[3]).toMatch(
    /^FAIL {2}apps\/fast-ipam \(macvlan\): code 7: .*node_slice_size \/30 divides 10\.3\.0\.0\/16 into 2\^14 slices/,
  );
  // host-local is not ours: skipped, saying why.
  expect(lines[4]).toBe('skip  apps/host-local: no plugin uses whereabouts IPAM (macvlan: ipam host-local)');
  expect(lines).toHaveLength(5);
  expect(result.stderr).toContain('4 whereabouts configurations checked, 3 invalid; 1 skipped');
});

test("every error of a config at once, the plugin's own first; host-local keys get their Whereabouts names", async () => {
  const config = {
    cniVersion: '1.0.0',
    name: 'moved',
    type: 'macvlan',
    // A host-local config whose type alone was changed, with two mistakes of its own.
    ipam: {
      type: 'whereabouts',
      subnet: '10.4.0.0/24',
      rangeStart: '10.4.0.10',
      rangeEnd: '10.4.0.50',
      dataDir: '/var/lib/cni/networks',
      gateway: '10.4.0.300',
      routes: [{ dst: '0.0.0.0/0' }, { dst: 'default' }],
    },
  };
  const result = await execute(
    [process.execPath, cli, 'validate', '-'],
    {},
    JSON.stringify(nad('moved', config)),
    30_000,
  );
  expect(result.code).toBe(1);
  expect(result.stdout.trim().split('\n')).toEqual([
    'FAIL  apps/moved (macvlan): code 2: unknown key "subnet" with value "10.4.0.0/24" in ipam: this is host-local\'s key; Whereabouts calls it "range"',
    '      error: code 2: unknown key "rangeStart" with value "10.4.0.10" in ipam: this is host-local\'s key; Whereabouts calls it "range_start"',
    '      error: code 2: unknown key "rangeEnd" with value "10.4.0.50" in ipam: this is host-local\'s key; Whereabouts calls it "range_end"',
    '      error: code 2: unknown key "dataDir" with value "/var/lib/cni/networks" in ipam: this is host-local\'s key; Whereabouts has none: allocations are kept in the Kubernetes API; remove it',
    '      error: code 7: ipam.gateway: "10.4.0.300" is not an IP address',
    '      error: code 7: ipam.routes[1].dst: "default" is not a CIDR',
  ]);
  expect(result.stderr).toContain('1 whereabouts configurations checked, 1 invalid');
});

test('NADs and objects with nothing to check are listed as skipped, with the reason', async () => {
  const input = JSON.stringify([
    { ...nad('on-disk', {}), spec: {} },
    nad('chained-host-local', {
      cniVersion: '1.0.0',
      name: 'c',
      plugins: [{ type: 'bridge', ipam: { type: 'host-local' } }, { type: 'tuning' }],
    }),
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'apps', name: 'settings' } },
  ]);
  const result = await execute([process.execPath, cli, 'validate', '-'], {}, input, 30_000);
  expect(result.code).toBe(0);
  expect(result.stdout.trim().split('\n').sort()).toEqual([
    'skip  ConfigMap apps/settings: not a NetworkAttachmentDefinition',
    'skip  apps/chained-host-local: no plugin uses whereabouts IPAM (bridge: ipam host-local; tuning: no ipam)',
    'skip  apps/on-disk: no spec.config: Multus reads this network from a file on the nodes, which is not checked here',
  ]);
  expect(result.stderr).toContain('0 whereabouts configurations checked, 0 invalid; 3 skipped');
});

test('a bridge with isGateway and no ipam gateway is warned about: it takes an address the pool hands out', async () => {
  const bridge = (name: string, ipam: object) =>
    nad(name, {
      cniVersion: '1.0.0',
      name,
      type: 'bridge',
      isGateway: true,
      ipam: { type: 'whereabouts', ...ipam },
    });
  const input = JSON.stringify([
    bridge('no-gateway', { range: '10.6.0.0/24' }),
    bridge('first-not-offered', { range: '10.6.1.0/24', range_start: '10.6.1.10' }),
    bridge('with-gateway', { range: '10.6.2.0/24', gateway: '10.6.2.1', exclude: ['10.6.2.1/32'] }),
  ]);
  const result = await execute([process.execPath, cli, 'validate', '-'], {}, input, 30_000);
  expect(result.code).toBe(0);
  expect(result.stdout.trim().split('\n')).toEqual([
    'ok    apps/no-gateway (bridge)',
    '      warning: bridge "isGateway" is set but ipam has no "gateway": the bridge takes the first address of 10.6.0.0/24, 10.6.0.1, which the pool also hands out to pods: set ipam.gateway to 10.6.0.1 and keep it out of the range (exclude 10.6.0.1/32, or a range_start after it)',
    'ok    apps/first-not-offered (bridge)',
    '      warning: bridge "isGateway" is set but ipam has no "gateway": the bridge takes the first address of 10.6.1.0/24, 10.6.1.1; set ipam.gateway to 10.6.1.1 so that pods are told their gateway',
    'ok    apps/with-gateway (bridge)',
  ]);
});
