// The operator commands `pools`, `ip` and `pod`, run as processes against the embedded API server and a
// real kube-apiserver (over TLS), as an operator (or `kubectl whereabouts`) runs them.

import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onEveryServer, onRealServer, startCluster, type Cluster } from '../support/cluster.ts';
import { execute } from '../support/exec.ts';
import { writeNad, writePool, writeReservation } from '../support/pools.ts';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const run = (kubeconfig: string, ...args: string[]) =>
  execute([process.execPath, cli, ...args, '--kubeconfig', kubeconfig], {}, '', 30_000);

/** The table the commands print: columns two spaces apart, no trailing blanks. */
const table = (rows: readonly (readonly string[])[]): string[] => {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return [
    ...rows.map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    ),
    '',
  ];
};

onEveryServer((start) => {
  // One cluster for the file's read-only commands: its namespace holds the only pools of the server.
  let cluster: Cluster;
  let ns: string;
  beforeAll(async () => {
    cluster = await start();
    ns = cluster.namespace;
    const c = cluster.connection();
    await writePool(
      c,
      '10.5.0.0-28',
      '10.5.0.0/28',
      {
        '1': { id: 'c-a', podref: 'apps/a', ifname: 'net1' },
        '2': { id: 'c-b', podref: 'apps/b', ifname: 'net1' },
        '3': { id: 'c-c', podref: 'apps/c', ifname: 'net1' },
      },
      ns,
    );
    await writePool(
      c,
      'blue-2001-db8-5---64',
      '2001:db8:5::/64',
      { '16': { id: 'c-a', podref: 'apps/a', ifname: 'net2' } },
      ns,
    );
    // Two NADs narrow 10.5.0.0/28 differently: capacity follows the one with fewer free addresses (.1–.4,
    // three of them taken); no NAD names the IPv6 pool.
    const nad = (ipam: object) =>
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'net',
        type: 'macvlan',
        ipam: { type: 'whereabouts', ...ipam },
      });
    await writeNad(
      c,
      'narrow-a',
      nad({ range: '10.5.0.0/28', range_start: '10.5.0.1', range_end: '10.5.0.4' }),
      ns,
    );
    await writeNad(c, 'narrow-b', nad({ range: '10.5.0.0/28', range_end: '10.5.0.10' }), ns);
    await writeReservation(c, '10.5.0.1', { podref: 'apps/a', ifname: 'net1' }, ns);
    await writeReservation(c, 'blue-2001-db8-5--10', { podref: 'apps/a', ifname: 'net2' }, ns);
  });
  afterAll(async () => {
    await cluster.close();
  });

  test('pools: used, free and capacity as the NADs narrow them (and which NAD), as a table and as JSON', async () => {
    const out = await run(cluster.kubeconfig, 'pools');
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n')).toEqual(
      table([
        ['NAMESPACE', 'POOL', 'RANGE', 'USED', 'FREE', 'CAPACITY', '%', 'CAPACITY OF'],
        [ns, '10.5.0.0-28', '10.5.0.0/28', '3', '1', '4', '75.0', `${ns}/narrow-a (1 of 2 NADs)`],
        [
          ns,
          'blue-2001-db8-5---64',
          '2001:db8:5::/64',
          '1',
          '18446744073709551613',
          '18446744073709551614',
          '0.0',
          'CIDR (no NAD)',
        ],
      ]),
    );
    const json = JSON.parse((await run(cluster.kubeconfig, 'pools', '--output', 'json')).stdout) as unknown[];
    expect(json).toEqual([
      {
        namespace: ns,
        pool: '10.5.0.0-28',
        range: '10.5.0.0/28',
        networkName: '',
        allocated: 3,
        capacity: '4',
        free: '1',
        follows: `${ns}/narrow-a`,
        nads: [`${ns}/narrow-a`, `${ns}/narrow-b`],
        utilisation: 3 / 4,
      },
      expect.objectContaining({ pool: 'blue-2001-db8-5---64', follows: null, nads: [] }),
    ]);
  });

  test('ip: the pool entry and the reservation of an address; an unheld address says so', async () => {
    const out = await run(cluster.kubeconfig, 'ip', '10.5.0.1', '--output', 'json');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual([
      {
        kind: 'allocation',
        namespace: ns,
        pool: '10.5.0.0-28',
        address: '10.5.0.1',
        podRef: 'apps/a',
        containerId: 'c-a',
        ifName: 'net1',
      },
      {
        kind: 'reservation',
        namespace: ns,
        name: '10.5.0.1',
        address: '10.5.0.1',
        podRef: 'apps/a',
        ifName: 'net1',
      },
    ]);
    const v6 = await run(cluster.kubeconfig, 'ip', '2001:db8:5::10');
    expect(v6.stdout).toContain('blue-2001-db8-5--10');
    expect(v6.stdout).toContain('blue-2001-db8-5---64');
    expect((await run(cluster.kubeconfig, 'ip', '10.5.0.9')).stdout).toBe('10.5.0.9 is held by no pod\n');
    const bad = await run(cluster.kubeconfig, 'ip', '10.5.0.300');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"10.5.0.300" is not an IPv4 or IPv6 address');
  });

  test('pod: every address of a pod across pools and reservations', async () => {
    const out = await run(cluster.kubeconfig, 'pod', 'apps/a');
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n')).toEqual(
      table([
        ['KIND', 'ADDRESS', 'POD', 'INTERFACE', 'OBJECT', 'CONTAINER'],
        ['allocation', '10.5.0.1', 'apps/a', 'net1', `${ns}/10.5.0.0-28`, 'c-a'],
        ['allocation', '2001:db8:5::10', 'apps/a', 'net2', `${ns}/blue-2001-db8-5---64`, 'c-a'],
        ['reservation', '10.5.0.1', 'apps/a', 'net1', `${ns}/10.5.0.1`, ''],
        ['reservation', '2001:db8:5::10', 'apps/a', 'net2', `${ns}/blue-2001-db8-5--10`, ''],
      ]),
    );
    expect((await run(cluster.kubeconfig, 'pod', 'apps/nobody')).stdout).toBe(
      'apps/nobody holds no address\n',
    );
  });

  test('pod and ip: an address kept for a StatefulSet member or owned by an IPAMClaim says so', async () => {
    await writePool(
      cluster.connection(),
      '10.6.0.0-28',
      '10.6.0.0/28',
      {
        '4': { id: 'whereabouts-ts:retained', podref: 'apps/db-0', ifname: 'net1' },
        '5': { id: 'c-launcher', podref: 'apps/ipamclaim:vm-a.net1', ifname: 'net1' },
      },
      ns,
    );
    try {
      const member = await run(cluster.kubeconfig, 'pod', 'apps/db-0');
      expect(member.stdout.split('\n')).toEqual(
        table([
          ['KIND', 'ADDRESS', 'POD', 'INTERFACE', 'OBJECT', 'CONTAINER'],
          [
            'allocation (kept for statefulset-member)',
            '10.6.0.4',
            'apps/db-0',
            'net1',
            `${ns}/10.6.0.0-28`,
            'whereabouts-ts:retained',
          ],
        ]),
      );
      const claimed = await run(cluster.kubeconfig, 'ip', '10.6.0.5', '--output', 'json');
      expect(JSON.parse(claimed.stdout)).toEqual([
        expect.objectContaining({
          kind: 'allocation',
          podRef: 'apps/ipamclaim:vm-a.net1',
          keptFor: 'ipamclaim',
        }),
      ]);
    } finally {
      await cluster.connection().custom.deleteNamespacedCustomObject({
        group: 'whereabouts.cni.cncf.io',
        version: 'v1alpha1',
        namespace: ns,
        plural: 'ippools',
        name: '10.6.0.0-28',
      });
    }
  });
});

