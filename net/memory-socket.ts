/**
 * In-memory link sockets: two LinkSockets joined back to back, so relays and clients can run in one process with
 * no network (the simulator in sim/, and tests). Each direction models a TCP connection carrying WebSocket
 * messages:
 *
 * - messages arrive whole and in order, after the one-way latency plus their serialisation time at the path's
 *   bandwidth (a message waits for the ones before it: `bufferedAmount` counts the bytes not yet serialised);
 * - loss costs time, not messages: a message hit by loss (probability `loss`) arrives a retransmission timeout
 *   later, and holds back every message behind it, as TCP does (a WebSocket never loses a message and carries on);
 * - close() reaches the peer after the messages already sent; `kill()` is a crashed process (the peer sees the
 *   connection reset), `blackhole()` a host that vanished (nothing arrives and nothing says so: the peer finds out
 *   from its own timeouts).
 *
 * Time comes from the global setTimeout and performance.now(), so under the simulator's virtual clock everything runs
 * in virtual time.
 */
import { crypto } from '../crypto/index.js';
import type { LinkSocket } from './socket.js';

export interface MemoryPathOptions {
  /** One-way delay in milliseconds (default 0). */
  latencyMs?: number;
  /** Bytes per second; 0 or absent: no serialisation delay. */
  bandwidth?: number;
  /** Probability that a message is hit by loss and retransmitted (default 0). */
  loss?: number;
  /** Delay a retransmission adds, in milliseconds (default: max(200, 3 × latency), TCP's minimum RTO or more). */
  retransmitMs?: number;
  /** Random source for loss (default the crypto facade's uniform(), which the simulator seeds). */
  random?: () => number;
}

export interface MemorySocketPairOptions {
  /** The path from the first socket to the second. */
  forward?: MemoryPathOptions;
  /** The path back (default: the same as forward). */
  backward?: MemoryPathOptions;
  /** `remoteAddress` each side reports for the other. */
  firstAddress?: string | null;
  secondAddress?: string | null;
}

type State = 'open' | 'closed';

export class MemorySocket implements LinkSocket {
  private peer: MemorySocket | null = null;
  private state: State = 'open';
  private dead = false;
  private paused = false;
  private held: Uint8Array[] = [];
  private messageFns: ((data: Uint8Array, binary: boolean) => void)[] = [];
  private closeFns: ((code: number) => void)[] = [];
  private errorFns: ((err: unknown) => void)[] = [];
  /** When the path's sender finishes serialising what it has queued. */
  private wireFreeAt = 0;
  /** Latest arrival scheduled so far (keeps delivery in order). */
  private lastArrival = 0;
  /** Messages still being serialised: [time done, bytes]. */
  private inFlight: [number, number][] = [];
  private inFlightHead = 0;
  private buffered = 0;
  private closeReported = false;
  /**
   * What the peer sent and has not arrived yet, in order. Each arrival timer takes the head, so deliveries keep
   * their order even when two timers round to the same instant.
   */
  private incoming: ({ data: Uint8Array } | { close: number })[] = [];
  private incomingHead = 0;
  /** Bytes and messages sent and received (for the simulator's accounting). */
  readonly stats = { messagesOut: 0, messagesIn: 0, bytesOut: 0, bytesIn: 0 };

  constructor(
    private readonly path: Required<Omit<MemoryPathOptions, 'random' | 'retransmitMs'>> & { retransmitMs: number; random: () => number },
    readonly remoteAddress: string | null,
  ) {}

