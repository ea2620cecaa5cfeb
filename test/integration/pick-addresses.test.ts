// `pick_addresses` and `exclude_gateway` through the plugin (issue 18, items 3 and 4), on the embedded API
// server and on a real kube-apiserver: the list is taken in its order, exclusions and the gateway are
// skipped, exhaustion is the usual "try again later" with nothing written, and a burst of concurrent ADDs
// into a pick list hands every listed address out once and never one twice.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPlugin, type PluginOutput } from '../../src/cni/plugin.ts';
import { formatIP, ipOf, parseIP } from '../../src/ip/address.ts';
import { httpApi } from '../../src/kube-api/http-api.ts';
import { loadCredentials } from '../../src/kube-api/kubeconfig.ts';
import { kubeStore } from '../../src/store/store.ts';
import { onEveryServer, type Cluster } from '../support/cluster.ts';
import { poolsIn, reservationsIn } from '../support/pools.ts';

let cluster: Cluster;
let dir: string;

type Result = PluginOutput & { json: Record<string, unknown> | undefined };

async function plugin(command: string, ipam: Record<string, unknown>, pod: string): Promise<Result> {
  const output = await runPlugin({
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: `sandbox-${pod}`,
      CNI_NETNS: '/var/run/netns/test',
      CNI_IFNAME: 'net1',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${cluster.namespace};K8S_POD_NAME=${pod}`,
    },
    stdin: JSON.stringify({
      cniVersion: '1.0.0',
      name: 'net-pick',
      type: 'bridge',
      isGateway: true,
      ipam: { type: 'whereabouts', kubernetes: { kubeconfig: cluster.kubeconfig }, ...ipam },
    }),
    flatFilePaths: [],
    openStore: (config) => {
      const credentials = loadCredentials(config.kubeconfig, {});
      return credentials.ok ? { ok: true, value: kubeStore(httpApi(credentials.value, 5_000)) } : credentials;
    },
    writeLog: () => undefined,
  });
  return {
    ...output,
    json: output.stdout === '' ? undefined : (JSON.parse(output.stdout) as Record<string, unknown>),
  };
}

/** The address an ADD answered, without its prefix length. */
const addressOf = (out: Result): string => {
  const ips = out.json?.ips as { address: string }[] | undefined;
  if (out.exitCode !== 0 || ips?.[0] === undefined) throw new Error(`ADD failed: ${out.stdout}`);
  return ips[0].address.split('/')[0] as string;
};

/** The addresses a pool holds, ascending, from its offset keys. */
async function heldIn(pool: string): Promise<string[]> {
  const spec = (await poolsIn(cluster)).get(pool);
  if (spec === undefined) return [];
  const base = parseIP(spec.range.split('/')[0] as string);
  if (base === undefined) throw new Error(`bad pool range ${spec.range}`);
  return Object.keys(spec.allocations)
    .map((offset) => base.value + BigInt(offset))
    .sort((a, b) => (a < b ? -1 : 1))
    .map((value) => formatIP(ipOf(base.family, value)));
}

onEveryServer((start) => {
  beforeEach(async () => {
    cluster = await start();
    dir = mkdtempSync(join(tmpdir(), 'wb-pick-'));
  });
  afterEach(async () => {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the list is taken in its order, exclusions skipped; once used up ADD is refused and writes nothing', async () => {
    const ipam = {
      range: '10.60.0.0/24',
      pick_addresses: ['10.60.0.50', '10.60.0.7', '10.60.0.20/30', '10.60.0.3'],
      exclude: ['10.60.0.21'],
    };
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(addressOf(await plugin('ADD', ipam, `pod-${i}`)));
    expect(order).toEqual(['10.60.0.50', '10.60.0.7', '10.60.0.20', '10.60.0.22', '10.60.0.23', '10.60.0.3']);

    const before = {
      pools: await heldIn('10.60.0.0-24'),
      reservations: (await reservationsIn(cluster)).size,
    };
    const full = await plugin('ADD', ipam, 'pod-late');
    expect(full.exitCode).toBe(1);
    expect(full.json).toMatchObject({ code: 11, msg: 'Try again later' });
    expect(String(full.json?.details)).toContain(
      'no free address in 10.60.0.0/24 among its pick_addresses (10.60.0.3 to 10.60.0.50): all 6 assignable addresses are taken',
    );
    expect({
      pools: await heldIn('10.60.0.0-24'),
      reservations: (await reservationsIn(cluster)).size,
    }).toEqual(before);

    // A released address is the first free one in the list again.
    expect((await plugin('DEL', ipam, 'pod-1')).exitCode).toBe(0);
    expect(addressOf(await plugin('ADD', ipam, 'pod-again'))).toBe('10.60.0.7');
  }, 60_000);

  test('exclude_gateway: the gateway is never handed out, even as the lowest free address or a picked one', async () => {
    const plain = { range: '10.61.0.0/29', gateway: '10.61.0.1', exclude_gateway: true };
    const handed: string[] = [];
    for (let i = 0; i < 5; i++) handed.push(addressOf(await plugin('ADD', plain, `pod-${i}`)));
    // Without a pick list the choice is among the lowest free addresses, at random; the gateway, the
    // lowest of all, is never among them: the sixth ADD finds the range full.
    expect([...handed].sort()).toEqual(['10.61.0.2', '10.61.0.3', '10.61.0.4', '10.61.0.5', '10.61.0.6']);
    expect((await plugin('ADD', plain, 'pod-late')).json).toMatchObject({ code: 11 });
    expect(await heldIn('10.61.0.0-29')).toEqual([...handed].sort());

    const picked = {
      ipRanges: [{ range: '10.62.0.0/24', pick_addresses: ['10.62.0.1', '10.62.0.9'] }],
      gateway: '10.62.0.1',
      exclude_gateway: true,
    };
    const out = await plugin('ADD', picked, 'pod-p');
    expect(out.json?.ips).toEqual([{ address: '10.62.0.9/24', gateway: '10.62.0.1' }]);
    expect((await plugin('ADD', picked, 'pod-q')).json).toMatchObject({ code: 11 });
  }, 60_000);

  test('an entry outside the range is refused (code 7, naming it) before anything is written', async () => {
    const out = await plugin(
      'ADD',
      { range: '10.63.0.0/24', pick_addresses: ['10.63.0.5', '10.64.0.5'] },
      'pod-x',
    );
    expect(out.exitCode).toBe(1);
    expect(out.json).toMatchObject({
      code: 7,
      details: 'ipam.pick_addresses[1]: 10.64.0.5 is outside the range 10.63.0.0/24',
    });
    expect((await poolsIn(cluster)).size).toBe(0);
  });

  test('a concurrent burst into a pick list: every listed address once, none twice, the rest refused', async () => {
    const listed = Array.from({ length: 12 }, (_, i) => `10.65.0.${200 - 10 * i}`);
    const ipam = { range: '10.65.0.0/24', pick_addresses: listed };
    const outs = await Promise.all(Array.from({ length: 16 }, (_, i) => plugin('ADD', ipam, `burst-${i}`)));
    const given = outs.filter((o) => o.exitCode === 0).map(addressOf);
    expect(given).toHaveLength(12);
    expect(new Set(given).size).toBe(12);
    expect([...given].sort()).toEqual([...listed].sort());
    for (const refused of outs.filter((o) => o.exitCode !== 0))
      expect(refused.json).toMatchObject({ code: 11 });
    // What is stored agrees: each listed address held once, one reservation each, nothing else.
    expect(await heldIn('10.65.0.0-24')).toEqual(
      [...listed].sort((a, b) => ((parseIP(a)?.value ?? 0n) < (parseIP(b)?.value ?? 0n) ? -1 : 1)),
    );
    expect([...(await reservationsIn(cluster)).keys()].sort()).toEqual([...listed].sort());
  }, 120_000);
});
