// Checks NetworkAttachmentDefinitions before they are used: every Whereabouts IPAM config in them, through
// the same loader the plugin runs, so an operator sees the plugin's own error (code and message) at review
// time instead of at the next pod's ADD. For a migration from Whereabouts above all: whereabouts-ts refuses
// unknown keys and bad values that Whereabouts let through.

import { loadConfig } from './load.ts';

export type NadCheck =
  | { readonly nad: string; readonly plugin: string; readonly ok: true; readonly warnings: readonly string[] }
  | {
      readonly nad: string;
      readonly plugin: string;
      readonly ok: false;
      readonly code: number;
      readonly error: string;
    };

type Nad = { metadata?: { namespace?: string; name?: string }; spec?: { config?: unknown } };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The NADs in a parsed document: one NAD, a `List`, or an array of them. */
export function nadsIn(document: unknown): Nad[] {
  if (Array.isArray(document)) return document.flatMap(nadsIn);
  if (!isObject(document)) return [];
  if (Array.isArray(document.items)) return document.items.flatMap(nadsIn);
  return document.kind === 'NetworkAttachmentDefinition' ? [document] : [];
}

/**
 * The plugin configs of a parsed `spec.config` that use Whereabouts: the config itself, or each plugin of a
 * conflist (with the list's `cniVersion` and `name`, as libcni passes them).
 */
export function whereaboutsPlugins(config: unknown): Record<string, unknown>[] {
  if (!isObject(config)) return [];
  const plugins: Record<string, unknown>[] = Array.isArray(config.plugins)
    ? config.plugins.filter(isObject).map((p) => ({ ...p, cniVersion: config.cniVersion, name: config.name }))
    : [config];
  return plugins.filter((p) => isObject(p.ipam) && p.ipam.type === 'whereabouts');
}

/** Each Whereabouts config in the NAD, loaded as the plugin loads it. */
export function checkNad(nad: Nad, flatFilePaths: readonly string[]): NadCheck[] {
  const id = `${nad.metadata?.namespace ?? 'default'}/${nad.metadata?.name ?? '?'}`;
  let config: unknown;
  try {
    config = typeof nad.spec?.config === 'string' ? JSON.parse(nad.spec.config) : undefined;
  } catch {
    return [{ nad: id, plugin: '', ok: false, code: 6, error: 'spec.config is not valid JSON' }];
  }
  if (!isObject(config))
    return [{ nad: id, plugin: '', ok: false, code: 6, error: 'spec.config is not a JSON object' }];
  return whereaboutsPlugins(config).map((p) => {
    const plugin = typeof p.type === 'string' ? p.type : '?';
    const loaded = loadConfig({ stdin: JSON.stringify(p), cniArgs: undefined, flatFilePaths });
    if (!loaded.ok)
      return { nad: id, plugin, ok: false, code: loaded.error.code, error: loaded.error.details };
    return { nad: id, plugin, ok: true, warnings: loaded.value.warnings };
  });
}
