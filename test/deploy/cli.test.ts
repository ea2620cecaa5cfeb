// The commands and flags the manifests run (the kustomize base's and the Helm chart's: support/renderings.ts)
// exist in the whereabouts-ts command line, as its --help lists them; and the bundle the image runs is that
// same command line.

import { existsSync } from 'node:fs';
import { bundledCli, commandsOf, help, optionsOf, sourceCli } from './support/cli.ts';
import { workloads } from './support/render.ts';
import { renderings } from './support/renderings.ts';

const cliPath = '/usr/local/bin/whereabouts-ts';

describe.each(renderings)('the commands in $name', (rendering) => {
  rendering.describe('as installed', () => {
    const invocations = () =>
      workloads(rendering.all()).flatMap(({ object, pod }) =>
        pod.containers.map((c) => ({
          where: `${object.kind}/${object.metadata.name} container ${c.name}`,
          container: c,
        })),
      );

    test('every container runs the whereabouts-ts command line', () => {
      const others = invocations()
        .filter(({ container }) => container.command?.[0] !== cliPath)
        .map(({ where, container }) => `${where}: command ${JSON.stringify(container.command)}`);
      expect(others).toEqual([]);
    });

    test('every command and flag exists in the CLI, with a value exactly where the flag takes one', () => {
      const commands = commandsOf(help(sourceCli, []));
      const problems = invocations().flatMap(({ where, container }) => {
        const [command = '', ...args] = container.args ?? [];
        if (!commands.includes(command))
          return [
            `${where}: \`whereabouts-ts ${command}\` is not a command of the CLI (it has: ${commands.join(', ')})`,
          ];
        const options = optionsOf(help(sourceCli, [command]));
        return args.flatMap((arg) => {
          const [flag = '', ...value] = arg.split('=');
          const option = options.get(flag);
          if (!arg.startsWith('--'))
            return [
              `${where}: argument "${arg}" of \`${command}\` is not a --flag (write flags as --flag=value)`,
            ];
          if (option === undefined)
            return [
              `${where}: flag ${flag} does not exist in \`whereabouts-ts ${command}\` (it has: ${[...options.keys()].join(', ')})`,
            ];
          if (option.takesValue && value.length === 0)
            return [`${where}: flag ${flag} of \`${command}\` takes a value: write ${flag}=<value>`];
          if (!option.takesValue && value.length > 0)
            return [`${where}: flag ${flag} of \`${command}\` takes no value`];
          return [];
        });
      });
      expect(problems).toEqual([]);
    });
  });
});

describe('the bundle the image runs', () => {
  test('is built, and has the commands and options of the sources', () => {
    expect(existsSync(bundledCli)).toBe(true); // `npm run build` makes it
    const commands = commandsOf(help(sourceCli, []));
    expect(commandsOf(help(bundledCli, []))).toEqual(commands);
    for (const command of commands)
      expect([...optionsOf(help(bundledCli, [command])).values()]).toEqual([
        ...optionsOf(help(sourceCli, [command])).values(),
      ]);
  });
});
