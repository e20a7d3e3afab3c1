/**
 * Introduction points and rendezvous points (specs/rendezvous.md §3), as Tor's onion services use them.
 *
 * - An endpoint registers an introduction circuit under an intro auth key (ESTABLISH_INTRO, signed over the hop's
 *   binding so it cannot be replayed elsewhere). INTRODUCE1 naming that key is passed to the endpoint as
 *   INTRODUCE2; the relay cannot read it.
 * - An initiator registers a one-time cookie at a rendezvous point (ESTABLISH_RENDEZVOUS). The endpoint's
 *   RENDEZVOUS1 with that cookie is passed on as RENDEZVOUS2, and the two circuits are spliced: each side's cells
 *   for the other pass through, end-to-end encrypted under keys the relay does not have.
 * Neither relay learns both ends: the introduction point sees the endpoint's circuit and an initiator's circuit,
 * the rendezvous point sees two circuits; none sees an address or an IP of either party beyond its own first hop.
 *
 * The tables are bounded (§3.2): a circuit makes one registration in its life at most (an intro key or a cookie; a
 * second is a protocol violation that destroys the circuit, as Tor refuses ESTABLISH_INTRO on a circuit that is no
 * longer an ordinary one), registrations die with their circuit and expire (cookies after
 * RENDEZVOUS_COOKIE_LIFETIME_MS, intro keys after INTRO_REGISTRATION_LIFETIME_MS), and they are counted per relay and
 * by where the circuit comes from. A circuit arriving over a client link comes straight from its builder: it is
 * counted per peer (that link) and per address block of the peer. One arriving over a relay link has a middle relay
 * before it, which many honest circuits share with any attacker's: relay links draw on the whole table, each up to
 * its fair share of it, and a relay link below its share takes the place of the oldest registration of the relay
 * link holding the most when the table is full. Cookies expire in the order they were made, so expired ones are dropped
 * from the front of the table, never by a pass over all of it.
 *
 * INTRODUCE1 is rate limited per intro key (a token bucket, as Tor's introduction-point DoS defence): past the burst,
 * introductions are answered `busy` and not passed on, so whoever knows an endpoint's address cannot make its
 * introduction circuit carry more than INTRODUCE1_RATE introductions a second. An endpoint may give its introduction
 * point its proof-of-work seeds (INTRO_POW): an INTRODUCE1 with a proof valid under them, never seen before, draws on
 * a second allowance (INTRODUCE1_POW_RATE), so a flood that does not pay cannot crowd out initiators who do.
 *
 * Why this file is at ~400 lines: introduction and rendezvous registrations share one bounded table discipline —
 * per relay, per peer, per address block, fair shares for relay links, expiry in order, cleanup when the circuit
 * goes — and a circuit may hold one registration of either kind; keeping both in one module keeps those bounds in
 * one place.
 */
import { crypto } from '../crypto/index.js';
import { addressBlock } from '../protocol/address-block.js';
import { toHex } from '../protocol/bytes.js';
import { DestroyReason } from '../protocol/cell.js';
import { AlliumError, LimitError, ProtocolError } from '../protocol/errors.js';
import { LinkRole } from '../protocol/link-handshake.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { decodeRv, encodeRv, introSignedMessage } from '../protocol/rendezvous-messages.js';
import { powBinding, verifyPow, type PowSolution } from '../protocol/intro-pow.js';
import { BloomFilter } from '../protocol/replay-filter.js';
import type { Link } from '../net/link.js';
import type { CircuitEndpointHandler, CircuitHop, CircuitReactor } from './circuits.js';
import type { RelayMetrics } from './metrics.js';
import { TokenBucket } from './token-bucket.js';

export const MAX_INTRO_POINTS = 10_000;
export const MAX_INTRO_POINTS_PER_PEER = 2_500;
export const MAX_INTRO_POINTS_PER_BLOCK = 2_500;
export const MAX_PENDING_RENDEZVOUS = 10_000;
export const MAX_PENDING_RENDEZVOUS_PER_PEER = 2_500;
export const MAX_PENDING_RENDEZVOUS_PER_BLOCK = 2_500;
export const RENDEZVOUS_COOKIE_LIFETIME_MS = 120_000;
/** INTRODUCE1 passed on per intro key and second, on average (Tor's HiddenServiceEnableIntroDoSRatePerSec). */
export const INTRODUCE1_RATE = 25;
/** … and at once (Tor's HiddenServiceEnableIntroDoSBurstPerSec). */
export const INTRODUCE1_BURST = 200;
/** An intro key stays registered this long; then its circuit is destroyed and its endpoint registers anew. */
export const INTRO_REGISTRATION_LIFETIME_MS = 24 * 3600_000;

