/** Who an address is for: the container (sandbox), its pod and the interface inside it. */
export type Owner = { readonly containerId: string; readonly podRef: string; readonly ifName: string };

/** An address held by an owner. The address is absolute, in the family of its range. */
export type Allocation = Owner & { readonly address: bigint };
