/**
 * A link: one authenticated, encrypted WebSocket between a client or relay and a relay (specs/link.md).
 *
 * Runs the handshake (protocol/link-handshake.ts), then carries cells in fixed-size frames of FRAME_CELLS cells,
 * padding a frame with PADDING cells when fewer are queued, so every WebSocket message on the wire has one size.
 * Reassembles CONTROL messages. Enforces the handshake deadline, keepalives and the idle timeout, and bounds what it
 * holds for a peer that stops reading (specs/link.md §4.2): it bounds the cells it queues, reports congestion above
 * LINK_HIGH_WATER_BYTES so producers pause, and runs answers to the peer's requests (`answerRequest`) only while
 * the link holds less than that mark and the peer is within its request rate (CONTROL_REQUESTS_PER_MINUTE), keeping
 * at most one for when both hold again. A CONTROL message is queued whole or not at all.
 *
 * Pads an idle link with all-PADDING frames when asked (`setPadding`, specs/link.md §4.4).
 *
 * Events: link:open, link:cell, link:control, link:drain, link:close.
 *
 * Why ~620 lines: the frame queue, the link padding timer, the CONTROL reassembly, the deadlines and the backpressure above all act on the
 * same queue and socket in one order per frame; the handshake itself and the frame cipher are pure and live in
 * protocol/ (link-handshake.ts), the socket adapters in socket.ts and ws-node.ts.
 */
import { CellCommand, CONTROL_DATA_MAX, controlBody, decodeCellAt, decodeControlBody, fragmentControl, type Cell } from '../protocol/cell.js';
import { CELL_BODY_LEN, CELL_LEN } from '../protocol/constants.js';
import { decodeControl, encodeControl, MAX_CONTROL_MESSAGE, type ControlMessage } from '../protocol/control.js';
import { AlliumError, LimitError, ProtocolError, TimeoutError, isAlliumError } from '../protocol/errors.js';
import {
  FRAME_CELLS,
  FRAME_LEN,
  FRAME_PLAIN_LEN,
  FrameCipher,
  LinkInitiator,
  LinkResponder,
  type HandshakeReplayCache,
  type LinkPeer,
  LinkRole,
} from '../protocol/link-handshake.js';
import { crypto } from '../crypto/index.js';
import { linkPaddingDelay, type LinkPadding } from '../protocol/link-padding.js';
import { Emitter } from './emitter.js';
import { FrameQueue } from './frame-queue.js';
import type { LinkSocket } from './socket.js';

export interface LinkTimers {
  /** Deadline for the whole handshake (specs/limits.md LINK_HANDSHAKE_TIMEOUT). */
  handshakeTimeoutMs: number;
  /** Send an all-padding frame after this long without sending. */
  keepaliveMs: number;
  /** Close after this long without receiving anything. */
  idleTimeoutMs: number;
  /** Close when a CONTROL message is still incomplete this long after its first fragment (CONTROL_REASSEMBLY_TIMEOUT). */
  controlReassemblyTimeoutMs: number;
}

export const DEFAULT_LINK_TIMERS: LinkTimers = {
  handshakeTimeoutMs: 10_000,
  keepaliveMs: 5 * 60_000,
  idleTimeoutMs: 15 * 60_000,
  controlReassemblyTimeoutMs: 60_000,
};

/** Cells a link will queue for sending before it refuses more (specs/limits.md MAX_LINK_QUEUE_CELLS). */
export const DEFAULT_MAX_LINK_QUEUE_CELLS = 4096;
/** Socket bytes in flight above which the link reports congestion (and below half of which it drains). */
export const LINK_HIGH_WATER_BYTES = 1 << 20;
/**
 * Requests of the peer (directory pages, gossip summaries and wants, consensuses) a link answers per minute, after a
 * burst of CONTROL_REQUEST_BURST (specs/link.md §4.2). Beyond it one request waits for a token; more are ignored.
 */
export const CONTROL_REQUESTS_PER_MINUTE = 600;
export const CONTROL_REQUEST_BURST = 120;

export type LinkEvents = {
  'link:open': [LinkPeer];
  'link:cell': [Cell];
  /** A CONTROL message, checked against the schema, and its encoded length in bytes (as it came). */
  'link:control': [ControlMessage, number];
  'link:drain': [];
  'link:close': [AlliumError | null];
};

