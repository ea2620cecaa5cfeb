// The readers of files a NAD names (flat file, kubeconfig, nodename, log_file) and the quoting of
// runtime-supplied text, against hostile input (issue 15, findings 10 and 11): FIFOs and devices are
// refused without blocking, sizes are capped, and what is quoted back is bounded.

import { killAll } from '../../support/exec.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCniArgs } from '../../../src/config/cni-args.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { readEnvironment } from '../../../src/cni/environment.ts';
import { nodeName, type VerbContext } from '../../../src/cni/verbs.ts';
import { errnoOf } from '../../../src/errors.ts';
import { createLogger } from '../../../src/log.ts';
import { connect } from '../../../src/kube-api/kube.ts';
import { loadCredentials, renderKubeconfig } from '../../../src/kube-api/kubeconfig.ts';

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wb-hostile-unit-'));
});
afterEach(async () => {
  await killAll(children);
  rmSync(dir, { recursive: true, force: true });
});

/** A FIFO whose writer (another process) sends `content` once a reader opens it: a blocking read returns. */
function fifoWithWriter(path: string, content: string): string {
  execFileSync('mkfifo', [path]);
  const writer = spawn('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', content, path], { stdio: 'ignore' });
  children.push(writer);
  return path;
}

const load = (ipam: Record<string, unknown>, flatFilePaths: string[] = []) =>
  loadConfig({
    stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'n', ipam: { type: 'whereabouts', ...ipam } }),
    cniArgs: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=p',
    flatFilePaths,
  });

describe('the flat file', () => {
  test('configuration_path naming a directory whose whereabouts.conf is a FIFO: error 7, not read', () => {
    const fifo = fifoWithWriter(join(dir, 'whereabouts.conf'), '{"range": "10.0.0.0/24"}');
    const result = load({ configuration_path: dir });
    expect(result).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 7,
        details: `the flat file ${fifo} is a FIFO, not a regular file`,
      }) as unknown,
    });
  });

  test('a FIFO among the default paths is refused the same way', () => {
    const fifo = fifoWithWriter(join(dir, 'flat'), '{}');
    const result = load({ range: '10.0.0.0/24' }, [fifo]);
    expect(result.ok ? undefined : result.error).toMatchObject({ code: 7 });
  });

  test('/dev/null is a character device, not an empty flat file', () => {
    const result = load({ configuration_path: '/dev/null', range: '10.0.0.0/24' });
    expect(result.ok ? undefined : result.error).toMatchObject({
      code: 7,
      details: 'the flat file /dev/null is a character device, not a regular file',
    });
  });

  test('a flat file over 1 MiB is refused unread; one just under is read', () => {
    const flat = join(dir, 'whereabouts.conf');
    writeFileSync(flat, `{"range": "10.0.0.0/24"}${' '.repeat((1 << 20) - 24)}`);
    expect(load({ configuration_path: flat }).ok).toBe(true);
    writeFileSync(flat, `{"range": "10.0.0.0/24"}${' '.repeat(1 << 20)}`);
    const result = load({ configuration_path: flat });
    expect(result.ok ? undefined : result.error).toMatchObject({
      code: 7,
      details: `the flat file ${flat} is larger than 1048576 bytes`,
    });
  });
});

describe('the kubeconfig', () => {
  const kubeconfigText = renderKubeconfig({ server: 'https://127.0.0.1:6443', token: 't' });

  test('the plugin reader refuses a FIFO (error 7) without reading it', () => {
    const fifo = fifoWithWriter(join(dir, 'kubeconfig'), kubeconfigText);
    expect(loadCredentials(fifo, {})).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 7,
        details: `the kubeconfig ${fifo} is a FIFO, not a regular file`,
      }) as unknown,
    });
  });

  test('client-node (connect) refuses a FIFO the same way', () => {
    const fifo = fifoWithWriter(join(dir, 'kubeconfig'), kubeconfigText);
    const result = connect({ kubeconfig: fifo });
    expect(result.ok ? undefined : result.error).toMatchObject({
      code: 7,
      details: `the kubeconfig ${fifo} is a FIFO, not a regular file`,
    });
  });

  test.each(['/dev/zero', '/dev/urandom'])('both readers refuse %s at once', (device) => {
    const details = `the kubeconfig ${device} is a character device, not a regular file`;
    expect(loadCredentials(device, {})).toMatchObject({ ok: false, error: { code: 7, details } });
    expect(connect({ kubeconfig: device })).toMatchObject({ ok: false, error: { code: 7, details } });
  });

  test('both readers refuse a kubeconfig over 1 MiB', () => {
    const big = join(dir, 'kubeconfig');
    writeFileSync(big, `# ${'x'.repeat(1 << 20)}\n${kubeconfigText}`);
    const details = `the kubeconfig ${big} is larger than 1048576 bytes`;
    expect(loadCredentials(big, {})).toMatchObject({ ok: false, error: { code: 7, details } });
    expect(connect({ kubeconfig: big })).toMatchObject({ ok: false, error: { code: 7, details } });
  });

  test('client-node still resolves relative certificate paths against the kubeconfig directory', () => {
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      kubeconfigText.replace('token: t', 'client-certificate: cert.pem\n      client-key: key.pem'),
    );
    const result = connect({ kubeconfig: path });
    if (!result.ok) throw new Error(result.error.details);
    expect(result.value.kubeConfig.getCurrentUser()?.certFile).toBe(join(dir, 'cert.pem'));
  });

  test('a tokenFile named by the kubeconfig that is a FIFO is refused (error 7)', () => {
    const token = fifoWithWriter(join(dir, 'token'), 'the-token');
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, kubeconfigText.replace('token: t', `tokenFile: ${token}`));
    expect(loadCredentials(path, {})).toMatchObject({
      ok: false,
      error: {
        code: 7,
        details: `the file ${token} named by the kubeconfig ${path} is a FIFO, not a regular file`,
      },
    });
  });

  test('a server URL that is not http(s) is error 7, without quoting it', () => {
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, renderKubeconfig({ server: 'ftp://alice:pw@example.org', token: 't' }));
    const result = loadCredentials(path, {});
    expect(result).toMatchObject({ ok: false, error: { code: 7 } });
    expect(JSON.stringify(result)).not.toContain('pw');
  });
});

