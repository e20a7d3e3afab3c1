/**
 * Streams multiplexed over one circuit end (specs/streams.md): used by the client (towards its exit hop) and by the
 * exit (towards the client). Handles DATA chunking, END, the circuit window with authenticated SENDMEs (its size set
 * by congestion control from round-trip times, §4.6) and the per-stream windows. Knows nothing of sockets: `MuxStream` takes bytes with write() and hands bytes out through
 * its `onData` callback; the owner reports how much the application has consumed.
 */
import { AlliumError, isAlliumError, ProtocolError } from '../protocol/errors.js';
import type { VegasController, VegasParams } from '../protocol/congestion.js';
import { CircuitReceiveWindow, CircuitSendWindow, OPTIMISTIC_DATA_CELLS, STREAM_WINDOW, StreamWindows } from '../protocol/flow.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { RELAY_DATA_LEN } from '../protocol/constants.js';
import { decodeCircuitSendme, decodeEnd, encodeCircuitSendme, encodeEnd, EndReason } from '../protocol/stream-messages.js';
import { Emitter } from './emitter.js';

export interface MuxTransport {
  /** Sends a relay message to the other end; returns false if the circuit is gone. */
  send(msg: RelayMessage): boolean;
  /** Tag the other end will see for the message just sent (authenticated SENDME). */
  lastSentTag(): Uint8Array;
  /** Tag of the message just received. */
  lastReceivedTag(): Uint8Array;
  /** True while the link carrying the circuit is congested. */
  congested(): boolean;
  /**
   * Calls fn once the link is no longer congested. Returns a function that withdraws fn, which the multiplexer calls
   * when it closes while still waiting: a link that stays congested must not collect a listener per dead circuit.
   */
  onDrain(fn: () => void): (() => void) | void;
}

/** Bytes a stream queues for sending before write() says "wait" (the owner pauses its source). */
export const STREAM_HIGH_WATER = 256 * 1024;

export type MuxStreamEvents = {
  'stream:connected': [];
  /** A STORED or FETCHED reply (content requests, specs/content.md §8). */
  'stream:reply': [RelayCommand, Uint8Array];
  'stream:data': [Uint8Array];
  'stream:end': [EndReason];
  'stream:drain': [];
};

export class MuxStream extends Emitter<MuxStreamEvents> {
  readonly windows = new StreamWindows();
  private queue: Uint8Array[] = [];
  private queued = 0;
  state: 'opening' | 'open' | 'closed' = 'opening';
  private endAfterFlush: EndReason | null = null;
  /** write() said "wait": 'stream:drain' is due once the stream can take more. */
  private wantDrain = false;
  bytesIn = 0;
  bytesOut = 0;
  /** DATA cells this stream may still send while opening (optimistic data, specs/streams.md §2.8); 0 for most. */
  private early = 0;

  constructor(
    readonly id: number,
    private readonly mux: StreamMux,
  ) {
    super();
  }

  /**
   * Queues bytes to send. Returns false when the caller should pause until 'stream:drain': the queue holds
   * STREAM_HIGH_WATER, or the stream cannot send at all (its window or the circuit's is closed: the other end has
   * not acknowledged), so that a source is not read into a queue that cannot move (specs/streams.md §4.4).
   */
  write(data: Uint8Array): boolean {
    if (this.state === 'closed') return false;
    // One cell's bytes, nothing queued before them and room to send: out at once, as the pump would send them (a
    // forwarder passes each DATA cell on so), without the queue and the round over the circuit's streams.
    if (
      data.length > 0 &&
      data.length <= RELAY_DATA_LEN &&
      this.queue.length === 0 &&
      this.canSend &&
      this.windows.send > 0 &&
      this.mux.sendNow(this.id, data)
    ) {
      this.countSent(data.length);
      if (this.canTakeMore()) return true;
      this.wantDrain = true;
      return false;
    }
    for (let off = 0; off < data.length; off += RELAY_DATA_LEN) {
      const chunk = data.subarray(off, Math.min(data.length, off + RELAY_DATA_LEN));
      this.queue.push(chunk);
      this.queued += chunk.length;
    }
    this.mux.pump();
    if (this.canTakeMore()) return true;
    this.wantDrain = true;
    return false;
  }

