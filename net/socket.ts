/**
 * The narrow WebSocket surface a link needs, with adapters for the `ws` package (Node) and the browser's
 * WebSocket. Only binary messages are accepted; a text message is a protocol violation.
 */
export interface LinkSocket {
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /**
   * Drops the connection at once, without the closing handshake (a peer that does not answer a close). Optional;
   * where absent, close() is all there is.
   */
  terminate?(): void;
  /** Bytes accepted by send() but not yet written to the network. */
  readonly bufferedAmount: number;
  /** Stop and restart reading from the network (backpressure, rate limits); no-ops where unsupported. */
  pause(): void;
  resume(): void;
  /**
   * Hold sends until uncork() and then write them together: the frames of one flush leave in one system call
   * instead of one each. Optional; where absent every send is written on its own.
   */
  cork?(): void;
  uncork?(): void;
  /**
   * Optional packed send, for sockets that frame their messages themselves: `buf` holds `count` messages of `size`
   * bytes, each after `messageGap` bytes the socket fills with its own framing (a WebSocket header; on a client the
   * payload is then masked in place). They leave in order, as `count` messages, in one write; `done` runs once that
   * write has completed (or been dropped with the connection): `buf` is the socket's until then, and free after.
   */
  readonly messageGap?: number;
  sendPacked?(buf: Uint8Array, count: number, size: number, done: () => void): void;
  onMessage(fn: (data: Uint8Array, binary: boolean) => void): void;
  onClose(fn: (code: number) => void): void;
  onError(fn: (err: unknown) => void): void;
  readonly remoteAddress: string | null;
}

