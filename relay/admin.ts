/**
 * The relay's admin server (docs/operator-guide.md §Status page): the status page and its status.json on a local
 * port. Off by default; on a loopback address it needs no token; on any other address it refuses to start without
 * `admin_token`, and every request must carry it (?token=… or the Authorization: Bearer header).
 */
import { createServer, type Server } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../protocol/errors.js';
import { parseHostPort } from './config.js';
import { STATUS_PAGE } from './status-page.js';
import { listenOn } from '../net/listen.js';

export interface StatusSource {
  status(): Promise<unknown>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export async function startAdminServer(address: string, token: string, source: StatusSource): Promise<{ server: Server; port: number }> {
  const { host, port } = parseHostPort(address, 'admin');
  if (!isLoopback(host) && !token) throw new ConfigError('admin: an admin address that is not loopback needs admin_token');
  const authorized = (url: URL, header: string | undefined): boolean => {
    if (!token) return true;
    const given = url.searchParams.get('token') ?? (header?.startsWith('Bearer ') ? header.slice(7) : '');
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (!authorized(url, req.headers.authorization)) {
      res.writeHead(401, { 'Content-Type': 'text/plain' }).end('unauthorized\n');
      return;
    }
    const headers = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
    };
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8' }).end(STATUS_PAGE);
    } else if (url.pathname === '/status.json') {
      source.status().then(
        (s) => res.writeHead(200, { ...headers, 'Content-Type': 'application/json' }).end(JSON.stringify(s)),
        () => res.writeHead(500).end(),
      );
    } else res.writeHead(404).end();
  });
  await listenOn(server, host, port, 'admin');
  const a = server.address();
  return { server, port: typeof a === 'object' && a ? a.port : port };
}
