/**
 * A key's holders from a sorted index (specs/content.md §6.1): the same relays in the same order as `holdersOf`
 * (protocol/placement.ts), which stays the reference, but in O(log N + k') per key instead of O(N log N), where k' is
 * the number of relays the diversity pass looks at (k when the nearest relays are in distinct networks and families).
 * One index serves one directory view under one placement context; building it computes every position once and
 * sorts them (O(N log N)), so a file of 32,768 blocks costs one build and 32,768 short walks.
 *
 * Why a sorted array answers XOR queries. Positions sorted as 256-bit big-endian numbers are the leaves of a binary
 * trie, in order: the positions under any trie node are one contiguous run. Within a run whose positions all share
 * their first c bits and differ at bit c, the run splits at bit c into a 0-half and a 1-half, and every position in
 * the half whose bit c equals the key's is nearer to the key than every position in the other half (their XOR
 * distances agree on the bits before c and differ first at c). So walking the trie depth first, the key's half
 * before the other, yields positions by increasing XOR distance — exactly the order of compareDistance:
 *
 *   walk(run):  if the run's positions are all equal: yield them in directory order
 *               c = length of the common prefix of the run's first and last position (sorted: of all of it)
 *               split the run at bit c (binary search); walk(the half whose bit c is the key's); walk(the other)
 *
 * Equal positions (one identity listed twice) are yielded in directory order, as the reference's stable sort keeps
 * them. The walk is lazy: the diversity pass pulls relays until it has k, and only when too few distinct networks
 * exist does it pull the whole directory, as the reference does.
 *
 * Pure: no clocks, no randomness; the caller chooses when to build (protocol/view.ts per view and context,
 * relay/replication.ts per pass).
 */
import type { Descriptor } from './descriptor.js';
import { isStoreRelay, positionOf, type PlacementContext } from './placement.js';
import { networkOf, sameFamily } from './relay-network.js';

/** What an index is built for: the placement context and which relays may hold (defaults as holdersOf's). */
export interface PlacementIndexOptions {
  readonly ctx?: PlacementContext | null;
  readonly eligible?: (d: Descriptor) => boolean;
}

