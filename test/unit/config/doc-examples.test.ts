// The examples in docs/configuration.md are configurations the plugin accepts: checked with its own loader.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkNad } from '../../../src/config/check-nad.ts';

const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
const section = doc.slice(doc.indexOf('## Examples'), doc.indexOf('## Addresses and ranges'));
const examples = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
// A flat file is not needed to check the keys: name the kubeconfig in each example instead.
const withKubeconfig = (config: string) => {
  const parsed = JSON.parse(config) as { ipam?: Record<string, unknown>; plugins?: { ipam?: object }[] };
  for (const p of [parsed, ...(parsed.plugins ?? [])])
    if (p.ipam !== undefined) Object.assign(p.ipam, { kubernetes: { kubeconfig: '/etc/kubeconfig' } });
  return JSON.stringify(parsed);
};

test('the docs show examples for each kind of network', () => {
  expect(examples.length).toBeGreaterThanOrEqual(6);
});

test.each(examples.map((e, i) => [i, e]))('example %i is accepted by the plugin', (_, example) => {
  const checks = checkNad({ metadata: { name: 'doc' }, spec: { config: withKubeconfig(example) } }, []);
  expect(checks).toHaveLength(1);
  expect(checks[0]).toMatchObject({ ok: true, warnings: [] });
});
