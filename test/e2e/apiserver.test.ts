// `whereabouts-ts apiserver` is what docs/plugin.md "Trying it by hand" starts: the embedded API server on
// its own, with a kubeconfig. A user then drives it with kubectl and the plugin, so the tests do exactly
// that: the discovery documents kubectl reads first, then the real kubectl (built from the pinned Kubernetes
// module) applying a NetworkAttachmentDefinition and listing the pool the plugin's ADD created. Ctrl-C
// stops it and removes the kubeconfig it wrote.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { findBinaries } from '../../kube/binaries.ts';
import { describeWhenBuilt } from '../support/built.ts';
import { realServer } from '../support/cluster.ts';
import { execute, pluginPath } from '../support/exec.ts';

const root = join(import.meta.dirname, '..', '..');

type Started = { child: ChildProcess; url: string; kubeconfig: string; output: string };

/** Runs `whereabouts-ts apiserver` through the CLI and waits for it to print its kubeconfig. */
async function startCommand(): Promise<Started> {
  const child = spawn(process.execPath, [join(root, 'src', 'cli', 'main.ts'), 'apiserver'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (/^kubeconfig \S+\n/m.test(output)) resolve();
    });
    child.once('exit', () => {
      reject(new Error(`apiserver exited:\n${output}`));
    });
  });
  return {
    child,
    output,
    url: /^embedded API server at (\S+)$/m.exec(output)?.[1] ?? '',
    kubeconfig: /^kubeconfig (\S+)$/m.exec(output)?.[1] ?? '',
  };
}

let server: Started;
beforeAll(async () => {
  server = await startCommand();
}, 60_000);
afterAll(async () => {
  // Ctrl-C, so that it removes its kubeconfig as it does for a user.
  if (server.child.exitCode === null && server.child.signalCode === null) {
    const exited = once(server.child, 'exit');
    server.child.kill('SIGINT');
    await exited;
  }
});

