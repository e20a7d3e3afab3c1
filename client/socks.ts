/**
 * A SOCKS5 listener (RFC 1928 CONNECT with IPv4, IPv6 and domain names; RFC 1929 username/password) that carries
 * each connection over an Allium stream. Domain names are resolved by the exit, never locally. Credentials are not
 * checked: they only choose stream isolation, so connections with different credentials (or through different
 * listener ports) never share a circuit. An HTTP request sent to the port gets a 501 page that explains it is a SOCKS
 * proxy and how to configure one. Node only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { AbortedError, isAlliumError, throwIfAborted } from '../protocol/errors.js';
import type { AbortOptions } from '../net/abort.js';
import { EndReason } from '../protocol/stream-messages.js';
import { pipeSocket } from '../net/pipe-socket.js';
import { listenOn } from '../net/listen.js';
import { StreamError, type AlliumClient } from './client.js';
import { SocksHandshake, SocksReply, socksReply, type SocksCredentials } from './socks-handshake.js';

export { SocksReply };

/** Maps an exit's END reason to the SOCKS reply a client application expects. */
export function socksReplyFor(reason: EndReason): number {
  switch (reason) {
    case EndReason.EXIT_POLICY:
      return SocksReply.NOT_ALLOWED;
    case EndReason.CONNECT_REFUSED:
      return SocksReply.CONNECTION_REFUSED;
    case EndReason.RESOLVE_FAILED:
    case EndReason.HOST_UNREACHABLE:
      return SocksReply.HOST_UNREACHABLE;
    case EndReason.NET_UNREACHABLE:
      return SocksReply.NETWORK_UNREACHABLE;
    case EndReason.TIMEOUT:
      return SocksReply.TTL_EXPIRED;
    default:
      return SocksReply.GENERAL_FAILURE;
  }
}

const HANDSHAKE_TIMEOUT_MS = 30_000;

/**
 * The isolation key of a SOCKS5 connection (specs/streams.md §6.2): the listener port and the credentials as
 * received, each length-prefixed, so no two different (user, password) pairs share a key — joined with a separator,
 * user "a:b" with password "c" would equal user "a" with password "b:c". `credentials` null: no authentication.
 */
export function socksIsolationKey(listenerPort: number, credentials: SocksCredentials | null): string {
  if (!credentials) return `socks5:${listenerPort}:none`;
  const { user, password } = credentials;
  if (user.length > 255 || password.length > 255) throw new RangeError('RFC 1929 credentials are at most 255 bytes each');
  const pair = Buffer.concat([Buffer.of(user.length), user, Buffer.of(password.length), password]);
  return `socks5:${listenerPort}:${pair.toString('hex')}`;
}

const HTTP_PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>This is a SOCKS proxy, not an HTTP proxy</title></head>
<body><h1>This is an Allium SOCKS5 proxy, not an HTTP proxy</h1>
<p>Something sent an HTTP request to Allium's SOCKS port. Configure the application to use a <b>SOCKS5</b> proxy at
this address (with remote name resolution: "SOCKS5 with hostname", or socks5h://), not an HTTP proxy. For example:</p>
<pre>curl --socks5-hostname HOST:PORT https://example.org/
curl -x socks5h://HOST:PORT https://example.org/</pre>
<p>In Firefox: Settings, Network Settings, Manual proxy configuration, SOCKS Host, SOCKS v5, and "Proxy DNS when
using SOCKS v5".</p>
</body></html>
`;

/** The answer to an HTTP request on the SOCKS port (as Tor gives one): 501, and a page that says what to do. */
const NOT_AN_HTTP_PROXY = Buffer.from(
  `HTTP/1.0 501 Allium is not an HTTP Proxy\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(HTTP_PAGE)}\r\nConnection: close\r\n\r\n${HTTP_PAGE}`,
);

/** The reply for a failed connect(). */
function failureReply(e: unknown): number {
  if (e instanceof StreamError) return socksReplyFor(e.reason);
  if (!isAlliumError(e)) return SocksReply.GENERAL_FAILURE;
  if (e.code === 'ERR_TIMEOUT') return SocksReply.TTL_EXPIRED;
  if (e.code === 'ERR_EXIT_POLICY') return SocksReply.NOT_ALLOWED;
  if (e.code === 'ERR_UNREACHABLE' || e.code === 'ERR_ADDRESS_FORMAT' || e.code === 'ERR_ADDRESS_CHECKSUM') return SocksReply.HOST_UNREACHABLE;
  return SocksReply.GENERAL_FAILURE;
}

/**
 * Runs one SOCKS5 connection: the handshake (client/socks-handshake.ts) over the socket, then a stream. Any
 * handshake the machine refuses (ERR_SOCKS, ERR_LIMIT), a stall past 30 s or a closed socket ends the connection.
 */
export function handleSocks(client: AlliumClient, socket: Socket, listenerPort: number): void {
  const hs = new SocksHandshake();
  const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
  const stop = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
  };
  const onData = (d: Buffer): void => {
    let actions;
    try {
      actions = hs.push(d);
    } catch {
      stop();
      socket.destroy();
      return;
    }
    for (const a of actions) {
      if (a.kind === 'write') socket.write(a.bytes);
      else if (a.kind === 'close') {
        stop();
        socket.end(a.bytes);
      } else if (a.kind === 'http') {
        // An application configured for an HTTP proxy, or a browser pointed at this port: say what this port is.
        stop();
        socket.end(NOT_AN_HTTP_PROXY);
      } else {
        socket.off('data', onData);
        socket.pause();
        void connect(a.host, a.port, a.credentials, a.early);
      }
    }
  };
  const connect = async (host: string, port: number, credentials: SocksCredentials | null, early: Uint8Array): Promise<void> => {
    let stream;
    try {
      stream = await client.connect(host, port, { isolation: socksIsolationKey(listenerPort, credentials) });
    } catch (e) {
      clearTimeout(timer);
      socket.end(socksReply(failureReply(e)));
      return;
    }
    clearTimeout(timer);
    if (socket.destroyed) {
      stream.end();
      return;
    }
    socket.write(socksReply(SocksReply.SUCCEEDED));
    pipeSocket(stream, socket);
    if (early.length) stream.write(early);
    socket.resume();
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
}

export interface SocksServerOptions extends AbortOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 9050; 0 picks a free port. */
  port?: number;
  /** The setting named in errors (default "socks"). */
  setting?: string;
}

/**
 * Listens for SOCKS5 on host:port (default 127.0.0.1:9050). A refused address is a SystemError naming `setting`
 * (default "socks"): `socks 127.0.0.1:9050: address already in use`. `signal` is the listener's life: aborted
 * before it listens, the call rejects with ERR_ABORTED; aborted later, it closes as close() does.
 */
export async function startSocksServer(
  client: AlliumClient,
  options: SocksServerOptions = {},
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  throwIfAborted(options.signal);
  const sockets = new Set<Socket>();
  let boundPort = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    void handleSocks(client, socket, boundPort);
  });
  await listenOn(server, options.host ?? '127.0.0.1', options.port ?? 9050, options.setting ?? 'socks');
  const a = server.address();
  boundPort = typeof a === 'object' && a ? a.port : 0;
  const { signal } = options;
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      signal?.removeEventListener('abort', onAbort);
      for (const s of sockets) s.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  const onAbort = (): void => void close();
  if (signal?.aborted) {
    await close();
    throw new AbortedError();
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  return { server, port: boundPort, close };
}
