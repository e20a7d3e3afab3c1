/** The Node WebSocket factory, over `ws` with bufferutil and permessage-deflate off. */
import WebSocket from 'ws';
import { AbortedError, AlliumError } from '../protocol/errors.js';
import { FRAME_LEN } from '../protocol/link-handshake.js';
import type { SocketFactory } from './dial.js';
import { fromWs } from './socket.js';

/** Ordinary browser-like headers, so a link's upgrade request looks like a web app's (specs/link.md §1). */
const HEADERS = { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };

export const nodeSocketFactory: SocketFactory = (url, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: FRAME_LEN,
      headers: HEADERS,
      handshakeTimeout: 10_000,
    });
    ws.binaryType = 'nodebuffer';
    const onAbort = (): void => {
      ws.terminate();
      reject(new AbortedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    ws.once('open', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(fromWs(ws as never, null));
    });
    ws.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay', { cause: err }));
    });
  });