export type LinkSetup =
  | {
      role: 'initiator';
      responder: Uint8Array;
      identity?: { publicKey: Uint8Array; secretKey: Uint8Array };
      psk?: Uint8Array;
      /** A handshake whose msg1 already travelled as the upgrade token (net/dial.ts): the link does not send it again. */
      initiator?: LinkInitiator;
    }
  | {
      role: 'responder';
      identity: { publicKey: Uint8Array; secretKey: Uint8Array };
      replay: HandshakeReplayCache;
      maxClockSkewMs: number;
      psk?: Uint8Array;
      /** A responder that already admitted msg1 from the upgrade token (relay/relay.ts): the link answers with msg2 at once. */
      accepted?: LinkResponder;
    };

export interface LinkOptions {
  timers?: Partial<LinkTimers>;
  maxQueueCells?: number;
  now?: () => number;
  /** Called for every frame received before it is processed (rate limits); returning false drops the frame. */
  admitFrame?: (link: Link) => boolean;
  /** Requests answered per minute and the burst (default CONTROL_REQUESTS_PER_MINUTE, CONTROL_REQUEST_BURST). */
  requestRate?: { perMinute: number; burst: number };
}

let nextLinkId = 1;

/** Plaintext of a frame of PADDING only (link padding, keepalives): never written to. */
const paddingPlain = new Uint8Array(FRAME_PLAIN_LEN);

/** A buffer for `frames` sealed frames; the seal writes every byte, so in Node it is not zero-filled first. */
function sendSlab(frames: number): Uint8Array {
  return sendBuffer(frames * FRAME_LEN);
}

/** A send buffer of `n` bytes, not zero-filled in Node (whoever fills it writes every byte), on its own ArrayBuffer. */
function sendBuffer(n: number): Uint8Array {
  return typeof Buffer === 'function' ? new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n) : new Uint8Array(n);
}

/** Frames a packed flush seals into one buffer at most (one socket write each; a longer flush takes several). */
const PACKED_FRAMES = 16;
/** Bytes of packed send buffers kept for reuse across every link of the process (each back once its write is done). */
const PACKED_SPARE_BYTES = 1 << 20;
/** Spare packed buffers by their byte length. */
const packedSpare = new Map<number, Uint8Array[]>();
let packedSpareBytes = 0;

function takePacked(n: number): Uint8Array {
  const list = packedSpare.get(n);
  const b = list?.pop();
  if (b) {
    packedSpareBytes -= n;
    return b;
  }
  return sendBuffer(n);
}

function givePacked(b: Uint8Array): void {
  if (packedSpareBytes + b.length > PACKED_SPARE_BYTES) return;
  let list = packedSpare.get(b.length);
  if (!list) packedSpare.set(b.length, (list = []));
  list.push(b);
  packedSpareBytes += b.length;
}

/**
 * How a link defers framing until the task that queued cells ends (specs/link.md §4.2): a microtask. The simulator's
 * virtual clock substitutes an event of its own at the same virtual time, since it runs message deliveries back to
 * back without draining promise jobs between them (sim/clock.ts).
 */
const endOfTask = (fn: () => void): void => queueMicrotask(fn);
let deferFlush: (fn: () => void) => void = endOfTask;

/** Replaces how links defer framing to the end of the task (null: the default, a microtask). For the simulator. */
export function setLinkFlushScheduler(fn: ((fn: () => void) => void) | null): void {
  deferFlush = fn ?? endOfTask;
}

/** Where a padding side's draws come from, and whether a padding frame may go now (a relay's budget). */
export interface PaddingDriver {
  /** Uniform in [0, 1) (default: the CSPRNG). */
  random?: () => number;
  /** False skips this padding frame (a new delay is drawn). */
  allow?: () => boolean;
}

