// `whereabouts-ts <command>`: one CLI for every long-running piece. The plugin itself is a separate,
// minimal executable (cni-plugin/), because its start-up is paid on every pod.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { defaultAgentSocket, type LogLevel } from '../config/ipam-config.ts';
import type { Holding } from '../ops/inventory.ts';
import type { KubectlFlags } from '../kube-api/kubectl-config.ts';
import { durationOption } from './durations.ts';
import { parts } from '../lifecycle.ts';
import { runUntilStopped } from './signals.ts';

// Every command loads what it runs when it runs (the `await import`s below), and nothing else: the node
// agent, on every node, never loads client-node, the GC, the exporter, the embedded API server or the YAML
// parser it does not use (docs/agent.md, "Memory"; test/unit/cli/agent-modules.test.ts).

const root = join(import.meta.dirname, '..', '..');

const positiveInteger = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

/** Where the operator commands find credentials: as kubectl does (src/kube-api/kubectl-config.ts). */
const kubectlOptions = (c: Command, namespace?: string) => {
  c.option(
    '--kubeconfig <path>',
    'kubeconfig file (default: the files of $KUBECONFIG merged, else ~/.kube/config, else the pod service account)',
  ).option('--context <name>', 'the kubeconfig context to use (default: its current context)');
  return namespace === undefined ? c : c.option('-n, --namespace <namespace>', namespace);
};

// Run as `kubectl whereabouts` (the executable `kubectl-whereabouts`), usage and errors say so.
const invokedAs = basename(process.argv[1] ?? '');
const program = new Command(
  invokedAs.startsWith('kubectl-') ? `kubectl ${invokedAs.slice('kubectl-'.length)}` : 'whereabouts-ts',
).description('Cluster-wide IPAM for Kubernetes secondary networks');

/** The commands defined in this file; any other (or none: help) needs the sandbox's and apiserver's. */
const ownCommands = new Set(['agent', 'gc', 'exporter', 'controller', 'pools', 'ip', 'pod', 'validate']);
const requested = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
if (requested === undefined || !ownCommands.has(requested)) {
  const [{ sandboxCommand }, { apiserverCommand }] = await Promise.all([
    import('./sandbox.ts'),
    import('./apiserver.ts'),
  ]);
  program.addCommand(sandboxCommand(root));
  program.addCommand(apiserverCommand(root));
}

const logLevels: readonly LogLevel[] = ['panic', 'error', 'verbose', 'debug'];
const logLevel = (value: string): LogLevel => {
  const level = logLevels.find((l) => l === value.toLowerCase());
  if (level === undefined) throw new InvalidArgumentError(`must be one of ${logLevels.join(', ')}`);
  return level;
};

/**
 * The connection of the node agent and the slice controller: the lean one (src/kube-api/http-api.ts) for every
 * kubeconfig it reads — a token or token file, a client certificate, the pod's service account — and
 * client-node's (src/kube-api/kube.ts, loaded only then) for one that needs an exec or auth-provider plugin, or
 * to say what is wrong. Here, not in src/store/: a dynamic import of kube.ts there would put client-node into
 * the plugin's bundle.
 */
async function leanConnection(options: {
  kubeconfig?: string | undefined;
  namespace?: string | undefined;
  requestTimeoutMs?: number;
}) {
  const [{ httpConnection }, { loadCredentials, needsPlugin }] = await Promise.all([
    import('../kube-api/http-api.ts'),
    import('../kube-api/kubeconfig.ts'),
  ]);
  const full = async () => (await import('../kube-api/kube.ts')).connect(options);
  const timeout =
    options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs };
  const source = options.kubeconfig ?? process.env.KUBECONFIG;
  const credentials =
    (source !== undefined && source !== '') || process.env.KUBERNETES_SERVICE_HOST !== undefined
      ? loadCredentials(options.kubeconfig, process.env)
      : undefined;
  if (credentials === undefined || (!credentials.ok && credentials.error.details.includes(needsPlugin)))
    return full();
  if (!credentials.ok) return credentials;
  return {
    ok: true as const,
    value: httpConnection(credentials.value, {
      ...timeout,
      namespace: options.namespace,
      full: async () => {
        const connection = await full();
        if (!connection.ok) throw new Error(connection.error.details);
        return connection.value;
      },
    }),
  };
}

