// The built executable itself: what the container runtime sees from it, whatever the input.

import { existsSync } from 'node:fs';
import { execute, pluginPath as plugin } from '../support/exec.ts';

const run = (env: Record<string, string>, stdin: string | Buffer) => execute(plugin, env, stdin, 30_000);

beforeAll(() => {
  if (!existsSync(plugin)) throw new Error('dist/whereabouts is missing: run npm run build');
});

test('VERSION answers at once, in the version asked', async () => {
  const out = await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  expect(out).toEqual({
    code: 0,
    stdout: '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
    stderr: '',
  });
});

test.each<[string, Record<string, string>, string | Buffer, number]>([
  ['no command', {}, '{}', 4],
  [
    'stdin that is not JSON',
    { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' },
    'not json',
    6,
  ],
  [
    'binary garbage',
    { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' },
    Buffer.from([0, 255, 1, 2, 128]),
    6,
  ],
  [
    'a 2 MiB config',
    { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' },
    `{"x":"${'a'.repeat(2 << 20)}"}`,
    7,
  ],
])(
  '%s: a CNI error on stdout with its code, a non-zero exit, no stack trace',
  async (_, env, stdin, code) => {
    const out = await run(env, stdin);
    expect(out.code).toBe(1);
    const error = JSON.parse(out.stdout) as { code: number; msg: string; details: string };
    expect(error.code).toBe(code);
    expect(error.msg.length).toBeGreaterThan(0);
    expect(out.stdout + out.stderr).not.toMatch(/\n\s+at /);
  },
);
