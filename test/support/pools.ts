// Reading what the embedded API server stores, to assert the invariants on it.
import type { ApiServer } from '../../src/apiserver/server.ts';

type Entry = { id: string; podref: string; ifname?: string };

export const poolsOf = (
  server: ApiServer,
): Map<string, { range: string; allocations: Record<string, Entry> }> =>
  new Map(
    [...server.objects('ippools', 'whereabouts.cni.cncf.io')].map(([key, o]) => [
      key.split('/')[1] as string,
      (o as { spec: { range: string; allocations: Record<string, Entry> } }).spec,
    ]),
  );

export const reservationsOf = (
  server: ApiServer,
): Map<string, { podref: string; ifname?: string; containerid?: string }> =>
  new Map(
    [...server.objects('overlappingrangeipreservations', 'whereabouts.cni.cncf.io')].map(([key, o]) => [
      key.split('/')[1] as string,
      (o as { spec: { podref: string; ifname?: string; containerid?: string } }).spec,
    ]),
  );
