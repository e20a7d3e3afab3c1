/**
 * Streams at the last hop of a circuit (specs/streams.md §3, specs/content.md §8): one StreamMux per circuit, and
 * the services that open streams — BEGIN for the exit, STORE and FETCH for the content store. A relay that does
 * not offer a service answers its opening message with END.
 *
 * What a stream holds here is bounded (specs/streams.md §4.5): streams per circuit, and a stream whose queue towards
 * the client has not moved for STREAM_STALL_TIMEOUT_MS (the client withholds SENDMEs, or does not read) is ended
 * with TIMEOUT by `maintain()`. `buffers()` reports what each circuit holds, for the out-of-memory handler.
 */
import { destroyReasonOf } from '../protocol/cell.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { EndReason } from '../protocol/stream-messages.js';
import { StreamMux, type MuxStream } from '../net/stream-mux.js';
import type { CircuitEndpointHandler, CircuitHop, CircuitReactor } from './circuits.js';
import type { RelayMetrics } from './metrics.js';

export type StreamOpener = (hop: CircuitHop, mux: StreamMux, stream: MuxStream, data: Uint8Array) => void;

/** What a service behind the streams (the exit) adds to their housekeeping. */
export interface LastHopService {
  /** Bytes it holds for `hop`'s streams outside their queues (an exit's socket buffers), for buffers(). */
  bufferedBytes?(hop: CircuitHop): number;
  /** Periodic housekeeping with the reactor's clock (idle connections). */
  maintain?(now: number): void;
}

/** Streams open on one circuit at its last hop (specs/limits.md). */
export const MAX_STREAMS_PER_CIRCUIT = 1024;
/** Time a stream's queue towards the client may go without sending a byte before the stream is ended. */
export const STREAM_STALL_TIMEOUT_MS = 60_000;

export interface StreamsHandlerOptions {
  /** Default MAX_STREAMS_PER_CIRCUIT. */
  maxStreamsPerCircuit?: number;
  /** Default STREAM_STALL_TIMEOUT_MS. */
  stallTimeoutMs?: number;
}

const STREAM_COMMANDS = new Set<number>([
  RelayCommand.BEGIN,
  RelayCommand.DATA,
  RelayCommand.END,
  RelayCommand.SENDME,
  RelayCommand.CONNECTED,
  RelayCommand.STORE,
  RelayCommand.FETCH,
]);

export class StreamsHandler implements CircuitEndpointHandler {
  private readonly openers = new Map<number, StreamOpener>();
  private readonly muxes = new Map<CircuitHop, StreamMux>();
  /** For each stream with queued bytes: its bytes sent when first seen stuck, and when. */
  private readonly stuck = new WeakMap<MuxStream, { out: number; since: number }>();
  private readonly services: LastHopService[] = [];
  private readonly maxStreamsPerCircuit: number;
  private readonly stallTimeoutMs: number;

  constructor(
    private readonly reactor: CircuitReactor,
    private readonly metrics: RelayMetrics,
    options: StreamsHandlerOptions = {},
  ) {
    this.maxStreamsPerCircuit = options.maxStreamsPerCircuit ?? MAX_STREAMS_PER_CIRCUIT;
    this.stallTimeoutMs = options.stallTimeoutMs ?? STREAM_STALL_TIMEOUT_MS;
  }

  register(command: RelayCommand, opener: StreamOpener): void {
    this.openers.set(command, opener);
  }

  /** Includes a service's buffers in buffers() and its housekeeping in maintain(). */
  attach(service: LastHopService): void {
    this.services.push(service);
  }

  /** The stream multiplexer of `hop`, if a stream message reached it (tests, status). */
  muxOf(hop: CircuitHop): StreamMux | undefined {
    return this.muxes.get(hop);
  }

  muxFor(hop: CircuitHop): StreamMux {
    let mux = this.muxes.get(hop);
    if (mux) return mux;
    const reactor = this.reactor;
    const m = new StreamMux({
      send: (msg) => reactor.sendBackward(hop, msg),
      lastSentTag: () => hop.crypto!.lastOriginTag,
      lastReceivedTag: () => hop.crypto!.lastForwardTag,
      congested: () => reactor.backwardCongested(hop),
      onDrain: (fn) => hop.prev.link.once('link:drain', fn),
    });
    m.on('mux:begin', (s, data, command) => {
      const opener = this.openers.get(command);
      if (!opener) {
        this.metrics.drops.inc({ reason: 'service_not_offered' });
        return m.reset(s, command === RelayCommand.BEGIN ? EndReason.EXIT_POLICY : EndReason.MISC);
      }
      opener(hop, m, s, data);
    });
    m.on('mux:error', (err) => {
      this.metrics.errors.inc({ code: err.code });
      reactor.destroy(hop, destroyReasonOf(err));
    });
    this.muxes.set(hop, m);
    mux = m;
    return mux;
  }

  deliver(hop: CircuitHop, msg: RelayMessage): boolean {
    if (!STREAM_COMMANDS.has(msg.command) || !hop.isLast) return false;
    const mux = this.muxFor(hop);
    const opening = msg.command === RelayCommand.BEGIN || msg.command === RelayCommand.STORE || msg.command === RelayCommand.FETCH;
    if (opening && mux.size >= this.maxStreamsPerCircuit) {
      this.metrics.drops.inc({ reason: 'stream_limit' });
      this.reactor.sendBackward(hop, { command: RelayCommand.END, streamId: msg.streamId, data: Uint8Array.of(EndReason.RESOURCE_LIMIT) });
      return true;
    }
    mux.onMessage(msg);
    return true;
  }

  /** A circuit with an open stream is not idle (specs/circuits.md §7.3). */
  holds(hop: CircuitHop): boolean {
    return (this.muxes.get(hop)?.size ?? 0) > 0;
  }

  /** Bytes each circuit with streams holds here: its streams' queues and what services report for it. */
  *buffers(): Generator<readonly [CircuitHop, number]> {
    for (const [hop, mux] of this.muxes) {
      let bytes = mux.queuedBytes;
      for (const svc of this.services) bytes += svc.bufferedBytes?.(hop) ?? 0;
      if (bytes > 0) yield [hop, bytes];
    }
  }

  /**
   * Ends (TIMEOUT) every stream whose queue towards the client holds bytes and has sent none for the stall timeout
   * (specs/streams.md §4.5): the client withholds its SENDMEs or its link does not read, and nothing else would free
   * the queue before the circuit closes.
   */
  maintain(now: number): void {
    for (const svc of this.services) svc.maintain?.(now);
    for (const mux of this.muxes.values()) {
      for (const s of [...mux.all]) {
        if (s.queuedBytes === 0 || s.state === 'closed') {
          this.stuck.delete(s);
          continue;
        }
        const seen = this.stuck.get(s);
        if (!seen || seen.out !== s.bytesOut) this.stuck.set(s, { out: s.bytesOut, since: now });
        else if (now - seen.since >= this.stallTimeoutMs) {
          this.metrics.drops.inc({ reason: 'stream_stalled' });
          mux.reset(s, EndReason.TIMEOUT);
        }
      }
    }
  }

  closed(hop: CircuitHop): void {
    this.muxes.get(hop)?.closeAll(EndReason.DESTROYED);
    this.muxes.delete(hop);
  }
}
