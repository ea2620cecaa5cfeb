// One request, from arrival to answer, in kube-apiserver's order: authentication (401), routing (the
// plain 404, discovery documents, 405), the fault switches, authorization (403), then the verb's handler
// under verbs/. Handlers throw a `Failure` to answer with an error; it is turned into the response here,
// in one place.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from './authentication.ts';
import { RawDocument } from './discovery.ts';
import type { FaultInjector } from './faults.ts';
import { contentTypeOf, jsonBody, writeJson, writeNotFoundPage } from './http.ts';
import { managerOf, type Writer } from './managed-fields.ts';
import type { ResourceDef } from './resources.ts';
import { isWrite, route, verbOf, type RequestInfo } from './router.ts';
import { countAnswer, type Stats } from './stats.ts';
import * as status from './status.ts';
import { Failure } from './status.ts';
import type { Storage } from './storage.ts';
import { create } from './verbs/create.ts';
import { remove } from './verbs/delete.ts';
import { get } from './verbs/get.ts';
import { list } from './verbs/list.ts';
import { patch } from './verbs/patch.ts';
import { update } from './verbs/update.ts';
import { watch } from './verbs/watch.ts';
import type { WatchHub } from './watch-hub.ts';

export type Backend = {
  readonly defs: readonly ResourceDef[];
  readonly storage: Storage;
  readonly hub: WatchHub;
  readonly injector: FaultInjector;
  readonly stats: Stats;
  readonly authenticator: Authenticator;
  /** When it returns false the request is answered 403 Forbidden, as RBAC would. */
  readonly authorize: ((request: RequestInfo) => boolean) | undefined;
  readonly watchTimeoutSeconds: number;
};

/** The answer of a verb: a status code and a body; undefined for a watch, which streams its own. */
type Answer = { readonly code: number; readonly body: unknown } | undefined;

function send(backend: Backend, res: ServerResponse, code: number, body: unknown, retryAfter?: number): void {
  countAnswer(backend.stats, code);
  writeJson(res, code, body, retryAfter);
}

async function dispatch(
  backend: Backend,
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  url: URL,
): Promise<Answer> {
  const { storage } = backend;
  const body = await jsonBody(req);
  const { def, namespace } = info;
  const name = info.name as string;
  const writer: Writer = {
    manager: managerOf(url.searchParams.get('fieldManager'), req.headers['user-agent']),
    subresource: info.subresource,
  };
  switch (info.verb) {
    case 'get':
      return { code: 200, body: get(storage, def, namespace, name) };
    case 'list':
      return { code: 200, body: list(storage, def, namespace, url) };
    case 'watch':
      watch(storage, backend.hub, backend.watchTimeoutSeconds, def, namespace, url, res);
      return undefined;
    case 'create':
      return { code: 201, body: create(storage, def, def.namespaced ? namespace : undefined, body, writer) };
    case 'update':
      return { code: 200, body: update(storage, def, namespace, name, body, writer) };
    case 'patch':
      return { code: 200, body: patch(storage, def, namespace, name, contentTypeOf(req), body, writer) };
    case 'delete':
      return {
        code: 200,
        body: remove(storage, def, namespace, name, body, url.searchParams.get('gracePeriodSeconds')),
      };
  }
}

/** A request to a resource, once routed: faults, authorization, the verb, and a lost answer. */
async function serve(
  backend: Backend,
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  url: URL,
): Promise<void> {
  const { injector } = backend;
  await injector.delay(info);
  const fault = injector.intercept(info);
  if (fault === 'drop') {
    req.socket.destroy();
    return;
  }
  if (fault !== undefined) {
    send(backend, res, fault.status.code, fault.status, fault.retryAfter);
    return;
  }
  if (backend.authorize !== undefined && !backend.authorize(info)) {
    send(backend, res, 403, status.forbidden(info.def, info.name ?? '', info.verb, info.namespace).status);
    return;
  }
  const answer = await dispatch(backend, req, res, info, url);
  if (answer === undefined) return;
  if (injector.losesResponse(info)) {
    req.socket.destroy();
    return;
  }
  send(backend, res, answer.code, answer.body);
}

async function handle(backend: Backend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { stats } = backend;
  stats.requests++;
  const url = new URL(req.url ?? '/', 'http://localhost');
  const authentication = backend.authenticator.authenticate(req);
  if (!authentication.ok) {
    send(backend, res, 401, status.unauthorized().status);
    return;
  }
  const target = route(backend.defs, url);
  if (target === undefined) {
    stats.byStatus[404] = (stats.byStatus[404] ?? 0) + 1;
    writeNotFoundPage(res);
    return;
  }
  if (target.kind === 'discovery') {
    if (target.body instanceof RawDocument) {
      res.writeHead(200, {
        'Content-Type': target.body.contentType,
        'Content-Length': target.body.body.length,
      });
      res.end(target.body.body);
    } else send(backend, res, 200, target.body);
    return;
  }
  const { def, namespace, name, subresource } = target;
  const verb = verbOf(req.method ?? 'GET', name, url);
  if (verb === undefined) {
    send(backend, res, 405, status.methodNotAllowed().status);
    return;
  }
  stats.byVerb[verb] = (stats.byVerb[verb] ?? 0) + 1;
  if (isWrite(verb)) stats.writes++;
  const { user } = authentication;
  const info: RequestInfo = {
    verb,
    def,
    namespace,
    name,
    ...(subresource === undefined ? {} : { subresource }),
    ...(user === undefined ? {} : { user }),
  };
  await serve(backend, req, res, info, url);
}

/** The server's request listener: every request handled, every error thrown on the way answered. */
export function requestListener(backend: Backend): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(backend, req, res).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const error =
        e instanceof Failure ? e.error : status.internalError(e instanceof Error ? e.message : String(e));
      send(backend, res, error.status.code, error.status, error.retryAfter);
    });
  };
}
