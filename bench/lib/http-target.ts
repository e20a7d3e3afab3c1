/**
 * The web server benchmarks download from, on 127.0.0.1: `/1` is one byte, `/bulk` is `bulkBytes` of random data
 * held in memory (so the server costs next to nothing), with Content-Length and no keep-alive.
 */
import { randomFillSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export interface HttpTarget {
  readonly port: number;
  readonly bulkBytes: number;
  url(path: '/1' | '/bulk', port?: number): string;
  close(): Promise<void>;
}

export async function startHttpTarget(bulkBytes: number): Promise<HttpTarget> {
  const bulk = randomFillSync(Buffer.allocUnsafe(bulkBytes));
  const one = Buffer.from('x');
  const server: Server = createServer((req, res) => {
    const body = req.url === '/bulk' ? bulk : req.url === '/1' ? one : null;
    if (!body) return void res.writeHead(404, { 'Content-Length': 0, Connection: 'close' }).end();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, Connection: 'close' });
    res.end(body);
  });
  server.keepAliveTimeout = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    bulkBytes,
    url: (path, p = port) => `http://127.0.0.1:${p}${path}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
