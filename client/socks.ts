/**
 * A SOCKS5 listener (RFC 1928 CONNECT with IPv4, IPv6 and domain names; RFC 1929 username/password) that carries
 * each connection over an Allium stream. Domain names are resolved by the exit, never locally. Credentials are not
 * checked: they only choose stream isolation, so connections with different credentials (or through different
 * listener ports) never share a circuit. An HTTP request sent to the port gets a 501 page that explains it is a SOCKS
 * proxy and how to configure one. Node only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { isAlliumError } from '../protocol/errors.js';
import { EndReason } from '../protocol/stream-messages.js';
import { pipeSocket } from '../net/pipe-socket.js';
import { listenOn } from '../net/listen.js';
import { StreamError, type AlliumClient } from './client.js';

export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

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

const MAX_HANDSHAKE_BYTES = 600;
const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Reads exactly what the SOCKS state machine needs from the socket, with a byte cap. */
class SocksReader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private total = 0;
  failed: Error | null = null;

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.once('close', () => this.fail(new Error('closed')));
  }

  private onData = (d: Buffer): void => {
    this.total += d.length;
    if (this.total > MAX_HANDSHAKE_BYTES) return this.fail(new Error('handshake too long'));
    this.buf = Buffer.concat([this.buf, d]);
    this.wake?.();
  };

  private fail(e: Error): void {
    this.failed = e;
    this.wake?.();
  }

  async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Stops reading for SOCKS and returns anything the client sent early (data after the request). */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    return this.buf;
  }
}

/**
 * The isolation key of a SOCKS5 connection (specs/streams.md §6.2): the listener port and the credentials as
 * received, each length-prefixed, so no two different (user, password) pairs share a key — joined with a separator,
 * user "a:b" with password "c" would equal user "a" with password "b:c". `credentials` null: no authentication.
 */
export function socksIsolationKey(listenerPort: number, credentials: { user: Uint8Array; password: Uint8Array } | null): string {
  if (!credentials) return `socks5:${listenerPort}:none`;
  const { user, password } = credentials;
  if (user.length > 255 || password.length > 255) throw new RangeError('RFC 1929 credentials are at most 255 bytes each');
  const pair = Buffer.concat([Buffer.of(user.length), user, Buffer.of(password.length), password]);
  return `socks5:${listenerPort}:${pair.toString('hex')}`;
}

/** The first two bytes of an HTTP request line: the start of a method (GET, POST, HEAD, CONNECT, PUT, …). */
function looksLikeHttp(a: number, b: number): boolean {
  const two = String.fromCharCode(a, b);
  return ['GE', 'PO', 'HE', 'CO', 'PU', 'DE', 'OP', 'PA', 'TR'].includes(two);
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

function reply(socket: Socket, code: number): void {
  socket.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
}

export async function handleSocks(client: AlliumClient, socket: Socket, listenerPort: number): Promise<void> {
  const r = new SocksReader(socket);
  const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
  try {
    const [ver, nmethods] = await r.take(2);
    if (ver !== 5) {
      // An application configured for an HTTP proxy, or a browser pointed at this port: say what this port is.
      if (looksLikeHttp(ver!, nmethods!)) {
        clearTimeout(timer);
        socket.end(NOT_AN_HTTP_PROXY);
        return;
      }
      throw new Error('not SOCKS5');
    }
    const methods = await r.take(nmethods!);
    let credentials: { user: Uint8Array; password: Uint8Array } | null = null;
    if (methods.includes(2)) {
      socket.write(Buffer.from([5, 2]));
      const [aver, ulen] = await r.take(2);
      if (aver !== 1) throw new Error('bad auth version');
      const user = Uint8Array.from(await r.take(ulen!));
      const [plen] = await r.take(1);
      credentials = { user, password: Uint8Array.from(await r.take(plen!)) };
      socket.write(Buffer.from([1, 0]));
    } else if (methods.includes(0)) {
      socket.write(Buffer.from([5, 0]));
    } else {
      socket.end(Buffer.from([5, 0xff]));
      return;
    }
    const [v, cmd, , atyp] = await r.take(4);
    if (v !== 5) throw new Error('bad request version');
    let host: string;
    if (atyp === 1) host = [...(await r.take(4))].join('.');
    else if (atyp === 3) {
      const [len] = await r.take(1);
      host = (await r.take(len!)).toString('utf8');
    } else if (atyp === 4) {
      const b = await r.take(16);
      const parts: string[] = [];
      for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
      host = parts.join(':');
    } else {
      reply(socket, SocksReply.ADDRESS_TYPE_NOT_SUPPORTED);
      socket.end();
      return;
    }
    const port = (await r.take(2)).readUInt16BE(0);
    if (cmd !== 1) {
      reply(socket, SocksReply.COMMAND_NOT_SUPPORTED);
      socket.end();
      return;
    }
    if (port === 0 || host.length === 0) {
      reply(socket, SocksReply.GENERAL_FAILURE);
      socket.end();
      return;
    }
    socket.pause();
    const early = r.detach();
    let stream;
    try {
      stream = await client.connect(host, port, { isolation: socksIsolationKey(listenerPort, credentials) });
    } catch (e) {
      clearTimeout(timer);
      reply(
        socket,
        e instanceof StreamError
          ? socksReplyFor(e.reason)
          : isAlliumError(e) && e.code === 'ERR_TIMEOUT'
            ? SocksReply.TTL_EXPIRED
            : isAlliumError(e) && e.code === 'ERR_EXIT_POLICY'
              ? SocksReply.NOT_ALLOWED
              : isAlliumError(e) && (e.code === 'ERR_UNREACHABLE' || e.code === 'ERR_ADDRESS_FORMAT' || e.code === 'ERR_ADDRESS_CHECKSUM')
                ? SocksReply.HOST_UNREACHABLE
                : SocksReply.GENERAL_FAILURE,
      );
      socket.end();
      return;
    }
    clearTimeout(timer);
    if (socket.destroyed) {
      stream.end();
      return;
    }
    reply(socket, SocksReply.SUCCEEDED);
    pipeSocket(stream, socket);
    if (early.length) stream.write(new Uint8Array(early));
    socket.resume();
  } catch {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** Starts a SOCKS5 listener on host:port (port 0 picks one). */
/**
 * Listens for SOCKS5 on host:port (default 127.0.0.1:9050). A refused address is a SystemError naming `setting`
 * (default "socks"): `socks 127.0.0.1:9050: address already in use`.
 */
export async function startSocksServer(
  client: AlliumClient,
  options: { host?: string; port?: number; setting?: string } = {},
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
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
  return {
    server,
    port: boundPort,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
