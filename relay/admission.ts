/**
 * Sybil admission (specs/directory.md §5.5): what a relay does with a valid descriptor of an identity it does not
 * hold and the consensus does not list. Keys are free, so such a descriptor proves nothing; before it enters the
 * directory — to be served to clients and announced to neighbours — its relay must answer at the address it gives:
 * the relay dials it, and the link handshake proves the identity (a reachability proof).
 *
 * Until then it waits here, within bounds that an adversary cannot stretch:
 *
 *   MAX_PENDING (1024)             descriptors waiting in all
 *   PENDING_PER_PEER (64)          waiting because of one neighbour (the one that sent it; a relay's own descriptor
 *                                  counts against itself); after PEER_FAILURES_BEFORE_SHRINK proofs in a row failed,
 *                                  that neighbour gets SHRUNK_PER_PEER (4) until one succeeds
 *   PENDING_PER_NETWORK (64)       waiting from one /16 (IPv4) or /32 (IPv6)
 *   MAX_RELAYS_PER_ADDRESS (4)     unlisted relays admitted per IP address (loopback excepted: test networks)
 *
 * What does not fit is dropped — never anything already held: the directory cap can only be reached by relays that
 * proved reachability or that the authorities list. Identities dropped because a neighbour's share was full are
 * remembered (at most DEFERRED_PER_PEER per neighbour) and asked of it again as its share empties, so a relay that
 * joins learns a large directory at the pace of its proofs rather than losing what did not fit.
 *
 * Proofs run PROBE_CONCURRENCY at a time, taken from the neighbours in turn (round robin), so a flood from some
 * neighbours delays another's proof by one turn, not by the whole flood. A failed proof is remembered for
 * FAILED_MEMORY_MS: the same identity is not dialled again meanwhile.
 */
import { toHex } from '../protocol/bytes.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { hostOf, isLoopbackHost, networkOf } from '../protocol/relay-network.js';
import { within } from '../net/abort.js';

export const MAX_PENDING = 1024;
export const PENDING_PER_PEER = 64;
export const SHRUNK_PER_PEER = 4;
export const PEER_FAILURES_BEFORE_SHRINK = 16;
export const PENDING_PER_NETWORK = 64;
export const MAX_RELAYS_PER_ADDRESS = 4;
export const DEFERRED_PER_PEER = 5000;
export const PROBE_CONCURRENCY = 8;
export const PROBE_TIMEOUT_MS = 10_000;
export const FAILED_MEMORY_MS = 3600_000;

export type AdmissionResult = 'pending' | 'refused' | 'deferred';

export interface AdmissionOptions {
  /** Dials `url` expecting `identity`; resolves when the handshake proved it (the link is the caller's to close). */
  prove: (url: string, identity: Uint8Array) => Promise<{ close(): void }>;
  /** A proven descriptor: add it to the directory and announce it. */
  admitted: (d: Descriptor) => void;
  /** Identities to ask a neighbour for again (its share emptied). */
  askAgain: (peer: string, ids: Uint8Array[]) => void;
  /** Whether the directory still holds a relay (admitted ones leave when their descriptors expire). */
  isHeld: (fingerprint: string) => boolean;
  now: () => number;
  /** Counts outcomes (metrics). */
  count?: (event: 'pending' | 'refused' | 'deferred' | 'proven' | 'failed') => void;
}

interface Pending {
  readonly d: Descriptor;
  readonly peer: string;
}

export class Admission {
  private readonly pending = new Map<string, Pending>();
  private readonly queues = new Map<string, Pending[]>();
  private readonly perPeer = new Map<string, number>();
  private readonly perNetwork = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly failed = new Map<string, number>();
  private readonly deferred = new Map<string, Map<string, Uint8Array>>();
  private readonly probingHosts = new Map<string, number>();
  /** Relays admitted here, by host: what MAX_RELAYS_PER_ADDRESS counts (pruned as they leave the directory). */
  private readonly admittedAt = new Map<string, Set<string>>();
  private running = 0;
  private turn: string[] = [];
  private stopped = false;

  constructor(private readonly o: AdmissionOptions) {}

  get size(): number {
    return this.pending.size;
  }

  has(fingerprint: string): boolean {
    return this.pending.has(fingerprint);
  }

  private shareOf(peer: string): number {
    return (this.failures.get(peer) ?? 0) >= PEER_FAILURES_BEFORE_SHRINK ? SHRUNK_PER_PEER : PENDING_PER_PEER;
  }

  /** True when `peer`'s share has room (a cheap check before verifying a descriptor's signature). */
  hasRoom(peer: string): boolean {
    return (this.perPeer.get(peer) ?? 0) < this.shareOf(peer) && this.pending.size < MAX_PENDING;
  }

  /** Remembers an identity that did not fit `peer`'s share, to ask again later. */
  defer(peer: string, id: Uint8Array): void {
    let m = this.deferred.get(peer);
    if (!m) this.deferred.set(peer, (m = new Map()));
    if (m.size < DEFERRED_PER_PEER) m.set(toHex(id), id);
    this.o.count?.('deferred');
  }

