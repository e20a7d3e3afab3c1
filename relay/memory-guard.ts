/**
 * The out-of-memory handler (specs/link.md §7, `max_queue_bytes`): what peers can make a relay hold in queues is
 * added up — every link's queued cells and socket buffer, and what each circuit holds at its last hop (stream
 * queues towards the client, exit socket buffers towards destinations; specs/streams.md §4.4) — and while the total
 * is over the limit the largest holder goes: a link is closed (ERR_LIMIT), a circuit destroyed (RESOURCE_LIMIT).
 *
 * `check()` runs every maintenance interval, and soon after (on the next turn of the event loop) whenever the bytes
 * reported by `note()` — cells sent into congested links — add up to a sixteenth of the limit since the last check,
 * so a flood cannot grow for a whole interval unchecked. Not here: the per-link, per-stream and per-circuit bounds
 * that keep each holder small; this is the backstop for many of them at once.
 */
import type { Logger } from 'pino';
import { CELL_LEN } from '../protocol/constants.js';
import { LimitError } from '../protocol/errors.js';
import type { Link } from '../net/link.js';
import type { CircuitHop } from './circuits.js';
import type { RelayMetrics } from './metrics.js';

export interface MemoryGuardOptions {
  /** The limit, bytes (config max_queue_bytes). */
  maxBytes: number;
  links: () => Iterable<Link>;
  /** Each circuit holding bytes at its last hop, with the bytes. */
  circuits: () => Iterable<readonly [CircuitHop, number]>;
  /** Destroys a circuit (DESTROY RESOURCE_LIMIT both ways). */
  destroy: (hop: CircuitHop) => void;
  metrics: RelayMetrics;
  log: Logger;
  /** Bytes noted since the last check that bring the next one forward (default maxBytes / 16). */
  checkEveryBytes?: number;
}

type Holder = { bytes: number; link: Link; hop?: undefined } | { bytes: number; hop: CircuitHop; link?: undefined };

export class MemoryGuard {
  private noted = 0;
  private scheduled = false;

  constructor(private readonly o: MemoryGuardOptions) {}

  /** `cells` more cells were sent into congested links: check soon once enough have been. */
  noteCells(cells: number): void {
    this.noted += cells * CELL_LEN;
    if (this.scheduled || this.noted < (this.o.checkEveryBytes ?? this.o.maxBytes / 16)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.check();
    });
  }

  /** Adds up what is held; while over the limit, releases the largest holder. Returns the total before. */
  check(): number {
    this.noted = 0;
    const holders: Holder[] = [];
    let linkTotal = 0;
    let linkMax = 0;
    for (const link of this.o.links()) {
      const bytes = link.heldBytes;
      linkTotal += bytes;
      linkMax = Math.max(linkMax, bytes);
      if (bytes > 0) holders.push({ bytes, link });
    }
    let circuitTotal = 0;
    for (const [hop, bytes] of this.o.circuits()) {
      circuitTotal += bytes;
      if (bytes > 0) holders.push({ bytes, hop });
    }
    this.o.metrics.linkBufferedBytes.set(linkTotal);
    this.o.metrics.linkBufferedBytesMax.set(linkMax);
    this.o.metrics.streamBufferedBytes.set(circuitTotal);
    const before = linkTotal + circuitTotal;
    let total = before;
    if (total <= this.o.maxBytes) return before;
    holders.sort((a, b) => b.bytes - a.bytes);
    for (const h of holders) {
      if (total <= this.o.maxBytes) break;
      total -= h.bytes;
      if (h.link) {
        this.o.metrics.drops.inc({ reason: 'oom_link_closed' });
        this.o.log.warn('memory limit reached: closing the link with the largest queue');
        h.link.close(new LimitError('max_queue_bytes', 'the link holds the most queued bytes'));
      } else {
        this.o.metrics.drops.inc({ reason: 'oom_circuit_destroyed' });
        this.o.log.warn('memory limit reached: destroying the circuit holding the most at its last hop');
        this.o.destroy(h.hop);
      }
    }
    return before;
  }
}
