// `npm run bench -- churn`: issue 15's churn workload (bench/support/churn.ts) — StatefulSet-style pods
// recreated under the same names against release on deletion, agent restarts and API-server restarts.
import { result } from '../report.ts';
import { churn } from '../support/churn.ts';

export async function run(): Promise<void> {
  const started = performance.now();
  const report = await churn({
    rounds: 40,
    pods: 10,
    progress: (round) => {
      if (round % 10 === 0) console.log(`# round ${round}`);
    },
  });
  for (const problem of report.problems) console.log(`# ${problem}`);
  console.log(`# ${((performance.now() - started) / 1000).toFixed(1)} s`);
  result('churn_rounds', report.rounds, 'rounds');
  result('churn_duplicates', report.duplicates, 'addresses');
  result('churn_live_released', report.liveReleased, 'addresses');
  result('churn_leaked', report.leaked, 'objects');
}
