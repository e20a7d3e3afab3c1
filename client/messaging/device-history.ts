/**
 * A device's history log and history sync (specs/messaging.md §14.7): what this device received, sent, and was told
 * its siblings sent, kept in memory within MAX_HISTORY_ENTRIES and MAX_HISTORY_LOG_BYTES (oldest dropped), and
 * handed to a sibling that asks, in chunks that each fit one message (and a mailbox item).
 *
 * Not here: persistence (devices.ts saves each entry the log takes and deletes each it drops, §14.9: `add` says
 * which); who may ask (devices.ts checks that the requester is a sibling before calling `chunks`).
 */
import { toHex } from '../../protocol/bytes.js';
import { entryCost, HISTORY_CHUNK_BYTES, MAX_HISTORY_CHUNK_ENTRIES, MAX_SYNC_DATA_BYTES, type HistoryEntry } from '../../protocol/device-link.js';

/** Messages a device keeps for history (specs/limits.md). */
export const MAX_HISTORY_ENTRIES = 1000;
/** Message data a device keeps for history (specs/limits.md). */
export const MAX_HISTORY_LOG_BYTES = 4 * 1024 * 1024;

export class HistoryLog {
  private entries: HistoryEntry[] = [];
  private bytes = 0;
  /** `peer:id` of every entry held: one message is kept once (a copy synced and received, a resumed request). */
  private readonly ids = new Set<string>();

  constructor(
    private readonly maxEntries = MAX_HISTORY_ENTRIES,
    private readonly maxBytes = MAX_HISTORY_LOG_BYTES,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  /**
   * Keeps an entry (unless held already, or larger than MAX_SYNC_DATA_BYTES), dropping the oldest beyond the limits.
   * Says whether `e` is held afterwards and which entries were dropped (`e` itself among them when it is the oldest).
   */
  add(e: HistoryEntry): { kept: boolean; dropped: HistoryEntry[] } {
    const dropped: HistoryEntry[] = [];
    if (this.maxEntries === 0 || e.data.length > MAX_SYNC_DATA_BYTES) return { kept: false, dropped };
    const key = `${toHex(e.peer)}:${toHex(e.id)}`;
    if (this.ids.has(key)) return { kept: false, dropped };
    this.ids.add(key);
    // Kept in order of ts (a stable insertion: entries mostly come in order, so this scans little).
    let i = this.entries.length;
    while (i > 0 && this.entries[i - 1]!.ts > e.ts) i--;
    this.entries.splice(i, 0, e);
    this.bytes += e.data.length;
    while (this.entries.length > this.maxEntries || this.bytes > this.maxBytes) {
      const old = this.entries.shift()!;
      this.bytes -= old.data.length;
      this.ids.delete(`${toHex(old.peer)}:${toHex(old.id)}`);
      dropped.push(old);
    }
    return { kept: !dropped.includes(e), dropped };
  }

  /**
   * The entries with ts ≥ `after`, oldest first, while their data totals at most `maxBytes`, cut into chunks whose
   * entries cost at most HISTORY_CHUNK_BYTES (and number at most MAX_HISTORY_CHUNK_ENTRIES). Always at least one
   * chunk (empty when there is nothing).
   */
  chunks(after: number, maxBytes: number): HistoryEntry[][] {
    const out: HistoryEntry[][] = [[]];
    let total = 0;
    let cost = 0;
    for (const e of this.entries) {
      if (e.ts < after) continue;
      if (total + e.data.length > maxBytes) break;
      total += e.data.length;
      const c = entryCost(e);
      let chunk = out[out.length - 1]!;
      if (chunk.length > 0 && (cost + c > HISTORY_CHUNK_BYTES || chunk.length >= MAX_HISTORY_CHUNK_ENTRIES)) {
        chunk = [];
        out.push(chunk);
        cost = 0;
      }
      chunk.push(e);
      cost += c;
    }
    return out;
  }
}
