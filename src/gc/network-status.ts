// Multus' `k8s.v1.cni.cncf.io/network-status` pod annotation: which addresses each interface of the pod got.

import { arrayAt, fieldOf, stringAt } from '../codecs/decode.ts';

export const networkStatusAnnotation = 'k8s.v1.cni.cncf.io/network-status';

/** Addresses per interface, the default network left out; undefined when the annotation is absent or unreadable. */
export function interfacesOf(annotation: string | undefined): Map<string, string[]> | undefined {
  if (annotation === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const interfaces = new Map<string, string[]>();
  for (const entry of parsed) {
    const [name, ips] = [stringAt(entry, 'interface'), arrayAt(entry, 'ips')];
    if (fieldOf(entry, 'default') === true || name === undefined || ips === undefined) continue;
    interfaces.set(
      name,
      ips.filter((ip): ip is string => typeof ip === 'string'),
    );
  }
  return interfaces;
}
