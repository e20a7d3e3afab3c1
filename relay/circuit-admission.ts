/**
 * Which CREATEs a relay takes, by where they come from (specs/circuits.md §7.1, §7.2): circuits are counted per
 * address block of their previous hop — a pool for client links and a larger one for relay links — and CREATEs are
 * rate limited per client link and per pool and block before their onion costs an X25519 per onion key held (and
 * each accepted one fills the replay filter that, full, forces an early rotation).
 *
 * Pure bookkeeping over the links' peers and addresses; the reactor (relay/circuits.ts) sends the DESTROYs.
 */
import { addressKeys } from '../protocol/address-block.js';
import { LinkRole } from '../protocol/link-handshake.js';
import type { Link } from '../net/link.js';
import { BucketTable } from './address-buckets.js';
import type { CircuitHop } from './circuit-hop.js';
import { TokenBucket } from './token-bucket.js';

/** Circuits whose previous hop is a client link from one /24 or /48 (specs/circuits.md §7.1). */
export const MAX_CIRCUITS_PER_BLOCK = 1024;
/** Circuits whose previous hop is a relay link from one /24 or /48. */
export const MAX_CIRCUITS_PER_RELAY_BLOCK = 8192;
/** CREATEs per second from one client link (burst: ten seconds' worth), specs/circuits.md §7.2. */
export const CREATES_PER_SECOND_PER_LINK = 10;
/** CREATEs per second from the client links of one /24 or /48 (burst: ten seconds' worth). */
export const CREATES_PER_SECOND_PER_BLOCK = 50;
/** CREATEs per second from the relay links of one /24 or /48 (burst: ten seconds' worth). */
export const CREATES_PER_SECOND_PER_RELAY_BLOCK = 500;

export interface CircuitAdmissionLimits {
  /** Circuits from client links of one address block (MAX_CIRCUITS_PER_BLOCK), from relay links (…_PER_RELAY_BLOCK). */
  maxCircuitsPerBlock?: number;
  maxCircuitsPerRelayBlock?: number;
  /** CREATEs per second from one client link, from a block's client links, from a block's relay links (CREATES_PER_SECOND_…). */
  createsPerSecondPerLink?: number;
  createsPerSecondPerBlock?: number;
  createsPerSecondPerRelayBlock?: number;
}

/** The pool and address block of a link's CREATEs: its counting key, the circuits it may hold, and which pool. */
interface Pool {
  readonly key: string;
  readonly max: number;
  readonly relay: boolean;
}

export class CircuitAdmission {
  /** Circuits counted per pool and address block ("client <block>", "relay <block>"). */
  private readonly perBlock = new Map<string, number>();
  /** CREATE token buckets: per client link, per pool and block. */
  private readonly createsPerLink = new WeakMap<Link, TokenBucket>();
  /** Each link's pool and block, worked out on its first CREATE: a link's peer and address do not change once open. */
  private readonly pools = new WeakMap<Link, Pool>();
  private readonly createsPerBlock: { client: BucketTable; relay: BucketTable };

  constructor(
    private readonly limits: CircuitAdmissionLimits,
    private readonly now: () => number,
  ) {
    const block = limits.createsPerSecondPerBlock ?? CREATES_PER_SECOND_PER_BLOCK;
    const relayBlock = limits.createsPerSecondPerRelayBlock ?? CREATES_PER_SECOND_PER_RELAY_BLOCK;
    this.createsPerBlock = { client: new BucketTable(block, 10 * block, now), relay: new BucketTable(relayBlock, 10 * relayBlock, now) };
  }

  /**
   * The pool and address block a CREATE arriving on `link` is counted in: its peer's /24 or /48 (a link without an
   * IP address is a block of its own), in the relay pool when the peer proved a relay identity.
   */
  private poolOf(link: Link): Pool {
    const cached = this.pools.get(link);
    if (cached) return cached;
    const pool = this.poolOfUncached(link);
    // Before the handshake has named the peer the answer may still change (no CREATE is taken then): not kept.
    if (link.peer) this.pools.set(link, pool);
    return pool;
  }

  private poolOfUncached(link: Link): Pool {
    const relay = link.peer?.role === LinkRole.RELAY;
    const remote = link.socket.remoteAddress;
    const block = remote ? addressKeys(remote).block : `link ${link.id}`;
    return relay
      ? { key: `relay ${block}`, max: this.limits.maxCircuitsPerRelayBlock ?? MAX_CIRCUITS_PER_RELAY_BLOCK, relay }
      : { key: `client ${block}`, max: this.limits.maxCircuitsPerBlock ?? MAX_CIRCUITS_PER_BLOCK, relay };
  }

  /**
   * Checks a CREATE on `link` against its block's circuits, then charges it to its link (client links) and to its
   * pool and block. Returns the key to count the circuit under (`count`), or the drop reason.
   */
  admit(link: Link): { key: string } | 'circuit_limit_block' | 'create_rate_link' | 'create_rate_block' {
    const pool = this.poolOf(link);
    if ((this.perBlock.get(pool.key) ?? 0) >= pool.max) return 'circuit_limit_block';
    if (!pool.relay) {
      let b = this.createsPerLink.get(link);
      if (!b) {
        const rate = this.limits.createsPerSecondPerLink ?? CREATES_PER_SECOND_PER_LINK;
        this.createsPerLink.set(link, (b = new TokenBucket(rate, 10 * rate, this.now)));
      }
      if (!b.tryTake(1)) return 'create_rate_link';
    }
    return this.createsPerBlock[pool.relay ? 'relay' : 'client'].tryTake(pool.key) ? { key: pool.key } : 'create_rate_block';
  }

  /** Counts a circuit admitted under `key`. */
  count(hop: CircuitHop, key: string): void {
    hop.admittedIn = key;
    this.perBlock.set(key, (this.perBlock.get(key) ?? 0) + 1);
  }

  /** Uncounts a circuit that closed (once). */
  release(hop: CircuitHop): void {
    if (hop.admittedIn === null) return;
    const n = (this.perBlock.get(hop.admittedIn) ?? 1) - 1;
    if (n > 0) this.perBlock.set(hop.admittedIn, n);
    else this.perBlock.delete(hop.admittedIn);
    hop.admittedIn = null;
  }

  /** Circuits counted for the address block of `link`'s peer (tests, status). */
  circuitsFromBlockOf(link: Link): number {
    return this.perBlock.get(this.poolOf(link).key) ?? 0;
  }

  /** Drops the block buckets that have refilled (maintenance). */
  sweep(): void {
    this.createsPerBlock.client.sweep();
    this.createsPerBlock.relay.sweep();
  }
}
