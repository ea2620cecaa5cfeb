// Why this file: the operator commands run next to kubectl and must find credentials as kubectl does —
// `--kubeconfig`, else `$KUBECONFIG` (a list, merged: first definition of a name wins, first
// current-context wins, missing files skipped), else `~/.kube/config`, else in-cluster — with `--context`
// and `-n`. Each test runs the CLI as a process with its own HOME and environment against the embedded API
// server, which requires a bearer token, so a command only succeeds with the credentials it was meant to find.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { execute } from '../support/exec.ts';
import { writePool } from '../support/pools.ts';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const token = 'kubectl-like-secret-token';
/** Nothing listens there: a command that picked this cluster fails with ECONNREFUSED. */
const deadServer = 'http://127.0.0.1:1';

let cluster: TestCluster;
let dir: string;

const run = (env: Record<string, string>, ...args: string[]) =>
  execute([process.execPath, cli, ...args], { HOME: join(dir, 'home'), ...env }, '', 30_000);

/** A kubeconfig file in the test's directory; `content` as kubectl would read it. */
const kubeconfig = (name: string, content: object): string => {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, dump(content), { mode: 0o600 });
  return path;
};

const single = (server: string, context = 'main') => ({
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [{ name: 'c', cluster: { server } }],
  users: [{ name: 'u', user: { token } }],
  contexts: [{ name: context, context: { cluster: 'c', user: 'u' } }],
  'current-context': context,
});