/** INTRODUCE1 with a proof of work valid under the endpoint's seeds, passed on per intro key and second (§3.2). */
export const INTRODUCE1_POW_RATE = 100;
/** … and at once. */
export const INTRODUCE1_POW_BURST = 400;
/**
 * Proofs of work an introduction point accepts per seed, remembered in a Bloom filter (about 2.4 KB per seed, made
 * on the first proof); beyond, proofs under that seed count as unpaid until the endpoint sends new seeds.
 */
export const MAX_INTRO_POW_PER_SEED = 1_024;
/** The filter's false-positive rate at that count: an honest proof taken for a replay counts as unpaid. */
const INTRO_POW_FILTER_FPR = 1e-4;

const COMMANDS = new Set<number>([
  RelayCommand.ESTABLISH_INTRO,
  RelayCommand.INTRODUCE1,
  RelayCommand.ESTABLISH_RENDEZVOUS,
  RelayCommand.RENDEZVOUS1,
  RelayCommand.INTRO_POW,
]);

/** What a circuit's slot holds once its one registration is gone: it can make no other (one per circuit life). */
const SPENT = 'spent';

/** The limits of specs/rendezvous.md §3.2, each with its default. */
export interface RendezvousLimits {
  /** Intro keys registered at this relay (default MAX_INTRO_POINTS). */
  maxIntroPoints?: number;
  /** … by circuits arriving over one link (default MAX_INTRO_POINTS_PER_PEER). */
  maxIntroPointsPerPeer?: number;
  /** … by circuits arriving from one /24 or /48 (default MAX_INTRO_POINTS_PER_BLOCK). */
  maxIntroPointsPerBlock?: number;
  /** Cookies waiting at this relay (default MAX_PENDING_RENDEZVOUS). */
  maxPendingRendezvous?: number;
  /** … on circuits arriving over one link (default MAX_PENDING_RENDEZVOUS_PER_PEER). */
  maxPendingRendezvousPerPeer?: number;
  /** … on circuits arriving from one /24 or /48 (default MAX_PENDING_RENDEZVOUS_PER_BLOCK). */
  maxPendingRendezvousPerBlock?: number;
  /** How long a cookie waits for RENDEZVOUS1 (default RENDEZVOUS_COOKIE_LIFETIME_MS). */
  cookieLifetimeMs?: number;
  /** How long an intro key stays registered (default INTRO_REGISTRATION_LIFETIME_MS). */
  introLifetimeMs?: number;
  /** INTRODUCE1 passed on per intro key and second (default INTRODUCE1_RATE). */
  introduceRate?: number;
  /** … and at once (default INTRODUCE1_BURST). */
  introduceBurst?: number;
  /** INTRODUCE1 with a valid proof of work passed on per intro key and second (default INTRODUCE1_POW_RATE). */
  introducePowRate?: number;
  /** … and at once (default INTRODUCE1_POW_BURST). */
  introducePowBurst?: number;
}

/** A circuit's one registration, with what it was counted against. */
interface Registration {
  readonly kind: 'intro' | 'cookie';
  readonly key: string;
  readonly hop: CircuitHop;
  readonly link: Link;
  /** True when the circuit arrived over a relay link (counted in the relay links' pool, not per peer and block). */
  readonly viaRelay: boolean;
  /** The address block of a client link (null over a relay link, or without an address). */
  readonly block: string | null;
  /** When the registration lapses: a cookie stops waiting, an intro key must be registered anew. */
  readonly expires: number;
  /** Intro keys: the INTRODUCE1 allowance. */
  readonly introductions?: TokenBucket;
  /** Intro keys whose endpoint sent INTRO_POW: its seeds, the nonces seen under each, and the paid allowance. */
  pow?: { seeds: { seed: Uint8Array; seen: BloomFilter | null }[]; paid: TokenBucket };
}

/** Where a new registration fits: null when it fits, a registration to give way, or the name of the limit it exceeds. */
type Admission = null | Registration | string;

/**
 * The registrations of one kind, counted relay-wide; per peer and per address block for circuits from client links;
 * per relay link, in the order they were made, for circuits from relay links.
 */