export class Link extends Emitter<LinkEvents> {
  readonly id = nextLinkId++;
  private state: 'handshake' | 'open' | 'closed' = 'handshake';
  private initiator: LinkInitiator | null = null;
  private responder: LinkResponder | null = null;
  private sendCipher: FrameCipher | null = null;
  private recvCipher: FrameCipher | null = null;
  /** Cells waiting for a frame, already encoded in their frames' plaintext. */
  private readonly queue = new FrameQueue();
  private flushScheduled = false;
  /** A flush at the end of a task already ran in this turn of the event loop (scheduleFlush). */
  private flushedThisTurn = false;
  private control: Uint8Array[] = [];
  private controlBytes = 0;
  /** When the CONTROL message being reassembled began (its first fragment arrived). */
  private controlStartedAt = 0;
  private readonly timers: LinkTimers;
  private readonly maxQueue: number;
  private readonly now: () => number;
  private handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  private keepaliveTimer: ReturnType<typeof setInterval> | null = null;
  private lastSent = 0;
  private lastReceived = 0;
  private lastActive = 0;
  private congested = false;
  private drainWatch = false;
  /** An answer to the peer held until the link is under its high-water mark and has a request token (at most one). */
  private deferredAnswer: (() => void) | null = null;
  /** Request tokens (a token bucket refilled from `now`) and when they were last counted. */
  private requestTokens: number;
  private requestsCountedAt: number;
  private readonly requestRate: { perMinute: number; burst: number };
  peer: LinkPeer | null = null;
  readonly stats = {
    framesIn: 0,
    framesOut: 0,
    cellsIn: 0,
    cellsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    /** Frames of PADDING cells only, received (link padding and keepalives) and sent as link padding (§4.4). */
    paddingFramesIn: 0,
    paddingFramesOut: 0,
    /** Padding frames not sent because `allow` said no. */
    paddingSkipped: 0,
  };
  /** Link padding towards the peer (specs/link.md §4.4): its bounds, driver and timer. */
  private padding: LinkPadding | null = null;
  private padDriver: PaddingDriver = {};
  private padTimer: ReturnType<typeof setTimeout> | null = null;
  /** The delay drawn, and the time it runs from (the last frame sent when it was drawn). */
  private padDelay = 0;
  private padFrom = 0;
  readonly openedAt: number;
  /**
   * Resolves once the socket itself has closed: close() ends the link at once ('link:close'), the socket only when
   * the peer has answered the closing handshake (or the connection dropped, or terminate() ran).
   */
  readonly socketClosed: Promise<void>;

  constructor(
    readonly socket: LinkSocket,
    private readonly setup: LinkSetup,
    private readonly options: LinkOptions = {},
  ) {
    super();
    this.timers = { ...DEFAULT_LINK_TIMERS, ...options.timers };
    this.maxQueue = options.maxQueueCells ?? DEFAULT_MAX_LINK_QUEUE_CELLS;
    this.now = options.now ?? Date.now;
    this.openedAt = this.now();
    this.lastReceived = this.lastSent = this.openedAt;
    this.requestRate = options.requestRate ?? { perMinute: CONTROL_REQUESTS_PER_MINUTE, burst: CONTROL_REQUEST_BURST };
    this.requestTokens = this.requestRate.burst;
    this.requestsCountedAt = this.openedAt;
    socket.onMessage((data, binary) => this.onMessage(data, binary));
    let socketGone = (): void => undefined;
    this.socketClosed = new Promise<void>((r) => (socketGone = r));
    socket.onClose(() => {
      socketGone();
      this.teardown(this.state === 'open' ? null : new AlliumError('ERR_LINK_CLOSED', 'peer closed the link'));
    });
    socket.onError(() => undefined);
    this.handshakeTimer = setTimeout(() => this.fail(new TimeoutError('link handshake deadline passed')), this.timers.handshakeTimeoutMs);
    if (setup.role === 'initiator' && setup.initiator) {
      this.initiator = setup.initiator;
    } else if (setup.role === 'responder' && setup.accepted) {
      this.responder = setup.accepted;
      this.answer(setup.accepted.reply(this.now()));
    } else if (setup.role === 'initiator') {
      const init: { responder: Uint8Array; now: number; identity?: { publicKey: Uint8Array; secretKey: Uint8Array }; psk?: Uint8Array } = {
        responder: setup.responder,
        now: this.now(),
      };
      if (setup.identity) init.identity = setup.identity;
      if (setup.psk) init.psk = setup.psk;
      this.initiator = new LinkInitiator(init);
      this.write(this.initiator.start());
    } else {
      const resp: { identity: { publicKey: Uint8Array; secretKey: Uint8Array }; replay: HandshakeReplayCache; maxClockSkewMs: number; psk?: Uint8Array } = {
        identity: setup.identity,
        replay: setup.replay,
        maxClockSkewMs: setup.maxClockSkewMs,
      };
      if (setup.psk) resp.psk = setup.psk;
      this.responder = new LinkResponder(resp);
    }
  }

