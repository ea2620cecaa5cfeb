// KubeApi over node:http / node:https with one keep-alive agent and a timeout on every request. Used by the
// plugin: it loads in a few milliseconds, where the full client takes a few hundred on every pod.

import type { Agent as HttpAgent } from 'node:http';
import {
  networkCode,
  pathOf,
  statusFailure,
  type ApiOutcome,
  type KubeApi,
  type ListOptions,
  type ListPage,
  type Obj,
  type ObjectRef,
} from './api.ts';
import { redactServer, type Credentials } from './kubeconfig.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

const headerText = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value;

type Client = { readonly request: typeof import('node:http').request; readonly agent: HttpAgent };

export function httpApi(credentials: Credentials, requestTimeoutMs = 10_000): KubeApi {
  // Userinfo in the URL is never sent (only host and port are used below) and never shown.
  const url = new URL(credentials.server);
  const secure = url.protocol === 'https:';
  // node:https drags in TLS and crypto: loaded only for an https server, on the first request.
  let client: Promise<Client> | undefined;
  const connect = async (): Promise<Client> => {
    if (!secure) {
      const http = await import('node:http');
      return { request: http.request, agent: new http.Agent({ keepAlive: true }) };
    }
    const https = await import('node:https');
    const agent = new https.Agent({
      keepAlive: true,
      ...(credentials.ca === undefined ? {} : { ca: credentials.ca }),
      ...(credentials.cert === undefined ? {} : { cert: credentials.cert }),
      ...(credentials.key === undefined ? {} : { key: credentials.key }),
      ...(credentials.tlsServerName === undefined ? {} : { servername: credentials.tlsServerName }),
      rejectUnauthorized: !credentials.insecure,
    });
    return { request: https.request, agent };
  };
  const prefix = url.pathname.replace(/\/$/, '');

  async function send<T>(
    method: Method,
    path: string,
    body: unknown,
    contentType: string,
    decode: (body: unknown) => T,
  ): Promise<ApiOutcome<T>> {
    client ??= connect();
    const { request: open, agent } = await client;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve) => {
      const request = open(
        {
          agent,
          protocol: url.protocol,
          hostname: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port === '' ? undefined : url.port,
          method,
          path: `${prefix}${path}`,
          timeout: requestTimeoutMs,
          headers: {
            Accept: 'application/json',
            'User-Agent': 'whereabouts-ts',
            ...(credentials.token === undefined ? {} : { Authorization: `Bearer ${credentials.token}` }),
            ...(payload === undefined
              ? {}
              : { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) }),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            const code = response.statusCode ?? 0;
            resolve(
              code >= 200 && code < 300
                ? { ok: true, value: decode(parsed) }
                : {
                    ok: false,
                    failure: statusFailure(code, parsed, headerText(response.headers['retry-after'])),
                  },
            );
          });
          response.on('error', (e) => {
            resolve({ ok: false, failure: { kind: 'network', code: networkCode(e) } });
          });
        },
      );
      request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      request.on('error', (e) => {
        resolve({ ok: false, failure: { kind: 'network', code: networkCode(e) } });
      });
      request.end(payload);
    });
  }

  const object = (body: unknown): Obj => (typeof body === 'object' && body !== null ? (body as Obj) : {});

  return {
    server: redactServer(credentials.server),
    namespace: credentials.namespace,
    get: (ref) => send('GET', pathOf(ref), undefined, '', object),
    create: (ref, body) => send('POST', pathOf(ref), body, 'application/json', object),
    jsonPatch: (ref, operations) =>
      send('PATCH', pathOf(ref), operations, 'application/json-patch+json', object),
    delete: (ref, resourceVersion) =>
      send(
        'DELETE',
        pathOf(ref),
        resourceVersion === undefined ? undefined : { preconditions: { resourceVersion } },
        'application/json',
        () => undefined,
      ),
    warm: async () => {
      await send('GET', '/version', undefined, '', () => undefined);
    },
    list: (ref: ObjectRef, options: ListOptions = {}) => {
      const query = new URLSearchParams();
      if (options.limit !== undefined) query.set('limit', String(options.limit));
      if (options.continue !== undefined) query.set('continue', options.continue);
      if (options.fieldSelector !== undefined) query.set('fieldSelector', options.fieldSelector);
      const suffix = query.size === 0 ? '' : `?${query.toString()}`;
      return send('GET', `${pathOf(ref)}${suffix}`, undefined, '', (body): ListPage => {
        const list = object(body) as { items?: Obj[]; metadata?: { continue?: string } };
        const next = list.metadata?.continue;
        return { items: list.items ?? [], ...(next === undefined || next === '' ? {} : { continue: next }) };
      });
    },
  };
}