type AgentFlags = {
  logLevel: LogLevel;
  socket: string;
  kubeconfig?: string;
  nodeName?: string;
  metricsPort: number;
  cniBinDir?: string;
  cniConfDir?: string;
  hostPrefix: string;
  plugin: string;
  stateDir: string;
  serviceAccountDir: string;
  poolTrustMs?: number;
};

/** The plugin the agent installs: the image's, else the one this checkout built. */
const bundledPlugin = ['/usr/local/lib/whereabouts-ts/whereabouts', join(root, 'dist', 'whereabouts')].find(
  (path) => existsSync(path),
);

program
  .command('agent')
  .description(
    'the node agent: install the plugin onto the host, then serve it on a unix socket with one warm connection to the API server',
  )
  .option('--socket <path>', 'unix socket to listen on (the same path on the host)', defaultAgentSocket)
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, else the pod service account)')
  .option('--node-name <name>', 'this node (default: $NODENAME)', process.env.NODENAME)
  .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (0: any)', positiveInteger, 9091)
  .option('--log-level <level>', logLevels.join(', '), logLevel, 'verbose' as LogLevel)
  .option('--cni-bin-dir <dir>', "the host's CNI bin dir as mounted here: install the plugin into it")
  .option(
    '--cni-conf-dir <dir>',
    "the host's CNI conf dir as mounted here: write whereabouts.d/ (kubeconfig, flat file, nodename) into it",
  )
  .option('--host-prefix <prefix>', 'mount prefix stripped from paths written into host files', '/host')
  .option('--plugin <path>', 'the plugin executable to install', bundledPlugin ?? '')
  .option(
    '--state-dir <dir>',
    "the node's record of its attachments, for reconciling after a restart (a host path)",
    '/var/lib/whereabouts',
  )
  .option(
    '--service-account-dir <dir>',
    'the projected service-account token, CA and namespace the plugin kubeconfig is made from',
    '/var/run/secrets/kubernetes.io/serviceaccount',
  )
  .option(
    '--pool-trust-ms <ms>',
    "how long a copy of a shared pool from the API server's answer is used before it is read again (default 10000; 0: read it for every batch)",
    positiveInteger,
  )
  .action(async (options: AgentFlags) => {
    if (options.nodeName === undefined || options.nodeName === '')
      return program.error('agent: set --node-name or $NODENAME');
    if (options.cniBinDir !== undefined && !existsSync(options.plugin))
      return program.error(`agent: no plugin to install at "${options.plugin}": pass --plugin`);
    const [{ runAgent }, { hostFiles }, { defaultFlatFilePaths }, { createLogger }] = await Promise.all([
      import('../agent/agent.ts'),
      import('../agent/install.ts'),
      import('../config/flat-file.ts'),
      import('../log.ts'),
    ]);
    // The lean client (src/kube-api/http-api.ts), unless the kubeconfig needs client-node's exec plugins.
    const connection = await leanConnection({
      kubeconfig: options.kubeconfig,
      namespace: process.env.WHEREABOUTS_NAMESPACE,
    });
    if (!connection.ok) return program.error(`agent: ${connection.error.details}`);
    const installing = options.cniBinDir !== undefined || options.cniConfDir !== undefined;
    const running = await runAgent({
      connection: connection.value,
      socketPath: options.socket,
      nodeName: options.nodeName,
      log: createLogger({ level: options.logLevel }),
      flatFilePaths:
        options.cniConfDir === undefined
          ? defaultFlatFilePaths
          : [hostFiles(options.cniConfDir).flatFile, ...defaultFlatFilePaths],
      metricsPort: options.metricsPort,
      stateDir: options.stateDir,
      ...(options.poolTrustMs === undefined ? {} : { poolTrustMs: options.poolTrustMs }),
      ...(installing
        ? {
            install: {
              cniBinDir: options.cniBinDir,
              cniConfDir: options.cniConfDir,
              hostPrefix: options.hostPrefix,
              plugin: options.plugin,
              nodeName: options.nodeName,
              socketPath: options.socket,
              serviceAccountDir: options.serviceAccountDir,
              env: process.env,
            },
          }
        : {}),
    }).catch((e: unknown) => program.error(`agent: ${e instanceof Error ? e.message : String(e)}`));
    const started = parts();
    started.started('agent', () => running.stop());
    process.stdout.write(`agent ready: socket ${options.socket}, metrics ${running.metricsUrl}\n`);
    await runUntilStopped('agent', started);
  });

