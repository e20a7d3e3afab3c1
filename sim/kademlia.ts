/**
 * A reference point for experiment (b), not Allium code: Kademlia's iterative lookup (Maymounkov and Mazières,
 * 2002) over the same 256-bit XOR keyspace and the same relay positions. Each node's routing table holds up to
 * `bucket` nodes (chosen at random, as after a long run) of every subtree sibling to its own path; a lookup asks
 * the `alpha` closest nodes it has not asked yet, in rounds, until the `bucket` closest nodes it knows have all
 * answered. This is what "O(log N) hops" means for a DHT; Allium instead gives every party the whole directory
 * and reaches a key's holder directly (through a circuit).
 */
import { Rng } from './random.js';

function toBig(p: Uint8Array): bigint {
  let x = 0n;
  for (const b of p) x = (x << 8n) | BigInt(b);
  return x;
}

export interface LookupStats {
  /** Sequential rounds of requests (network round trips). */
  rounds: number;
  /** Nodes asked. */
  requests: number;
  /** Whether the lookup found the node nearest to the key. */
  found: boolean;
  /** The round in which the nearest node first became known (the routing hops to reach it). */
  hops: number;
}

export class Kademlia {
  private readonly pos: bigint[];
  private readonly sorted: bigint[];
  private readonly tables: number[][];
  private readonly order: number[];

  constructor(
    positions: readonly Uint8Array[],
    private readonly rng: Rng,
    private readonly bucket = 20,
    private readonly alpha = 3,
  ) {
    this.pos = positions.map(toBig);
    this.order = this.pos.map((_, i) => i).sort((a, b) => (this.pos[a]! < this.pos[b]! ? -1 : this.pos[a]! > this.pos[b]! ? 1 : 0));
    this.sorted = this.order.map((i) => this.pos[i]!);
    this.tables = this.pos.map((x, i) => this.buildTable(x, i));
  }

  private lowerBound(v: bigint): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private buildTable(x: bigint, self: number): number[] {
    const out: number[] = [];
    for (let depth = 0; depth < 256; depth++) {
      const shift = BigInt(255 - depth);
      // The sibling subtree at this depth: same first `depth` bits, the next bit flipped.
      const lo = ((x >> shift) ^ 1n) << shift;
      const a = this.lowerBound(lo);
      const b = this.lowerBound(lo + (1n << shift));
      const n = b - a;
      if (n > 0) {
        if (n <= this.bucket) for (let i = a; i < b; i++) out.push(this.order[i]!);
        else {
          const picked = new Set<number>();
          while (picked.size < this.bucket) picked.add(a + this.rng.int(n));
          for (const i of picked) out.push(this.order[i]!);
        }
      }
      // Below the depth where only this node remains, every sibling subtree is empty.
      const own = this.lowerBound((x >> shift) << shift);
      const ownEnd = this.lowerBound(((x >> shift) + 1n) << shift);
      if (ownEnd - own <= 1) break;
    }
    return out.filter((i) => i !== self);
  }

  /** An iterative lookup of `key` starting at node `start`. */
  lookup(key: Uint8Array, start: number): LookupStats {
    const k = toBig(key);
    const dist = (i: number): bigint => this.pos[i]! ^ k;
    const byDist = (a: number, b: number): number => {
      const da = dist(a);
      const db = dist(b);
      return da < db ? -1 : da > db ? 1 : 0;
    };
    let best = 0;
    for (let i = 1; i < this.pos.length; i++) if (dist(i) < dist(best)) best = i;
    const known = new Set<number>([start, ...this.tables[start]!]);
    let shortlist = [...known].sort(byDist).slice(0, this.bucket);
    const asked = new Set<number>([start]);
    let rounds = 0;
    let requests = 0;
    let hops = known.has(best) ? 0 : -1;
    for (;;) {
      const next = shortlist.filter((i) => !asked.has(i)).slice(0, this.alpha);
      if (next.length === 0) break;
      rounds++;
      for (const q of next) {
        asked.add(q);
        requests++;
        for (const c of this.tables[q]!) known.add(c);
      }
      if (hops < 0 && known.has(best)) hops = rounds;
      shortlist = [...known].sort(byDist).slice(0, this.bucket);
    }
    return { rounds, requests, found: shortlist[0] === best, hops: hops < 0 ? rounds : hops };
  }
}
