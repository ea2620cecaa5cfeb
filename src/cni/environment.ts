// The CNI_* environment of one invocation, checked as libcni checks it.

import { quoteText } from '../config/json.ts';
import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';

export const commands = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type Command = (typeof commands)[number];

export type Invocation = {
  readonly command: Command;
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
  readonly cniArgs: string | undefined;
};

type Env = Readonly<Record<string, string | undefined>>;

const required: Record<Command, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: [],
  STATUS: [],
  VERSION: [],
};

const envError = (details: string) => fail(ipamError(CniCode.InvalidEnvironment, details));

/** libcni's ValidateContainerID and ValidateInterfaceName. */
const containerIdPattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const badInterfaceName = (name: string): boolean =>
  name.length > 15 || name === '.' || name === '..' || /[/:\s]/.test(name);

export function readEnvironment(env: Env): Result<Invocation> {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '') return envError('CNI_COMMAND is not set');
  if (!(commands as readonly string[]).includes(command)) {
    return envError(`CNI_COMMAND ${quoteText(command)} is not one of ${commands.join(', ')}`);
  }
  const verb = command as Command;
  const missing = required[verb].filter((name) => (env[name] ?? '') === '');
  if (missing.length > 0)
    return envError(
      `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set (needed for ${verb})`,
    );
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId !== '' && !containerIdPattern.test(containerId)) {
    return envError(
      'CNI_CONTAINERID must start with a letter or digit and hold only letters, digits, "_", "." and "-"',
    );
  }
  const ifName = env.CNI_IFNAME ?? '';
  if (ifName !== '' && badInterfaceName(ifName)) {
    return envError(
      `CNI_IFNAME ${quoteText(ifName, 32)} is not a valid interface name (at most 15 characters, no "/", ":" or spaces)`,
    );
  }
  return ok({ command: verb, containerId, netns: env.CNI_NETNS ?? '', ifName, cniArgs: env.CNI_ARGS });
}