class Counts {
  private readonly perPeer = new Map<Link, number>();
  private readonly perBlock = new Map<string, number>();
  private readonly perRelayLink = new Map<Link, Set<Registration>>();
  total = 0;

  constructor(
    readonly name: string,
    private readonly max: number,
    private readonly maxPerPeer: number,
    private readonly maxPerBlock: number,
  ) {}

  /**
   * Whether a new registration from `link` fits. Over a client link: under the relay-wide total and its peer's and
   * block's limits. Over a relay link: under the larger of MAX_…_PER_PEER and its fair share of the table
   * (⌊max / relay links holding registrations, this one included⌋); when the table is full and the link holds less
   * than its fair share, the oldest registration of the relay link holding the most, if that one holds more than
   * its fair share, is named to give way.
   */
  admit(link: Link, viaRelay: boolean, block: string | null): Admission {
    if (!viaRelay) {
      if (this.total >= this.max) return this.name;
      if ((this.perPeer.get(link) ?? 0) >= this.maxPerPeer) return `${this.name}_PER_PEER`;
      if (block !== null && (this.perBlock.get(block) ?? 0) >= this.maxPerBlock) return `${this.name}_PER_BLOCK`;
      return null;
    }
    const mine = this.perRelayLink.get(link)?.size ?? 0;
    const fair = Math.floor(this.max / (this.perRelayLink.size + (mine === 0 ? 1 : 0)));
    if (mine >= Math.max(this.maxPerPeer, fair)) return `${this.name}_PER_RELAY_LINK`;
    if (this.total < this.max) return null;
    let most: Set<Registration> | null = null;
    for (const set of this.perRelayLink.values()) if (!most || set.size > most.size) most = set;
    if (mine < fair && most && most.size > fair) return most.values().next().value!;
    return this.name;
  }

  add(r: Registration): void {
    this.total++;
    if (r.viaRelay) {
      let set = this.perRelayLink.get(r.link);
      if (!set) this.perRelayLink.set(r.link, (set = new Set()));
      set.add(r);
      return;
    }
    this.perPeer.set(r.link, (this.perPeer.get(r.link) ?? 0) + 1);
    if (r.block !== null) this.perBlock.set(r.block, (this.perBlock.get(r.block) ?? 0) + 1);
  }

  remove(r: Registration): void {
    this.total--;
    if (r.viaRelay) {
      const set = this.perRelayLink.get(r.link);
      set?.delete(r);
      if (set?.size === 0) this.perRelayLink.delete(r.link);
      return;
    }
    const n = (this.perPeer.get(r.link) ?? 1) - 1;
    if (n <= 0) this.perPeer.delete(r.link);
    else this.perPeer.set(r.link, n);
    if (r.block === null) return;
    const b = (this.perBlock.get(r.block) ?? 1) - 1;
    if (b <= 0) this.perBlock.delete(r.block);
    else this.perBlock.set(r.block, b);
  }
}

export class RendezvousService implements CircuitEndpointHandler {
  /** Each circuit's registration, or SPENT once it had one (the typed slot of this handler on the circuit). */
  private readonly registrations = new WeakMap<CircuitHop, Registration | typeof SPENT>();
  private readonly intros = new Map<string, Registration>();
  private readonly cookies = new Map<string, Registration>();
  private readonly introCounts: Counts;
  private readonly cookieCounts: Counts;
  private readonly cookieLifetimeMs: number;
  private readonly introLifetimeMs: number;
  private readonly introduceRate: number;
  private readonly introducePowRate: number;
  private readonly introducePowBurst: number;
  private readonly introduceBurst: number;

