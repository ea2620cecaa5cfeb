// The kubeconfig the agent installs for the plugin is JSON (which is YAML), so that the plugin reads it without its YAML
// parser: what it says must be read the same either way, and a YAML kubeconfig — what other tools write,
// a flow mapping that looks like JSON but is not — must still be read as before.

import { load } from 'js-yaml';
import { credentialsFromText, renderKubeconfig } from '../../../src/kube-api/kubeconfig.ts';

const spec = {
  server: 'https://10.96.0.1:443',
  namespace: 'kube-system',
  token: 'a-token',
  ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
};

test('the rendered kubeconfig is JSON, and a YAML reader reads the same document', () => {
  const text = renderKubeconfig(spec, 'json');
  expect(load(text)).toEqual(JSON.parse(text));
});

test('the same credentials from the JSON kubeconfig and from its YAML form', () => {
  const text = renderKubeconfig(spec, 'json');
  const asYaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: cluster',
    '  cluster:',
    `    server: ${spec.server}`,
    `    certificate-authority-data: ${Buffer.from(spec.ca).toString('base64')}`,
    'users:',
    '- name: whereabouts',
    '  user: {token: a-token}',
    'contexts:',
    '- name: whereabouts',
    '  context: {cluster: cluster, user: whereabouts, namespace: kube-system}',
    'current-context: whereabouts',
  ].join('\n');
  const fromJson = credentialsFromText(text, '/k');
  expect(fromJson).toEqual(credentialsFromText(asYaml, '/k'));
  expect(fromJson).toMatchObject({
    ok: true,
    value: { server: spec.server, namespace: 'kube-system', token: 'a-token', ca: Buffer.from(spec.ca) },
  });
});

test('a YAML flow mapping that is not JSON is still read as YAML', () => {
  const flow =
    '{apiVersion: v1, clusters: [{name: c, cluster: {server: "https://h:6443"}}], users: [{name: u, user: {token: t}}],' +
    ' contexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}], current-context: x}';
  expect(credentialsFromText(flow, '/k')).toMatchObject({
    ok: true,
    value: { server: 'https://h:6443', namespace: 'ns', token: 't' },
  });
});
