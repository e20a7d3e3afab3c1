/**
 * Streams at the last hop of a circuit (specs/streams.md §3, specs/content.md §8): one StreamMux per circuit, and
 * the services that open streams — BEGIN for the exit, STORE and FETCH for the content store. A relay that does
 * not offer a service answers its opening message with END.
 */
import { DestroyReason } from '../protocol/cell.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { EndReason } from '../protocol/stream-messages.js';
import { StreamMux, type MuxStream } from '../net/stream-mux.js';
import type { CircuitEndpointHandler, CircuitHop, CircuitReactor } from './circuits.js';
import type { RelayMetrics } from './metrics.js';

export type StreamOpener = (hop: CircuitHop, mux: StreamMux, stream: MuxStream, data: Uint8Array) => void;

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

  constructor(
    private readonly reactor: CircuitReactor,
    private readonly metrics: RelayMetrics,
    private readonly maxStreamsPerCircuit = 1024,
  ) {}

  register(command: RelayCommand, opener: StreamOpener): void {
    this.openers.set(command, opener);
  }

  muxFor(hop: CircuitHop): StreamMux {
    let mux = hop.attachments.get('mux') as StreamMux | undefined;
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
      reactor.destroy(hop, DestroyReason.PROTOCOL);
    });
    hop.attachments.set('mux', m);
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

  /** A circuit with an open stream is not idle (specs/circuits.md §7.1). */
  holds(hop: CircuitHop): boolean {
    return ((hop.attachments.get('mux') as StreamMux | undefined)?.size ?? 0) > 0;
  }

  closed(hop: CircuitHop): void {
    (hop.attachments.get('mux') as StreamMux | undefined)?.closeAll(EndReason.DESTROYED);
    hop.attachments.delete('mux');
  }
}
