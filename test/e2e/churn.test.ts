// Issue 15's churn: StatefulSet-style recreation of the same pod names racing the agent's release on
// deletion, late DELs of the old sandboxes, agent restarts and API-server restarts, 20 rounds
// (bench/support/churn.ts). No address held by two live attachments, every live attachment's address in
// its pool as its own, nothing left after the last DEL.
import { existsSync } from 'node:fs';
import { churn } from '../../bench/support/churn.ts';
import { pluginPath } from '../support/exec.ts';

test('20 rounds of churn: no duplicate, no live address released, nothing leaked', async () => {
  if (!existsSync(pluginPath)) throw new Error('dist/whereabouts is missing: run npm run build');
  const report = await churn({ rounds: 20, pods: 5 });
  expect(report.problems).toEqual([]);
  expect(report).toMatchObject({ rounds: 20, duplicates: 0, liveReleased: 0, leaked: 0 });
}, 600_000);
