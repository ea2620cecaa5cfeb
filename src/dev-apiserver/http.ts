// The wire side of a request: its body (bounded by the API server's request limit, parsed as JSON) and
// content type in, JSON answers and the plain-text 404 of an unknown path out.

import type { IncomingMessage, ServerResponse } from 'node:http';
import * as status from './status.ts';
import { Failure, raise } from './status.ts';

/** The API server's request body limit. */
const maxRequestBytes = 3 * 1024 * 1024;

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxRequestBytes) {
        reject(new Failure(status.tooLarge(`Request entity too large: limit is ${maxRequestBytes}`)));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });

/** The request's JSON body; undefined when it has none, 400 when it is not JSON. */
export async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const raw = await readBody(req);
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return raise(status.badRequest('the request body is not valid JSON'));
  }
}

/** The media type of the request body, without parameters. */
export const contentTypeOf = (req: IncomingMessage): string =>
  (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';

export function writeJson(res: ServerResponse, code: number, body: unknown, retryAfter?: number): void {
  const payload = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(payload),
    ...(retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) }),
  });
  res.end(payload);
}

/** As kube-apiserver answers a group or resource it does not serve: no Status, plain text. */
export function writeNotFoundPage(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 19 });
  res.end('404 page not found\n');
}