  /**
   * Offers a verified descriptor of an identity neither held nor listed, sent by neighbour `peer` (a fingerprint;
   * the relay itself when it pushed its own). 'pending': a proof will run; 'deferred': `peer`'s share is full and
   * the identity will be asked again; 'refused': dropped (a limit, or a recent failed proof).
   */
  offer(d: Descriptor, peer: string): AdmissionResult {
    const fp = d.fingerprint;
    if (this.pending.has(fp)) return 'pending';
    const failedAt = this.failed.get(fp);
    if (failedAt !== undefined && this.o.now() - failedAt < FAILED_MEMORY_MS) return this.refuse();
    const host = hostOf(d);
    if (!isLoopbackHost(host) && this.heldAt(host) + (this.probingHosts.get(host) ?? 0) >= MAX_RELAYS_PER_ADDRESS) return this.refuse();
    if (!this.hasRoom(peer)) {
      if (this.pending.size >= MAX_PENDING) return this.refuse();
      this.defer(peer, d.id);
      return 'deferred';
    }
    const net = networkOf(d);
    if ((this.perNetwork.get(net) ?? 0) >= PENDING_PER_NETWORK) return this.refuse();
    const p: Pending = { d, peer };
    this.pending.set(fp, p);
    this.perPeer.set(peer, (this.perPeer.get(peer) ?? 0) + 1);
    this.perNetwork.set(net, (this.perNetwork.get(net) ?? 0) + 1);
    this.probingHosts.set(host, (this.probingHosts.get(host) ?? 0) + 1);
    let q = this.queues.get(peer);
    if (!q) {
      this.queues.set(peer, (q = []));
      this.turn.push(peer);
    }
    q.push(p);
    this.o.count?.('pending');
    this.pump();
    return 'pending';
  }

  private heldAt(host: string): number {
    const set = this.admittedAt.get(host);
    if (!set) return 0;
    for (const fp of set) if (!this.o.isHeld(fp)) set.delete(fp);
    if (set.size === 0) this.admittedAt.delete(host);
    return set.size;
  }

  private refuse(): 'refused' {
    this.o.count?.('refused');
    return 'refused';
  }

  /** Starts proofs up to PROBE_CONCURRENCY, one neighbour's queue at a time. */
  private pump(): void {
    while (!this.stopped && this.running < PROBE_CONCURRENCY && this.turn.length > 0) {
      const peer = this.turn.shift()!;
      const q = this.queues.get(peer)!;
      const p = q.shift()!;
      if (q.length > 0) this.turn.push(peer);
      else this.queues.delete(peer);
      this.running++;
      void this.prove(p).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async prove(p: Pending): Promise<void> {
    let ok = false;
    try {
      // A link that opens after the deadline is closed at once (it proves nothing any more).
      const link = await within(this.o.prove(p.d.addr, p.d.id), {
        timeoutMs: PROBE_TIMEOUT_MS,
        timeoutMessage: 'reachability proof timed out',
        onLate: (l) => l.close(),
        unref: true,
      });
      link.close();
      ok = true;
    } catch {
      ok = false;
    }
    if (this.stopped) return;
    this.release(p);
    if (ok) {
      this.failures.delete(p.peer);
      this.o.count?.('proven');
      const host = hostOf(p.d);
      let set = this.admittedAt.get(host);
      if (!set) this.admittedAt.set(host, (set = new Set()));
      set.add(p.d.fingerprint);
      this.o.admitted(p.d);
    } else {
      this.failures.set(p.peer, (this.failures.get(p.peer) ?? 0) + 1);
      this.failed.set(p.d.fingerprint, this.o.now());
      if (this.failed.size > 4 * MAX_PENDING) this.pruneFailed();
      this.o.count?.('failed');
    }
    this.askDeferred(p.peer);
  }

  private release(p: Pending): void {
    this.pending.delete(p.d.fingerprint);
    const dec = (m: Map<string, number>, k: string): void => {
      const n = (m.get(k) ?? 1) - 1;
      if (n > 0) m.set(k, n);
      else m.delete(k);
    };
    dec(this.perPeer, p.peer);
    dec(this.perNetwork, networkOf(p.d));
    dec(this.probingHosts, hostOf(p.d));
  }

  /** Asks `peer` again for deferred identities, as many as its share has room for. */
  private askDeferred(peer: string): void {
    const m = this.deferred.get(peer);
    if (!m || m.size === 0) return;
    const room = this.shareOf(peer) - (this.perPeer.get(peer) ?? 0);
    if (room <= 0) return;
    const ids: Uint8Array[] = [];
    for (const [k, id] of m) {
      if (ids.length >= room) break;
      ids.push(id);
      m.delete(k);
    }
    if (m.size === 0) this.deferred.delete(peer);
    if (ids.length) this.o.askAgain(peer, ids);
  }

  private pruneFailed(): void {
    const now = this.o.now();
    for (const [fp, t] of this.failed) if (now - t >= FAILED_MEMORY_MS) this.failed.delete(fp);
    if (this.failed.size > 4 * MAX_PENDING) this.failed.clear();
  }

  /** A neighbour's last link closed: what it deferred is forgotten (its pending proofs still run). */
  peerGone(peer: string): void {
    this.deferred.delete(peer);
  }

  stop(): void {
    this.stopped = true;
    this.queues.clear();
    this.turn = [];
    this.deferred.clear();
  }
}
