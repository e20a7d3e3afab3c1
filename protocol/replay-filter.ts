/**
 * The setup-onion replay cache (specs/circuits.md §3.4): one Bloom filter per onion key, kept for that key's life.
 * Across restarts the relay rebuilds each filter from the key's journal of tags (§3.4.1, relay/replay-journal.ts).
 * A filter that reaches its capacity reports `full`, and the relay rotates its onion key early (relay/keys), so the
 * false-positive rate never rises above the designed bound. Memory is fixed: bits = max(-n ln p / (ln 2)^2, √(n/p)).
 */
import type { ReplayGuard } from './onion.js';
import { equalBytes, toHex } from './bytes.js';

export interface ReplayFilterOptions {
  /** Onions remembered per onion key before the filter is full (specs/limits.md: REPLAY_FILTER_CAPACITY). */
  capacity?: number;
  /** Designed false-positive rate at capacity (a fresh onion refused as a replay). */
  falsePositiveRate?: number;
}

export class BloomFilter {
  private readonly bits: Uint8Array;
  private readonly m: number;
  private readonly k: number;
  private n = 0;

  constructor(
    readonly capacity: number,
    falsePositiveRate: number,
  ) {
    const m = Math.ceil((-capacity * Math.log(falsePositiveRate)) / Math.LN2 ** 2);
    // Double hashing has a floor of about n/m² (two tags whose (h1, h2) agree mod m collide in every bit), which
    // the usual sizing puts above p for small filters: at least √(n/p) bits keeps it below (specs/circuits.md §3.4).
    this.m = Math.max(64, m, Math.ceil(Math.sqrt(capacity / falsePositiveRate)));
    this.k = Math.max(1, Math.round((m / capacity) * Math.LN2));
    this.bits = new Uint8Array(Math.ceil(this.m / 8));
  }

  get count(): number {
    return this.n;
  }

  get byteLength(): number {
    return this.bits.length;
  }

  // Bit i of the k is (h1 mod m + i·s) mod m with the step s = 1 + h2 mod (m − 1): double hashing over the two
  // halves of `tag`, which must be a uniformly random 16-byte value (a hash). The step is never 0 mod m, and the sum
  // stays exact (below 2^53) rather than wrapping at 2^32. Plain loops: this runs for every onion a relay processes.

  has(tag: Uint8Array): boolean {
    const [h1, h2] = doubleHash(tag);
    const m = this.m;
    const step = 1 + (h2 % (m - 1));
    // j and step are below m, so one subtraction keeps j + step in [0, m): the same bits as (j + step) mod m.
    for (let i = 0, j = h1 % m; i < this.k; i++, j = j + step >= m ? j + step - m : j + step) {
      if ((this.bits[j >>> 3]! & (1 << (j & 7))) === 0) return false;
    }
    return true;
  }

  add(tag: Uint8Array): void {
    const [h1, h2] = doubleHash(tag);
    const m = this.m;
    const step = 1 + (h2 % (m - 1));
    for (let i = 0, j = h1 % m; i < this.k; i++, j = j + step >= m ? j + step - m : j + step) this.bits[j >>> 3]! |= 1 << (j & 7);
    this.n++;
  }

  /** `has(tag)`, then `add(tag)` when it was absent, in one pass over the k bits (a tag already held is not counted again). */
  testAndAdd(tag: Uint8Array): boolean {
    const [h1, h2] = doubleHash(tag);
    const m = this.m;
    const bits = this.bits;
    const step = 1 + (h2 % (m - 1));
    let held = true;
    for (let i = 0, j = h1 % m; i < this.k; i++, j = j + step >= m ? j + step - m : j + step) {
      const bit = 1 << (j & 7);
      if ((bits[j >>> 3]! & bit) === 0) {
        held = false;
        bits[j >>> 3]! |= bit;
      }
    }
    if (!held) this.n++;
    return held;
  }
}

function doubleHash(tag: Uint8Array): [number, number] {
  const dv = new DataView(tag.buffer, tag.byteOffset, tag.length);
  return [(dv.getUint32(0) ^ dv.getUint32(8)) >>> 0, (dv.getUint32(4) ^ dv.getUint32(12)) >>> 0];
}

/** A ReplayGuard with one Bloom filter per onion key. */
export class ReplayFilter implements ReplayGuard {
  private readonly filters = new Map<string, BloomFilter>();
  readonly capacity: number;
  private readonly fpr: number;
  private lastId: { readonly key: Uint8Array; readonly id: string } | null = null;

  constructor(options: ReplayFilterOptions = {}) {
    this.capacity = options.capacity ?? 1_000_000;
    this.fpr = options.falsePositiveRate ?? 1e-7;
  }

  checkAndRecord(onionKeyPublic: Uint8Array, tag: Uint8Array): boolean {
    const id = this.idOf(onionKeyPublic);
    let f = this.filters.get(id);
    if (!f) {
      f = new BloomFilter(this.capacity, this.fpr);
      this.filters.set(id, f);
    }
    return f.testAndAdd(tag);
  }

  /** The map key of an onion key: nearly every onion is for the current key, so the last one's hex is kept. */
  private idOf(onionKeyPublic: Uint8Array): string {
    const last = this.lastId;
    if (last && equalBytes(last.key, onionKeyPublic)) return last.id;
    const id = toHex(onionKeyPublic);
    this.lastId = { key: Uint8Array.from(onionKeyPublic), id };
    return id;
  }

  /** True once the filter of this onion key holds `capacity` onions: time to rotate the key. */
  isFull(onionKeyPublic: Uint8Array): boolean {
    const f = this.filters.get(toHex(onionKeyPublic));
    return !!f && f.count >= f.capacity;
  }

  /** Drops the filter of a retired onion key (after its overlap window). */
  forget(onionKeyPublic: Uint8Array): void {
    this.filters.delete(toHex(onionKeyPublic));
  }

  get bytes(): number {
    let n = 0;
    for (const f of this.filters.values()) n += f.byteLength;
    return n;
  }
}
