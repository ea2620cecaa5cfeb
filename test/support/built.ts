// Suites that run components built from Go modules (kube/): the real control plane, Whereabouts, cnitool and
// the reference plugins. Where they are not built, a developer's run skips those suites and says why; with
// CI=true their absence fails the run instead, so CI can never pass by skipping them.

import { findPeers, type Peers } from '../../kube/binaries.ts';

export type Built = { ok: true } | { ok: false; why: string };

/** Declares `body` under `name` when `built`, else skips it (or fails, under CI) with the reason. */
export function describeWhenBuilt(name: string, built: Built, body: () => void): void {
  if (built.ok) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      test('its components are built (CI requires it)', () => {
        throw new Error(built.why);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${built.why})`, body);
  }
}

const found = findPeers();

/** Whereabouts, cnitool and the reference plugins, when `npm run peers:build` has built them. */
export const peersBuilt: Built = found.ok ? { ok: true } : { ok: false, why: found.why };

/** The built peers; only called inside a suite declared with `describeWhenBuilt(…, peersBuilt, …)`. */
export function builtPeers(): Peers {
  if (!found.ok) throw new Error(found.why);
  return found.peers;
}