  constructor(
    private readonly reactor: CircuitReactor,
    private readonly metrics: RelayMetrics,
    private readonly now: () => number = Date.now,
    limits: RendezvousLimits = {},
  ) {
    this.introCounts = new Counts(
      'MAX_INTRO_POINTS',
      limits.maxIntroPoints ?? MAX_INTRO_POINTS,
      limits.maxIntroPointsPerPeer ?? MAX_INTRO_POINTS_PER_PEER,
      limits.maxIntroPointsPerBlock ?? MAX_INTRO_POINTS_PER_BLOCK,
    );
    this.cookieCounts = new Counts(
      'MAX_PENDING_RENDEZVOUS',
      limits.maxPendingRendezvous ?? MAX_PENDING_RENDEZVOUS,
      limits.maxPendingRendezvousPerPeer ?? MAX_PENDING_RENDEZVOUS_PER_PEER,
      limits.maxPendingRendezvousPerBlock ?? MAX_PENDING_RENDEZVOUS_PER_BLOCK,
    );
    this.cookieLifetimeMs = limits.cookieLifetimeMs ?? RENDEZVOUS_COOKIE_LIFETIME_MS;
    this.introLifetimeMs = limits.introLifetimeMs ?? INTRO_REGISTRATION_LIFETIME_MS;
    this.introduceRate = limits.introduceRate ?? INTRODUCE1_RATE;
    this.introduceBurst = limits.introduceBurst ?? INTRODUCE1_BURST;
    this.introducePowRate = limits.introducePowRate ?? INTRODUCE1_POW_RATE;
    this.introducePowBurst = limits.introducePowBurst ?? INTRODUCE1_POW_BURST;
  }

  /** Intro keys registered now. */
  get introCount(): number {
    return this.intros.size;
  }

  /** Cookies waiting now (expired ones included until the next prune). */
  get pendingRendezvousCount(): number {
    return this.cookies.size;
  }

  deliver(hop: CircuitHop, msg: RelayMessage): boolean {
    if (!COMMANDS.has(msg.command)) return false;
    if (!hop.isLast || msg.streamId !== 0) throw new AlliumError('ERR_STREAM', 'rendezvous messages go to the last hop on stream 0');
    switch (msg.command) {
      case RelayCommand.ESTABLISH_INTRO:
        return this.establishIntro(hop, msg.data);
      case RelayCommand.INTRODUCE1:
        return this.introduce(hop, msg.data);
      case RelayCommand.ESTABLISH_RENDEZVOUS:
        return this.establishRendezvous(hop, msg.data);
      case RelayCommand.RENDEZVOUS1:
        return this.rendezvous(hop, msg.data);
      case RelayCommand.INTRO_POW:
        return this.introPow(hop, msg.data);
    }
    return false;
  }

  private reply(hop: CircuitHop, command: RelayCommand, data: Uint8Array): void {
    this.reactor.sendBackward(hop, { command, streamId: 0, data });
  }

  /**
   * A circuit that holds a registration, or held one (it expired, gave way, moved or was used), may not make another
   * (§3.2): the caller's throw destroys it.
   */
  private requireUnregistered(hop: CircuitHop, what: string): void {
    if (this.registrations.has(hop)) {
      this.metrics.drops.inc({ reason: 'rendezvous_second_registration' });
      throw new ProtocolError('ERR_RELAY_COMMAND', `${what} on a circuit that holds or held an intro key or a cookie`);
    }
  }

  /** Where a registration from `hop` is counted: over a relay link in that pool, else per peer and block. */
  private origin(hop: CircuitHop): { link: Link; viaRelay: boolean; block: string | null } {
    const link = hop.prev.link;
    const viaRelay = link.peer?.role === LinkRole.RELAY;
    return { link, viaRelay, block: viaRelay ? null : addressBlock(link.socket.remoteAddress) };
  }

  /**
   * Makes room for a registration from `o` in `counts`, or throws ERR_LIMIT. A registration named to give way loses
   * its place and its circuit is destroyed, so its endpoint notices and registers elsewhere.
   */
  private makeRoom(counts: Counts, o: { link: Link; viaRelay: boolean; block: string | null }, reason: string): void {
    const a = counts.admit(o.link, o.viaRelay, o.block);
    if (a === null) return;
    if (typeof a === 'string') {
      this.metrics.drops.inc({ reason });
      throw new LimitError(a, reason === 'intro_limit' ? 'too many introduction points' : 'too many pending rendezvous');
    }
    this.metrics.drops.inc({ reason: `${reason}_evicted` });
    this.unregister(a);
    this.reactor.destroy(a.hop, DestroyReason.RESOURCE_LIMIT);
  }

  private register(table: Map<string, Registration>, counts: Counts, r: Registration): void {
    table.set(r.key, r);
    counts.add(r);
    this.registrations.set(r.hop, r);
  }

  /** Removes a registration; its circuit keeps SPENT, so it can make no other. */
  private unregister(r: Registration): void {
    const table = r.kind === 'intro' ? this.intros : this.cookies;
    if (table.get(r.key) !== r) return;
    table.delete(r.key);
    (r.kind === 'intro' ? this.introCounts : this.cookieCounts).remove(r);
    if (this.registrations.get(r.hop) === r) this.registrations.set(r.hop, SPENT);
  }

