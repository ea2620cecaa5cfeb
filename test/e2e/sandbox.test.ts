// `npm start` runs the sandbox: the embedded API server, simulated nodes exec'ing the built plugin, a view.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const root = join(import.meta.dirname, '..', '..');

test('the sandbox allocates through the real plugin, shows the pools, and stops cleanly', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(root, 'src', 'cli', 'main.ts'), 'sandbox', '--duration', '3', '--nodes', '2'],
    {
      cwd: root,
      timeout: 60_000,
    },
  );
  expect(stdout).toMatch(/^embedded API server at http:\/\/127\.0\.0\.1:\d+; kubeconfig /);
  expect(stdout).toMatch(/ node-[12] ADD app-\d+ storage: 198\.18\.0\.\d+\/27\n/);
  expect(stdout).toMatch(
    / node-[12] ADD app-\d+ data: 198\.18\.1[6-9]\.\d+\/22, 2001:db8:16::[0-9a-f]+\/64\n/,
  );
  expect(stdout).toMatch(/198\.18\.0\.0-27 +198\.18\.0\.0\/27 +\d+\/30/);
  expect(stdout).not.toContain('error');
  expect(stdout).toMatch(/stopped: \d+ pods left running in the pools\n$/);
});
