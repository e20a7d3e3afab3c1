/**
 * Flow control with authenticated acknowledgements (specs/streams.md §4).
 *
 * Circuit level, each direction: the receiver accepts at most CIRC_WINDOW DATA cells unacknowledged; the sender keeps
 * fewer in flight, as its congestion window says (protocol/congestion.ts, §4.6). The receiver sends a
 * circuit SENDME after every CIRC_SENDME_INC DATA cells, echoing the relay-crypto tag of the cell that completed
 * the increment. The sender remembers those tags and refuses a SENDME whose tag it did not expect (a SENDME for data
 * never received, the way a client could otherwise make an exit over-send): protocol violation.
 *
 * Stream level: STREAM_WINDOW cells per stream, a stream SENDME per STREAM_SENDME_INC cells, sent only once the
 * application has taken the data (the TCP socket accepted it), so a slow reader stops the far sender.
 */
import { crypto } from '../crypto/index.js';
import { VegasController, VEGAS_DEFAULTS, type VegasParams } from './congestion.js';
import { ConfigError, ProtocolError } from './errors.js';

export const CIRC_WINDOW = 2000;
export const CIRC_SENDME_INC = 100;
export const STREAM_WINDOW = 1000;
export const STREAM_SENDME_INC = 50;
export const SENDME_VERSION = 1;
/**
 * DATA cells the initiator of a rendezvous may send on its message stream before CONNECTED (optimistic data,
 * specs/streams.md §2.8): a hello and a first message in any of the four smallest padding buckets.
 */
export const OPTIMISTIC_DATA_CELLS = 16;

/**
 * The sending side of a circuit's window: a congestion window from round-trip times (§4.6), never above
 * CIRC_WINDOW. Times are passed in (milliseconds from any monotonic clock); nothing here reads one.
 */
export class CircuitSendWindow {
  readonly cc: VegasController;
  private sent = 0;
  /** Tags (and send times) of every CIRC_SENDME_INC-th cell not yet acknowledged: at most CIRC_WINDOW / INC. */
  private readonly expected: { tag: Uint8Array; at: number }[] = [];

  constructor(params: VegasParams = VEGAS_DEFAULTS) {
    if (params.cwndMax > CIRC_WINDOW || params.inc !== CIRC_SENDME_INC)
      throw new ConfigError('the congestion window may not exceed CIRC_WINDOW, and steps by CIRC_SENDME_INC');
    this.cc = new VegasController(params);
  }

  get available(): number {
    return this.cc.available;
  }

  /** Call after each DATA cell is sent, with the tag the receiving end will see and the time it was sent. */
  onSent(tag: Uint8Array, now: number): void {
    this.cc.onSent();
    this.sent++;
    if (this.sent % CIRC_SENDME_INC === 0) this.expected.push({ tag: Uint8Array.from(tag), at: now });
  }

  /** Checks a circuit SENDME's tag; throws ERR_SENDME when it does not acknowledge data we sent. */
  onSendme(tag: Uint8Array, now: number): void {
    const want = this.expected.shift();
    if (!want || !crypto().equal(want.tag, tag)) throw new ProtocolError('ERR_SENDME', 'SENDME does not acknowledge data that was sent');
    this.cc.onAck(now - want.at);
  }
}

/** The receiving side: counts DATA cells and says when to acknowledge. */
export class CircuitReceiveWindow {
  private received = 0;
  private window = CIRC_WINDOW;

  /** Returns true when a circuit SENDME carrying this cell's tag must be sent now. Throws if the peer over-sends. */
  onData(): boolean {
    if (this.window <= 0) throw new ProtocolError('ERR_SENDME', 'peer sent beyond the circuit window');
    this.window--;
    this.received++;
    if (this.received % CIRC_SENDME_INC === 0) {
      this.window += CIRC_SENDME_INC;
      return true;
    }
    return false;
  }
}

/** Stream windows: `send` counts the DATA cells we may still send, `deliver` those the peer may still send. */
export class StreamWindows {
  send = STREAM_WINDOW;
  private deliver = STREAM_WINDOW;
  private consumedSinceAck = 0;

  onSent(): void {
    this.send--;
  }

  onSendme(): void {
    if (this.send + STREAM_SENDME_INC > STREAM_WINDOW) throw new ProtocolError('ERR_SENDME', 'stream SENDME beyond the window');
    this.send += STREAM_SENDME_INC;
  }

  /** A DATA cell arrived. Throws if the peer over-sends. */
  onData(): void {
    if (this.deliver <= 0) throw new ProtocolError('ERR_SENDME', 'peer sent beyond the stream window');
    this.deliver--;
  }

  /** The application took `cells` cells of data; returns how many stream SENDMEs to send now. */
  consumed(cells: number): number {
    this.consumedSinceAck += cells;
    const n = Math.floor(this.consumedSinceAck / STREAM_SENDME_INC);
    this.consumedSinceAck -= n * STREAM_SENDME_INC;
    this.deliver += n * STREAM_SENDME_INC;
    return n;
  }
}