  /** When the link last received a cell other than padding, or opened (the relay evicts idle client links first). */
  get lastActiveAt(): number {
    return this.lastActive;
  }

  /** True when this side dialed the link (it then uses circuit ids with the top bit set). */
  get initiatedHere(): boolean {
    return this.setup.role === 'initiator';
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Cells queued and not yet framed. */
  get queuedCells(): number {
    return this.queue.cells;
  }

  /** Bytes this link holds: queued cells plus socket bytes in flight. */
  get bufferedBytes(): number {
    return this.queue.cells * CELL_LEN + this.socket.bufferedAmount;
  }

  /**
   * Bytes this link holds in memory: what it sends (bufferedBytes) and the CONTROL message it is reassembling
   * (at most MAX_CONTROL_MESSAGE). The relay's out-of-memory handler counts these.
   */
  get heldBytes(): number {
    return this.bufferedBytes + this.controlBytes;
  }

  /** True while the socket has more than LINK_HIGH_WATER_BYTES in flight; wait for link:drain. */
  get isCongested(): boolean {
    return this.congested;
  }

  /** True while the queue and the socket together hold LINK_HIGH_WATER_BYTES or more: answers wait. */
  get overHighWater(): boolean {
    return this.bufferedBytes >= LINK_HIGH_WATER_BYTES;
  }

  /**
   * Runs `produce`, which answers a request of the peer (a directory page, a gossip reply), now if the link is under
   * its high-water mark and the peer within its request rate, else once both hold (specs/link.md §4.2). Holds at
   * most one answer: returns false, dropping `produce`, when one is already waiting or the link is closed.
   */
  answerRequest(produce: () => void): boolean {
    if (this.state !== 'open' || this.deferredAnswer) return false;
    if (!this.overHighWater && this.takeRequestToken()) {
      produce();
      return true;
    }
    this.deferredAnswer = produce;
    this.watchDrain();
    return true;
  }

  /** Takes a request token if one is available (refilling at requestRate.perMinute). */
  private takeRequestToken(): boolean {
    const t = this.now();
    const { perMinute, burst } = this.requestRate;
    if (t > this.requestsCountedAt) {
      this.requestTokens = Math.min(burst, this.requestTokens + ((t - this.requestsCountedAt) * perMinute) / 60_000);
      this.requestsCountedAt = t;
    }
    if (this.requestTokens < 1) return false;
    this.requestTokens--;
    return true;
  }

  private write(frame: Uint8Array): void {
    this.socket.send(frame);
    this.sent(1, frame.length);
  }

  /** Counts `frames` messages just handed to the socket and notes congestion. */
  private sent(frames: number, bytes = frames * FRAME_LEN): void {
    this.lastSent = this.now();
    this.stats.framesOut += frames;
    this.stats.bytesOut += bytes;
    if (!this.congested && this.socket.bufferedAmount > LINK_HIGH_WATER_BYTES) {
      this.congested = true;
      this.watchDrain();
    }
  }

  /**
   * Polls the socket while the link is congested or an answer waits: below half the mark the link drains; under
   * the mark, queue included, and with a request token, the waiting answer runs.
   */
  private watchDrain(): void {
    if (this.drainWatch) return;
    this.drainWatch = true;
    const check = (): void => {
      this.drainWatch = false;
      if (this.state === 'closed') return;
      if (this.congested && this.socket.bufferedAmount <= LINK_HIGH_WATER_BYTES / 2) {
        this.congested = false;
        this.emit('link:drain');
      }
      if (this.deferredAnswer && !this.congested && !this.overHighWater && this.takeRequestToken()) {
        const produce = this.deferredAnswer;
        this.deferredAnswer = null;
        produce();
      }
      if (this.congested || this.deferredAnswer) this.watchDrain();
    };
    setTimeout(check, 5);
  }

  private onMessage(data: Uint8Array, binary: boolean): void {
    if (this.state === 'closed') return;
    try {
      if (!binary) throw new ProtocolError('ERR_LINK_FRAME', 'text message on a link');
      if (data.length !== FRAME_LEN) throw new ProtocolError('ERR_LINK_FRAME', `link frames are ${FRAME_LEN} bytes, got ${data.length}`);
      this.lastReceived = this.now();
      this.stats.framesIn++;
      this.stats.bytesIn += data.length;
      if (this.options.admitFrame && !this.options.admitFrame(this)) return;
      if (this.state === 'handshake') return this.onHandshake(data);
      this.onFrame(this.recvCipher!.open(data));
    } catch (e) {
      this.fail(e);
    }
  }

  private onHandshake(data: Uint8Array): void {
    if (this.initiator) {
      const { keys, msg3 } = this.initiator.finish(data);
      this.initiator = null;
      this.sendCipher = new FrameCipher(keys.send);
      this.recvCipher = new FrameCipher(keys.receive);
      this.write(this.sendCipher.seal(msg3));
      const s = this.setup as Extract<LinkSetup, { role: 'initiator' }>;
      this.opened({ role: LinkRole.RELAY, identity: Uint8Array.from(s.responder), version: 1 });
      return;
    }
    const r = this.responder!;
    if (!this.recvCipher) return this.answer(r.respond(data, this.now()));
    const peer = r.finish(this.recvCipher.open(data));
    this.responder = null;
    this.opened(peer);
  }

  /** Responder: sends msg2 and keys the frame ciphers. */
  private answer(msg2: Uint8Array): void {
    const keys = this.responder!.keys;
    this.sendCipher = new FrameCipher(keys.send);
    this.recvCipher = new FrameCipher(keys.receive);
    this.write(msg2);
  }

  private opened(peer: LinkPeer): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.state = 'open';
    this.peer = peer;
    this.lastActive = this.now();
    const tick = Math.min(this.timers.keepaliveMs, this.timers.idleTimeoutMs, this.timers.controlReassemblyTimeoutMs) / 4;
    this.keepaliveTimer = setInterval(() => this.onTick(), Math.max(50, tick));
    (this.keepaliveTimer as { unref?: () => void }).unref?.();
    this.emit('link:open', peer);
    if (this.padding) this.armPadding(this.lastSent);
    if (this.queuedCells) this.scheduleFlush();
  }

