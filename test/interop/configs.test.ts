// Why: whereabouts-ts claims to be a drop-in replacement for Whereabouts v0.9.4. This runs every config of the
// corpus (corpus.ts) through both plugin executables as a container runtime runs them — ADD, then DEL, with
// the CNI_* environment and the config on stdin, each plugin in its own namespace of a real kube-apiserver —
// and compares what each answered and what each stored, field by field. The address chosen is normalised
// (each must lie in the case's allowed addresses; Whereabouts takes the lowest, ours one of the lowest free),
// and every other difference must be one the case lists, which names the row of the "Where this differs"
// table of docs/configuration.md that documents it: a new difference, or an undocumented one, fails here.
// No pods are created: neither plugin reads the pod on ADD or DEL (Whereabouts v0.9.4 only reads pods in its
// controllers), the podref comes from CNI_ARGS.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtPeers, describeWhenBuilt, peersBuilt } from '../support/built.ts';
import { onRealServer, realCluster, type Cluster } from '../support/cluster.ts';
import { execute, pluginPath } from '../support/exec.ts';
import {
  compareRuns,
  inSpans,
  lowestOf,
  parseCidrText,
  type Answer,
  type Difference,
  type Run,
  type Writes,
} from './compare.ts';
import { configurationDoc, corpus, docExamples, rows, type Case } from './corpus.ts';

const group = 'whereabouts.cni.cncf.io';

/** The first cells of the rows of the "Where this differs" table. */
function documentedRows(): Set<string> {
  const text = readFileSync(configurationDoc, 'utf8');
  const table = text.slice(text.indexOf('## Where this differs from Whereabouts'));
  return new Set(
    table
      .split('\n')
      .filter((line) => line.startsWith('| ') && !line.startsWith('| ---'))
      .map((line) => (line.split(' | ')[0] ?? '').slice(2).trim()),
  );
}

test('every difference the corpus names is a row of the table in docs/configuration.md', () => {
  const documented = documentedRows();
  const named = [...Object.values(rows), ...corpus.flatMap((c) => Object.values(c.differs ?? {}))];
  expect(named.filter((row) => !documented.has(row))).toEqual([]);
});

test('the corpus holds every example of docs/configuration.md', () => {
  const examples = [...docExamples().keys()];
  expect(examples).toEqual(['storage', 'trading', 'lab', 'dual', 'blue', 'red']);
  const covered = (name: string) =>
    corpus.some((c) => c.name.startsWith('docs:') && typeof c.config === 'object' && c.config.name === name);
  expect(examples.filter((name) => !covered(name))).toEqual([]);
});

function parseAnswer(exit: number, stdout: string): Answer {
  const answer: Answer = { exit, raw: stdout };
  if (stdout.trim() === '') return answer;
  const parsed = JSON.parse(stdout) as Record<string, unknown>;
  if (exit === 0) answer.result = parsed;
  else answer.error = parsed as unknown as NonNullable<Answer['error']>;
  return answer;
}

/** The config with the flat file of this plugin's namespace named, as the installer's flat file would be. */
function stdinOf(c: Case, flatFile: string): string {
  if (typeof c.config === 'string')
    return c.config.replace(
      '"type":"whereabouts"',
      `"type":"whereabouts","configuration_path":${JSON.stringify(flatFile)}`,
    );
  const ipam = c.config.ipam;
  if (typeof ipam !== 'object' || ipam === null) return JSON.stringify(c.config);
  return JSON.stringify({ ...c.config, ipam: { ...ipam, configuration_path: flatFile } });
}

async function writesIn(cluster: Cluster): Promise<Writes> {
  const pools = await cluster.objects('ippools', group);
  const reservations = await cluster.objects('overlappingrangeipreservations', group);
  const leases = await cluster.objects('leases', 'coordination.k8s.io');
  return {
    pools: Object.fromEntries(
      [...pools].map(([name, o]) => [name, (o as { spec: Writes['pools'][string] }).spec]),
    ),
    reservations: Object.fromEntries(
      [...reservations].map(([name, o]) => [name, (o as { spec: Record<string, unknown> }).spec]),
    ),
    leases: [...leases.keys()],
  };
}

