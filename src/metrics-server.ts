// The HTTP endpoint of the long-running components: /metrics for Prometheus, /healthz (the process
// answers) and /readyz (it has what it needs to do its work).

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export type MetricsServer = { readonly url: string; close(): Promise<void> };

/** `notReady`: why the component is not ready yet, or undefined when it is. */
export async function startMetricsServer(
  registry: Registry,
  port: number,
  notReady: () => string | undefined,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      });
    } else if (req.url === '/healthz') {
      res.end('ok');
    } else if (req.url === '/readyz') {
      const reason = notReady();
      res.writeHead(reason === undefined ? 200 : 503);
      res.end(reason ?? 'ready');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, resolve));
  const bound = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
