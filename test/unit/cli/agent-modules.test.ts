// The node agent runs on every node: what `whereabouts-ts agent` loads is memory on every node
// (docs/agent.md, "Memory"). It must never load client-node (undici, openid-client, jose, ws and the
// generated models: most of an idle agent's memory before) nor the other commands' modules. This follows the
// static imports — what loading a module loads — from the command line's entry and from the modules its
// agent command imports when it runs, and fails on any path to one the agent must not load.

import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = join(import.meta.dirname, '..', '..', '..');
const main = join(root, 'src', 'cli', 'main.ts');

/**
 * The modules a module loads as it is loaded: its value imports and re-exports, not `import type` (erased);
 * `import { type A }` counts (with verbatimModuleSyntax it stays an import of the module).
 */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
    if (m[1] === undefined) found.push(m[2] ?? '');
  }
  return found;
}

const isFile = (specifier: string) => specifier.startsWith('.');

/** Every module reachable by static imports from `entries`, each with the path it was reached by. */
function reachable(entries: readonly string[]): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const queue: [string, string[]][] = entries.map((e) => [e, [relative(root, e)]]);
  while (queue.length > 0) {
    const [module, path] = queue.shift() ?? ['', [] as string[]];
    if (seen.has(module)) continue;
    seen.set(module, path);
    if (!module.startsWith('/')) continue; // a package: its own graph is not followed here
    for (const specifier of staticImports(module)) {
      const next = isFile(specifier) ? resolve(dirname(module), specifier) : specifier;
      queue.push([next, [...path, isFile(specifier) ? relative(root, next) : specifier]]);
    }
  }
  return seen;
}

/** The modules the agent command imports when it runs: the `import('…')`s of its code in main.ts. */
function agentCommandImports(): string[] {
  const text = readFileSync(main, 'utf8');
  const start = text.indexOf('async function leanConnection(');
  const end = text.indexOf(".command('gc')");
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return [...text.slice(start, end).matchAll(/import\('([^']+)'\)/g)]
    .map((m) => m[1] ?? '')
    .filter((s) => s !== '../kube-api/kube.ts') // client-node's connection: only for exec-plugin kubeconfigs
    .map((s) => (isFile(s) ? resolve(dirname(main), s) : s));
}

const forbidden = [
  '@kubernetes/client-node',
  'src/kube-api/kube.ts',
  'src/kube-api/kubectl-config.ts',
  'src/dev-apiserver/server.ts',
  'src/exporter/exporter.ts',
  'src/gc/run.ts',
  'src/controller/controller.ts',
  'src/cli/sandbox.ts',
];

test('the agent command loads the agent, the lean HTTP client and the kubeconfig reader', () => {
  const imports = agentCommandImports();
  for (const expected of ['src/agent/agent.ts', 'src/kube-api/http-api.ts', 'src/kube-api/kubeconfig.ts'])
    expect(imports).toContain(join(root, expected));
});

test('nothing the agent command loads reaches client-node or another command', () => {
  const graph = reachable([main, ...agentCommandImports()]);
  const reached = forbidden.flatMap((f) => {
    const key = f.startsWith('src/') ? join(root, f) : f;
    const path = graph.get(key);
    return path === undefined ? [] : [`${f}: ${path.join(' -> ')}`];
  });
  expect(reached).toEqual([]);
  // The walk itself works: it found the agent's own modules.
  expect(graph.has(join(root, 'src', 'agent', 'server.ts'))).toBe(true);
  expect(graph.has('prom-client')).toBe(true);
});