  /** Removes a registration that lapsed, and destroys its circuit if still open (its endpoint then registers anew). */
  private lapse(r: Registration): void {
    this.unregister(r);
    if (r.kind === 'intro' && r.hop.state !== 'closed') this.reactor.destroy(r.hop, DestroyReason.FINISHED);
  }

  private establishIntro(hop: CircuitHop, data: Uint8Array): boolean {
    this.requireUnregistered(hop, 'ESTABLISH_INTRO');
    const m = decodeRv('establishIntro', data);
    if (!hop.binding || !crypto().verify(m.s, introSignedMessage(hop.binding), m.k)) {
      throw new AlliumError('ERR_SIGNATURE', 'ESTABLISH_INTRO signature does not verify for this circuit');
    }
    const key = toHex(m.k);
    const o = this.origin(hop);
    const old = this.intros.get(key);
    if (old) this.unregister(old); // the key moves to this circuit; the old one stays open, registered for nothing
    if (this.introCounts.admit(o.link, o.viaRelay, o.block) !== null) this.pruneIntros();
    this.makeRoom(this.introCounts, o, 'intro_limit');
    const introductions = new TokenBucket(this.introduceRate, this.introduceBurst, this.now);
    this.register(this.intros, this.introCounts, { kind: 'intro', key, hop, ...o, expires: this.now() + this.introLifetimeMs, introductions });
    this.reply(hop, RelayCommand.INTRO_ESTABLISHED, encodeRv('empty', {}));
    return true;
  }

  /**
   * INTRO_POW on an endpoint's introduction circuit: the seeds its proofs of work are solved under, newest first
   * (§3.2). Nonces seen under a seed still named stay remembered; the others go with their seed.
   */
  private introPow(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('introPow', data);
    const r = this.registrations.get(hop);
    if (!r || r === 'spent' || r.kind !== 'intro' || this.intros.get(r.key) !== r)
      throw new ProtocolError('ERR_RELAY_COMMAND', 'INTRO_POW on a circuit that holds no intro key');
    const old = r.pow?.seeds ?? [];
    const seeds = m.s.map((seed) => old.find((x) => crypto().equal(x.seed, seed)) ?? { seed, seen: null });
    r.pow = { seeds, paid: r.pow?.paid ?? new TokenBucket(this.introducePowRate, this.introducePowBurst, this.now) };
    return true;
  }

  /**
   * True when `w` is a proof of work valid under one of the endpoint's seeds and not seen before under it (a hash
   * per seed, and one for the filter); remembers it. A seed with MAX_INTRO_POW_PER_SEED proofs proves nothing more
   * until the endpoint sends new seeds.
   */
  private paid(r: Registration, p: Uint8Array, w: PowSolution): boolean {
    const pow = r.pow;
    if (!pow) return false;
    let i: number;
    try {
      i = verifyPow(
        pow.seeds.map((x) => x.seed),
        w,
        powBinding(p),
      );
    } catch {
      return false;
    }
    const held = pow.seeds[i]!;
    const seen = (held.seen ??= new BloomFilter(MAX_INTRO_POW_PER_SEED, INTRO_POW_FILTER_FPR));
    // The nonce is the initiator's choice: its hash under the seed is what the filter takes (uniform, as it needs).
    const tag = crypto().hash(16, w.n, held.seed);
    if (seen.count >= MAX_INTRO_POW_PER_SEED || seen.has(tag)) return false;
    seen.add(tag);
    return true;
  }