const get = async (path: string): Promise<Record<string, unknown>> => {
  const response = await fetch(`${server.url}${path}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
};

test('it prints where it listens and the kubeconfig to use', () => {
  expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(existsSync(server.kubeconfig)).toBe(true);
  expect(server.output).toContain(`export KUBECONFIG=${server.kubeconfig}`);
});

test('it serves the discovery documents: /version, /api, /api/v1, /apis and each group version', async () => {
  const version = await get('/version');
  expect(version.major).toBe('1');
  expect(version.gitVersion).toMatch(/^v1\./);
  expect(await get('/api')).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
  const core = await get('/api/v1');
  expect(core).toMatchObject({ kind: 'APIResourceList', groupVersion: 'v1' });
  expect(core.resources).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ name: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po'] }),
      expect.objectContaining({ name: 'pods/status', kind: 'Pod' }),
      expect.objectContaining({ name: 'nodes', kind: 'Node', namespaced: false }),
    ]),
  );
  const groups = (await get('/apis')) as {
    kind: string;
    groups: { name: string; preferredVersion: unknown }[];
  };
  expect(groups.kind).toBe('APIGroupList');
  expect(groups.groups).toEqual(
    expect.arrayContaining([
      expect.objectContaining({
        name: 'whereabouts.cni.cncf.io',
        preferredVersion: { groupVersion: 'whereabouts.cni.cncf.io/v1alpha1', version: 'v1alpha1' },
      }),
      expect.objectContaining({ name: 'k8s.cni.cncf.io' }),
    ]),
  );
  expect(groups.groups.map((g) => g.name)).not.toContain('');
  expect(await get('/apis/whereabouts.cni.cncf.io')).toMatchObject({
    kind: 'APIGroup',
    name: 'whereabouts.cni.cncf.io',
  });
  const whereabouts = await get('/apis/whereabouts.cni.cncf.io/v1alpha1');
  expect(whereabouts.resources).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ name: 'ippools', singularName: 'ippool', kind: 'IPPool', namespaced: true }),
      expect.objectContaining({
        name: 'overlappingrangeipreservations',
        kind: 'OverlappingRangeIPReservation',
      }),
    ]),
  );
  // A group or version it does not serve is 404, as kube-apiserver answers.
  expect((await fetch(`${server.url}/apis/example.com`)).status).toBe(404);
  expect((await fetch(`${server.url}/apis/whereabouts.cni.cncf.io/v9`)).status).toBe(404);
});

describeWhenBuilt('kubectl against whereabouts-ts apiserver', realServer, () => {
  let home: string;
  const kubectl = async (...args: string[]): Promise<string> => {
    const found = findBinaries();
    if (!found.ok) throw new Error(found.why);
    const { stdout } = await promisify(execFile)(found.binaries.kubectl, args, {
      // kubectl's discovery cache and config stay in this test's own home.
      env: { PATH: process.env.PATH ?? '', HOME: home, KUBECONFIG: server.kubeconfig },
      timeout: 30_000,
    });
    return stdout;
  };
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'wb-kubectl-home-'));
  });
  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
  });

  test('kubectl apply -f of a NAD, the plugin ADD, then kubectl get ippools -A', async () => {
    const nad = join(home, 'nad.yaml');
    writeFileSync(
      nad,
      [
        'apiVersion: k8s.cni.cncf.io/v1',
        'kind: NetworkAttachmentDefinition',
        'metadata: {name: macvlan-conf, namespace: default}',
        `spec: {config: '{"cniVersion":"1.0.0","name":"macvlan-conf","type":"macvlan","ipam":{"type":"whereabouts","range":"198.18.0.0/24"}}'}`,
        '',
      ].join('\n'),
    );
    expect(await kubectl('apply', '-f', nad)).toContain(
      'networkattachmentdefinition.k8s.cni.cncf.io/macvlan-conf created',
    );
    // Applying it again reads it back and compares: nothing to change.
    expect(await kubectl('apply', '-f', nad)).toContain('macvlan-conf unchanged');
    expect(await kubectl('get', 'net-attach-def', '-A', '-o', 'name')).toBe(
      'networkattachmentdefinition.k8s.cni.cncf.io/macvlan-conf\n',
    );

    const conf = {
      cniVersion: '1.0.0',
      name: 'macvlan-conf',
      type: 'macvlan',
      ipam: { type: 'whereabouts', range: '198.18.0.0/24', kubernetes: { kubeconfig: server.kubeconfig } },
    };
    const add = await execute(
      pluginPath,
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c1',
        CNI_NETNS: '/var/run/netns/x',
        CNI_IFNAME: 'net1',
        CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=demo',
      },
      JSON.stringify(conf),
    );
    expect(add.code).toBe(0);
    const address = (JSON.parse(add.stdout) as { ips: { address: string }[] }).ips[0]?.address ?? '';
    expect(address).toMatch(/^198\.18\.0\.\d+\/24$/);

    expect(await kubectl('get', 'ippools', '-A')).toMatch(
      /^NAMESPACE +NAME +AGE\nkube-system +198\.18\.0\.0-24 /,
    );
    const pool = JSON.parse(
      await kubectl('get', 'ippools', '-n', 'kube-system', '198.18.0.0-24', '-o', 'json'),
    ) as {
      spec: { allocations: Record<string, { podref: string }> };
    };
    const offset = address.split('/')[0]?.split('.')[3] ?? '';
    expect(pool.spec.allocations[offset]).toMatchObject({ podref: 'default/demo' });
  });
});

test('Ctrl-C stops it and removes the kubeconfig it wrote', async () => {
  const own = await startCommand();
  const exited = once(own.child, 'exit');
  own.child.kill('SIGINT');
  expect(await exited).toEqual([0, null]);
  expect(existsSync(dirname(own.kubeconfig))).toBe(false);
  await expect(fetch(`${own.url}/version`)).rejects.toThrow();
});
