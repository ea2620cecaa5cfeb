// What a request asks for, from its method and URL alone, as kube-apiserver's request info resolver reads
// it: a discovery document, or a verb on one served resource (kind, namespace, name, status subresource).
// Anything else is no route, which the server answers with its plain-text 404.

import { discoveryDocument } from './discovery.ts';
import type { ResourceDef } from './resources.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export type RequestInfo = {
  readonly verb: Verb;
  readonly def: ResourceDef;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  /** `status` for a request to …/<name>/status (authorized as `<plural>/status`, as kube-apiserver does). */
  readonly subresource?: 'status';
  /** Who asked: the user of the bearer token, when the server knows `users`. */
  readonly user?: string;
};

export type Route =
  | {
      readonly kind: 'resource';
      readonly def: ResourceDef;
      readonly namespace: string | undefined;
      readonly name: string | undefined;
      /** `status` for …/<name>/status of a kind with a status subresource. */
      readonly subresource?: 'status';
    }
  | { readonly kind: 'discovery'; readonly body: unknown };

export const isWrite = (verb: Verb): boolean =>
  verb === 'create' || verb === 'update' || verb === 'patch' || verb === 'delete';

export function route(defs: readonly ResourceDef[], url: URL): Route | undefined {
  const parts = url.pathname.split('/').filter((p) => p !== '');
  const document = discoveryDocument(defs, url.pathname);
  if (document !== undefined) return { kind: 'discovery', body: document };
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) {
    group = '';
    version = parts[1] as string;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1] as string;
    version = parts[2] as string;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  const served = defs.filter((d) => d.group === group && d.version === version);
  if (rest.length === 0) return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const def = served.find((d) => d.plural === rest[0]);
  const subresource = rest[2];
  if (def === undefined || (namespace !== undefined && !def.namespaced)) return undefined;
  if (rest.length > 3 || (subresource !== undefined && (subresource !== 'status' || !def.statusSubresource)))
    return undefined;
  const name = rest[1];
  if (name !== undefined && def.namespaced && namespace === undefined) return undefined;
  return { kind: 'resource', def, namespace, name, ...(subresource === 'status' ? { subresource } : {}) };
}

/** The verb of a request to a resource route; undefined for a method the route does not allow (405). */
export function verbOf(method: string, name: string | undefined, url: URL): Verb | undefined {
  const watching = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
  switch (method) {
    case 'GET':
      return name !== undefined ? 'get' : watching ? 'watch' : 'list';
    case 'POST':
      return name === undefined ? 'create' : undefined;
    case 'PUT':
      return name !== undefined ? 'update' : undefined;
    case 'PATCH':
      return name !== undefined ? 'patch' : undefined;
    case 'DELETE':
      return name !== undefined ? 'delete' : undefined;
    default:
      return undefined;
  }
}
