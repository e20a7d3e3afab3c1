/**
 * Message mode, the client side (specs/mix.md §5): a Loopix-style sender and poller over the link to the client's
 * gateway. Three Poisson streams, every interval drawn with the CSPRNG:
 *
 *   payload  rate λ (sendRate): the oldest queued real message (or acknowledgement: the two lanes alternate while
 *            both wait), else a drop-cover packet (DROP at a random mix)
 *   loop     rate loopRate: a packet to the client's own inbox, sealed to itself and marked as a loop
 *   poll     rate pollRate: a MIX_POLL; the gateway answers with MIX_POLL_BATCH MIX_MAIL cells, mail or dummies
 *
 * so what the client sends, and when, says nothing about when its user writes or is written to. Each packet's path
 * is the client's gateway, MIX_LAYERS mixes drawn afresh, and the recipient's gateway (or, for drop cover, any
 * mix), each hop's hold drawn from Exp(delayMeanMs). With `cover: false` (the audit's comparison, not a user
 * setting) a real message leaves at once (at the next poll, if it could not) and nothing else is sent but polls.
 *
 * Payloads are sealed to the recipient's mix key (libsodium sealed box): the frame says only kind, id and data.
 * Who wrote is for the data to prove (a Messenger boxes it under the pair's key: messenger-mix.ts, mix.md §8). Not
 * here: fragmentation of messages over MAX_MIX_MESSAGE, loop-based detection of dropping mixes, the choice and keeping
 * of the gateway (AlliumClient.mixGateway()).
 */
import { crypto, type KeyPair } from '../../crypto/index.js';
import { Emitter } from '../../net/emitter.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { decodeMixMailBody, mixPollBody } from '../../protocol/mix-cells.js';
import { createMixPacket, MAX_MIX_DELAY_MS, MIX_PAYLOAD_LEN, mixInbox, type MixFinal, type MixHop } from '../../protocol/mix-packet.js';

/** Payload stream rate λ, packets a second (specs/limits.md MIX_SEND_RATE). */
export const MIX_SEND_RATE = 2;
/** Loop cover rate, packets a second (MIX_LOOP_RATE). */
export const MIX_LOOP_RATE = 1;
/** Polls a second (MIX_POLL_RATE). */
export const MIX_POLL_RATE = 1;
/** Mean hold at each mix, ms (MIX_DELAY_MEAN). */
export const MIX_DELAY_MEAN_MS = 100;
/** Mixes between the two gateways (MIX_LAYERS). */
export const MIX_LAYERS = 2;
/** Real messages queued at most before send() refuses (MAX_MIX_SEND_QUEUE). */
export const MAX_MIX_SEND_QUEUE = 1000;
/** Acknowledgements waiting in the acknowledgement lane at most (MAX_MIX_ACK_QUEUE, specs/mix.md §5.2). */
export const MAX_MIX_ACK_QUEUE = 100;
const SEAL_OVERHEAD = 48;
const FRAME_HEADER = 1 + 16 + 2;
const FRAME_LEN = MIX_PAYLOAD_LEN - SEAL_OVERHEAD; // 643
/** Longest message one packet carries (MAX_MIX_MESSAGE): 624 bytes. */
export const MAX_MIX_MESSAGE = FRAME_LEN - FRAME_HEADER;

const FrameKind = { MESSAGE: 1, LOOP: 2 } as const;

/** A mix relay as the client uses it: identity and mix (onion) key from its descriptor. */
export interface MixRelayInfo {
  readonly identity: Uint8Array;
  readonly mixKey: Uint8Array;
}

/** What a recipient gives its correspondents (specs/mix.md §1). */
export interface MixAddress {
  readonly gateway: Uint8Array;
  readonly inbox: Uint8Array;
  readonly key: Uint8Array;
}

export interface MixClientComponents {
  /**
   * Sends a MIX (packet) or MIX_POLL (poll) cell on the link to the gateway. Returns whether the cell was handed to
   * the link: false (the link is down) puts a real message back at the head of the queue (specs/mix.md §5.1).
   */
  readonly send: (kind: 'packet' | 'poll', body: Uint8Array) => boolean;
  /** The mix relays of the current consensus (the gateway among them). */
  readonly mixes: () => readonly MixRelayInfo[];
}

export interface MixClientInit {
  /** The client's gateway (its first hop, and where its inbox is). */
  readonly gateway: Uint8Array;
  /** Default: fresh from the CSPRNG. */
  readonly inboxSecret?: Uint8Array;
  /** The X25519 key payloads to this client are sealed to. Default: fresh. */
  readonly keys?: KeyPair;
  /** Send drop and loop cover at constant rates (default true). */
  readonly cover?: boolean;
  readonly sendRate?: number;
  readonly loopRate?: number;
  readonly pollRate?: number;
  readonly delayMeanMs?: number;
  readonly layers?: number;
}

