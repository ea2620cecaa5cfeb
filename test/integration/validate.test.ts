// `whereabouts-ts validate`: NADs checked with the plugin's own rules, as a process reading what
// `kubectl get net-attach-def -A -o yaml` prints.

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
  expect(lines).toHaveLength(4); // host-local is not ours
  expect(result.stderr).toContain('4 whereabouts configurations checked, 3 invalid');
});