  /**
   * Pads the link towards the peer (specs/link.md §4.4): whenever nothing was sent for a delay drawn between the
   * bounds, one all-PADDING frame; null stops. A client calls it for its own direction; a relay when a client asks.
   */
  setPadding(p: LinkPadding | null, driver: PaddingDriver = {}): void {
    if (this.state === 'closed') return;
    this.padding = p;
    this.padDriver = driver;
    if (this.padTimer) clearTimeout(this.padTimer);
    this.padTimer = null;
    if (p && this.state === 'open') this.armPadding(this.lastSent);
  }

  /** The padding bounds in force towards the peer (null: none). */
  get paddingBounds(): LinkPadding | null {
    return this.padding;
  }

  /** Draws the next delay, running from `from`, and sets the timer for it. */
  private armPadding(from: number): void {
    const r = this.padDriver.random ?? (() => crypto().uniform());
    this.padDelay = linkPaddingDelay(this.padding!, r(), r());
    this.padFrom = from;
    this.padTimer = setTimeout(() => this.onPaddingTimer(), Math.max(0, from + this.padDelay - this.now()));
    (this.padTimer as { unref?: () => void }).unref?.();
  }

  private onPaddingTimer(): void {
    this.padTimer = null;
    if (this.state !== 'open' || !this.padding) return;
    // A frame went since the delay was drawn: a new delay, from that frame.
    if (this.lastSent !== this.padFrom) return this.armPadding(this.lastSent);
    // Cells waiting go out with the next flush, which is due; a link over its high-water mark is not idle, and a peer
    // that stops reading must not be sent padding to hold for it: a new delay from now.
    if (this.queuedCells > 0 || this.congested || this.overHighWater) return this.armPadding(this.now());
    if (this.padDriver.allow?.() === false) {
      this.stats.paddingSkipped++;
      return this.armPadding(this.now());
    }
    this.flushFrame();
    this.stats.paddingFramesOut++;
    if (this.state === 'open') this.armPadding(this.lastSent);
  }

  private onTick(): void {
    const now = this.now();
    if (now - this.lastReceived >= this.timers.idleTimeoutMs) {
      this.fail(new TimeoutError('link idle timeout'));
      return;
    }
    if (this.reassemblyOverdue(now)) return this.fail(new TimeoutError('CONTROL message not completed in time'));
    if (now - this.lastSent >= this.timers.keepaliveMs) this.flushFrame();
  }

