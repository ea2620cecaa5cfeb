// `npm run bench -- <scenario>`: runs one benchmark scenario, which prints `RESULT <name> <value> <unit>` lines.
const scenarios: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  search: () => import('./scenarios/search.ts'),
  'burst-inprocess': () => import('./scenarios/burst-inprocess.ts'),
  'cold-start': () => import('./scenarios/cold-start.ts'),
  'gc-plan': () => import('./scenarios/gc-plan.ts'),
  burst: () => import('./scenarios/burst.ts'),
  'burst-slices': () => import('./scenarios/burst-slices.ts'),
  churn: () => import('./scenarios/churn.ts'),
  real: () => import('./scenarios/real.ts'),
  versus: () => import('./scenarios/versus.ts'),
  sandbox: () => import('./scenarios/sandbox.ts'),
  exec: () => import('./scenarios/exec.ts'),
  scale: () => import('./scenarios/scale.ts'),
};

const name = process.argv[2];
const load = name === undefined ? undefined : scenarios[name];
if (load === undefined) {
  console.error(`usage: npm run bench -- <scenario>\nscenarios: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
await (await load()).run();