export interface MixClientStats {
  realSent: number;
  dropSent: number;
  loopSent: number;
  polls: number;
  mailCells: number;
  received: number;
  loopsReturned: number;
}

/** A message waiting for a payload slot. */
interface Queued {
  readonly to: MixAddress;
  /** The frame, or (an acknowledgement batch, specs/mix.md §8.5) what gives its data when its slot comes. */
  readonly frame: Uint8Array | (() => Uint8Array);
  readonly id: Uint8Array;
  /** Called when its packet leaves (before 'mix:sent'), or when it is dropped. */
  readonly left?: () => void;
  /** Called when it is dropped because its data could not be made (after `left`). */
  readonly failed?: (err: AlliumError) => void;
}

export type MixClientEvents = {
  /** A message for this client: its data and the sender's random id. */
  'mix:message': [data: Uint8Array, id: Uint8Array];
  /** A real message left in a packet (for latency figures). */
  'mix:sent': [id: Uint8Array];
  /** A payload, loop or poll event failed (its slot is spent; the stream goes on). */
  'mix:error': [err: AlliumError];
};

export class MixClient extends Emitter<MixClientEvents> {
  readonly stats: MixClientStats = { realSent: 0, dropSent: 0, loopSent: 0, polls: 0, mailCells: 0, received: 0, loopsReturned: 0 };
  readonly address: MixAddress;
  private readonly inboxSecret: Uint8Array;
  private readonly keys: KeyPair;
  private readonly queue: Queued[] = [];
  /** The acknowledgement lane (specs/mix.md §5.2): alternates with `queue` while both wait. */
  private readonly acks: Queued[] = [];
  /** The last packet that left came from the acknowledgement lane. */
  private lastWasAck = false;
  private readonly seen = new Set<string>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private running = false;
  private readonly o: Required<Omit<MixClientInit, 'inboxSecret' | 'keys'>>;

  constructor(
    private readonly c: MixClientComponents,
    init: MixClientInit,
  ) {
    super();
    const cr = crypto();
    this.inboxSecret = init.inboxSecret ?? cr.random(32);
    this.keys = init.keys ?? cr.x25519Keypair();
    this.o = {
      gateway: init.gateway,
      cover: init.cover ?? true,
      sendRate: init.sendRate ?? MIX_SEND_RATE,
      loopRate: init.loopRate ?? MIX_LOOP_RATE,
      pollRate: init.pollRate ?? MIX_POLL_RATE,
      delayMeanMs: init.delayMeanMs ?? MIX_DELAY_MEAN_MS,
      layers: init.layers ?? MIX_LAYERS,
    };
    this.address = { gateway: init.gateway, inbox: mixInbox(this.inboxSecret), key: this.keys.publicKey };
  }

  /** Starts the Poisson streams (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.every(this.o.pollRate, () => this.poll());
    if (!this.o.cover) return;
    this.every(this.o.sendRate, () => this.payloadEvent());
    this.every(this.o.loopRate, () => this.sendLoop());
  }

  stop(): void {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * Queues `data` for `to` (sent at the payload stream's next event; at once with cover off), behind the queued
   * messages, or with `ack` in the acknowledgement lane, which alternates with the messages while both wait (an
   * acknowledgement, specs/mix.md §5.2, §8.5). `data` may be a function, called for the data at each slot in which
   * the packet is to leave (an acknowledgement batch is sealed with the ids it holds then, mix.md §8.5; data over
   * MAX_MIX_MESSAGE then drops it, as does a throw); `left` is called when its packet has left or it was dropped,
   * then `failed` with the typed error if it was dropped (the slot goes on as a cover slot). Returns the frame's random id
   * ('mix:sent' names it when its packet leaves). Throws ERR_MIX_PATH when it is over MAX_MIX_MESSAGE, ERR_LIMIT
   * when MAX_MIX_SEND_QUEUE messages (or MAX_MIX_ACK_QUEUE acknowledgements) are waiting.
   */
  send(
    to: MixAddress,
    data: Uint8Array | (() => Uint8Array),
    options: { ack?: boolean; left?: () => void; failed?: (err: AlliumError) => void } = {},
  ): Uint8Array {
    if (typeof data !== 'function' && data.length > MAX_MIX_MESSAGE)
      throw new AlliumError('ERR_MIX_PATH', `a message-mode message is at most ${MAX_MIX_MESSAGE} bytes`);
    const lane = options.ack ? this.acks : this.queue;
    if (lane.length >= (options.ack ? MAX_MIX_ACK_QUEUE : MAX_MIX_SEND_QUEUE))
      throw new AlliumError('ERR_LIMIT', options.ack ? 'too many message-mode acknowledgements waiting' : 'too many message-mode messages waiting');
    const id = crypto().random(16);
    lane.push({
      to,
      frame: typeof data === 'function' ? data : frame(FrameKind.MESSAGE, id, data),
      id,
      ...(options.left ? { left: options.left } : {}),
      ...(options.failed ? { failed: options.failed } : {}),
    });
    if (!this.o.cover) this.payloadEvent();
    return id;
  }

