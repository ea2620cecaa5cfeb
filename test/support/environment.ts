// Jest's test environment: Node's, plus one thing — when a test fails, it prints the fault seeds of the
// embedded API servers that test started, so a failing run with injected faults can be replayed with
// WHEREABOUTS_TS_FAULT_SEED=<seed> (test/support/cluster.ts reads it).
import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';

export const seedsKey = '__whereaboutsFaultSeeds';

export default class SeedReportingEnvironment extends TestEnvironment {
  handleTestEvent(event: Circus.Event): void {
    if (event.name === 'test_start') this.global[seedsKey] = [];
    if (event.name === 'test_done' && event.test.errors.length > 0) {
      const seeds = this.global[seedsKey];
      if (Array.isArray(seeds) && seeds.length > 0)
        process.stderr.write(
          `\n"${event.test.name}" failed with fault seeds ${seeds.join(', ')}: replay with WHEREABOUTS_TS_FAULT_SEED=${String(seeds[0])}\n`,
        );
    }
  }
}