  /**
   * write() for a view that is valid during the call only (a cell just decrypted into a reused buffer): what goes
   * out at once is sent from the view; only what stays queued is copied.
   */
  writeView(data: Uint8Array): boolean {
    const chunks = Math.ceil(data.length / RELAY_DATA_LEN);
    const ok = this.write(data);
    // The queue is first in, first out: this call's chunks still queued, if any, are its last entries.
    for (let i = Math.max(0, this.queue.length - chunks); i < this.queue.length; i++) this.queue[i] = this.queue[i]!.slice();
    return ok;
  }

  private canTakeMore(): boolean {
    return this.queued < STREAM_HIGH_WATER && this.windows.send > 0 && this.mux.windowOpen;
  }

  /** Sends END once queued data is out. */
  end(reason: EndReason = EndReason.DONE): void {
    if (this.state === 'closed') return;
    this.endAfterFlush = reason;
    this.mux.pump();
  }

  /** The application consumed `cells` 'stream:data' chunks (e.g. the socket write completed): flow-control credit. */
  consumed(cells: number): void {
    const n = this.windows.consumed(cells);
    for (let i = 0; i < n; i++) this.mux.sendStreamSendme(this.id);
  }

  get queuedBytes(): number {
    return this.queued;
  }

  /** True when the stream may send DATA: open, or opening with optimistic cells left (specs/streams.md §2.8). */
  get canSend(): boolean {
    return this.state === 'open' || (this.state === 'opening' && this.early > 0);
  }

  /** @internal Lets the stream send up to `cells` DATA cells before CONNECTED (at most OPTIMISTIC_DATA_CELLS). */
  allowEarly(cells: number): void {
    if (this.state === 'opening') this.early = Math.max(0, Math.min(cells, OPTIMISTIC_DATA_CELLS));
  }

  /** One DATA cell of `bytes` went out: the early-data allowance, the stream window and the byte count. */
  private countSent(bytes: number): void {
    if (this.state === 'opening') this.early--;
    this.windows.onSent();
    this.bytesOut += bytes;
  }

  /** Called by the mux: sends as much as the windows allow. Returns true if it sent something. */
  drainInto(budget: () => boolean): boolean {
    let sent = false;
    while (this.canSend && this.queue.length > 0 && this.windows.send > 0 && budget()) {
      const chunk = this.queue.shift()!;
      this.queued -= chunk.length;
      if (!this.mux.sendData(this.id, chunk)) return sent;
      this.countSent(chunk.length);
      sent = true;
    }
    if (this.wantDrain && this.state !== 'closed' && this.canTakeMore()) {
      this.wantDrain = false;
      this.emit('stream:drain');
    }
    if (this.queue.length === 0 && this.endAfterFlush !== null && this.state !== 'closed') {
      const r = this.endAfterFlush;
      this.endAfterFlush = null;
      this.mux.sendEnd(this.id, r);
      this.close(r);
    }
    return sent;
  }

  /** @internal */
  close(reason: EndReason): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue = [];
    this.queued = 0;
    this.mux.forget(this.id);
    this.emit('stream:end', reason);
  }

  /** @internal */
  markConnected(): void {
    this.state = 'open';
    this.early = 0;
    this.emit('stream:connected');
  }

  /** @internal */
  markReply(command: RelayCommand, data: Uint8Array): void {
    if (this.state === 'opening') this.state = 'open';
    this.emit('stream:reply', command, data);
  }

  /** Opens the stream for sending without waiting for CONNECTED (content requests send data at once). */
  markOpen(): void {
    if (this.state === 'opening') this.state = 'open';
  }

  /** @internal */
  deliver(data: Uint8Array): void {
    this.windows.onData();
    this.bytesIn += data.length;
    this.emit('stream:data', data);
  }
}

export type StreamMuxEvents = {
  /** A stream-opening message arrived (BEGIN at an exit; STORE or FETCH at a holder). */
  'mux:begin': [MuxStream, Uint8Array, RelayCommand];
  'mux:error': [AlliumError];
};

