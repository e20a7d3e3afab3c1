/**
 * The consensuses a relay holds (specs/directory.md §7.3): the newest one a majority of its configured authorities
 * signed, which it serves to clients and relays (its head, its entries page by page) and floods to its relay
 * neighbours; and the few before it, from which it serves diffs to peers that hold one of them.
 *
 * Nothing here touches links: the overlay feeds it what arrives and sends what it answers.
 */
import { toHex } from '../protocol/bytes.js';
import { CONSENSUS_PAGE_ENTRIES, diffEntries, entryToTuple, type Consensus, type EntryChange } from '../protocol/consensus.js';

/** Consensuses kept for diffs (the newest included): at a 10-minute interval, the last 80 minutes. */
export const CONSENSUS_HISTORY = 8;

export class ConsensusCache {
  private readonly history: Consensus[] = [];
  /** Consensus weight of each relay the newest consensus lists, by fingerprint. */
  private readonly listedFps = new Map<string, number>();
  /** Computed diffs by "from/to", so a page at a time costs one computation. */
  private readonly diffs = new Map<string, EntryChange[]>();

  /** The newest consensus held. */
  get current(): Consensus | null {
    return this.history[this.history.length - 1] ?? null;
  }

  /** True when the newest consensus lists the relay (fingerprint). */
  listed(fingerprint: string): boolean {
    return this.listedFps.has(fingerprint);
  }

  /** The relay's consensus weight (0: not listed). */
  weightOf(fingerprint: string): number {
    return this.listedFps.get(fingerprint) ?? 0;
  }

  /** Adopts a consensus if it is newer than the one held. Returns true when adopted. */
  adopt(c: Consensus): boolean {
    const cur = this.current;
    if (cur && c.validAfter <= cur.validAfter) return false;
    this.history.push(c);
    while (this.history.length > CONSENSUS_HISTORY) this.history.shift();
    this.listedFps.clear();
    for (const e of c.entries) this.listedFps.set(toHex(e.id), e.w);
    this.diffs.clear();
    return true;
  }

  /** Drops consensuses no longer valid at `now`. */
  expire(now: number): void {
    const before = this.history.length;
    while (this.history.length && this.history[0]!.validUntil <= now) this.history.shift();
    if (this.history.length !== before && !this.current) this.listedFps.clear();
  }

  byDigest(d: Uint8Array): Consensus | null {
    const k = toHex(d);
    return this.history.find((c) => toHex(c.digest) === k) ?? null;
  }

  /** A page of entries of consensus `d` from index `from`. */
  entriesPage(d: Uint8Array, from: number): { ok: boolean; e: [Uint8Array, Uint8Array, number, number][]; more: boolean } {
    const c = this.byDigest(d);
    if (!c) return { ok: false, e: [], more: false };
    const e = c.entries.slice(from, from + CONSENSUS_PAGE_ENTRIES).map(entryToTuple);
    return { ok: true, e, more: from + CONSENSUS_PAGE_ENTRIES < c.entries.length };
  }

  /** A page of the diff from consensus `from` to consensus `to`, identities above `after`. */
  diffPage(
    from: Uint8Array,
    to: Uint8Array,
    after: Uint8Array | null,
  ): { ok: boolean; ch: [Uint8Array, [Uint8Array, Uint8Array, number, number] | null][]; more: boolean } {
    const a = this.byDigest(from);
    const b = this.byDigest(to);
    if (!a || !b || a.validAfter >= b.validAfter) return { ok: false, ch: [], more: false };
    const key = `${toHex(from)}/${toHex(to)}`;
    let all = this.diffs.get(key);
    if (!all) {
      all = diffEntries(a.entries, b.entries);
      if (this.diffs.size >= CONSENSUS_HISTORY) this.diffs.clear();
      this.diffs.set(key, all);
    }
    const lo = after ? toHex(after) : '';
    let i = 0;
    if (lo) while (i < all.length && toHex(all[i]![0]) <= lo) i++;
    const page = all.slice(i, i + CONSENSUS_PAGE_ENTRIES);
    return { ok: true, ch: page.map(([id, e]) => [id, e ? entryToTuple(e) : null]), more: i + CONSENSUS_PAGE_ENTRIES < all.length };
  }
}