/** The first 32 bits of a position, as an unsigned number. */
function head(p: Uint8Array): number {
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** Entries up to which (first 32 bits, index) fits one double exactly: 2^32 · 2^21 = 2^53. */
const SPAN = 2 ** 21;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Items ordered by the position each has: `cursor(key)` yields them by increasing XOR distance of their position to
 * key, items at one position in the order they were given.
 *
 * Positions are kept in two flat arrays — their first 32 bits (where a walk over up to millions of positions
 * almost always splits) and all 256 — so a walk reads contiguous memory instead of one object per position.
 */
export class XorOrder<T> {
  private readonly heads: Uint32Array;
  private readonly flat: Uint8Array;
  private readonly items: T[];

  constructor(entries: readonly { readonly pos: Uint8Array; readonly item: T }[]) {
    // Plain loops throughout: at 50,000 positions they take a fraction of what Array.from and set() per entry take.
    const n = entries.length;
    const heads = new Uint32Array(n);
    for (let i = 0; i < n; i++) heads[i] = head(entries[i]!.pos);
    const order = new Array<number>(n);
    if (n <= SPAN) {
      // By (first 32 bits, given order) as one exact number each: a native numeric sort, no comparator calls.
      const keys = new Float64Array(n);
      for (let i = 0; i < n; i++) keys[i] = heads[i]! * SPAN + i;
      keys.sort();
      for (let i = 0; i < n; i++) order[i] = keys[i]! % SPAN;
    } else {
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((i, j) => heads[i]! - heads[j]! || i - j);
    }
    // Runs that share their first 32 bits (rare): by the whole position, then in the order given.
    for (let a = 0; a < n;) {
      let b = a + 1;
      while (b < n && heads[order[b]!] === heads[order[a]!]) b++;
      if (b - a > 1) {
        const run = order.slice(a, b).sort((i, j) => compareBytes(entries[i]!.pos, entries[j]!.pos) || i - j);
        for (let x = a; x < b; x++) order[x] = run[x - a]!;
      }
      a = b;
    }
    this.heads = new Uint32Array(n);
    this.flat = new Uint8Array(32 * n);
    this.items = new Array<T>(n);
    for (let at = 0; at < n; at++) {
      const e = entries[order[at]!]!;
      this.heads[at] = heads[order[at]!]!;
      for (let b = 0, o = 32 * at; b < 32; b++) this.flat[o + b] = e.pos[b]!;
      this.items[at] = e.item;
    }
  }

  get size(): number {
    return this.items.length;
  }

  /** Bits the positions at i and j share from the start (256 when equal). */
  private commonPrefix(i: number, j: number): number {
    const x = this.heads[i]! ^ this.heads[j]!;
    if (x !== 0) return Math.clz32(x);
    const f = this.flat;
    for (let b = 4; b < 32; b++) {
      const y = f[32 * i + b]! ^ f[32 * j + b]!;
      if (y !== 0) return 8 * b + Math.clz32(y) - 24;
    }
    return 256;
  }

  /** Bit c of the position at i. */
  private bit(i: number, c: number): number {
    if (c < 32) return (this.heads[i]! >>> (31 - c)) & 1;
    return (this.flat[32 * i + (c >> 3)]! >> (7 - (c & 7))) & 1;
  }

  /** A lazy walk from `key` outwards: each call of the returned function gives the next nearest item, or undefined. */
  cursor(key: Uint8Array): () => T | undefined {
    const items = this.items;
    // Runs still to walk, as pairs [lo, hi): the top pair is the nearest.
    const stack: number[] = items.length > 0 ? [0, items.length] : [];
    return () => {
      while (stack.length > 0) {
        const hi = stack.pop()!;
        const lo = stack.pop()!;
        if (hi - lo === 1) return items[lo];
        const c = this.commonPrefix(lo, hi - 1);
        if (c === 256) {
          // One position throughout: directory order.
          stack.push(lo + 1, hi);
          return items[lo];
        }
        // The first entry of the run with bit c set (the run is sorted and agrees on the bits before c).
        let a = lo;
        let b = hi;
        while (a < b) {
          const mid = (a + b) >> 1;
          if (this.bit(mid, c) === 0) a = mid + 1;
          else b = mid;
        }
        if (((key[c >> 3]! >> (7 - (c & 7))) & 1) === 0) stack.push(a, hi, lo, a);
        else stack.push(lo, a, a, hi);
      }
      return undefined;
    };
  }
}

/** The holders of any key among one directory view's relays under one placement context. */
export class PlacementIndex {
  private readonly order: XorOrder<Descriptor>;

  /** `relays`: the directory (or consensus view) in its order; only the eligible are indexed. */
  constructor(relays: readonly Descriptor[], o: PlacementIndexOptions = {}) {
    const ctx = o.ctx ?? null;
    const eligible = o.eligible ?? isStoreRelay;
    this.order = new XorOrder(relays.filter(eligible).map((d) => ({ pos: positionOf(d.id, d.fingerprint, ctx), item: d })));
  }

  /** Eligible relays indexed. */
  get size(): number {
    return this.order.size;
  }

  /**
   * The `k` eligible relays nearest to `key`, nearest first, no two in one network or declared family while enough
   * distinct ones exist, the nearest of the rest filling the list otherwise: what holdersOf returns, relay for relay.
   * `diverse` false: the k nearest, whatever their networks.
   */
  holders(key: Uint8Array, k: number, o: { diverse?: boolean } = {}): Descriptor[] {
    const next = this.order.cursor(key);
    // The relays in distance order pulled so far: the reference's sorted list, as far as anyone has looked.
    const sorted: Descriptor[] = [];
    const at = (i: number): Descriptor | undefined => {
      while (sorted.length <= i) {
        const d = next();
        if (d === undefined) return undefined;
        sorted.push(d);
      }
      return sorted[i];
    };
    if (o.diverse === false) {
      // As Array.prototype.slice(0, k) reads k; a negative (or NaN) k needs the whole list.
      if (k >= 0) at(Math.min(Math.trunc(k), this.order.size) - 1);
      else at(this.order.size - 1);
      return sorted.slice(0, k);
    }
    // The reference's two passes, with its test (`out.length >= k`) as written: the same answer for every k.
    const out: Descriptor[] = [];
    const nets = new Set<string>();
    for (let i = 0; !(out.length >= k); i++) {
      const d = at(i);
      if (d === undefined) break;
      if (nets.has(networkOf(d)) || out.some((h) => sameFamily(h, d))) continue;
      out.push(d);
      nets.add(networkOf(d));
    }
    for (let i = 0; !(out.length >= k); i++) {
      const d = at(i);
      if (d === undefined) break;
      if (!out.includes(d)) out.push(d);
    }
    return out;
  }
}
