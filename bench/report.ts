/** Prints one benchmark figure in the form every scenario uses: `RESULT <name> <value> <unit>`. */
export function result(name: string, value: number, unit: string): void {
  const shown = Number.isInteger(value) ? String(value) : value.toPrecision(4);
  console.log(`RESULT ${name} ${shown} ${unit}`);
}

/** Peak resident set size of this process so far, in MiB. */
export const peakRssMiB = (): number => process.resourceUsage().maxRSS / 1024;

/** A seeded generator so that a scenario lays out the same data on every run. */
export { seededRandom } from '../src/random.ts';