  /** Messages waiting for a slot of the payload stream (acknowledgements not counted). */
  get waiting(): number {
    return this.queue.length;
  }

  /** Places left in the message queue (MAX_MIX_SEND_QUEUE − waiting): a message in fragments takes one each (mix.md §8.4). */
  get room(): number {
    return MAX_MIX_SEND_QUEUE - this.queue.length;
  }

  /** Acknowledgements waiting in their lane. */
  get acksWaiting(): number {
    return this.acks.length;
  }

  /** A MIX_MAIL cell's body from the gateway. */
  onMail(body: Uint8Array): void {
    this.stats.mailCells++;
    const m = decodeMixMailBody(body);
    if (!m.mail) return;
    const plain = crypto().open(m.payload, this.keys);
    if (!plain || plain.length !== FRAME_LEN) return; // not for us, or damaged
    const kind = plain[0];
    const id = plain.subarray(1, 17);
    const len = (plain[17]! << 8) | plain[18]!;
    if (len > MAX_MIX_MESSAGE) return;
    const key = Buffer.from(id).toString('hex');
    if (this.seen.has(key)) return; // a replayed copy (specs/mix.md §2.3)
    this.seen.add(key);
    if (this.seen.size > 10_000) this.seen.delete(this.seen.values().next().value!);
    if (kind === FrameKind.LOOP) {
      this.stats.loopsReturned++;
      return;
    }
    if (kind !== FrameKind.MESSAGE) return;
    this.stats.received++;
    this.emit('mix:message', plain.slice(FRAME_HEADER, FRAME_HEADER + len), Uint8Array.from(id));
  }

  private every(ratePerSecond: number, f: () => void): void {
    if (!(ratePerSecond > 0)) return;
    const next = (): void => {
      const t = setTimeout(
        () => {
          this.timers.delete(t);
          if (!this.running) return;
          // Whatever one event throws, its slot is spent and the stream's next event is still set: a stream that
          // stopped, or a process that crashed, on one bad packet would show at the gateway (mix.md §5.1).
          try {
            f();
          } catch (e) {
            this.emit(
              'mix:error',
              isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', `a message-mode event failed: ${e instanceof Error ? e.message : String(e)}`),
            );
          }
          next();
        },
        exponential(1000 / ratePerSecond),
      );
      this.timers.add(t);
    };
    next();
  }

  private payloadEvent(): void {
    // The lanes alternate while both wait: a message waits behind at most MIX_ACKS_AHEAD (1) acknowledgement for each
    // slot it moves up, and acknowledgements take at most half the slots (mix.md §5.2).
    const fromAcks = this.acks.length > 0 && (this.queue.length === 0 || !this.lastWasAck);
    const lane = fromAcks ? this.acks : this.queue;
    const m = lane.shift();
    const f = m ? this.frameOf(m) : null;
    const sealed = m && f ? this.sealFor(m, f) : null;
    if (m && sealed) {
      // A packet that could not leave (no path this slot, or the link down) puts its message back at the head: the
      // slot is spent as a cover slot that could not leave would be, and the message waits for the next (mix.md §5.1).
      if (!this.sendPacket(m.to.gateway, { kind: 'deliver', inbox: m.to.inbox }, sealed)) {
        lane.unshift(m);
        return;
      }
      this.lastWasAck = fromAcks;
      m.left?.();
      this.stats.realSent++;
      this.emit('mix:sent', m.id);
      return;
    }
    if (!this.o.cover) return;
    const mixes = this.c.mixes();
    if (mixes.length === 0) return;
    this.stats.dropSent++;
    this.sendPacket(mixes[crypto().randomInt(mixes.length)]!.identity, { kind: 'drop' }, crypto().random(MIX_PAYLOAD_LEN));
  }

