/**
 * The setup-onion replay cache (specs/circuits.md §3.4): one scalable Bloom filter per onion key, kept for that key's
 * life. Across restarts the relay rebuilds each filter from the key's journal of tags (§3.4.1, relay/replay-journal.ts).
 * A filter that reaches its capacity reports `full`, and the relay rotates its onion key early (relay/keys), so the
 * false-positive rate never rises above the designed bound. Memory grows with what a filter holds: stages of doubling
 * capacity, each sized for its share of the false-positive budget (§3.4, ScalableBloomFilter below).
 */
import type { ReplayGuard } from './onion.js';
import { equalBytes, toHex } from './bytes.js';

export interface ReplayFilterOptions {
  /** Onions remembered per onion key before the filter is full (specs/limits.md: REPLAY_FILTER_CAPACITY). */
  capacity?: number;
  /** Designed false-positive rate at capacity (a fresh onion refused as a replay). */
  falsePositiveRate?: number;
}

/** Capacity of a scalable filter's first stage (specs/circuits.md §3.4: REPLAY_FILTER_FIRST_STAGE). */
export const REPLAY_FILTER_FIRST_STAGE = 1024;

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
    // Triple hashing has a floor of about n/m³ (two tags whose (h1, h2, h3) agree mod m collide in every bit): at
    // least 4·∛(n/p) bits keeps it below p/64 however small the filter (specs/circuits.md §3.4).
    this.m = Math.max(64, m, Math.ceil(4 * Math.cbrt(capacity / falsePositiveRate)));
    this.k = Math.max(1, Math.round((m / capacity) * Math.LN2));
    this.bits = new Uint8Array(Math.ceil(this.m / 8));
  }

  get count(): number {
    return this.n;
  }

  get byteLength(): number {
    return this.bits.length;
  }

  // Bit i of the k is (a + i·b + i(i−1)/2·c) mod m with a, b, c = h1, h2, h3 mod m: triple hashing over three 32-bit
  // words of `tag`, which must be a uniformly random 16-byte value (a hash). It runs as two running sums, each kept
  // in [0, m) by one subtraction (both terms are below m), so it is exact rather than wrapping at 2^32. Plain loops:
  // this runs for every onion a relay processes.

  has(tag: Uint8Array): boolean {
    return this.probe(tag, false);
  }

  add(tag: Uint8Array): void {
    this.probe(tag, true);
    this.n++;
  }

  /** `has(tag)`, then `add(tag)` when it was absent, in one pass over the k bits (a tag already held is not counted again). */
  testAndAdd(tag: Uint8Array): boolean {
    const held = this.probe(tag, true);
    if (!held) this.n++;
    return held;
  }

  /** Whether all k bits of `tag` are set; with `set`, sets those that are not. */
  private probe(tag: Uint8Array, set: boolean): boolean {
    return this.probeWords(u32(tag, 0), u32(tag, 4), (u32(tag, 8) ^ u32(tag, 12)) >>> 0, set);
  }

  /** has() on a tag's three words (a ScalableBloomFilter reads them once for all its stages). */
  hasWords(w0: number, w1: number, w2: number): boolean {
    return this.probeWords(w0, w1, w2, false);
  }

  /** testAndAdd() on a tag's three words. */
  testAndAddWords(w0: number, w1: number, w2: number): boolean {
    const held = this.probeWords(w0, w1, w2, true);
    if (!held) this.n++;
    return held;
  }

  private probeWords(w0: number, w1: number, w2: number, set: boolean): boolean {
    const m = this.m;
    const bits = this.bits;
    let j = w0 % m;
    // A step of 0 (with c also 0) would probe one bit k times: such a tag, 1 in m² of them, would be a false
    // positive at the filter's fill rather than at its k-th power. A nonzero first step rules it out.
    let step = 1 + (w1 % (m - 1));
    const c = w2 % m;
    let held = true;
    for (let i = 0; i < this.k; i++) {
      const bit = 1 << (j & 7);
      if ((bits[j >>> 3]! & bit) === 0) {
        if (!set) return false;
        held = false;
        bits[j >>> 3]! |= bit;
      }
      j = j + step >= m ? j + step - m : j + step;
      step = step + c >= m ? step + c - m : step + c;
    }
    return held;
  }
}

/** The big-endian 32-bit word of `b` at `off`. */
function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/**
 * A scalable Bloom filter (Almeida et al. 2007) for a known total capacity N at rate P: stages of capacity F, 2F,
 * 4F, … (the last cut so the capacities sum to N), stage i made when stage i − 1 is full and sized for the rate
 * p_i = P · n_i / N · 63/64; its hashing floor adds at most p_i/64, so a full stage answers a fresh tag with
 * probability at most P · n_i / N. A fresh tag is a false positive when any stage answers it: at capacity at most P,
 * before it less. Memory follows the count: stage 0, then less than twice the newest stage's capacity (§3.4).
 */
export class ScalableBloomFilter {
  private readonly stages: BloomFilter[] = [];
  private n = 0;

  constructor(
    readonly capacity: number,
    private readonly falsePositiveRate: number,
    private readonly firstStage = REPLAY_FILTER_FIRST_STAGE,
  ) {}

  get count(): number {
    return this.n;
  }

  get byteLength(): number {
    let b = 0;
    for (const s of this.stages) b += s.byteLength;
    return b;
  }

  get stageCount(): number {
    return this.stages.length;
  }

  /** `has(tag)`, then `add(tag)` when it was absent (a tag already held is not counted again). */
  testAndAdd(tag: Uint8Array): boolean {
    const w0 = u32(tag, 0);
    const w1 = u32(tag, 4);
    const w2 = (u32(tag, 8) ^ u32(tag, 12)) >>> 0;
    const stages = this.stages;
    const last = stages.length - 1;
    for (let i = 0; i < last; i++) if (stages[i]!.hasWords(w0, w1, w2)) return true;
    let current = stages[last];
    // A new stage when the current one is full, until the stages hold the capacity. Past it (the onion key is being
    // rotated, and still opens onions in its overlap) the last stage takes the rest, as a fixed-size filter would:
    // memory stays bounded and no tag goes unrecorded.
    if (!current || (current.count >= current.capacity && this.n < this.capacity)) {
      if (current?.hasWords(w0, w1, w2)) return true;
      const size = Math.min(this.firstStage * 2 ** stages.length, this.capacity - this.n);
      current = new BloomFilter(size, ((this.falsePositiveRate * size) / this.capacity) * (63 / 64));
      stages.push(current);
    }
    const held = current.testAndAddWords(w0, w1, w2);
    if (!held) this.n++;
    return held;
  }

  has(tag: Uint8Array): boolean {
    const w0 = u32(tag, 0);
    const w1 = u32(tag, 4);
    const w2 = (u32(tag, 8) ^ u32(tag, 12)) >>> 0;
    for (const s of this.stages) if (s.hasWords(w0, w1, w2)) return true;
    return false;
  }
}

/** A ReplayGuard with one scalable Bloom filter per onion key. */
export class ReplayFilter implements ReplayGuard {
  private readonly filters = new Map<string, ScalableBloomFilter>();
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
      f = new ScalableBloomFilter(this.capacity, this.fpr);
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
