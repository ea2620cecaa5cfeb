// Why this file: `npm install` on a fresh clone must leave the tree clean. npm records every platform's
// build of a package with native parts (@swc/core, unrs-resolver) in the lockfile, whichever platform it runs
// on, and from npm 11.11 their libc; a lockfile without them is rewritten by the first `npm install`. That
// happened once already (the other platforms' entries were removed by hand), so this keeps them listed.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Entry = {
  optionalDependencies?: Record<string, string>;
  os?: string[];
  libc?: string[];
  optional?: boolean;
};
const lock = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', '..', 'package-lock.json'), 'utf8'),
) as {
  lockfileVersion: number;
  packages: Record<string, Entry>;
};

test('every optional dependency of every locked package is locked too, for every platform', () => {
  expect(lock.lockfileVersion).toBe(3);
  const missing: string[] = [];
  let optional = 0;
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      optional++;
      // Resolved as Node resolves: node_modules beside the package, then each one further up.
      const parts = path.split('node_modules/').slice(0, -1);
      const found = parts.some(
        (_, i) =>
          `${parts.slice(0, parts.length - i).join('node_modules/')}node_modules/${name}` in lock.packages,
      );
      if (!found && !(`node_modules/${name}` in lock.packages)) missing.push(`${path} → ${name}`);
    }
  }
  expect(optional).toBeGreaterThan(20); // @swc/core's and unrs-resolver's platform builds at least
  expect(missing).toEqual([]);
});

test('the Linux builds that exist for both glibc and musl say which (npm 11.11 or later writes the lockfile)', () => {
  const linuxNative = Object.entries(lock.packages).filter(
    ([path, e]) => e.optional === true && e.os?.includes('linux') === true && /-(gnu|musl)$/.test(path),
  );
  expect(linuxNative.length).toBeGreaterThan(0);
  expect(linuxNative.filter(([, e]) => e.libc === undefined).map(([path]) => path)).toEqual([]);
});