test('as the kubectl plugin, usage names it so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-kubectl-'));
  try {
    const plugin = join(dir, 'kubectl-whereabouts');
    symlinkSync(cli, plugin); // as installed: the same program under the kubectl plugin's name
    const out = await execute([process.execPath, plugin, 'pools', '--output', 'yaml'], {}, '', 30_000);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('--output must be table or json');
    const help = await execute([process.execPath, plugin, '--help'], {}, '', 30_000);
    expect(help.stdout).toContain('Usage: kubectl whereabouts');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('clear errors (embedded API server)', () => {
  test('pools without permission to read NADs: says so, and counts whole CIDRs', async () => {
    const cluster = await startCluster({
      authorize: (r) => r.def.plural !== 'network-attachment-definitions',
    });
    try {
      await writePool(cluster.connection(), '10.6.0.0-28', '10.6.0.0/28', {}, cluster.namespace);
      const out = await run(cluster.kubeconfig, 'pools', '--output', 'json');
      expect(out.code).toBe(0);
      expect(out.stderr).toMatch(
        /list NetworkAttachmentDefinitions: forbidden by RBAC \(403\).*capacity is each pool's whole CIDR/,
      );
      expect(JSON.parse(out.stdout)).toEqual([
        expect.objectContaining({ capacity: '14', free: '14', follows: null }),
      ]);
    } finally {
      await cluster.close();
    }
  });

  test('no CRDs, no RBAC, no cluster', async () => {
    const noCrds = await startCluster({ crdDirectories: [] });
    const forbidden = await startCluster({ authorize: () => false });
    try {
      const a = await run(noCrds.kubeconfig, 'pools');
      expect(a.code).toBe(1);
      expect(a.stderr).toContain('the whereabouts CRDs are not installed');
      const b = await run(forbidden.kubeconfig, 'pod', 'apps/a');
      expect(b.code).toBe(1);
      expect(b.stderr).toContain('forbidden by RBAC (403)');
    } finally {
      await noCrds.close();
      await forbidden.close();
    }
    const gone = await startCluster();
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'wb-gone-')), 'kubeconfig');
    copyFileSync(gone.kubeconfig, kubeconfig);
    await gone.close();
    const c = await run(kubeconfig, 'ip', '10.0.0.1');
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/is unreachable \(ECONNREFUSED\)/);
  });
});

onRealServer((plane) => {
  test('a service account bound to no role: forbidden by RBAC (403), naming the user', async () => {
    const namespace = await plane().namespace('ops');
    const requested = await plane().request(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/default/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
    );
    expect(requested.status).toBe(201);
    const token = (requested.body as { status: { token: string } }).status.token;
    const dir = mkdtempSync(join(tmpdir(), 'wb-ops-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, plane().kubeconfig({ token, namespace }));
      const out = await run(kubeconfig, 'pod', 'apps/a');
      expect(out.code).toBe(1);
      expect(out.stderr).toContain(
        `pod: list NodeSlicePools: forbidden by RBAC (403): nodeslicepools.whereabouts.cni.cncf.io is forbidden: User "system:serviceaccount:${namespace}:default" cannot list resource "nodeslicepools" in API group "whereabouts.cni.cncf.io" at the cluster scope`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