  /** @internal */
  connect(peer: MemorySocket): void {
    this.peer = peer;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get bufferedAmount(): number {
    const now = nowMs();
    while (this.inFlightHead < this.inFlight.length && this.inFlight[this.inFlightHead]![0] <= now) {
      this.buffered -= this.inFlight[this.inFlightHead]![1];
      this.inFlightHead++;
    }
    if (this.inFlightHead > 64 && this.inFlightHead * 2 > this.inFlight.length) {
      this.inFlight = this.inFlight.slice(this.inFlightHead);
      this.inFlightHead = 0;
    }
    return this.buffered;
  }

  send(data: Uint8Array): void {
    if (this.state !== 'open' || this.dead || !this.peer) return;
    const copy = Uint8Array.from(data);
    const arrival = this.transmit(copy.length);
    this.stats.messagesOut++;
    this.stats.bytesOut += copy.length;
    this.peer.arriveAt(arrival, { data: copy });
  }

  /** @internal Queues an item from the peer, to arrive at `at`. */
  arriveAt(at: number, item: { data: Uint8Array } | { close: number }): void {
    this.incoming.push(item);
    setTimeout(() => this.arriveNext(), at - nowMs());
  }

  private arriveNext(): void {
    const item = this.incoming[this.incomingHead];
    this.incoming[this.incomingHead++] = undefined as never;
    if (this.incomingHead === this.incoming.length) {
      this.incoming = [];
      this.incomingHead = 0;
    }
    if (!item) return;
    if ('data' in item) this.receive(item.data);
    else this.remoteClosed(item.close);
  }

  /** Schedules `bytes` on the path; returns the arrival time at the peer. */
  private transmit(bytes: number): number {
    const now = nowMs();
    const p = this.path;
    const start = Math.max(now, this.wireFreeAt);
    const done = p.bandwidth > 0 ? start + (bytes * 1000) / p.bandwidth : start;
    this.wireFreeAt = done;
    if (done > now) {
      this.inFlight.push([done, bytes]);
      this.buffered += bytes;
    }
    let arrival = done + p.latencyMs;
    if (p.loss > 0 && p.random() < p.loss) arrival += p.retransmitMs;
    arrival = Math.max(arrival, this.lastArrival);
    this.lastArrival = arrival;
    return arrival;
  }

  private receive(data: Uint8Array): void {
    if (this.state !== 'open' || this.dead) return;
    if (this.paused) {
      this.held.push(data);
      return;
    }
    this.deliver(data);
  }

  private deliver(data: Uint8Array): void {
    this.stats.messagesIn++;
    this.stats.bytesIn += data.length;
    for (const fn of this.messageFns) fn(data, true);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    if (held.length === 0) return;
    setTimeout(() => {
      for (let i = 0; i < held.length; i++) {
        if (this.state !== 'open' || this.dead) return;
        if (this.paused) {
          this.held.unshift(...held.slice(i));
          return;
        }
        this.deliver(held[i]!);
      }
    }, 0);
  }

  onMessage(fn: (data: Uint8Array, binary: boolean) => void): void {
    this.messageFns.push(fn);
  }

  onClose(fn: (code: number) => void): void {
    this.closeFns.push(fn);
  }

  onError(fn: (err: unknown) => void): void {
    this.errorFns.push(fn);
  }

  /** Orderly close: the peer sees it after everything already sent; this side reports it a round trip later. */
  close(code = 1000): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.held = [];
    const peer = this.peer;
    if (!peer || this.dead) return this.reportClose(code);
    const arrival = this.transmit(0);
    peer.arriveAt(arrival, { close: code });
    setTimeout(() => this.reportClose(code), arrival - nowMs() + this.path.latencyMs);
  }

  /** The process on this side crashed: nothing more is sent or received; the peer sees a reset. */
  kill(): void {
    if (this.dead) return;
    this.dead = true;
    this.state = 'closed';
    this.held = [];
    const at = Math.max(this.lastArrival, nowMs() + this.path.latencyMs);
    this.lastArrival = at;
    this.peer?.arriveAt(at, { close: 1006 });
  }

  /** The host on this side vanished: nothing is sent or received, and the peer is not told. */
  blackhole(): void {
    this.dead = true;
    this.state = 'closed';
    this.held = [];
  }

  private remoteClosed(code: number): void {
    if (this.dead) return;
    this.state = 'closed';
    this.held = [];
    this.reportClose(code);
  }

  private reportClose(code: number): void {
    if (this.closeReported || this.dead) return;
    this.closeReported = true;
    for (const fn of this.closeFns) fn(code);
  }
}

/** A monotonic clock with sub-millisecond resolution (virtual under the simulator's clock). */
function nowMs(): number {
  return performance.now();
}

function resolvePath(o: MemoryPathOptions = {}): Required<Omit<MemoryPathOptions, 'random' | 'retransmitMs'>> & { retransmitMs: number; random: () => number } {
  const latencyMs = o.latencyMs ?? 0;
  return {
    latencyMs,
    bandwidth: o.bandwidth ?? 0,
    loss: o.loss ?? 0,
    retransmitMs: o.retransmitMs ?? Math.max(200, 3 * latencyMs),
    random: o.random ?? (() => crypto().uniform()),
  };
}

/** Two sockets joined back to back: what one sends, the other receives. */
export function memorySocketPair(options: MemorySocketPairOptions = {}): [MemorySocket, MemorySocket] {
  const forward = resolvePath(options.forward);
  const backward = resolvePath(options.backward ?? options.forward);
  const a = new MemorySocket(forward, options.secondAddress ?? null);
  const b = new MemorySocket(backward, options.firstAddress ?? null);
  a.connect(b);
  b.connect(a);
  return [a, b];
}
