// Kubernetes' name rules (apimachinery's validation), for names that end up in objects the API server
// stores: a pod reference, a `network_name` that prefixes object names. The length is checked before the
// pattern, so text of any length costs nothing.

const label = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const labelPattern = new RegExp(`^${label}$`);
const subdomainPattern = new RegExp(`^${label}(\\.${label})*$`);

/** A DNS-1123 label (a namespace's name): lower-case letters, digits and '-', at most 63 characters. */
export const isDns1123Label = (name: string): boolean => name.length <= 63 && labelPattern.test(name);

/**
 * A DNS-1123 subdomain (most objects' names, a pod's among them): DNS-1123 labels joined by '.', at most
 * 253 characters.
 */
export const isDns1123Subdomain = (name: string): boolean =>
  name.length <= 253 && subdomainPattern.test(name);
