// The sandbox's live view: a table of the pools (range, used / capacity, %) and the latest plugin calls.

import type { ApiServer } from '../apiserver/server.ts';
import { normalise, parseCidr } from '../ip/cidr.ts';
import { makeRange, rangeCapacity } from '../ip/range.ts';

export type SandboxEvent = {
  readonly at: Date;
  readonly node: string;
  readonly verb: 'ADD' | 'DEL';
  readonly pod: string;
  readonly network: string;
  readonly outcome: string;
};

const pad = (text: string, width: number): string =>
  text.length >= width ? text.slice(0, width) : text + ' '.repeat(width - text.length);

export function renderView(server: ApiServer, events: readonly SandboxEvent[], pods: number): string {
  const lines = [
    `whereabouts-ts sandbox — ${pods} pods running — Ctrl-C to stop`,
    '',
    `${pad('POOL', 28)}${pad('RANGE', 24)}${pad('USED/SIZE', 16)}%`,
  ];
  for (const object of server.objects('ippools', 'whereabouts.cni.cncf.io').values()) {
    const { metadata, spec } = object as {
      metadata: { name: string };
      spec: { range: string; allocations: object };
    };
    const cidr = parseCidr(spec.range);
    const capacity = cidr === undefined ? 0n : rangeCapacity(makeRange(normalise(cidr), []));
    const used = Object.keys(spec.allocations).length;
    const percent = capacity === 0n ? 0 : (used * 100) / Number(capacity);
    const shown = capacity < 1_000_000_000n ? String(capacity) : Number(capacity).toExponential(1);
    const percentText = percent < 0.01 && used > 0 ? '<0.01' : percent.toFixed(percent < 1 ? 2 : 0);
    lines.push(`${pad(metadata.name, 28)}${pad(spec.range, 24)}${pad(`${used}/${shown}`, 16)}${percentText}`);
  }
  lines.push('', 'RECENT');
  for (const e of events.slice(-12)) {
    lines.push(
      `${e.at.toISOString().slice(11, 19)} ${pad(e.node, 8)} ${pad(e.verb, 4)} ${pad(e.pod, 9)} ${pad(e.network, 8)} ${e.outcome}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