describe('nodename in configuration_path', () => {
  test('a FIFO is not read: the host name is used', () => {
    fifoWithWriter(join(dir, 'nodename'), 'node-of-the-nad');
    const ctx = { env: {}, loaded: { config: { configurationPath: dir } } } as unknown as VerbContext;
    expect(nodeName(ctx)).toBe(hostname());
  });

  test('a regular file is read', () => {
    writeFileSync(join(dir, 'nodename'), 'node-7\n');
    const ctx = { env: {}, loaded: { config: { configurationPath: dir } } } as unknown as VerbContext;
    expect(nodeName(ctx)).toBe('node-7');
  });
});

describe('log_file', () => {
  /** What a reader of the FIFO got, without blocking. */
  function drain(fd: number): string {
    const buffer = Buffer.alloc(65_536);
    try {
      return buffer.subarray(0, readSync(fd, buffer)).toString('utf8');
    } catch (e) {
      if (errnoOf(e) === 'EAGAIN') return '';
      throw e;
    }
  }

  test('a FIFO with a reader is not written to', () => {
    const fifo = join(dir, 'log');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const lines: string[] = [];
      const log = createLogger({ level: 'debug', file: fifo, write: (l) => lines.push(l) });
      log.error('first');
      log.error('second');
      expect(drain(reader)).toBe('');
      expect(lines.join('')).toContain(`cannot append to log_file ${fifo}: it is a FIFO, not a regular file`);
      expect(lines.filter((l) => l.includes('cannot append'))).toHaveLength(1);
    } finally {
      closeSync(reader);
    }
  });

  test('a FIFO without a reader does not block', () => {
    const fifo = join(dir, 'log');
    execFileSync('mkfifo', [fifo]);
    const lines: string[] = [];
    createLogger({ level: 'debug', file: fifo, write: (l) => lines.push(l) }).error('x');
    expect(lines.join('')).toContain(`cannot append to log_file ${fifo}`);
  });

  test('a character device is not written to', () => {
    const lines: string[] = [];
    createLogger({ level: 'debug', file: '/dev/null', write: (l) => lines.push(l) }).error('x');
    expect(lines.join('')).toContain('cannot append to log_file /dev/null: it is a character device');
  });

  test('a directory is not written to', () => {
    const lines: string[] = [];
    createLogger({ level: 'debug', file: dir, write: (l) => lines.push(l) }).error('x');
    expect(lines.join('')).toContain(`cannot append to log_file ${dir}: it is a directory`);
  });

  test('a regular file is appended to; an absent one is created', () => {
    const file = join(dir, 'sub', 'whereabouts.log');
    mkdirSync(join(dir, 'sub'));
    const log = createLogger({ level: 'debug', file, write: () => undefined });
    log.error('one');
    log.verbose('two');
    expect(readFileSync(file, 'utf8')).toMatch(/\[error\] one\n.*\[verbose\] two\n$/);
  });
});

describe('what is quoted back is bounded and escaped', () => {
  test('CNI_COMMAND', () => {
    const result = readEnvironment({ CNI_COMMAND: `${'A'.repeat(100_000)}\u0000` });
    const details = result.ok ? '' : result.error.details;
    expect(details.length).toBeLessThan(300);
    expect(details).toMatch(/^CNI_COMMAND "A+\.\.\." \(100001 characters\) is not one of ADD, DEL/);
  });

  test('CNI_ARGS: a bad pair, a bad IgnoreUnknown, a list of unknown keys', () => {
    for (const args of [
      `K${'='.repeat(100_000)}`,
      `IgnoreUnknown=${'x'.repeat(100_000)}`,
      Array.from({ length: 10_000 }, (_, i) => `KEY${i}=v`).join(';'),
      `${'K'.repeat(100_000)}=v`,
    ]) {
      const result = parseCniArgs(args);
      expect(result.ok).toBe(false);
      expect(result.ok ? '' : result.error.details.length).toBeLessThan(500);
    }
  });

  test('network_name and runtimeConfig.ips', () => {
    const name = load({ range: '10.0.0.0/24', network_name: 'a'.repeat(100_000) });
    expect(name.ok ? '' : name.error.details.length).toBeLessThan(500);
    const ips = loadConfig({
      stdin: JSON.stringify({
        cniVersion: '1.1.0',
        name: 'n',
        runtimeConfig: { ips: [`10.0.0.1${'\u0000'.repeat(100_000)}`] },
        ipam: { type: 'whereabouts', range: '10.0.0.0/24' },
      }),
      cniArgs: undefined,
      flatFilePaths: [],
    });
    expect(ips.ok ? '' : ips.error.details).toMatch(/^runtimeConfig\.ips: "10\.0\.0\.1\\u0000/);
    expect(ips.ok ? '' : ips.error.details.length).toBeLessThan(500);
  });
});
