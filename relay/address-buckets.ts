/**
 * Handshake buckets per address and per address block (specs/link.md §7): an upgrade is charged to its IP address,
 * then to its /24 (IPv4) or /48 (IPv6), and only then to the relay-wide bucket, so one address or one network cannot
 * take the relay's whole handshake budget.
 *
 * Each table holds at most `max` buckets. A bucket that has refilled completely carries no information (a new bucket
 * starts full), so `sweep()` drops those; when a table is still full the least recently used bucket goes (Map order,
 * refreshed on every use), which forgives that address its debt — past that many active addresses the relay-wide
 * bucket is the limit.
 */
import { addressKeys } from '../protocol/address-block.js';
import { TokenBucket } from './token-bucket.js';

/** Buckets per table (specs/limits.md HANDSHAKE_BUCKETS_MAX). */
export const HANDSHAKE_BUCKETS_MAX = 65_536;

/** One table of token buckets keyed by address or block. */
export class BucketTable {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
    private readonly max = HANDSHAKE_BUCKETS_MAX,
  ) {}

  /** Takes one token from `key`'s bucket; false when it has none. */
  tryTake(key: string): boolean {
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else {
      if (this.buckets.size >= this.max) this.sweep();
      if (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value!);
      b = new TokenBucket(this.ratePerSecond, this.burst, this.now);
    }
    this.buckets.set(key, b); // most recently used last
    return b.tryTake(1);
  }

  /** Drops every bucket that has refilled completely. */
  sweep(): void {
    for (const [k, b] of this.buckets) if (b.available >= this.burst) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** The per-address and per-block tables of a relay. */
export class AddressBuckets {
  readonly addresses: BucketTable;
  readonly blocks: BucketTable;

  constructor(o: { perIp: number; perBlock: number; now: () => number; max?: number }) {
    this.addresses = new BucketTable(o.perIp, 2 * o.perIp, o.now, o.max);
    this.blocks = new BucketTable(o.perBlock, 2 * o.perBlock, o.now, o.max);
  }

  /** Charges an upgrade from `remote`: null when admitted, else which bucket refused it. */
  admit(remote: string): null | 'ip' | 'block' {
    const k = addressKeys(remote);
    if (!this.addresses.tryTake(k.address)) return 'ip';
    if (!this.blocks.tryTake(k.block)) return 'block';
    return null;
  }

  sweep(): void {
    this.addresses.sweep();
    this.blocks.sweep();
  }
}
