// A recording proxy in front of a real kube-apiserver: components talk TLS to it (a certificate of its own,
// whose CA their kubeconfigs carry) and it forwards every request unchanged, bearer token included, so the
// real server authenticates and authorizes each one. It records each request as the RBAC authorizer sees it
// (verb, group, resource, namespace, name), by whose token it carried, every request the server refused
// with 403, and (to explain a failure) every other error answer.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Call } from './rbac.ts';

/**
 * The authorizer's attributes of a resource request, as kube-apiserver's RequestInfoFactory derives them
 * from the method and the URL; undefined for a non-resource request (/version, /openapi, discovery).
 */
export function callOf(method: string, url: string): Call | undefined {
  const { pathname, searchParams } = new URL(url, 'https://api');
  let parts = pathname.split('/').filter((p) => p !== '');
  let group: string;
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    parts = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] ?? '';
    parts = parts.slice(3);
  } else return undefined;
  let watch = false;
  if (parts[0] === 'watch') {
    // The old /watch/ paths.
    watch = true;
    parts = parts.slice(1);
  }
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1];
    // /namespaces/<name> is the namespace itself; anything deeper is a resource in it.
    if (parts.length > 2) parts = parts.slice(2);
  }
  const [resource = '', pathName, subresource] = parts;
  let name = pathName;
  const collection = name === undefined;
  let verb: string;
  switch (method.toUpperCase()) {
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = collection ? 'deletecollection' : 'delete';
      break;
    default:
      verb = collection ? 'list' : 'get';
  }
  if (verb === 'list' && ['true', '1'].includes(searchParams.get('watch') ?? '')) watch = true;
  if (watch) verb = 'watch';
  // A list or watch selecting one object by metadata.name is authorized as a request for that name.
  if (collection && (verb === 'list' || verb === 'watch'))
    name = /(?:^|,)metadata\.name==?([^,]+)/.exec(searchParams.get('fieldSelector') ?? '')?.[1];
  return {
    verb,
    group,
    resource: subresource === undefined ? resource : `${resource}/${subresource}`,
    namespace,
    name,
  };
}

export type Recorder = {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** The CA (here: the self-signed certificate) of `url`, PEM. */
  readonly ca: string;
  /** The resource requests made with each identity's token. */
  readonly calls: Map<string, Call[]>;
  /** The requests the server answered 403, by identity: method, path and the server's message. */
  readonly refused: Map<string, string[]>;
  /** Every request the server answered with an error (404 and 409 included), by identity, alike. */
  readonly errors: Map<string, string[]>;
  close(): Promise<void>;
};

/** Hop-by-hop headers, which a proxy does not pass on. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const endToEnd = (headers: IncomingMessage['headers']) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name)));

/**
 * Starts a proxy to `upstream` (whose serving certificate `upstreamCa` signed) that knows each identity by
 * its bearer token. `dir` receives its key and certificate.
 */
export async function startRecorder(options: {
  readonly upstream: string;
  readonly upstreamCa: string;
  /** bearer token → identity */
  readonly identities: ReadonlyMap<string, string>;
  readonly dir: string;
}): Promise<Recorder> {
  const key = join(options.dir, 'recorder.key');
  const cert = join(options.dir, 'recorder.crt');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=whereabouts-ts recorder'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1'],
    ],
    { stdio: 'pipe' },
  );
  const ca = readFileSync(cert, 'utf8');
  const identities = [...new Set(options.identities.values())];
  const calls = new Map<string, Call[]>(identities.map((i) => [i, []]));
  const refused = new Map<string, string[]>(identities.map((i) => [i, []]));
  const errors = new Map<string, string[]>(identities.map((i) => [i, []]));
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true, ca: options.upstreamCa });

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const identity = token === undefined ? undefined : options.identities.get(token);
    const call = callOf(method, path);
    if (identity !== undefined && call !== undefined) calls.get(identity)?.push(call);
    const out = request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        path,
        method,
        agent,
        headers: { ...endToEnd(req.headers), host: upstream.host },
      },
      (answer) => {
        const status = answer.statusCode ?? 502;
        if (status >= 400 && identity !== undefined) {
          let body = '';
          answer.on('data', (chunk: Buffer) => (body += chunk.toString()));
          answer.on('end', () => {
            let message = body;
            try {
              message = (JSON.parse(body) as { message?: string }).message ?? body;
            } catch {
              // not a Status
            }
            const line = `${method} ${path}: ${status} ${message}`;
            errors.get(identity)?.push(line);
            if (status === 403) refused.get(identity)?.push(line);
          });
        }
        res.writeHead(status, endToEnd(answer.headers));
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    // A client that goes away (a watch it ends, a process that stops) ends the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
    });
    req.pipe(out);
  };

  const server = createServer({ key: readFileSync(key), cert: ca }, forward);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    ca,
    calls,
    refused,
    errors,
    close: async () => {
      const closed = new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}