/** Minimal shape of a `ws` WebSocket, so this file does not import ws (browsers bundle it too). */
interface WsWebSocket {
  send(data: Uint8Array, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  readonly bufferedAmount: number;
  readonly readyState: number;
  on(event: 'message', fn: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): void;
  on(event: 'close', fn: (code: number) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  _socket?: { remoteAddress?: string; cork(): void; uncork(): void; write(data: Uint8Array, cb: (err?: Error | null) => void): boolean };
  /** ws's Sender: its state is DEFAULT (0) and its queue empty unless a compressed or Blob message is in progress. */
  _sender?: { _state?: number; _queue?: unknown[] };
}

/**
 * How fromWs frames packed sends itself (sendPacked), as `ws` frames a binary message: a server's messages unmasked
 * after a 4-byte header, a client's after an 8-byte header ending in a fresh random mask, with the payload masked
 * (RFC 6455 §5.3). Absent: every message goes through ws.send.
 */
export interface WsFraming {
  masked: boolean;
  /** Writes 4 bytes from a CSPRNG at out[offset..offset+4) (a client's masks). */
  maskBytes?: (out: Uint8Array, offset: number) => void;
  /**
   * XORs buf[payloadAt..payloadAt+length) with the mask at buf[maskAt..maskAt+4), repeated, in place (e.g. native
   * bufferutil, as ws uses). Absent: a loop over whole words here.
   */
  applyMask?: (buf: Uint8Array, maskAt: number, payloadAt: number, length: number) => void;
}

/** Writes the headers of `count` packed binary messages (and masks their payloads) in place; see WsFraming. */
export function frameWsMessages(buf: Uint8Array, count: number, size: number, framing: WsFraming): void {
  if (size < 126 || size > 0xffff) throw new RangeError('packed WebSocket messages are 126 to 65535 bytes');
  const gap = framing.masked ? 8 : 4;
  const stride = gap + size;
  // Whole words when every mask and payload is 4-byte aligned (a slab of its own, gap and size multiples of 4).
  const words =
    framing.masked && !framing.applyMask && buf.byteOffset % 4 === 0 && size % 4 === 0
      ? new Uint32Array(buf.buffer, buf.byteOffset, (count * stride) >>> 2)
      : null;
  for (let i = 0, o = 0; i < count; i++, o += stride) {
    buf[o] = 0x82; // FIN, binary
    buf[o + 1] = framing.masked ? 0x80 | 126 : 126;
    buf[o + 2] = size >>> 8;
    buf[o + 3] = size & 0xff;
    if (!framing.masked) continue;
    framing.maskBytes!(buf, o + 4);
    if (framing.applyMask) {
      framing.applyMask(buf, o + 4, o + 8, size);
    } else if (words) {
      const m = words[(o + 4) >>> 2]!;
      for (let w = (o + 8) >>> 2, end = w + (size >>> 2); w < end; w++) words[w]! ^= m;
    } else {
      for (let j = 0; j < size; j++) buf[o + 8 + j]! ^= buf[o + 4 + (j & 3)]!;
    }
  }
}

/**
 * Adapter for a `ws` WebSocket. Messages and the close that arrive before onMessage()/onClose() are registered are
 * held and delivered on registration: a relay may send msg2 in the same packet as its upgrade response (specs/link.md
 * §2.6), and `ws` can emit it before the caller has wrapped the socket in a link.
 */
export function fromWs(ws: WsWebSocket, remoteAddress: string | null = null, framing: WsFraming | null = null): LinkSocket {
  let pending = 0;
  let onMessage: ((data: Uint8Array, binary: boolean) => void) | null = null;
  let onClose: ((code: number) => void) | null = null;
  const early: [Uint8Array, boolean][] = [];
  let closedWith: number | null = null;
  ws.on('message', (data, isBinary) => {
    let bytes: Uint8Array;
    if (Array.isArray(data)) bytes = new Uint8Array(Buffer.concat(data));
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
    if (onMessage) onMessage(bytes, isBinary);
    else early.push([Uint8Array.from(bytes), isBinary]);
  });
  ws.on('close', (code) => {
    if (onClose && onMessage) onClose(code);
    else closedWith = code;
  });
  const send = (data: Uint8Array, done?: () => void): void => {
    if (ws.readyState !== 1) return;
    pending += data.length;
    ws.send(data, () => {
      pending -= data.length;
      done?.();
    });
  };
  const packed: Pick<LinkSocket, 'messageGap' | 'sendPacked'> = framing
    ? {
        messageGap: framing.masked ? 8 : 4,
        sendPacked(buf, count, size, done) {
          if (ws.readyState !== 1 || count === 0) return done();
          const stride = (framing.masked ? 8 : 4) + size;
          const sock = ws._socket;
          const sender = ws._sender;
          // ws is between messages (no compressed or Blob message queued): the bytes can go to its socket directly,
          // in order with everything ws writes there. Otherwise through ws.send, a message at a time.
          if (!sock || !sender || sender._state !== 0 || (sender._queue?.length ?? 0) > 0) {
            for (let i = 0; i < count; i++) send(buf.subarray(i * stride + stride - size, (i + 1) * stride), i === count - 1 ? done : undefined);
            return;
          }
          frameWsMessages(buf, count, size, framing);
          const n = count * stride;
          pending += n;
          sock.write(n === buf.length ? buf : buf.subarray(0, n), () => {
            pending -= n;
            done();
          });
        },
      }
    : {};
  return {
    send: (data) => send(data),
    ...packed,
    close(code, reason) {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code ?? 1000, reason);
      else if (ws.readyState !== 3) ws.terminate();
    },
    terminate: () => ws.terminate(),
    get bufferedAmount() {
      return Math.max(pending, ws.bufferedAmount);
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    cork: () => ws._socket?.cork(),
    uncork: () => ws._socket?.uncork(),
    onMessage(fn) {
      if (early.length === 0) {
        onMessage = fn;
        return;
      }
      // Delivered after the caller's current synchronous step (a link's constructor), in arrival order.
      queueMicrotask(() => {
        while (early.length) {
          const [bytes, binary] = early.shift()!;
          fn(bytes, binary);
        }
        onMessage = fn;
        if (closedWith !== null && onClose) onClose(closedWith);
      });
    },
    onClose(fn) {
      onClose = fn;
      if (closedWith !== null && early.length === 0) queueMicrotask(() => fn(closedWith!));
    },
    onError(fn) {
      ws.on('error', fn);
    },
    remoteAddress: remoteAddress ?? ws._socket?.remoteAddress ?? null,
  };
}

/** Adapter for the browser's WebSocket (binaryType 'arraybuffer'). pause/resume are not available there. */
export function fromBrowserWebSocket(ws: WebSocket): LinkSocket {
  ws.binaryType = 'arraybuffer';
  return {
    send: (data) => {
      if (ws.readyState === 1) ws.send(data);
    },
    // A page may send only 1000 or 3000–4999 (anything else throws InvalidAccessError): a protocol error (1002)
    // closes as 1000, which is also all a prober would learn.
    close: (code, reason) => ws.close(code === undefined || (code !== 1000 && (code < 3000 || code > 4999)) ? 1000 : code, reason),
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    pause() {},
    resume() {},
    onMessage(fn) {
      ws.addEventListener('message', (ev) => {
        if (ev.data instanceof ArrayBuffer) fn(new Uint8Array(ev.data), true);
        else fn(new Uint8Array(0), false);
      });
    },
    onClose(fn) {
      ws.addEventListener('close', (ev) => fn(ev.code));
    },
    onError(fn) {
      ws.addEventListener('error', (ev) => fn(ev));
    },
    remoteAddress: null,
  };
}