  /**
   * The frame of `m`, made now if it is made at its slot; null when that failed — a throw, or data over
   * MAX_MIX_MESSAGE (never from MessengerMix) — and then `m` is dropped: its `left` runs (so that nothing joins a
   * batch that will not leave), then `failed` with the typed error, and the slot goes on as one with nothing queued.
   */
  private frameOf(m: Queued): Uint8Array | null {
    if (typeof m.frame !== 'function') return m.frame;
    let err: AlliumError;
    try {
      const data = m.frame();
      if (data.length <= MAX_MIX_MESSAGE) return frame(FrameKind.MESSAGE, m.id, data);
      err = new AlliumError('ERR_MIX_PATH', `a message-mode message is at most ${MAX_MIX_MESSAGE} bytes`);
    } catch (e) {
      err = isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', `a message-mode message could not be made: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.drop(m, err);
    return null;
  }

  /**
   * `f` sealed to `m`'s recipient key; null when that failed (a key of small order: decoders refuse them, so this
   * guards a key that came another way) — `m` is then dropped as in frameOf and the slot goes on.
   */
  private sealFor(m: Queued, f: Uint8Array): Uint8Array | null {
    try {
      return crypto().seal(f, m.to.key);
    } catch (e) {
      this.drop(m, isAlliumError(e) ? e : new AlliumError('ERR_BAD_POINT', 'a message-mode recipient key that no box can be sealed to'));
      return null;
    }
  }

  /** Drops `m` from the lanes for good: its `left`, then its `failed` with `err`; neither may stop the lane. */
  private drop(m: Queued, err: AlliumError): void {
    for (const call of [() => m.left?.(), () => m.failed?.(err)]) {
      try {
        call();
      } catch {
        /* a caller's callback: it must not stop the lane either */
      }
    }
  }

  private sendLoop(): void {
    this.stats.loopSent++;
    const f = frame(FrameKind.LOOP, crypto().random(16), new Uint8Array(0));
    this.sendPacket(this.o.gateway, { kind: 'deliver', inbox: this.address.inbox }, crypto().seal(f, this.keys.publicKey));
  }

  private poll(): void {
    this.stats.polls++;
    this.c.send('poll', mixPollBody(this.inboxSecret));
    // With cover off a message is sent at once; one that could not leave then is tried again at each poll event.
    if (!this.o.cover && this.queue.length + this.acks.length > 0) this.payloadEvent();
  }

  /** Gateway, MIX_LAYERS mixes (never the same relay twice in a row), then `last`. Returns whether the packet left. */
  private sendPacket(last: Uint8Array, final: MixFinal, payload: Uint8Array): boolean {
    const cr = crypto();
    const mixes = this.c.mixes();
    const byId = (id: Uint8Array): MixRelayInfo | undefined => mixes.find((m) => cr.equal(m.identity, id));
    const gateway = byId(this.o.gateway);
    const end = byId(last);
    if (!gateway || !end) return false; // not in the consensus now: nothing can be sent this slot
    const hops: MixRelayInfo[] = [gateway];
    for (let i = 0; i < this.o.layers; i++) {
      const prev = hops[hops.length - 1]!;
      const lastLayer = i === this.o.layers - 1;
      const fit = mixes.filter((m) => !cr.equal(m.identity, prev.identity) && !(lastLayer && cr.equal(m.identity, end.identity)));
      if (fit.length === 0) return false;
      hops.push(fit[cr.randomInt(fit.length)]!);
    }
    if (cr.equal(hops[hops.length - 1]!.identity, end.identity)) return false;
    hops.push(end);
    const path: MixHop[] = hops.map((h) => ({
      identity: h.identity,
      mixKey: h.mixKey,
      delayMs: Math.min(MAX_MIX_DELAY_MS, Math.round(exponential(this.o.delayMeanMs))),
    }));
    let packet: Uint8Array;
    try {
      packet = createMixPacket(path, final, payload);
    } catch (e) {
      // A hop's key no layer can be made to (descriptors refuse small-order keys, directory.md §2.4; this guards
      // one that came another way): the packet cannot leave this slot, as with no path; the next draws anew.
      if (isAlliumError(e) && (e.code === 'ERR_BAD_POINT' || e.code === 'ERR_KEY_FORMAT')) return false;
      throw e;
    }
    return this.c.send('packet', packet);
  }
}

/** An exponential draw of mean `mean` from the CSPRNG (specs/mix.md §5.1). */
function exponential(mean: number): number {
  return -Math.log(1 - crypto().uniform()) * mean;
}

function frame(kind: number, id: Uint8Array, data: Uint8Array): Uint8Array {
  const f = new Uint8Array(FRAME_LEN);
  f[0] = kind;
  f.set(id, 1);
  f[17] = data.length >>> 8;
  f[18] = data.length & 0xff;
  f.set(data, FRAME_HEADER);
  return f;
}
