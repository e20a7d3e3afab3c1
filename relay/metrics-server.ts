/**
 * The relay's Prometheus endpoint (`metrics = "host:port"`, docs/operator-guide.md §Metrics): GET /metrics answers
 * the registry's text after `beforeScrape` (which brings the link byte counters up to date); every other path is a
 * bare 404. And the one way the relay closes its HTTP servers: stop listening, drop idle and open connections.
 */
import { createServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { listenOn } from '../net/listen.js';
import { parseHostPort } from './config.js';
import type { RelayMetrics } from './metrics.js';

export async function startMetricsServer(
  address: string,
  metrics: Pick<RelayMetrics, 'text' | 'contentType'>,
  beforeScrape: () => void,
): Promise<{ server: Server; port: number }> {
  const { host, port } = parseHostPort(address, 'metrics');
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    beforeScrape();
    metrics.text().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await listenOn(server, host, port, 'metrics');
  const a = server.address();
  return { server, port: typeof a === 'object' && a ? a.port : port };
}

/** Closes a server and every connection it holds; resolves once it stopped listening. */
export function closeServer(s: Server | HttpsServer | null): Promise<void> {
  if (!s) return Promise.resolve();
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections?.();
  });
}