  private introduce(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('introduce1', data);
    const r = this.intros.get(toHex(m.k));
    if (r && r.expires <= this.now()) this.lapse(r);
    if (!r || r.hop.state !== 'open' || r.expires <= this.now()) {
      if (r && r.hop.state === 'closed') this.unregister(r);
      this.metrics.drops.inc({ reason: 'introduce_unknown' });
      this.reply(hop, RelayCommand.INTRODUCE_ACK, encodeRv('introduceAck', { s: 'unknown' }));
      return true;
    }
    // A valid proof of work draws on its own allowance, which a flood without one cannot spend (§3.2).
    if (m.w && r.pow && this.paid(r, m.p, m.w)) {
      if (!r.pow.paid.tryTake(1)) {
        this.metrics.drops.inc({ reason: 'introduce_pow_rate' });
        this.reply(hop, RelayCommand.INTRODUCE_ACK, encodeRv('introduceAck', { s: 'busy' }));
        return true;
      }
    } else if (r.introductions && !r.introductions.tryTake(1)) {
      this.metrics.drops.inc({ reason: 'introduce_rate' });
      this.reply(hop, RelayCommand.INTRODUCE_ACK, encodeRv('introduceAck', { s: 'busy' }));
      return true;
    }
    this.reactor.sendBackward(r.hop, { command: RelayCommand.INTRODUCE2, streamId: 0, data: encodeRv('introduce2', m.w ? { p: m.p, w: m.w } : { p: m.p }) });
    this.reply(hop, RelayCommand.INTRODUCE_ACK, encodeRv('introduceAck', { s: 'ok' }));
    return true;
  }

  /**
   * Drops intro keys whose circuit is gone, and lapses those past INTRO_REGISTRATION_LIFETIME. closed() normally
   * removes the first; this keeps the table true regardless, and runs only when a limit is reached, where a pass over
   * the table is cheap next to refusing an endpoint.
   */
  private pruneIntros(): void {
    const now = this.now();
    for (const r of [...this.intros.values()]) {
      if (r.hop.state === 'closed') this.unregister(r);
      else if (r.expires <= now) this.lapse(r);
    }
  }

  /** Drops cookies past their lifetime or whose circuit is gone; the circuit of an expired cookie can register no other. */
  /**
   * Drops expired cookies. Every cookie lives cookieLifetimeMs from when it was made, and the table keeps them in the
   * order they were made, so the expired ones are at its front: the work is the number dropped, not the table's size.
   * (A clock stepping back can leave an expired cookie behind a live one for a while; it goes when that one does.)
   * The circuit of an expired cookie keeps SPENT and can register no other.
   */
  private expireCookies(): void {
    const now = this.now();
    for (const r of this.cookies.values()) {
      if (r.expires > now) break;
      this.unregister(r);
    }
  }

  /** Drops cookies of closed circuits (closed() normally has): a pass over the table, only when a limit is reached. */
  private pruneClosedCookies(): void {
    for (const r of [...this.cookies.values()]) if (r.hop.state === 'closed') this.unregister(r);
  }

  private establishRendezvous(hop: CircuitHop, data: Uint8Array): boolean {
    this.requireUnregistered(hop, 'ESTABLISH_RENDEZVOUS');
    const m = decodeRv('establishRendezvous', data);
    this.expireCookies();
    const key = toHex(m.c);
    if (this.cookies.has(key)) throw new AlliumError('ERR_STREAM', 'rendezvous cookie in use');
    const o = this.origin(hop);
    if (this.cookieCounts.admit(o.link, o.viaRelay, o.block) !== null) this.pruneClosedCookies();
    this.makeRoom(this.cookieCounts, o, 'rendezvous_limit');
    this.register(this.cookies, this.cookieCounts, { kind: 'cookie', key, hop, ...o, expires: this.now() + this.cookieLifetimeMs });
    this.reply(hop, RelayCommand.RENDEZVOUS_ESTABLISHED, encodeRv('empty', {}));
    return true;
  }

  private rendezvous(hop: CircuitHop, data: Uint8Array): boolean {
    const m = decodeRv('rendezvous1', data);
    this.expireCookies();
    let waiting = this.cookies.get(toHex(m.c));
    if (waiting && waiting.hop.state === 'closed') {
      this.unregister(waiting);
      waiting = undefined;
    }
    if (!waiting || waiting.hop === hop) {
      this.metrics.drops.inc({ reason: 'rendezvous_unknown_cookie' });
      throw new AlliumError('ERR_NOT_FOUND', 'no circuit waits with this cookie');
    }
    this.unregister(waiting);
    this.reactor.sendBackward(waiting.hop, { command: RelayCommand.RENDEZVOUS2, streamId: 0, data: encodeRv('rendezvous2', { h: m.h }) });
    this.reactor.splice(waiting.hop, hop);
    return true;
  }

  closed(hop: CircuitHop): void {
    const r = this.registrations.get(hop);
    if (r && r !== SPENT) this.unregister(r);
  }

  /** A circuit holding an intro key or a cookie is not idle, however long it is silent (specs/circuits.md §7.3). */
  holds(hop: CircuitHop): boolean {
    return this.registrations.has(hop);
  }
}
