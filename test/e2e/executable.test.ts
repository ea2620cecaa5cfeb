// The built executable itself: what the container runtime sees from it, whatever the input.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const plugin = join(import.meta.dirname, '..', '..', 'dist', 'whereabouts');

type Output = { code: number; stdout: string; stderr: string };

function run(env: Record<string, string>, stdin: string | Buffer): Promise<Output> {
  return new Promise((resolve) => {
    const child = execFile(
      plugin,
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
          stdout,
          stderr,
        });
      },
    );
    child.stdin?.on('error', () => undefined); // the plugin may stop reading a hostile stdin early
    child.stdin?.end(stdin);
  });
}

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
