/**
 * The narrow WebSocket surface a link needs, with adapters for the `ws` package (Node) and the browser's
 * WebSocket. Only binary messages are accepted; a text message is a protocol violation.
 */
export interface LinkSocket {
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
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
  _socket?: { remoteAddress?: string; cork(): void; uncork(): void };
}

export function fromWs(ws: WsWebSocket, remoteAddress: string | null = null): LinkSocket {
  let pending = 0;
  return {
    send(data) {
      if (ws.readyState !== 1) return;
      pending += data.length;
      ws.send(data, () => {
        pending -= data.length;
      });
    },
    close(code, reason) {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code ?? 1000, reason);
      else if (ws.readyState !== 3) ws.terminate();
    },
    get bufferedAmount() {
      return Math.max(pending, ws.bufferedAmount);
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    cork: () => ws._socket?.cork(),
    uncork: () => ws._socket?.uncork(),
    onMessage(fn) {
      ws.on('message', (data, isBinary) => {
        if (Array.isArray(data)) fn(new Uint8Array(Buffer.concat(data)), isBinary);
        else if (data instanceof ArrayBuffer) fn(new Uint8Array(data), isBinary);
        else fn(new Uint8Array(data.buffer, data.byteOffset, data.length), isBinary);
      });
    },
    onClose(fn) {
      ws.on('close', fn);
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
    close: (code, reason) => ws.close(code ?? 1000, reason),
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