kubectlOptions(
  program
    .command('gc')
    .description(
      'release leaked allocations and orphaned reservations: reconcile every pool against the live pods',
    ),
)
  .option('--dry-run', 'print what would be released and why, change nothing', false)
  .option('--output <format>', 'dry-run output: table or json', 'table')
  .addOption(
    durationOption(
      '--grace-period <duration>',
      'keep allocations of pods younger than this, and reservations younger than this',
      300_000,
    ),
  )
  .option(
    '--pushgateway <url>',
    'push the run metrics to this Prometheus Pushgateway',
    process.env.WHEREABOUTS_PUSHGATEWAY,
  )
  .action(
    async (options: {
      kubeconfig?: string;
      context?: string;
      dryRun: boolean;
      output: string;
      gracePeriod: number;
      pushgateway?: string;
    }) => {
      if (options.output !== 'table' && options.output !== 'json')
        program.error('--output must be table or json');
      const [{ openOperatorApi }, { runGc, planTable, summary }, { gcMetrics, push }] = await Promise.all([
        import('../kube-api/kubectl-config.ts'),
        import('../gc/run.ts'),
        import('../gc/metrics.ts'),
      ]);
      const connection = openOperatorApi(options, process.env, homedir());
      if (!connection.ok) return program.error(`gc: ${connection.error.details}`);
      const started = performance.now();
      const report = await runGc(connection.value, { dryRun: options.dryRun, graceMs: options.gracePeriod });
      if (!report.ok) {
        process.stderr.write(`gc: ${report.error.message}\n`);
        process.exitCode = 1;
        return;
      }
      const { plan, applied } = report.value;
      if (options.dryRun) {
        process.stdout.write(
          options.output === 'json'
            ? `${JSON.stringify({ releases: plan.releases.map(({ stored, ...r }) => r), deletions: plan.deletions }, null, 2)}\n`
            : planTable(plan),
        );
      }
      process.stderr.write(`${summary(report.value)}\n`);
      const failed = (applied?.errors.length ?? 0) > 0;
      for (const error of applied?.errors ?? []) process.stderr.write(`gc: ${error}\n`);
      if (options.pushgateway !== undefined && options.pushgateway !== '' && applied !== undefined) {
        const metrics = gcMetrics();
        metrics.record(applied, (performance.now() - started) / 1000, failed);
        try {
          await push(metrics, options.pushgateway);
        } catch (e) {
          process.stderr.write(
            `gc: could not push metrics to ${options.pushgateway}: ${e instanceof Error ? e.message : String(e)}\n`,
          );
        }
      }
      process.exitCode = failed ? 1 : 0;
    },
  );