export class StreamMux extends Emitter<StreamMuxEvents> {
  private readonly streams = new Map<number, MuxStream>();
  private readonly sendWindow: CircuitSendWindow;
  private readonly receiveWindow = new CircuitReceiveWindow();
  private nextId = 1;
  private pumping = false;
  private waitingDrain = false;
  /** Withdraws the drain listener while waitingDrain. */
  private offDrain: (() => void) | null = null;
  private closed = false;

  private readonly now: () => number;

  /** `now`: a monotonic clock in milliseconds for the round trips of congestion control (default performance.now). */
  constructor(
    private readonly t: MuxTransport,
    init: { now?: () => number; congestion?: VegasParams } = {},
  ) {
    super();
    this.now = init.now ?? (() => performance.now());
    this.sendWindow = new CircuitSendWindow(init.congestion);
  }

  /** The circuit's congestion state in this direction (specs/streams.md §4.6), for metrics and tests. */
  get congestion(): VegasController {
    return this.sendWindow.cc;
  }

  get size(): number {
    return this.streams.size;
  }

  /** The open streams. */
  get all(): IterableIterator<MuxStream> {
    return this.streams.values();
  }

  /** Bytes queued for sending on all streams (the memory the other end's window and reading leave here). */
  get queuedBytes(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.queuedBytes;
    return n;
  }

  /**
   * Opens a message stream that may send `OPTIMISTIC_DATA_CELLS` DATA cells before CONNECTED (optimistic data,
   * specs/streams.md §2.8): the caller sends BEGIN with the returned id at once, before writing.
   */
  openOptimistic(): MuxStream {
    const s = this.open();
    s.allowEarly(OPTIMISTIC_DATA_CELLS);
    return s;
  }

