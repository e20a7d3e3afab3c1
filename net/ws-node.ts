/**
 * The Node WebSocket factory, over `ws` with bufferutil and permessage-deflate off.
 *
 * The upgrade request carries the headers a browser's WebSocket sends (specs/link.md §1), so that a link's request
 * looks like a web app's to a server log or a TLS-terminating middlebox. `wss://` certificates are verified against
 * the system's certificate authorities (plus NODE_EXTRA_CA_CERTS), as a browser would: the link handshake already
 * authenticates the relay, so TLS is camouflage, but a client that accepted any certificate would let an intercepting
 * middlebox read the upgrade request and recognise Allium. `createNodeSocketFactory({ ca })` trusts further
 * certificates (a bridge's self-signed one, a test CA).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { setMaxListeners } from 'node:events';
import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import WebSocket from 'ws';
import { AbortedError, AlliumError } from '../protocol/errors.js';
import { FRAME_LEN } from '../protocol/link-handshake.js';
import type { SocketFactory } from './dial.js';
import { fromWs, type WsFraming } from './socket.js';
import { onSignalCreated } from './abort.js';

// One call's signal is watched by every request it runs at once: no warning at 10 listeners (see net/abort.ts).
onSignalCreated((signal) => setMaxListeners(0, signal));

/** Masks for the messages a client frames itself (net/socket.ts sendPacked): CSPRNG bytes, drawn 8 KiB at a time. */
const maskPool = new Uint8Array(8192);
let maskAt = maskPool.length;
/** bufferutil's native XOR (an optional dependency ws uses too); absent, net/socket.ts masks in a loop. */
const bufferUtil = ((): { unmask(buffer: Buffer, mask: Buffer): void } | null => {
  try {
    return createRequire(import.meta.url)('bufferutil') as { unmask(buffer: Buffer, mask: Buffer): void };
  } catch {
    return null;
  }
})();
const maskScratch = Buffer.alloc(4);

/** How a dialed link frames its packed sends (exported for tests). */
export const CLIENT_FRAMING: WsFraming = {
  masked: true,
  ...(bufferUtil
    ? {
        applyMask(buf: Uint8Array, maskAt: number, payloadAt: number, length: number): void {
          maskScratch[0] = buf[maskAt]!;
          maskScratch[1] = buf[maskAt + 1]!;
          maskScratch[2] = buf[maskAt + 2]!;
          maskScratch[3] = buf[maskAt + 3]!;
          // unmask XORs in place; masking is the same XOR.
          bufferUtil.unmask(Buffer.from(buf.buffer, buf.byteOffset + payloadAt, length), maskScratch);
        },
      }
    : {}),
  maskBytes(out, offset) {
    if (maskAt + 4 > maskPool.length) {
      randomFillSync(maskPool);
      maskAt = 0;
    }
    out[offset] = maskPool[maskAt++]!;
    out[offset + 1] = maskPool[maskAt++]!;
    out[offset + 2] = maskPool[maskAt++]!;
    out[offset + 3] = maskPool[maskAt++]!;
  },
};

/** Firefox's WebSocket request headers (besides Host, Upgrade, Connection and the Sec-WebSocket-Key/Version). */
const HEADERS = {
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  Accept: '*/*',
  'Accept-Language': 'en-US,en;q=0.5',
  'Accept-Encoding': 'gzip, deflate, br, zstd',
  // Offered as browsers do; relays never accept it (compressed sizes would reveal content, specs/link.md §1).
  'Sec-WebSocket-Extensions': 'permessage-deflate',
  Pragma: 'no-cache',
  'Cache-Control': 'no-cache',
};

export interface NodeSocketOptions {
  /** Extra trusted certificates (PEM), for wss:// relays whose certificate no public authority signed. */
  ca?: string | Buffer | (string | Buffer)[];
  /** WebSocket opening-handshake deadline in milliseconds (default 10 000). */
  handshakeTimeoutMs?: number;
  /**
   * The addresses this factory may connect to (default: any). Applied to the address the socket actually connects
   * to: an IP literal before connecting, a name after this factory's own resolution, in the connection's lookup —
   * so a name cannot resolve one way when checked and another when connected (specs/link.md §1.1). A refused dial
   * rejects with ERR_DIAL_REFUSED and sends nothing.
   */
  allowAddress?: (ip: string) => boolean;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A net.connect lookup that resolves a name and keeps only the addresses `allow` accepts. */
function guardedLookup(allow: (ip: string) => boolean): (hostname: string, options: LookupOptions, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { family: options.family ?? 0, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const ok = addresses.filter((a) => allow(a.address));
      if (ok.length === 0) return callback(Object.assign(new Error('no permitted address'), { code: 'ERR_DIAL_REFUSED' }), '');
      if (options.all) return callback(null, ok);
      callback(null, ok[0]!.address, ok[0]!.family);
    });
  };
}

/** A socket factory with its own TLS trust settings. */
export function createNodeSocketFactory(options: NodeSocketOptions = {}): SocketFactory {
  return (url, { signal } = {}) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortedError());
      let origin: string;
      let host: string;
      try {
        const u = new URL(url);
        origin = `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`;
        host = u.hostname.replace(/^\[|\]$/g, '');
      } catch {
        return reject(new AlliumError('ERR_CONFIG', 'relay address is not a URL'));
      }
      const allow = options.allowAddress;
      // An IP literal is connected to without a lookup, so it is checked here; a name in the lookup.
      if (allow && isIP(host) && !allow(host)) return reject(new AlliumError('ERR_DIAL_REFUSED', 'relay address is not a public address'));
      let refused = false;
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        maxPayload: FRAME_LEN,
        headers: HEADERS,
        origin,
        handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(allow
          ? {
              lookup: ((hostname: string, o: LookupOptions, cb: LookupCallback) =>
                guardedLookup(allow)(hostname, o, (err, address, family) => {
                  if ((err as { code?: string } | null)?.code === 'ERR_DIAL_REFUSED') refused = true;
                  cb(err, address, family);
                })) as never,
            }
          : {}),
      });
      ws.binaryType = 'nodebuffer';
      // Aborted: the connection is dropped, and the call rejects once its socket is gone (nothing outlives it).
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        if (ws.readyState === WebSocket.CLOSED) return reject(new AbortedError());
        ws.once('close', () => reject(new AbortedError()));
        ws.terminate();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.once('open', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(fromWs(ws as never, null, CLIENT_FRAMING));
      });
      ws.once('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        if (aborted) return;
        if (refused) reject(new AlliumError('ERR_DIAL_REFUSED', 'relay address resolves to no public address'));
        else reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay', { cause: err }));
      });
    });
}

/** The default factory: certificates checked against the system's authorities (and NODE_EXTRA_CA_CERTS). */
export const nodeSocketFactory: SocketFactory = createNodeSocketFactory();
