// The Dockerfile, read statically (no container engine here): a build stage that installs and builds, a
// minimal final stage that runs as an unprivileged user, every COPY taking a path that exists (in the build
// context, not ignored, or among what `npm run build` produces), and the image paths the manifests and the
// agent rely on.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { loadAll } from 'js-yaml';
import { bundledCli } from './support/cli.ts';
import { podSpecOf, root, type K8sObject } from './support/render.ts';

type Instruction = { keyword: string; args: string };
type Stage = { base: string; name: string | undefined; instructions: Instruction[] };

function parse(text: string): Stage[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ base: m?.[1] ?? '', name: m?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

type Copy = { from: string | undefined; sources: string[]; destination: string };
const copiesOf = (stage: Stage): Copy[] =>
  stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      return {
        from: flags.find((f) => f.startsWith('--from='))?.slice('--from='.length),
        sources: paths.slice(0, -1),
        destination: paths.at(-1) ?? '',
      };
    });

/** Docker's .dockerignore: the last pattern that matches a path (or one of its parents) decides. */
function ignored(patterns: readonly string[], path: string): boolean {
  let result = false;
  const parts = path.replace(/\/$/, '').split('/');
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/\/$/, '');
    const regex = new RegExp(
      `^${pattern
        .split('**')
        .map((piece) =>
          piece
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')}$`,
    );
    if (parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')))) result = !negated;
  }
  return result;
}

const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const stages = parse(dockerfile);
const build = stages[0] as Stage;
const final = stages.at(-1) as Stage;
const patterns = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const workdir = build.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '/';

describe('the Dockerfile', () => {
  test('builds on Node 24 with the locked dependencies and `npm run build`, then starts a fresh final stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build.base).toMatch(/^node:24(-|$)/);
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs).toEqual(
      expect.arrayContaining([expect.stringMatching(/^npm (ci|install)\b/), 'npm run build']),
    );
    expect(final.base).not.toBe(build.name);
  });

  test('the final stage is Node.js alone (distroless), run by an unprivileged user', () => {
    expect(final.base).toMatch(/^gcr\.io\/distroless\/nodejs24-/);
    const user = final.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args ?? 'root';
    expect(user.split(':')[0]).toMatch(/^[1-9]\d*$/);
    expect(final.instructions.filter((i) => i.keyword === 'RUN')).toEqual([]); // no shell there to run it
  });

  test('everything copied from the build stage is what `npm run build` makes', () => {
    const fromBuild = copiesOf(final).filter((c) => c.from === build.name);
    expect(fromBuild.length).toBeGreaterThan(0);
    const missing = fromBuild
      .flatMap((c) => c.sources)
      .map((s) => posix.relative(workdir, s))
      .filter((relative) => !relative.startsWith('dist/') || !existsSync(join(root, relative)));
    expect(missing).toEqual([]);
  });

  test('everything copied from the context exists and is not excluded by .dockerignore', () => {
    const fromContext = stages.flatMap((s) =>
      copiesOf(s)
        .filter((c) => c.from === undefined)
        .flatMap((c) => c.sources),
    );
    const problems = fromContext.flatMap((source) => [
      ...(existsSync(join(root, source)) ? [] : [`${source}: does not exist`]),
      ...(ignored(patterns, source) ? [`${source}: excluded by .dockerignore`] : []),
    ]);
    expect(problems).toEqual([]);
    // The context holds no dependencies or build output of the machine that builds it.
    for (const path of ['node_modules', 'dist', '.git']) expect(ignored(patterns, path)).toBe(true);
  });

  test('the image has the paths of the contract: the CLI (also as kubectl-whereabouts) and the plugin', () => {
    const destinations = copiesOf(final).map((c) => c.destination);
    expect(destinations).toEqual(
      expect.arrayContaining([
        '/usr/local/bin/whereabouts-ts',
        '/usr/local/bin/kubectl-whereabouts',
        '/usr/local/lib/whereabouts-ts/whereabouts',
      ]),
    );
    expect(final.instructions.find((i) => i.keyword === 'ENTRYPOINT')?.args).toBe(
      '["/usr/local/bin/whereabouts-ts"]',
    );
  });

  test('the manifests run commands the image has, and the agent installs the plugin from where the image has it', () => {
    const destinations = copiesOf(final).map((c) => c.destination);
    const dir = join(root, 'deploy', 'core');
    const containers = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
      .flatMap((f) => loadAll(readFileSync(join(dir, f), 'utf8')) as K8sObject[])
      .flatMap((o) => podSpecOf(o)?.containers ?? []);
    expect(containers.length).toBeGreaterThan(0);
    expect(containers.map((c) => c.command?.[0]).filter((c) => !destinations.includes(c ?? ''))).toEqual([]);
    const plugin = containers.flatMap((c) => c.args ?? []).find((a) => a.startsWith('--plugin='));
    expect(destinations).toContain(plugin?.slice('--plugin='.length));
  });

  test('the command wrapper loads the bundle from where the image puts it, with the base image’s node', () => {
    const wrapper = readFileSync(join(root, 'deploy', 'image', 'whereabouts-ts'), 'utf8');
    expect(wrapper.split('\n')[0]).toBe('#!/nodejs/bin/node'); // distroless: no /usr/bin/env
    const bundle = copiesOf(final).find((c) => c.sources.some((s) => s.endsWith('/dist/whereabouts-ts.mjs')));
    expect(wrapper).toContain(`import('${bundle?.destination ?? '?'}')`);
  });

  test("the command line's chunks go beside its entry, where its imports look for them", () => {
    const entry = copiesOf(final).find((c) => c.sources.some((s) => s.endsWith('/dist/whereabouts-ts.mjs')));
    const chunks = copiesOf(final).find((c) => c.sources.some((s) => /\/dist\/cli-chunks\/?$/.test(s)));
    expect(chunks?.destination.replace(/\/$/, '')).toBe(
      `${posix.dirname(entry?.destination ?? '?')}/cli-chunks`,
    );
    // The entry imports its chunks by that relative path.
    expect(readFileSync(bundledCli, 'utf8')).toMatch(/from\s*"\.\/cli-chunks\//);
  });

  test('the wrapper runs the command line (with the bundle path pointed at this checkout)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wb-wrapper-'));
    try {
      const wrapper = readFileSync(join(root, 'deploy', 'image', 'whereabouts-ts'), 'utf8')
        .split('\n')
        .slice(1) // the interpreter is given here instead
        .join('\n')
        .replace('/usr/local/lib/whereabouts-ts/whereabouts-ts.mjs', bundledCli);
      writeFileSync(join(dir, 'kubectl-whereabouts'), wrapper);
      const out = execFileSync(process.execPath, [join(dir, 'kubectl-whereabouts'), '--help'], {
        encoding: 'utf8',
      });
      expect(out).toMatch(/Commands:[\s\S]*agent[\s\S]*gc/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