program
  .command('exporter')
  .description(
    'pool metrics for Prometheus: capacity, use, leak candidates and reservations of every pool, from watches',
  )
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, else the pod service account)')
  .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (0: any)', positiveInteger, 9092)
  .addOption(
    durationOption(
      '--scan-interval <duration>',
      'how often leak candidates and orphaned reservations are computed',
      60_000,
    ),
  )
  .addOption(
    durationOption('--grace-period <duration>', "the GC's grace period, for leak candidates", 300_000),
  )
  .option('--log-level <level>', logLevels.join(', '), logLevel, 'verbose' as LogLevel)
  .action(
    async (options: {
      kubeconfig?: string;
      metricsPort: number;
      scanInterval: number;
      gracePeriod: number;
      logLevel: LogLevel;
    }) => {
      const [{ connect }, { runExporter }, { createLogger }] = await Promise.all([
        import('../kube-api/kube.ts'),
        import('../exporter/exporter.ts'),
        import('../log.ts'),
      ]);
      const connection = connect({ kubeconfig: options.kubeconfig });
      if (!connection.ok) return program.error(`exporter: ${connection.error.details}`);
      const running = await runExporter({
        connection: connection.value,
        log: createLogger({ level: options.logLevel }),
        metricsPort: options.metricsPort,
        scanIntervalMs: options.scanInterval,
        graceMs: options.gracePeriod,
      });
      const started = parts();
      started.started('exporter', () => running.stop());
      process.stdout.write(`exporter ready: metrics ${running.url}/metrics\n`);
      await runUntilStopped('exporter', started);
    },
  );

program
  .command('controller')
  .description(
    'the node-slice controller: assign the slices of every network with node_slice_size to nodes (leader-elected)',
  )
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, else the pod service account)')
  .option('--identity <name>', 'this replica, unique among them (default: $POD_NAME, else the host name)')
  .addOption(
    durationOption(
      '--interval <duration>',
      'how often the lease is renewed and the networks reconciled',
      2_000,
    ),
  )
  .addOption(
    durationOption('--lease-duration <duration>', 'how long a lease outlives its last renewal', 15_000),
  )
  .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (0: any)', positiveInteger, 9093)
  .addOption(
    durationOption(
      '--slice-drain <duration>',
      "how long the IPPool of a departed node's slice must stay empty before the slice is freed (longer than the plugin's 60 s deadline)",
      180_000,
    ),
  )
  .option('--log-level <level>', logLevels.join(', '), logLevel, 'verbose' as LogLevel)
  .action(
    async (options: {
      kubeconfig?: string;
      identity?: string;
      interval: number;
      leaseDuration: number;
      sliceDrain: number;
      metricsPort: number;
      logLevel: LogLevel;
    }) => {
      const [{ runController }, { createLogger }, { Registry, collectDefaultMetrics }] = await Promise.all([
        import('../controller/controller.ts'),
        import('../log.ts'),
        import('prom-client'),
      ]);
      const { startMetricsServer } = await import('../metrics-server.ts');
      const connection = await leanConnection({ kubeconfig: options.kubeconfig, requestTimeoutMs: 30_000 });
      if (!connection.ok) return program.error(`controller: ${connection.error.details}`);
      const started = parts();
      // The probes' endpoint (and the process metrics): a replica that stops answering is restarted. Up first,
      // down last.
      const readiness = { notReady: (): string | undefined => 'starting' };
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const health = await startMetricsServer(registry, options.metricsPort, () => readiness.notReady());
      started.started('health endpoint', () => health.close());
      const controller = runController({
        connection: connection.value,
        namespace: process.env.WHEREABOUTS_NAMESPACE ?? connection.value.namespace,
        identity: options.identity ?? process.env.POD_NAME ?? hostname(),
        log: createLogger({ level: options.logLevel }),
        intervalMs: options.interval,
        drainMs: options.sliceDrain,
        leaseSeconds: Math.ceil(options.leaseDuration / 1000),
      });
      readiness.notReady = () => controller.notReady();
      started.started('controller', () => controller.stop());
      process.stdout.write(`controller running: health ${health.url}/healthz\n`);
      await runUntilStopped('controller', started);
    },
  );

/**
 * Pools and reservations of every namespace (of `-n` alone when given), for the operator commands, with
 * credentials found as kubectl finds them; exits with the reason on failure.
 */