  /** Opens a stream (client side): the caller sends BEGIN with the returned id. */
  open(): MuxStream {
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextId;
      this.nextId = (this.nextId % 0xffff) + 1;
      if (!this.streams.has(id)) {
        const s = new MuxStream(id, this);
        this.streams.set(id, s);
        return s;
      }
    }
    throw new AlliumError('ERR_LIMIT', 'no free stream id on circuit');
  }

  get(id: number): MuxStream | undefined {
    return this.streams.get(id);
  }

  /** Handles a stream-level relay message. Returns false if the command is not a stream command. */
  onMessage(msg: RelayMessage): boolean {
    try {
      switch (msg.command) {
        case RelayCommand.BEGIN:
        case RelayCommand.STORE:
        case RelayCommand.FETCH: {
          if (msg.streamId === 0 || this.streams.has(msg.streamId)) throw new ProtocolError('ERR_STREAM', 'a stream-opening message for a stream id in use');
          const s = new MuxStream(msg.streamId, this);
          this.streams.set(msg.streamId, s);
          this.emit('mux:begin', s, msg.data, msg.command);
          return true;
        }
        case RelayCommand.STORED:
        case RelayCommand.FETCHED: {
          const s = this.streams.get(msg.streamId);
          if (!s) return true; // a reply racing our END
          s.markReply(msg.command, msg.data);
          this.pump();
          return true;
        }
        case RelayCommand.CONNECTED: {
          const s = this.streams.get(msg.streamId);
          if (!s) return true; // a stream we already gave up on (timeout, abort): its END is on the way
          if (s.state !== 'opening') throw new ProtocolError('ERR_STREAM', 'CONNECTED for a stream that is not opening');
          if (msg.data.length !== 0) throw new ProtocolError('ERR_STREAM', 'CONNECTED carries no data');
          s.markConnected();
          this.pump();
          return true;
        }
        case RelayCommand.DATA: {
          if (this.receiveWindow.onData()) this.t.send({ command: RelayCommand.SENDME, streamId: 0, data: encodeCircuitSendme(this.t.lastReceivedTag()) });
          const s = this.streams.get(msg.streamId);
          if (!s) return true; // data racing an END we sent; counted for the circuit window, then dropped
          if (s.state !== 'open') throw new ProtocolError('ERR_STREAM', 'DATA on a stream that is not open');
          s.deliver(msg.data);
          return true;
        }
        case RelayCommand.END: {
          const reason = decodeEnd(msg.data);
          this.streams.get(msg.streamId)?.close(reason);
          return true;
        }
        case RelayCommand.SENDME: {
          if (msg.streamId === 0) this.sendWindow.onSendme(decodeCircuitSendme(msg.data), this.now());
          else {
            if (msg.data.length !== 0) throw new ProtocolError('ERR_SENDME', 'stream SENDME carries no data');
            this.streams.get(msg.streamId)?.windows.onSendme();
          }
          this.pump();
          return true;
        }
        default:
          return false;
      }
    } catch (e) {
      this.emit('mux:error', isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'stream handling failed', { cause: e }));
      return true;
    }
  }

  /** Marks an opening stream connected (exit side, after the TCP connect) and tells the client. */
  accept(s: MuxStream): void {
    s.state = 'open';
    this.t.send({ command: RelayCommand.CONNECTED, streamId: s.id, data: new Uint8Array(0) });
    this.pump();
  }

  /** Marks an opening stream open without telling the other end (content requests). */
  acceptQuietly(s: MuxStream): void {
    s.state = 'open';
    this.pump();
  }

  /** Sends a stream-level reply (STORED, FETCHED). */
  reply(s: MuxStream, command: RelayCommand, data: Uint8Array): boolean {
    if (s.state === 'closed') return false;
    return this.t.send({ command, streamId: s.id, data });
  }

  /** Refuses or ends a stream with a reason and tells the other end. */
  reset(s: MuxStream, reason: EndReason): void {
    if (s.state === 'closed') return;
    this.sendEnd(s.id, reason);
    s.close(reason);
  }

  /** Sends queued data across streams, round robin, within the circuit window and link backpressure. */
  pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      let progress = true;
      while (progress) {
        progress = false;
        for (const s of this.streams.values()) {
          if (!s.canSend) continue;
          let quota = 8;
          if (s.drainInto(() => quota-- > 0 && this.canSend())) progress = true;
        }
        if (!this.canSend()) break;
      }
      if (this.t.congested() && !this.waitingDrain) {
        this.waitingDrain = true;
        this.offDrain =
          this.t.onDrain(() => {
            this.waitingDrain = false;
            this.offDrain = null;
            this.pump();
          }) ?? null;
      }
    } finally {
      this.pumping = false;
    }
  }

  private canSend(): boolean {
    return this.sendWindow.available > 0 && !this.t.congested();
  }

  /** The circuit's send window is open (the other end has acknowledged enough). */
  get windowOpen(): boolean {
    return this.sendWindow.available > 0;
  }

  /**
   * @internal Sends one DATA cell of a stream with nothing queued, at once, when the pump would send it now (the
   * circuit's window open, the link not congested, no pump under way); false, with nothing sent, when not.
   */
  sendNow(id: number, chunk: Uint8Array): boolean {
    if (this.pumping || this.closed || !this.canSend()) return false;
    if (!this.sendData(id, chunk)) return false;
    // As at the end of a pump: wait for the link's drain if this cell congested it, so that queued streams resume.
    if (this.t.congested()) this.pump();
    return true;
  }

  /** @internal */
  sendData(id: number, chunk: Uint8Array): boolean {
    if (!this.t.send({ command: RelayCommand.DATA, streamId: id, data: chunk })) return false;
    this.sendWindow.onSent(this.t.lastSentTag(), this.now());
    return true;
  }

  /** @internal */
  sendEnd(id: number, reason: EndReason): void {
    this.t.send({ command: RelayCommand.END, streamId: id, data: encodeEnd(reason) });
  }

  /** @internal */
  sendStreamSendme(id: number): void {
    if (this.streams.has(id)) this.t.send({ command: RelayCommand.SENDME, streamId: id, data: new Uint8Array(0) });
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
  }

  /** The circuit closed: end every stream. */
  closeAll(reason: EndReason = EndReason.DESTROYED): void {
    this.closed = true;
    this.offDrain?.();
    this.offDrain = null;
    this.waitingDrain = false;
    for (const s of [...this.streams.values()]) s.close(reason);
  }
}

export { STREAM_WINDOW };
