/**
 * A message-level stand-in for net/link.ts, for overlays of thousands of relays in one process.
 *
 * It has the members the overlay (relay/overlay.ts) uses — `peer`, `isOpen`, `sendControl`, `answerRequest`,
 * `close`, `socket.remoteAddress` (none: no address block) and the `link:control` and `link:close` events — and hands each CONTROL message to the other end as the decoded object,
 * after the path's latency and the serialisation time of the bytes the real link would send. What it skips is the
 * link layer itself: the handshake's X25519 operations, frame encryption, CONTROL fragmentation and reassembly,
 * and CBOR decoding and schema validation at the receiver. Those cost CPU at a relay, not bytes or messages, and
 * run for real in the full simulation tier (sim/relay-node.ts with real links) and in the tests.
 *
 * Accounting: a control message of n bytes (its exact deterministic-CBOR length, sim/cbor-size.ts) takes
 * ceil(n / 1016) CONTROL cells; cells travel in frames of FRAME_CELLS cells of FRAME_LEN bytes, so the message is
 * charged ceil(cells / FRAME_CELLS) frames. (A real link may pack cells of two messages queued in the same event
 * loop turn into one frame; this charges each message its own frames, an upper bound within one frame.)
 */
import { CONTROL_DATA_MAX } from '../protocol/cell.js';
import type { ControlMessage } from '../protocol/control.js';
import { AlliumError } from '../protocol/errors.js';
import { FRAME_CELLS, FRAME_LEN, type LinkPeer } from '../protocol/link-handshake.js';
import { Emitter } from '../net/emitter.js';
import type { LinkEvents } from '../net/link.js';
import type { VirtualClock } from './clock.js';

export interface MessagePath {
  latencyMs: number;
  /** Bytes per second (0: unlimited). */
  bandwidth: number;
  loss: number;
}

/** Bytes a relay sent and received over its message-level links, and the world's totals by message type. */
export class Traffic {
  payloadOut = 0;
  payloadIn = 0;
  wireOut = 0;
  wireIn = 0;
  messagesOut = 0;
  messagesIn = 0;
  /** By message type ("gossip-push", …): [messages, payload bytes, wire bytes] sent. */
  readonly byType = new Map<string, [number, number, number]>();

  reset(): void {
    this.payloadOut = this.payloadIn = this.wireOut = this.wireIn = this.messagesOut = this.messagesIn = 0;
    this.byType.clear();
  }
}

let nextId = 1_000_000_000;
const NO_ARGS: unknown[] = [];

export class MessageLink extends Emitter<LinkEvents> {
  readonly id = nextId++;
  peer: LinkPeer | null = null;
  /** No network address: the overlay's per-block counts leave these links out. */
  readonly socket: { readonly remoteAddress: string | null } = { remoteAddress: null };
  private other: MessageLink | null = null;
  private state: 'open' | 'closed' = 'open';
  private dead = false;
  private wireFreeAt = 0;
  private lastArrival = 0;
  /** In flight towards this end, in order: message, payload bytes, wire bytes (flat, three slots each). */
  private incoming: (ControlMessage | number | null)[] = [];
  private incomingHead = 0;
  private readonly arriveNext = (): void => this.arrive();

  private constructor(
    private readonly clock: VirtualClock,
    private readonly path: MessagePath,
    private readonly random: () => number,
    private readonly measure: (m: ControlMessage) => number,
    readonly initiatedHere: boolean,
    private readonly traffic: Traffic,
    private readonly totals: Traffic | null,
  ) {
    super();
  }