  private onFrame(plain: Uint8Array): void {
    let padding = 0;
    for (let i = 0; i < FRAME_CELLS; i++) {
      if (this.state !== 'open') return;
      const cell = decodeCellAt(plain, i * CELL_LEN);
      if (cell.command === CellCommand.PADDING) {
        if (++padding === FRAME_CELLS) this.stats.paddingFramesIn++;
        continue;
      }
      this.stats.cellsIn++;
      this.lastActive = this.lastReceived;
      if (cell.command === CellCommand.CONTROL) this.onControlCell(cell.body);
      else this.emit('link:cell', cell);
    }
  }

  /** True when a CONTROL message has been in reassembly longer than CONTROL_REASSEMBLY_TIMEOUT. */
  private reassemblyOverdue(now: number): boolean {
    return this.control.length > 0 && now - this.controlStartedAt >= this.timers.controlReassemblyTimeoutMs;
  }

  private onControlCell(body: Uint8Array): void {
    const f = decodeControlBody(body);
    if (f.first !== (this.control.length === 0)) throw new ProtocolError('ERR_CONTROL_FRAGMENT', 'CONTROL fragment out of order');
    // A peer that sends a message a fragment at a time, slowly, is held to the same deadline.
    const now = this.now();
    if (f.first) this.controlStartedAt = now;
    else if (this.reassemblyOverdue(now)) throw new TimeoutError('CONTROL message not completed in time');
    // Every fragment but the last is full, so a message of n bytes takes exactly ceil(n / 1016) cells and a peer
    // cannot make us hold an endless list of empty fragments.
    if (!f.last && f.data.length !== CONTROL_DATA_MAX) throw new ProtocolError('ERR_CONTROL_FRAGMENT', 'a non-final CONTROL fragment must be full');
    this.controlBytes += f.data.length;
    if (this.controlBytes > MAX_CONTROL_MESSAGE) throw new LimitError('MAX_CONTROL_MESSAGE', 'control message too large');
    this.control.push(Uint8Array.from(f.data));
    if (!f.last) return;
    const whole = new Uint8Array(this.controlBytes);
    let o = 0;
    for (const p of this.control) {
      whole.set(p, o);
      o += p.length;
    }
    this.control = [];
    this.controlBytes = 0;
    this.emit('link:control', decodeControl(whole), whole.length);
  }

  /**
   * Queues a cell, copying `body` into the frame it will travel in (the caller may reuse its buffer at once). Throws
   * ERR_LINK_CLOSED on a closed link and LimitError MAX_LINK_QUEUE_CELLS when the queue is full (the caller decides
   * which circuit pays).
   */
  sendCell(circId: number, command: CellCommand, body: Uint8Array): void {
    if (this.state === 'closed') throw new AlliumError('ERR_LINK_CLOSED', 'link is closed');
    if (body.length > CELL_BODY_LEN) throw new AlliumError('ERR_INTERNAL', 'cell body too long');
    if (this.queue.cells >= this.maxQueue) throw new LimitError('MAX_LINK_QUEUE_CELLS', 'link send queue full');
    this.queue.push(circId, command, body);
    if (this.state === 'open') this.scheduleFlush();
  }

  /**
   * Sends a CONTROL message (fragmented across CONTROL cells), whole or not at all: throws ERR_LINK_CLOSED, or
   * LimitError MAX_LINK_QUEUE_CELLS with nothing queued when the queue has no room for every fragment (a message cut
   * short would make the peer close the link on the next one, specs/link.md §5.1). Returns the message's encoded
   * length in bytes.
   */
  sendControl(message: ControlMessage): number {
    if (this.state === 'closed') throw new AlliumError('ERR_LINK_CLOSED', 'link is closed');
    const bytes = encodeControl(message);
    if (bytes.length > MAX_CONTROL_MESSAGE) throw new LimitError('MAX_CONTROL_MESSAGE', 'control message too large');
    const fragments = fragmentControl(bytes);
    if (this.queue.cells + fragments.length > this.maxQueue) throw new LimitError('MAX_LINK_QUEUE_CELLS', 'link send queue has no room for the message');
    for (const f of fragments) this.sendCell(0, CellCommand.CONTROL, controlBody(f));
    return bytes.length;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const run = (): void => {
      this.flushScheduled = false;
      this.flush();
    };
    // The first flush of a turn of the event loop: once the current task ends (specs/link.md §4.2), so every cell it
    // queued shares the frames and none waits for the turn (a setImmediate cost ~0.1 ms a hop, twelve hops to a first
    // byte; a browser's setTimeout ≥ 1 ms). Later ones in the same turn wait for its end: a busy relay then frames the
    // cells of every socket read of the turn together, instead of a frame (four cells' bytes on the wire, four cells
    // of the next hop's read budget) for each read's one or two cells.
    if (deferFlush !== endOfTask || typeof setImmediate !== 'function') return deferFlush(run);
    if (this.flushedThisTurn) {
      setImmediate(run);
      return;
    }
    this.flushedThisTurn = true;
    setImmediate(() => (this.flushedThisTurn = false));
    deferFlush(run);
  }

