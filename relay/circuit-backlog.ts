/**
 * A circuit's backlog on a congested link (specs/link.md §4.2): how many of the cells one circuit sent into a link,
 * in one direction, are still held there — in the link's queue or its socket's buffer — while the link is congested.
 *
 * A link knows how many bytes it has written and how many its socket still buffers, so the bytes that have left are
 * `written − buffered`, and a cell sent when `written + queued` stood at p has left once that passes p (the link
 * sends in order). Positions are kept in buckets of BUCKET_BYTES of link output, not per cell, so what a backlog
 * costs is bounded by the link's buffer, not by the circuit's cells; a bucket leaves when its last cell has, so the
 * count may exceed the truth by one bucket's cells of this circuit. The relay destroys a circuit whose backlog
 * passes its limit (relay/circuits.ts).
 */
import { CELL_LEN } from '../protocol/constants.js';
import type { Link } from '../net/link.js';

/** Link output each position bucket covers. */
const BUCKET_BYTES = 64 * 1024;
/** A cell's share of a link frame (4 cells and a 16-byte tag to a frame). */
const CELL_ON_WIRE = CELL_LEN + 4;

export class CircuitBacklog {
  private ends: number[] = [];
  private counts: number[] = [];
  private head = 0;
  private total = 0;

  /** Cells of this circuit the link still holds. */
  get cells(): number {
    return this.total;
  }

  /** Records a cell just queued on `link` (call after sendCell); returns the backlog with it. */
  add(link: Link): number {
    this.trim(link);
    const position = link.stats.bytesOut + link.queuedCells * CELL_ON_WIRE;
    const last = this.ends.length - 1;
    if (last >= this.head && position - this.ends[last]! < BUCKET_BYTES) {
      this.ends[last] = position;
      this.counts[last]!++;
    } else {
      this.ends.push(position);
      this.counts.push(1);
    }
    return ++this.total;
  }

  /** Forgets the cells that have left the link. */
  trim(link: Link): void {
    const left = link.stats.bytesOut - link.socket.bufferedAmount;
    while (this.head < this.ends.length && this.ends[this.head]! <= left) {
      this.total -= this.counts[this.head]!;
      this.head++;
    }
    if (this.head === this.ends.length) this.clear();
    else if (this.head >= 256) {
      this.ends = this.ends.slice(this.head);
      this.counts = this.counts.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.ends = [];
    this.counts = [];
    this.head = 0;
    this.total = 0;
  }
}