  /** Two connected ends: [dialer's, listener's], each counting into its relay's traffic (and `totals`). */
  static pair(
    clock: VirtualClock,
    path: MessagePath,
    random: () => number,
    measure: (m: unknown) => number,
    traffic: [Traffic, Traffic],
    totals: Traffic | null = null,
  ): [MessageLink, MessageLink] {
    const a = new MessageLink(clock, path, random, measure, true, traffic[0], totals);
    const b = new MessageLink(clock, path, random, measure, false, traffic[1], totals);
    a.other = b;
    b.other = a;
    return [a, b];
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  get isCongested(): boolean {
    return false;
  }

  /** Never over its high-water mark: the stand-in models serialisation time, not buffers. */
  get overHighWater(): boolean {
    return false;
  }

  /** Answers at once (net/link.ts holds an answer while the real link is over its high-water mark). */
  answerRequest(produce: () => void): boolean {
    if (this.state !== 'open') return false;
    produce();
    return true;
  }

  sendControl(m: ControlMessage): number {
    if (this.state !== 'open') throw new AlliumError('ERR_LINK_CLOSED', 'link is closed');
    const payload = this.measure(m);
    const cells = Math.max(1, Math.ceil(payload / CONTROL_DATA_MAX));
    const frames = Math.ceil(cells / FRAME_CELLS);
    const bytes = frames * FRAME_LEN;
    if (this.dead) return payload;
    const tr = this.traffic;
    tr.messagesOut++;
    tr.payloadOut += payload;
    tr.wireOut += bytes;
    if (this.totals) {
      const t = this.totals.byType.get(m.t);
      if (t) {
        t[0]++;
        t[1] += payload;
        t[2] += bytes;
      } else this.totals.byType.set(m.t, [1, payload, bytes]);
      this.totals.messagesOut++;
      this.totals.payloadOut += payload;
      this.totals.wireOut += bytes;
    }
    const other = this.other!;
    const now = this.clock.now;
    const start = Math.max(now, this.wireFreeAt);
    const done = this.path.bandwidth > 0 ? start + (bytes * 1000) / this.path.bandwidth : start;
    this.wireFreeAt = done;
    let arrival = done + this.path.latencyMs;
    if (this.path.loss > 0 && this.random() < this.path.loss) arrival += Math.max(200, 3 * this.path.latencyMs);
    arrival = Math.max(arrival, this.lastArrival);
    this.lastArrival = arrival;
    other.incoming.push(m, payload, bytes);
    // Message handlers are synchronous: the delivery needs no promise turn after it.
    this.clock.schedule(arrival - now, other.arriveNext, NO_ARGS, 0, true);
    return payload;
  }

  private arrive(): void {
    const q = this.incoming;
    const h = this.incomingHead;
    const m = q[h] as ControlMessage | null;
    const payload = q[h + 1] as number;
    const bytes = q[h + 2] as number;
    q[h] = null;
    this.incomingHead = h + 3;
    if (this.incomingHead === q.length) {
      q.length = 0;
      this.incomingHead = 0;
    } else if (this.incomingHead > 3072 && this.incomingHead * 2 > q.length) {
      this.incoming = q.slice(this.incomingHead);
      this.incomingHead = 0;
    }
    if (!m || this.state !== 'open' || this.dead) return;
    const tr = this.traffic;
    tr.messagesIn++;
    tr.payloadIn += payload;
    tr.wireIn += bytes;
    this.emit('link:control', m, payload);
  }

  /** Closes both ends (the other after the path's latency). */
  close(error: AlliumError | null = null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const other = this.other;
    if (other && !this.dead) {
      const at = Math.max(this.lastArrival, this.clock.now + this.path.latencyMs);
      this.clock.schedule(at - this.clock.now, () => other.remoteClosed(), [], 0, true);
    }
    this.emit('link:close', error);
  }

  private remoteClosed(): void {
    if (this.state === 'closed' || this.dead) return;
    this.state = 'closed';
    this.emit('link:close', new AlliumError('ERR_LINK_CLOSED', 'peer closed the link'));
  }

  /** The host at this end went down: `crash` resets the connection (the peer notices), `vanish` does not. */
  kill(how: 'crash' | 'vanish'): void {
    if (this.dead) return;
    this.dead = true;
    this.state = 'closed';
    const other = this.other;
    if (how === 'crash' && other) {
      const at = Math.max(this.lastArrival, this.clock.now + this.path.latencyMs);
      this.clock.schedule(at - this.clock.now, () => other.remoteClosed(), [], 0, true);
    }
  }
}