beforeAll(async () => {
  cluster = await startCluster({ token });
  await writePool(cluster.connection(), '10.7.0.0-28', '10.7.0.0/28', {
    '1': { id: 'c-a', podref: 'apps/a', ifname: 'net1' },
  });
});
afterAll(async () => {
  await cluster.close();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wb-kubectl-config-'));
  mkdirSync(join(dir, 'home'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('with no flag and no $KUBECONFIG, ~/.kube/config is used', async () => {
  kubeconfig('home/.kube/config', single(cluster.url));
  const out = await run({}, 'pools');
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  expect(out.stdout).toContain('10.7.0.0-28');
});

test('$KUBECONFIG is a list merged as kubectl merges it; --context picks another context', async () => {
  // The first file sets current-context and defines the cluster "c"; the second defines "c" again (ignored:
  // the first definition wins), the user (its token read from a file relative to the second file), the
  // contexts, and another current-context (ignored: the first one set wins). A missing file is skipped.
  const first = kubeconfig('first/config', {
    clusters: [{ name: 'c', cluster: { server: cluster.url } }],
    'current-context': 'live',
  });
  const second = kubeconfig('second/config', {
    clusters: [
      { name: 'c', cluster: { server: deadServer } },
      { name: 'dead', cluster: { server: deadServer } },
    ],
    users: [{ name: 'u', user: { tokenFile: 'token' } }],
    contexts: [
      { name: 'live', context: { cluster: 'c', user: 'u' } },
      { name: 'decoy', context: { cluster: 'dead', user: 'u' } },
    ],
    'current-context': 'decoy',
  });
  writeFileSync(join(dir, 'second', 'token'), token);
  // ~/.kube/config is not read when $KUBECONFIG is set.
  kubeconfig('home/.kube/config', single(deadServer));
  const KUBECONFIG = [join(dir, 'missing'), first, second].join(':');

  const merged = await run({ KUBECONFIG }, 'pools', '--output', 'json');
  expect(merged.stderr).toBe('');
  expect(merged.code).toBe(0);
  expect((JSON.parse(merged.stdout) as { pool: string }[]).map((p) => p.pool)).toEqual(['10.7.0.0-28']);

  const decoy = await run({ KUBECONFIG }, 'pools', '--context', 'decoy');
  expect(decoy.code).toBe(1);
  expect(decoy.stderr).toMatch(/unreachable \(ECONNREFUSED\)/);
  expect(decoy.stderr).not.toContain(token);

  const unknown = await run({ KUBECONFIG }, 'pools', '--context', 'nope');
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('has no context "nope" (it has "live", "decoy")');
});

test('--kubeconfig alone is read, before $KUBECONFIG; a missing one is an error', async () => {
  const good = kubeconfig('good', single(cluster.url));
  const bad = kubeconfig('bad', single(deadServer));
  const out = await run({ KUBECONFIG: bad }, 'ip', '10.7.0.1', '--kubeconfig', good);
  expect(out.stderr).toBe('');
  expect(out.stdout).toContain('apps/a');
  const missing = await run({ KUBECONFIG: good }, 'pools', '--kubeconfig', join(dir, 'nothing'));
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain(`cannot load the kubeconfig ${join(dir, 'nothing')}: ENOENT`);
});

test('-n shows the pools and reservations of one namespace', async () => {
  kubeconfig('home/.kube/config', single(cluster.url));
  const here = await run({}, 'pools', '-n', cluster.namespace, '--output', 'json');
  expect(here.code).toBe(0);
  expect((JSON.parse(here.stdout) as unknown[]).length).toBe(1);
  const elsewhere = await run({}, 'pools', '--namespace', 'elsewhere', '--output', 'json');
  expect(elsewhere.code).toBe(0);
  expect(JSON.parse(elsewhere.stdout)).toEqual([]);
  const pod = await run({}, 'pod', 'apps/a', '-n', 'elsewhere');
  expect(pod.stdout).toBe('apps/a holds no address\n');
});

test('gc takes the same credentials and --context', async () => {
  kubeconfig('home/.kube/config', {
    ...single(cluster.url, 'live'),
    contexts: [
      { name: 'live', context: { cluster: 'c', user: 'u' } },
      { name: 'other', context: { cluster: 'c', user: 'u' } },
    ],
    'current-context': 'other',
  });
  const out = await run({}, 'gc', '--dry-run', '--output', 'json', '--context', 'live');
  expect(out.code).toBe(0);
  expect(JSON.parse(out.stdout)).toHaveProperty('releases');
  const wrong = await run({}, 'gc', '--dry-run', '--context', 'gone');
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toContain('has no context "gone"');
});

test('when nothing is found, the error names every place kubectl would look', async () => {
  const out = await run({}, 'pools');
  expect(out.code).toBe(1);
  expect(out.stderr).toContain(
    'pools: no kubeconfig: pass --kubeconfig <file>, set $KUBECONFIG (files separated by ":"), create ~/.kube/config, or run in a pod (in-cluster service account)',
  );
  // $KUBECONFIG naming only missing files: the same, saying which were looked for.
  const none = await run({ KUBECONFIG: join(dir, 'a') }, 'pools');
  expect(none.stderr).toContain(`(none of ${join(dir, 'a')} exists)`);
  // In a pod (KUBERNETES_SERVICE_HOST) with no kubeconfig, the service account is what is read.
  const pod = await run({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'pools');
  expect(pod.code).toBe(1);
  expect(pod.stderr).toContain(
    'cannot read the service account in /var/run/secrets/kubernetes.io/serviceaccount',
  );
  // ~/.kube/config that cannot be read: named as the error, except in a pod, where the service account is read.
  mkdirSync(join(dir, 'home', '.kube', 'config'), { recursive: true });
  const unreadable = await run({}, 'pools');
  expect(unreadable.code).toBe(1);
  expect(unreadable.stderr).toContain(`the kubeconfig ${join(dir, 'home', '.kube', 'config')} `);
  const podWithHome = await run({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'pools');
  expect(podWithHome.stderr).toContain(
    'cannot read the service account in /var/run/secrets/kubernetes.io/serviceaccount',
  );
});

test('a kubeconfig that is not YAML is named without quoting it', async () => {
  const path = join(dir, 'broken');
  writeFileSync(path, `token: ${token}\n  : [unclosed`);
  const out = await run({ KUBECONFIG: path }, 'pools');
  expect(out.code).toBe(1);
  expect(out.stderr).toContain(`cannot load the kubeconfig ${path}: not a valid kubeconfig file`);
  expect(out.stderr).not.toContain(token);
});
