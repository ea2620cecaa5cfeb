// Which element of a pod's `k8s.v1.cni.cncf.io/networks` annotation an attachment is, and the IPAMClaim it
// names (`ipam-claim-reference`, multi-network spec v1.3 IPAM extensions). The plugin is not told the NAD it
// runs for, only the interface: Multus names the interface of element i after its `interface` when given,
// else `net<i+1>` — so the element is found the way Multus named it, by CNI_IFNAME. The claim's own
// `spec.network` must then be this config's network `name` (what kubevirt-ipam-controller and OVN-Kubernetes
// write there), so one network's claim is never taken for another's (the upstream bug). Decoded once, here.

import { isObject } from '../config/json.ts';

/** One network-selection element, as far as finding a claim needs it. */
export type SelectionElement = {
  readonly name: string;
  readonly namespace?: string;
  readonly interface?: string;
  readonly ipamClaimReference?: string;
};

/** The elements of the annotation: a JSON list, or Multus' short form `[ns/]name[@interface], …`. */
export function selectionElements(annotation: string): SelectionElement[] | undefined {
  const text = annotation.trim();
  if (text === '') return [];
  if (text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!Array.isArray(parsed)) return undefined;
    const elements: SelectionElement[] = [];
    for (const item of parsed) {
      if (!isObject(item) || typeof item.name !== 'string') return undefined;
      const { namespace, interface: iface, 'ipam-claim-reference': claim } = item;
      elements.push({
        name: item.name,
        ...(typeof namespace === 'string' ? { namespace } : {}),
        ...(typeof iface === 'string' ? { interface: iface } : {}),
        ...(typeof claim === 'string' ? { ipamClaimReference: claim } : {}),
      });
    }
    return elements;
  }
  const elements: SelectionElement[] = [];
  for (const part of text.split(',')) {
    const match = /^(?:([a-z0-9][-a-z0-9.]*)\/)?([a-z0-9][-a-z0-9.]*)(?:@([^@\s]+))?$/.exec(part.trim());
    if (match === null) return undefined;
    const [, namespace, name = '', iface] = match;
    elements.push({
      name,
      ...(namespace === undefined ? {} : { namespace }),
      ...(iface === undefined ? {} : { interface: iface }),
    });
  }
  return elements;
}

/** The element Multus made the interface `ifName` for, if any. */
export function elementFor(
  elements: readonly SelectionElement[],
  ifName: string,
): SelectionElement | undefined {
  const named = elements.find((e) => e.interface === ifName);
  if (named !== undefined) return named;
  return elements.find((e, i) => e.interface === undefined && `net${i + 1}` === ifName);
}