  /**
   * Frames every queued cell; the frames leave in one socket write (cork/uncork) where the socket allows it, and are
   * sealed into one buffer allocated for the whole flush (the socket holds each frame until it is written, so frames
   * cannot share a buffer across flushes).
   */
  private flush(): void {
    if (this.state !== 'open' || this.queue.cells === 0) return;
    if (this.socket.sendPacked && this.socket.messageGap !== undefined) return this.flushPacked(this.socket.messageGap);
    const frames = Math.ceil(this.queue.cells / FRAME_CELLS);
    const slab = sendSlab(frames);
    this.socket.cork?.();
    try {
      for (let i = 0; i < frames && this.state === 'open' && this.queue.cells > 0; i++) this.flushFrame(slab.subarray(i * FRAME_LEN, (i + 1) * FRAME_LEN));
    } finally {
      this.socket.uncork?.();
    }
  }

  /**
   * flush() on a socket that frames its messages itself: frames are sealed straight into their places in a buffer
   * that also holds the WebSocket header before each (`gap` bytes), PACKED_FRAMES to a buffer, so each buffer leaves
   * in one write with no copy, no allocation and no callback per frame. A buffer is reused only once the socket
   * reports its write done.
   */
  private flushPacked(gap: number): void {
    const stride = gap + FRAME_LEN;
    const done = givePacked;
    this.socket.cork?.();
    try {
      while (this.state === 'open' && this.queue.cells > 0) {
        const frames = Math.min(PACKED_FRAMES, Math.ceil(this.queue.cells / FRAME_CELLS));
        const buf = takePacked(frames * stride);
        for (let i = 0; i < frames; i++) {
          const n = this.queue.nextCells;
          const plain = this.queue.shift();
          this.stats.cellsOut += n;
          try {
            this.sendCipher!.sealInto(plain, buf.subarray(i * stride + gap, (i + 1) * stride));
          } finally {
            FrameQueue.release(plain);
          }
        }
        this.socket.sendPacked!(buf, frames, FRAME_LEN, () => done(buf));
        this.sent(frames);
      }
    } finally {
      this.socket.uncork?.();
    }
  }

  /** Sends one frame with up to FRAME_CELLS queued cells, padded with PADDING cells, sealed into `out` (or a new buffer). */
  private flushFrame(out: Uint8Array = sendSlab(1)): void {
    if (this.state !== 'open' || !this.sendCipher) return;
    const n = this.queue.nextCells;
    const plain = n > 0 ? this.queue.shift() : paddingPlain;
    this.stats.cellsOut += n;
    try {
      this.write(this.sendCipher.sealInto(plain, out));
    } finally {
      if (n > 0) FrameQueue.release(plain);
    }
  }

  /** Closes the link; `error` says why (null for an orderly close). */
  close(error: AlliumError | null = null): void {
    if (this.state === 'closed') return;
    if (this.state === 'open') this.flush();
    // No reason text: a peer never learns our error codes (a prober sees what any web app would send).
    this.socket.close(error ? 1002 : 1000);
    this.teardown(error);
  }

  /** Closes the link (as close() does) and drops its connection without waiting for the peer to answer the close. */
  terminate(error: AlliumError | null = null): void {
    this.close(error);
    this.socket.terminate?.();
  }

  private fail(e: unknown): void {
    const err = isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'link failed', { cause: e });
    if (this.state === 'closed') return;
    this.socket.close(1002);
    this.teardown(err);
  }

  private teardown(error: AlliumError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.padTimer) clearTimeout(this.padTimer);
    this.padTimer = null;
    this.padding = null;
    this.queue.clear();
    this.deferredAnswer = null;
    this.control = [];
    this.controlBytes = 0;
    this.sendCipher?.wipe();
    this.recvCipher?.wipe();
    this.emit('link:close', error);
  }
}

export { FRAME_LEN };