/** ADD then DEL of one pod's `net1` through `plugin`, in `cluster`'s namespace, as a runtime runs them. */
async function runCase(c: Case, index: number, cluster: Cluster, plugin: string): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-interop-'));
  try {
    // Whereabouts v0.9.4 fails every ADD without a flat file; the installer's holds the kubeconfig.
    const flatFile = join(dir, 'whereabouts.conf');
    writeFileSync(
      flatFile,
      JSON.stringify({ datastore: 'kubernetes', kubernetes: { kubeconfig: cluster.kubeconfig } }),
    );
    const pod = `pod-${index}`;
    const containerId = `container-${index}-interop`;
    const cniArgs = (
      c.cniArgs ??
      `IgnoreUnknown=true;K8S_POD_NAMESPACE=$NS;K8S_POD_NAME=$POD;K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=0b5e1f1c-5c7e-4a4f-9d0e-${String(index).padStart(12, '0')}`
    )
      .replaceAll('$NS', cluster.namespace)
      .replaceAll('$POD', pod);
    const env = (command: string) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/var/run/netns/${containerId}`,
      CNI_IFNAME: 'net1',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: c.extraArgs === undefined ? cniArgs : `${cniArgs};${c.extraArgs}`,
    });
    const stdin = stdinOf(c, flatFile);
    const added = await execute(plugin, env('ADD'), stdin, 45_000);
    const afterAdd = await writesIn(cluster);
    const deleted = await execute(plugin, env('DEL'), stdin, 45_000);
    const afterDel = await writesIn(cluster);
    return {
      namespace: cluster.namespace,
      containerId,
      add: parseAnswer(added.code, added.stdout),
      afterAdd,
      del: parseAnswer(deleted.code, deleted.stdout),
      afterDel,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const networkNameOf = (c: Case): string => {
  const ipam =
    typeof c.config === 'object' ? (c.config.ipam as Record<string, unknown> | undefined) : undefined;
  return typeof ipam?.network_name === 'string' ? ipam.network_name : '';
};

/** What must hold of one plugin's own run, whatever the other did. */
function checkRun(c: Case, run: Run, who: 'whereabouts' | 'ours'): string[] {
  const problems: string[] = [];
  const ips = (run.add.result?.ips ?? []) as { address: string }[];
  ips.forEach(({ address }, k) => {
    const spans = (who === 'ours' ? (c.oursAllowed ?? c.allowed) : c.allowed)?.[k];
    const host = parseCidrText(address);
    if (spans === undefined) problems.push(`${who}: ips[${k}] ${address}: the case allows no address there`);
    else if (host === undefined || !inSpans(address.split('/')[0] ?? '', spans))
      problems.push(`${who}: ips[${k}] ${address} is not among ${spans.join(', ')}`);
    else if (who === 'whereabouts' && address.split('/')[0] !== lowestOf(spans))
      problems.push(`whereabouts: ips[${k}] ${address} is not the lowest allowed, ${lowestOf(spans)}`);
  });
  if (run.add.exit !== 0 && (run.add.error === undefined || typeof run.add.error.code !== 'number'))
    problems.push(`${who}: ADD failed without a CNI error on stdout: ${run.add.raw}`);
  // Ours decides before it writes: a refused ADD stores nothing.
  if (who === 'ours' && run.add.exit !== 0) {
    const { pools, reservations } = run.afterAdd;
    if (Object.keys(pools).length + Object.keys(reservations).length > 0)
      problems.push(`ours: a refused ADD stored ${JSON.stringify({ pools, reservations })}`);
  }
  // Whereabouts takes its one Lease for every ADD and DEL that reaches the API server; ours takes none.
  const leases = [...run.afterAdd.leases, ...run.afterDel.leases];
  if (who === 'ours' && leases.length > 0) problems.push(`ours: wrote Leases ${leases.join(', ')}`);
  if (who === 'whereabouts' && leases.some((l) => l !== 'whereabouts'))
    problems.push(`whereabouts: wrote Leases ${leases.join(', ')}`);
  // Ours records the container ID in each reservation; Whereabouts never does.
  for (const [name, spec] of Object.entries(run.afterAdd.reservations)) {
    const expected = who === 'ours' ? run.containerId : undefined;
    if (spec.containerid !== expected)
      problems.push(`${who}: reservation ${name} has containerid ${String(spec.containerid)}`);
  }
  return problems;
}

/** An address of ours that Whereabouts could not have chosen, or one `oursAllowed` fixes apart, is a difference. */
function chosenApart(c: Case, theirs: Run, ours: Run): Difference[] {
  const addressOf = (run: Run, k: number) =>
    ((run.add.result?.ips ?? []) as { address: string }[])[k]?.address;
  return ((ours.add.result?.ips ?? []) as { address: string }[]).flatMap(({ address }, k) =>
    inSpans(address.split('/')[0] ?? '', c.allowed?.[k] ?? []) &&
    (c.oursAllowed?.[k] === undefined || address === addressOf(theirs, k))
      ? []
      : [{ key: `add.ips[${k}].chosen`, whereabouts: addressOf(theirs, k), ours: address }],
  );
}

describeWhenBuilt('the corpus through Whereabouts v0.9.4 and whereabouts-ts', peersBuilt, () => {
  beforeAll(() => {
    if (!existsSync(pluginPath)) throw new Error('dist/whereabouts is missing: run npm run build');
  });

  onRealServer((plane) => {
    test.each(corpus.map((c, i) => [c.name, c, i] as const))(
      '%s',
      async (_, c, index) => {
        const [wbCluster, tsCluster] = await Promise.all([
          realCluster(plane(), 'wb'),
          realCluster(plane(), 'ts'),
        ]);
        try {
          const [theirs, ours] = await Promise.all([
            runCase(c, index, wbCluster, builtPeers().whereabouts),
            runCase(c, index, tsCluster, pluginPath),
          ]);
          expect([...checkRun(c, theirs, 'whereabouts'), ...checkRun(c, ours, 'ours')]).toEqual([]);
          expect(ours.add.exit === 0 ? 'ok' : 'error').toBe(c.expect);

          const differences = [
            ...compareRuns(theirs, ours, networkNameOf(c)),
            ...chosenApart(c, theirs, ours),
          ];
          const expected = c.differs ?? {};
          expect({
            unexpected: differences.filter((d) => !(d.key in expected)),
            missing: Object.keys(expected).filter((key) => !differences.some((d) => d.key === key)),
          }).toEqual({ unexpected: [], missing: [] });
        } finally {
          await Promise.all([wbCluster.close(), tsCluster.close()]);
        }
      },
      90_000,
    );
  });
});
