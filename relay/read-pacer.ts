/**
 * Read pacing (specs/link.md §7): every frame read from a link is charged to the relay-wide bandwidth bucket
 * (`bandwidth_rate`, `bandwidth_burst`) and to the link's cell bucket (`cells_per_second_per_link`); a link whose
 * bucket is in debt has its reads paused until the debt is repaid (at most a second at a time).
 *
 * The relay-wide bucket is shared fairly: when it is in debt, only links that have read more than their fair share
 * in the last second — the relay-wide rate divided by the links that read in that second — are paused for it. A
 * link within its share is never paused for what others read, so one link (or a few) flooding the relay cannot
 * take the whole read budget and stall everyone's reads; the floods share what the others leave.
 *
 * A link paused already stays paused until the latest of its deadlines: frames already received when the pause
 * began are still charged, and each may extend the pause, but none shortens it (a resume scheduled by an earlier,
 * smaller debt no longer reopens a link deep in debt).
 */
import { FRAME_LEN } from '../protocol/link-handshake.js';
import type { Link } from '../net/link.js';
import { TokenBucket } from './token-bucket.js';

/** Cells in one frame (specs/link.md §3). */
const FRAME_CELLS = 4;
/** The window over which a link's reading is compared with its fair share. */
const WINDOW_MS = 1000;

export interface ReadPacerOptions {
  /** Relay-wide bytes per second and burst (bandwidth_rate, bandwidth_burst). */
  bytesPerSecond: number;
  burstBytes: number;
  /** Cells per second one link may send, burst the same (cells_per_second_per_link). */
  cellsPerSecondPerLink: number;
  now: () => number;
  /** Pauses the link's reads, and resumes them. */
  pause: (link: Link) => void;
  resume: (link: Link) => void;
}

/** What one link read: in the current window and the one before. */
interface Meter {
  bucket: TokenBucket;
  windowStart: number;
  bytes: number;
  previous: number;
}

export class ReadPacer {
  private readonly relay: TokenBucket;
  private readonly meters = new WeakMap<Link, Meter>();
  private readonly paused = new WeakMap<Link, { until: number; timer: ReturnType<typeof setTimeout> }>();
  /** Links that read in the current and the previous window, to count who shares. */
  private current = new Set<Link>();
  private previous = new Set<Link>();
  /** |current ∪ previous|: the links sharing the relay-wide rate. */
  private readers = 0;
  private windowStart: number;

  constructor(private readonly o: ReadPacerOptions) {
    this.relay = new TokenBucket(o.bytesPerSecond, o.burstBytes, o.now);
    this.windowStart = o.now();
  }

  /** Charges a frame read from `link`; returns the milliseconds its reads were paused for (0: not paused). */
  admit(link: Link): number {
    const now = this.o.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.previous = now - this.windowStart >= 2 * WINDOW_MS ? new Set() : this.current;
      this.current = new Set();
      this.readers = this.previous.size;
      this.windowStart = now;
    }
    if (!this.current.has(link)) {
      if (!this.previous.has(link)) this.readers++;
      this.current.add(link);
    }
    let m = this.meters.get(link);
    if (!m) {
      const rate = this.o.cellsPerSecondPerLink;
      m = { bucket: new TokenBucket(rate, rate, this.o.now), windowStart: now, bytes: 0, previous: 0 };
      this.meters.set(link, m);
    }
    if (now - m.windowStart >= WINDOW_MS) {
      m.previous = now - m.windowStart >= 2 * WINDOW_MS ? 0 : m.bytes;
      m.bytes = 0;
      m.windowStart = now;
    }
    m.bytes += FRAME_LEN;
    const ownWait = m.bucket.take(FRAME_CELLS);
    const relayWait = this.relay.take(FRAME_LEN);
    let wait = ownWait;
    if (relayWait > 0 && this.overShare(m, now)) wait = Math.max(wait, relayWait);
    if (wait <= 0) return 0;
    const ms = Math.min(wait, 1000);
    this.pauseFor(link, now, ms);
    return ms;
  }

  /** Pauses `link` until now + ms, or leaves it paused until later if it already is. */
  private pauseFor(link: Link, now: number, ms: number): void {
    const until = now + ms;
    const p = this.paused.get(link);
    if (p && p.until >= until) return;
    if (p) clearTimeout(p.timer);
    else this.o.pause(link);
    const timer = setTimeout(() => {
      this.paused.delete(link);
      this.o.resume(link);
    }, ms);
    this.paused.set(link, { until, timer });
  }

  /** True when the link read more than its share of the relay-wide rate over the last second. */
  private overShare(m: Meter, now: number): boolean {
    const share = Math.max(FRAME_LEN, this.o.bytesPerSecond / Math.max(1, this.readers));
    // The last second: this window's bytes and the part of the previous window it does not yet cover.
    const recent = m.bytes + m.previous * Math.max(0, 1 - (now - m.windowStart) / WINDOW_MS);
    return recent > share;
  }
}
