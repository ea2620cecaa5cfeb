// The Lease as the election reads it through its codec (src/codecs/lease.ts): a Lease that does not decode
// counts as held by a candidate we do not know — kept while it changes, taken over once it has not changed
// for a lease duration, like any holder that stopped renewing — and a renewal writes back the spec's
// fields the election does not know.

import type { KubeApi, Obj } from '../../../src/kube-api/api.ts';
import { holdLease, newObservation } from '../../../src/controller/lease.ts';
import { fieldOf } from '../../../src/codecs/decode.ts';

/** One Lease in memory: gets answer it, patches are recorded (and applied as a replace of the spec). */
function fakeApi(lease: Obj): { api: KubeApi; patches: unknown[][] } {
  const patches: unknown[][] = [];
  let current = lease;
  const api: KubeApi = {
    server: 'fake',
    namespace: 'kube-system',
    get: () => Promise.resolve({ ok: true, value: current }),
    create: () => Promise.resolve({ ok: false, error: { kind: 'status', code: 409, message: 'exists' } }),
    jsonPatch: (_ref, operations) => {
      patches.push([...operations]);
      const replace = operations.find((o) => fieldOf(o, 'op') === 'replace');
      const metadata = { name: 'l', resourceVersion: String(patches.length + 1) };
      current = { ...current, metadata, spec: fieldOf(replace, 'value') };
      return Promise.resolve({ ok: true, value: current });
    },
    delete: () => Promise.resolve({ ok: true, value: undefined }),
    list: () => Promise.resolve({ ok: true, value: { items: [] } }),
  };
  return { api, patches };
}

/** Candidate `a` for the Lease `kube-system/l` (10 s), on the clock `now`. */
const candidateA = (now: () => number) => ({
  namespace: 'kube-system',
  name: 'l',
  identity: 'a',
  leaseSeconds: 10,
  observed: newObservation(),
  now,
});

test('a Lease that does not decode is taken over only once unchanged for a lease duration', async () => {
  const { api, patches } = fakeApi({
    metadata: { name: 'l', namespace: 'kube-system', resourceVersion: '1' },
    spec: { holderIdentity: 7, leaseDurationSeconds: 'fifteen' },
  });
  let now = 1_000_000;
  const options = candidateA(() => now);
  expect(await holdLease(api, options)).toBe(false);
  now += 9_000;
  expect(await holdLease(api, options)).toBe(false);
  expect(patches).toEqual([]);
  now += 2_000;
  expect(await holdLease(api, options)).toBe(true);
  expect(patches[0]?.[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '1' });
  expect(patches[0]?.[1]).toMatchObject({
    op: 'replace',
    path: '/spec',
    value: { holderIdentity: 'a', leaseDurationSeconds: 10, leaseTransitions: 1 },
  });
});

test("a renewal keeps the spec's fields the election does not know", async () => {
  const { api, patches } = fakeApi({
    metadata: { name: 'l', namespace: 'kube-system', resourceVersion: '3' },
    spec: {
      holderIdentity: 'a',
      leaseDurationSeconds: 10,
      leaseTransitions: 4,
      strategy: 'OldestEmulationVersion',
    },
  });
  const options = candidateA(() => 5_000);
  expect(await holdLease(api, options)).toBe(true);
  expect(patches[0]?.[1]).toMatchObject({
    value: { holderIdentity: 'a', leaseTransitions: 4, strategy: 'OldestEmulationVersion' },
  });
});