async function inventory(flags: KubectlFlags, command: string) {
  const [{ openOperatorApi }, { collect }] = await Promise.all([
    import('../kube-api/kubectl-config.ts'),
    import('../gc/collect.ts'),
  ]);
  const api = openOperatorApi(flags, process.env, homedir(), 15_000);
  if (!api.ok) return program.error(`${command}: ${api.error.details}`);
  const collected = await collect(api.value, { pods: false });
  if (!collected.ok) return program.error(`${command}: ${collected.error.message}`);
  if (flags.namespace !== undefined) {
    const inNamespace = (o: { readonly namespace: string }) => o.namespace === flags.namespace;
    collected.value.pools.splice(0, Infinity, ...collected.value.pools.filter(inNamespace));
    collected.value.reservations.splice(0, Infinity, ...collected.value.reservations.filter(inNamespace));
  }
  return { ...collected.value, api: api.value };
}

type OutputFlags = KubectlFlags & { output: string };
const outputOption = (c: Command) =>
  kubectlOptions(
    c.option('--output <format>', 'table or json', 'table'),
    'only the pools and reservations in this namespace',
  ).hook('preAction', (cmd) => {
    const { output } = cmd.opts<OutputFlags>();
    if (output !== 'table' && output !== 'json') cmd.error('--output must be table or json');
  });

const print = (output: string, json: unknown, text: () => string): void => {
  process.stdout.write(output === 'json' ? `${JSON.stringify(json, null, 2)}\n` : text());
};

const holdingRows = async (held: readonly Holding[]) => {
  const { table } = await import('../ops/inventory.ts');
  return table(
    ['KIND', 'ADDRESS', 'POD', 'INTERFACE', 'OBJECT', 'CONTAINER'],
    held.map((h) => [
      h.kind === 'allocation' && h.keptFor !== undefined ? `allocation (kept for ${h.keptFor})` : h.kind,
      h.address,
      h.podRef,
      h.ifName,
      `${h.namespace}/${h.kind === 'allocation' ? h.pool : h.name}`,
      h.kind === 'allocation' ? h.containerId : '',
    ]),
  );
};

outputOption(
  program.command('pools').description('every IPPool: its range, addresses in use against capacity'),
).action(async (options: OutputFlags) => {
  const { pools, api } = await inventory(options, 'pools');
  const [{ capacityOf, poolUsage, table, utilisation }, { indexNads }, { readNadRanges }] = await Promise.all(
    [import('../ops/inventory.ts'), import('../ops/capacity.ts'), import('../ops/read-nads.ts')],
  );
  // Capacity as the NADs naming each pool allow (src/ops/capacity.ts); unreadable NADs: the pools' CIDRs.
  const nads = await readNadRanges(api);
  if (!nads.ok) process.stderr.write(`pools: ${nads.error.message}; capacity is each pool's whole CIDR\n`);
  const index = indexNads(nads.ok ? nads.value : []);
  const usage = pools.map((p) => poolUsage(p, index));
  print(
    options.output,
    // Capacity as a decimal string: an IPv6 range's is beyond what a JSON number holds exactly.
    usage.map((u) => ({
      ...u,
      capacity: u.capacity.toString(),
      free: u.free.toString(),
      follows: u.follows ?? null,
      utilisation: utilisation(u),
    })),
    () =>
      table(
        ['NAMESPACE', 'POOL', 'RANGE', 'USED', 'FREE', 'CAPACITY', '%', 'CAPACITY OF'],
        usage.map((u) => [
          u.namespace,
          u.pool,
          u.range,
          String(u.allocated),
          String(u.free),
          String(u.capacity),
          (utilisation(u) * 100).toFixed(1),
          capacityOf(u),
        ]),
      ),
  );
});

outputOption(
  program
    .command('ip')
    .description('who holds an address: pool entries and overlapping-range reservations')
    .argument('<address>'),
).action(async (text: string, options: OutputFlags) => {
  const [{ formatIP, parseIP }, { holdersOf }] = await Promise.all([
    import('../ip/address.ts'),
    import('../ops/inventory.ts'),
  ]);
  const address = parseIP(text);
  if (address === undefined) return program.error(`ip: "${text}" is not an IPv4 or IPv6 address`);
  const { pools, reservations } = await inventory(options, 'ip');
  const held = holdersOf(address, pools, reservations);
  const rows = await holdingRows(held);
  print(options.output, held, () => (held.length === 0 ? `${formatIP(address)} is held by no pod\n` : rows));
});

