/**
 * The k relays nearest to a key by XOR distance, as protocol/placement.ts `holdersOf` computes them, but from a
 * sorted index instead of sorting the whole directory for every key: O(log² N) per query instead of O(N log N).
 * The simulator places millions of blocks among 10,000 relays, where `holdersOf` would take hours;
 * test/sim/placement-index.test.ts checks that both return the same relays in the same order.
 *
 * Why it works: positions sorted as big-endian numbers form a binary trie in order. Every position that shares the
 * first d bits with the key is nearer to it (in XOR distance) than every position that does not, and those
 * positions are one contiguous run of the sorted array. So the k nearest lie in the deepest such run that still
 * holds k positions; sorting that run (about 2k positions) by distance gives them.
 */
import { compareDistance } from '../protocol/placement.js';

export interface Placed<T> {
  readonly pos: Uint8Array;
  readonly item: T;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function bit(p: Uint8Array, i: number): number {
  return (p[i >> 3]! >> (7 - (i & 7))) & 1;
}

export class PlacementIndex<T> {
  private entries: Placed<T>[] = [];

  constructor(entries: Iterable<Placed<T>> = []) {
    this.entries = [...entries].sort((a, b) => compareBytes(a.pos, b.pos));
  }

  get size(): number {
    return this.entries.length;
  }

  all(): readonly Placed<T>[] {
    return this.entries;
  }

  /** Index of the first entry whose position is not below `pos`. */
  private lowerBound(pos: Uint8Array, lo = 0, hi = this.entries.length): number {
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareBytes(this.entries[mid]!.pos, pos) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(pos: Uint8Array, item: T): void {
    const i = this.lowerBound(pos);
    this.entries.splice(i, 0, { pos, item });
  }

  remove(pos: Uint8Array, item: T): boolean {
    let i = this.lowerBound(pos);
    while (i < this.entries.length && compareBytes(this.entries[i]!.pos, pos) === 0) {
      if (this.entries[i]!.item === item) {
        this.entries.splice(i, 1);
        return true;
      }
      i++;
    }
    return false;
  }

  /** The `k` entries nearest to `key`, nearest first (ties broken as holdersOf's stable sort would: by position). */
  nearest(key: Uint8Array, k: number): T[] {
    const e = this.entries;
    if (k <= 0 || e.length === 0) return [];
    let lo = 0;
    let hi = e.length;
    // Walk down the trie along the key's bits while the key's side still holds k positions.
    for (let d = 0; d < 256 && hi - lo > k; d++) {
      // Within [lo, hi) all share the first d bits; find where bit d turns from 0 to 1.
      let a = lo;
      let b = hi;
      while (a < b) {
        const mid = (a + b) >> 1;
        if (bit(e[mid]!.pos, d) === 0) a = mid + 1;
        else b = mid;
      }
      const [sameLo, sameHi] = bit(key, d) === 0 ? [lo, a] : [a, hi];
      if (sameHi - sameLo < k) break;
      lo = sameLo;
      hi = sameHi;
    }
    const run = e.slice(lo, hi);
    run.sort((x, y) => compareDistance(key, x.pos, y.pos));
    return run.slice(0, k).map((x) => x.item);
  }
}
