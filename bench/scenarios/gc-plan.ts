// GC at scale: 100,000 allocations over 200 pools against 100,000 pods, 10% of the allocations leaked. The
// GC process runs as in its CronJob (`whereabouts-ts gc --dry-run`, with the CronJob's NODE_OPTIONS),
// listing everything with pagination from the API server in a process of its own; the figures are its
// plan time and its peak memory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { result } from '../report.ts';
import { serveApi, timed } from '../support/processes.ts';

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-gcplan-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const server = await serveApi(kubeconfig, 'serve-gc.ts');
  const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
  // The same V8 setting as deploy/core/gc.yaml: small young-generation spaces for a batch job that parses
  // much and keeps little (peak RSS ~230 MiB instead of ~370 MiB here).
  const gc = await timed(
    process.execPath,
    [cli, 'gc', '--dry-run', '--output', 'json', '--kubeconfig', kubeconfig],
    {
      NODE_OPTIONS: '--max-semi-space-size=4',
    },
  );
  server.stdin?.end();
  rmSync(dir, { recursive: true, force: true });
  if (gc.code !== 0) throw new Error(`gc failed: ${gc.stderr}`);
  const plan = JSON.parse(gc.stdout) as { releases: unknown[] };
  const planMs = Number(/plan (\d+) ms/.exec(gc.stderr)?.[1] ?? NaN);
  console.log(`# ${gc.stderr.trim()}`);
  console.log(
    `# whole GC process: ${(gc.wallMs / 1000).toFixed(1)} s wall, ${(gc.cpuMs / 1000).toFixed(1)} s CPU`,
  );
  result('gc_plan_seconds', planMs / 1000, 's');
  result('gc_plan_rss_mib', gc.rssMiB, 'MiB');
  result('gc_plan_released', plan.releases.length, 'allocations');
}
