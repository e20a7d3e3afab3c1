/**
 * Link accounting: what each open link carried — bytes in and out on the wire, cells out — goes into the relay's
 * metrics (allium_link_bytes_total, allium_cells_total) and its running totals (status page, bandwidth history).
 * A link's counters grow as it works; they are read here, the difference since the last reading added, when the
 * metrics are scraped, on every maintenance pass and when the link closes. (Cells in are counted as they arrive.)
 */
import type { Link } from '../net/link.js';
import type { RelayMetrics } from './metrics.js';

/** A link's counters as last read. */
interface Reading {
  bytesIn: number;
  bytesOut: number;
  cellsOut: number;
}

export class LinkAccounting {
  private readonly read = new Map<Link, Reading>();
  private bytesInTotal = 0;
  private bytesOutTotal = 0;

  constructor(private readonly metrics: Pick<RelayMetrics, 'bytesIn' | 'bytesOut' | 'cellsOut'>) {}

  /** Starts accounting for an open link. */
  track(link: Link): void {
    this.read.set(link, { bytesIn: 0, bytesOut: 0, cellsOut: 0 });
  }

  /** Accounts for what a closing link carried since its last reading, and forgets it. */
  untrack(link: Link): void {
    this.account(link);
    this.read.delete(link);
  }

  private account(link: Link): void {
    const r = this.read.get(link);
    if (!r) return;
    const s = link.stats;
    this.metrics.cellsOut.inc(s.cellsOut - r.cellsOut);
    this.metrics.bytesIn.inc(s.bytesIn - r.bytesIn);
    this.metrics.bytesOut.inc(s.bytesOut - r.bytesOut);
    this.bytesInTotal += s.bytesIn - r.bytesIn;
    this.bytesOutTotal += s.bytesOut - r.bytesOut;
    r.bytesIn = s.bytesIn;
    r.bytesOut = s.bytesOut;
    r.cellsOut = s.cellsOut;
  }

  /** Accounts for every open link (before a scrape, on maintenance). */
  sweep(): void {
    for (const link of this.read.keys()) this.account(link);
  }

  /** Bytes in and out over every link since the relay started, as of the last reading. */
  get totals(): { in: number; out: number } {
    return { in: this.bytesInTotal, out: this.bytesOutTotal };
  }
}