outputOption(
  program
    .command('pod')
    .description("a pod's addresses: pool entries and overlapping-range reservations")
    .argument('<namespace/name>'),
).action(async (ref: string, options: OutputFlags) => {
  if (!/^[^/]+\/[^/]+$/.test(ref)) return program.error(`pod: "${ref}" must be <namespace>/<name>`);
  const { pools, reservations } = await inventory(options, 'pod');
  const { holdingsOf } = await import('../ops/inventory.ts');
  const held = holdingsOf(ref, pools, reservations);
  const rows = await holdingRows(held);
  print(options.output, held, () => (held.length === 0 ? `${ref} holds no address\n` : rows));
});

program
  .command('validate')
  .description(
    "check NetworkAttachmentDefinitions (YAML or JSON files, - for stdin, e.g. kubectl get net-attach-def -A -o yaml) with the plugin's own configuration rules",
  )
  .argument('<files...>')
  .option(
    '--flat-file <path>',
    "the nodes' flat file (default: the one the agent installs, which supplies the kubeconfig)",
  )
  .action(async (files: string[], options: { flatFile?: string }) => {
    const [{ loadAll }, { errnoOf }, { checkNad, nadsIn, otherObjectsIn, skipReason }] = await Promise.all([
      import('js-yaml'),
      import('../errors.ts'),
      import('../config/check-nad.ts'),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'whereabouts-validate-'));
    let flatFile = options.flatFile;
    if (flatFile === undefined) {
      flatFile = join(dir, 'whereabouts.conf');
      writeFileSync(
        flatFile,
        JSON.stringify({ kubernetes: { kubeconfig: '/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig' } }),
      );
    }
    let failed = 0;
    let checked = 0;
    let skipped = 0;
    try {
      for (const file of files) {
        let documents: unknown[] = [];
        try {
          documents = loadAll(readFileSync(file === '-' ? 0 : file, 'utf8'));
        } catch (e) {
          program.error(`validate: cannot read ${file}: ${errnoOf(e) ?? 'not YAML or JSON'}`);
        }
        for (const other of otherObjectsIn(documents)) {
          skipped++;
          process.stdout.write(`skip  ${other}: not a NetworkAttachmentDefinition\n`);
        }
        for (const nad of nadsIn(documents)) {
          const why = skipReason(nad);
          if (why !== undefined) {
            skipped++;
            const { namespace = 'default', name = '?' } = nad.metadata ?? {};
            process.stdout.write(`skip  ${namespace}/${name}: ${why}\n`);
            continue;
          }
          for (const check of checkNad(nad, [flatFile])) {
            checked++;
            if (check.ok) {
              process.stdout.write(`ok    ${check.nad} (${check.plugin})\n`);
              for (const w of check.warnings) process.stdout.write(`      warning: ${w}\n`);
            } else {
              failed++;
              // The first error is the plugin's answer to ADD; the others, found at once, follow it.
              process.stdout.write(
                `FAIL  ${check.nad} (${check.plugin}): code ${check.code}: ${check.error}\n`,
              );
              for (const e of check.errors.slice(1))
                process.stdout.write(`      error: code ${e.code}: ${e.error}\n`);
            }
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    process.stderr.write(
      `${checked} whereabouts configurations checked, ${failed} invalid` +
        (skipped > 0 ? `; ${skipped} skipped (no whereabouts IPAM, or not a NAD)\n` : '\n'),
    );
    process.exitCode = failed > 0 ? 1 : 0;
  });

await program.parseAsync();
// Kept-alive API connections must not hold the process open once the command is done; exit once stdout
// has been written out (it may be a pipe that has not taken everything yet).
process.stdout.write('', () => process.exit(process.exitCode ?? 0));
