/**
 * The supernode overlay (specs/directory.md §5): links to other relays, and directory gossip over them.
 *
 * - Dials `degree` relays chosen at random from the directory and keeps those links; relays that dial us are
 *   neighbours too, but never count towards `degree` (inbound links cannot eclipse the relay), and at most
 *   `maxInboundPerBlock` of them per address block are.
 * - Announce and pull: a new or newer descriptor learned from another relay is announced — its (identity,
 *   published) pair — to every relay neighbour not known to hold it (batched briefly); a neighbour that lacks that
 *   edition asks one announcer for it (`gossip-want`) and receives it whole, asking another announcer if the first
 *   does not deliver in time. The relay's own new descriptor is pushed whole (no neighbour can hold it yet).
 * - Anti-entropy: every `gossipInterval` one random neighbour gets our directory digest; if it differs, the
 *   neighbour answers with a summary page of (identity, published) pairs and both sides exchange what the other
 *   lacks within the fingerprints the page covers. A newly opened relay link starts with a digest exchange, so a
 *   joining relay learns the directory at once.
 * - Serves directory pages to clients (`dir-get` → `dir`), and descriptors by identity (`dir-want` → `dir-found`).
 * Descriptors that fail verification are dropped and counted; a forged or malformed one closes the link.
 * Answers to a peer's requests are made only while its link is under its high-water mark, one message at a time,
 * and the relay's own gossip skips a link over the mark (specs/link.md §4.2): a peer that asks and never reads makes
 * the relay hold at most the mark plus one message for it.
 *
 * A bridge (specs/directory.md §9) runs the overlay without gossip: it dials relays as a client (so they cannot
 * tell it from one), learns the directory by fetching pages (`dir-get`) over those links every gossip interval,
 * floods nothing, and answers its own clients' `bridge-get` with its bridge descriptor.
 *
 * Why this file is above ~400 lines: announce-and-pull, anti-entropy, the dial table and the bridge's page fetching
 * all read and clean the same per-neighbour tables (pulls asked of each neighbour and of each address block, the
 * inbound count per block, what each neighbour is known to hold), and every bound on them must be released in one
 * place when a neighbour goes (`neighbourGone`). Cut into files, those invariants would span modules that reach into
 * each other's maps; the codecs and the pure directory math already live in protocol/.
 */
import type { Logger } from 'pino';
import type { IdentityKey } from '../crypto/keys.js';
import { fingerprintOf, parseFingerprint } from '../crypto/keys.js';
import { crypto } from '../crypto/index.js';
import { compareBytes, MAX_ANNOUNCE_ENTRIES, MAX_DESCRIPTORS_PER_MESSAGE, MAX_SUMMARY_ENTRIES, type ControlMessage } from '../protocol/control.js';
import { openDescriptor, verifyDescriptor, type Descriptor, type OpenedDescriptor } from '../protocol/descriptor.js';
import { directoryDigest, type DirectoryStore } from '../protocol/directory-store.js';
import { AlliumError, isAlliumError, LimitError } from '../protocol/errors.js';
import { LinkRole } from '../protocol/link-handshake.js';
import { addressBlock } from '../protocol/address-block.js';
import { encodeControl } from '../protocol/control.js';
import { verifyConsensusHead, type Consensus, type ConsensusHead } from '../protocol/consensus.js';
import { toHex } from '../protocol/bytes.js';
import { signViewStatement } from '../protocol/view-statement.js';
import { fetchConsensusDiff, fetchConsensusEntries, fetchConsensusHead } from '../net/directory-requests.js';
import type { Link } from '../net/link.js';
import { Admission } from './admission.js';
import { ConsensusCache } from './consensus-cache.js';
import { shortFp } from './logger.js';
import type { RelayMetrics } from './metrics.js';

export interface OverlayOptions {
  identity: IdentityKey;
  directory: DirectoryStore;
  metrics: RelayMetrics;
  log: Logger;
  /** Dials a relay link (the relay supplies the socket factory and link options). */
  dial: (url: string, identity: Uint8Array) => Promise<Link>;
  /** Called for every new open link so the relay can wire cells to its circuit reactor. */
  onLink: (link: Link) => void;
  degree: number;
  gossipIntervalMs: number;
  /** Fingerprints of configured directory authorities (empty: consensuses are ignored). */
  authorities?: ReadonlySet<string>;
  now?: () => number;
  random?: () => number;
  /** Bytes a gossip message counts in the gossip metrics (default: its encoding's length; a simulator passes an equal, cheaper count). */
  gossipSize?: (m: ControlMessage) => number;
  /** Run as a bridge: no gossip, directory fetched from the relays it dials, its descriptor served on bridge-get. */
  bridge?: { descriptor: () => Uint8Array | null };
  /** Dials in progress at once (default MAX_PENDING_DIALS). */
  maxPendingDials?: number;
  /** Relay links that dialed us taken as neighbours per address block (default MAX_INBOUND_NEIGHBOURS_PER_BLOCK). */
  maxInboundPerBlock?: number;
  /**
   * Sybil admission (specs/directory.md §5.5): a descriptor of an identity neither held nor listed enters the
   * directory only after its relay proved reachability (default: on; off for bridges, which admit nothing of their own).
   */
  admission?: boolean;
  /** A new consensus was adopted (the relay updates what depends on it: placement, neighbour weights). */
  onConsensus?: (c: Consensus) => void;
  /** Votes and consensus signatures from relay links (directory authorities, specs/directory.md §7.1–§7.2). */
  onAuthorityMessage?: (link: Link, m: Extract<ControlMessage, { t: 'vote-part' | 'consensus-sig' }>) => void;
}

const DIR_PAGE = MAX_DESCRIPTORS_PER_MESSAGE;
/**
 * Relay links being dialed at once (specs/limits.md). Every dial the relay makes — overlay maintenance, circuits,
 * replication's links and probes — goes through linkTo, so this bounds the relay's outbound sockets in progress.
 */
export const MAX_PENDING_DIALS = 64;
/** A bridge gives up on a directory page after this long (and asks again at the next interval). */
const PAGE_TIMEOUT_MS = 10_000;
/** Verified consensus heads remembered by their bytes (a few per interval: one per set of signatures seen). */
const HEADS_SEEN = 16;
/** How long an announcer has to deliver a descriptor it was asked for before another announcer is asked. */
export const PULL_TIMEOUT_MS = 3_000;
/** A relay's own new descriptor goes out this soon (ms). */
const PUSH_BATCH_MS = 20;
/**
 * Announcements wait this long (ms): every message takes at least a whole link frame, so batching several
 * descriptors per announcement saves frames, and neighbours that announce the same descriptor meanwhile are skipped.
 */
export const ANNOUNCE_BATCH_MS = 250;
/**
 * Descriptors being pulled at once; announcements beyond are dropped (anti-entropy brings what they named), except
 * that a neighbour holding less than its fair share (MAX_PENDING_PULLS / neighbours) takes the place of a pull of the
 * neighbour holding the most.
 */
export const MAX_PENDING_PULLS = 10_000;
/** Descriptors being asked of one neighbour at once: its announcements beyond start no pull. */
export const MAX_PULLS_PER_NEIGHBOUR = 1_000;
/** Descriptors being asked of the neighbours of one address block (/24, /48) at once: identities are free, blocks not. */
export const MAX_PULLS_PER_BLOCK = 2_000;
/**
 * Relay links that dialed this relay and are taken as gossip neighbours, per address block (/24, /48). Beyond it a
 * relay link from that block still carries circuits, and its requests (directory pages, digests, wants) are
 * answered, but nothing is gossiped to it and nothing it offers (announcements, pushes, summaries) is taken.
 */
export const MAX_INBOUND_NEIGHBOURS_PER_BLOCK = 8;
/** Descriptors given in answer to one summary (a page of MAX_SUMMARY_ENTRIES); later rounds give the rest. */
export const MAX_SUMMARY_GIVE = MAX_SUMMARY_ENTRIES;
/** Announcers remembered per descriptor being pulled. */
const MAX_PULL_OFFERS = 16;

/** A descriptor announced by neighbours and asked for, not yet held at the announced edition. */
interface Pull {
  readonly id: Uint8Array;
  readonly fp: string;
  /** The newest published time announced. */
  pub: number;
  /** Announcers (neighbour fingerprints) with the published time each announced, in the order they announced. */
  readonly offers: Map<string, number>;
  /** Announcers asked so far; the last one asked is `asked`. */
  readonly tried: Set<string>;
  asked: string;
  /** The address block `asked` was counted against (null: none). */
  askedBlock: string | null;
  /** Counts the asks, so a timer set for an earlier one does nothing. */
  attempt: number;
}

/** A descriptor queued for the next batch: whole to every neighbour if our own, else announced. */
interface Queued {
  d: Descriptor;
  own: boolean;
  /** Neighbours known to hold this edition or a newer one: nothing is sent to them. */
  skip: Set<string>;
}

export class Overlay {
  private readonly relayLinks = new Map<string, Set<Link>>();
  private readonly dialing = new Map<string, Promise<Link>>();
  /**
   * Addresses of the bootstrap relays (configuration), by fingerprint. Nothing a peer sends adds to it: every other
   * address the relay dials is that of an unexpired descriptor in the directory, which bounds and expires its entries.
   */
  private readonly bootstrap = new Map<string, string>();
  private readonly gossipQueue = new Map<string, Queued>();
  private batchTimer: ReturnType<typeof setTimeout> | null = null;
  /** Announced descriptors being asked for, by fingerprint. */
  private readonly pulls = new Map<string, Pull>();
  private readonly pullTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Pulls currently asked of each neighbour (their fingerprints, oldest ask first). */
  private readonly askedOf = new Map<string, Set<string>>();
  /** How many pulls are asked of the neighbours of each address block. */
  private readonly askedOfBlock = new Map<string, number>();
  /**
   * How each neighbour answered our last asks: 1 if it delivered, −k after k asks in a row timed out, absent (0)
   * while it has not been asked. Announcers are asked in order of standing.
   */
  private readonly standing = new Map<string, number>();
  /** Where the next summary page starts (identities above this one); null: at the start. */
  private summaryCursor: Uint8Array | null = null;
  private readonly peerFps = new WeakMap<Link, string>();
  /** Links on which this relay sent a digest not yet answered by a summary: a summary is taken only on these. */
  private readonly digestSent = new WeakSet<Link>();
  /** Inbound relay links taken as neighbours, per address block. */
  private readonly inboundPerBlock = new Map<string, number>();
  private gossipTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** The consensuses held (specs/directory.md §7.3). */
  readonly consensus = new ConsensusCache();
  /** Consensus digests being fetched (so one head announced by several neighbours is fetched once). */
  /** Consensus digests being fetched (so one head announced by several neighbours is fetched once). */
  private readonly fetchingConsensus = new Set<string>();
  /**
   * Signed heads verified lately, by a hash of their bytes (at most HEADS_SEEN, oldest dropped first): the copies
   * of one head that other neighbours push are not decoded and verified again (specs/directory.md §7.3).
   */
  private readonly headsSeen = new Map<string, ConsensusHead>();
  /** The digest of the newest head each neighbour pushed: it holds that consensus, so none is pushed back to it. */
  private readonly headOf = new Map<string, string>();
  /** Descriptors waiting for a reachability proof (null: admission off). */
  readonly admission: Admission | null;
  private readonly now: () => number;
  private readonly rand: () => number;
  /** Bridge: directory fetches in progress, and the responder time of the last complete fetch, per link. */
  private readonly fetches = new Map<Link, { since: number; timer: ReturnType<typeof setTimeout> }>();
  private readonly fetchedAt = new WeakMap<Link, number>();

  constructor(private readonly o: OverlayOptions) {
    this.now = o.now ?? Date.now;
    this.rand = o.random ?? (() => crypto().uniform());
    this.admission =
      o.bridge || o.admission === false
        ? null
        : new Admission({
            prove: (url, id) => o.dial(url, id),
            admitted: (d) => this.admitted(d),
            askAgain: (peer, ids) => {
              const link = openOne(this.relayLinks.get(peer));
              if (link) this.send(link, { t: 'gossip-want', ids });
            },
            isHeld: (fp) => this.o.directory.get(fp) !== undefined,
            now: this.now,
            count: (event) => this.o.metrics.drops.inc({ reason: `admission_${event}` }),
          });
  }

  /** The configured directory authorities (fingerprints). */
  get authorities(): ReadonlySet<string> {
    return this.o.authorities ?? new Set();
  }

  /** Remembers how to reach a bootstrap relay (a configured bootstrap line; never an address learned from a peer). */
  learnAddress(identity: Uint8Array, url: string): void {
    this.bootstrap.set(fingerprintOf(identity), url);
  }

  /**
   * Where to dial a relay (specs/directory.md §5.1): the address of its descriptor while that is unexpired, else its
   * bootstrap line; null when there is neither.
   */
  private addressOf(fp: string): string | null {
    const d = this.o.directory.get(fp);
    if (d && d.exp > this.now()) return d.addr;
    return this.bootstrap.get(fp) ?? null;
  }

  get neighbourCount(): number {
    let n = 0;
    for (const s of this.relayLinks.values()) if (s.size) n++;
    return n;
  }

  neighbours(): string[] {
    return [...this.relayLinks.entries()].filter(([, s]) => s.size > 0).map(([fp]) => fp);
  }

  start(): void {
    this.scheduleGossip();
  }

  stop(): void {
    this.stopped = true;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    if (this.gossipTimer) clearTimeout(this.gossipTimer);
    for (const t of this.pullTimers) clearTimeout(t);
    this.pullTimers.clear();
    this.pulls.clear();
    this.askedOf.clear();
    this.askedOfBlock.clear();
    this.standing.clear();
    for (const f of this.fetches.values()) clearTimeout(f.timer);
    this.fetches.clear();
    this.admission?.stop();
  }

  /** True when this overlay runs for a bridge. */
  get isBridge(): boolean {
    return !!this.o.bridge;
  }

  /** Registers an open link (dialed or accepted). */
  attach(link: Link): void {
    this.o.onLink(link);
    link.on('link:control', (m, bytes) => this.onControl(link, m, bytes));
    if (link.peer?.role !== LinkRole.RELAY || !link.peer.identity) return;
    // A bridge keeps only the links it dialed (as a client) as neighbours, and gossips on none.
    if (this.o.bridge && !link.initiatedHere) return;
    if (!link.initiatedHere && !this.admitInbound(link)) {
      this.o.metrics.drops.inc({ reason: 'inbound_neighbour_limit' });
      return;
    }
    const fp = fingerprintOf(link.peer.identity);
    this.peerFps.set(link, fp);
    let set = this.relayLinks.get(fp);
    if (!set) this.relayLinks.set(fp, (set = new Set()));
    set.add(link);
    link.once('link:close', () => {
      set!.delete(link);
      if (set!.size === 0) {
        this.relayLinks.delete(fp);
        this.neighbourGone(fp);
      }
      const f = this.fetches.get(link);
      if (f) clearTimeout(f.timer);
      this.fetches.delete(link);
    });
    if (this.o.bridge) return this.fetchDirectory(link);
    this.sendDigest(link);
    const c = this.consensus.current;
    if (c) this.send(link, { t: 'consensus-head', c: c.raw });
  }

  /**
   * Takes an inbound relay link as a neighbour unless MAX_INBOUND_NEIGHBOURS_PER_BLOCK links of its address block
   * already are; counts it until it closes.
   */
  private admitInbound(link: Link): boolean {
    const block = addressBlock(link.socket.remoteAddress);
    if (block === null) return true;
    const n = this.inboundPerBlock.get(block) ?? 0;
    if (n >= (this.o.maxInboundPerBlock ?? MAX_INBOUND_NEIGHBOURS_PER_BLOCK)) return false;
    this.inboundPerBlock.set(block, n + 1);
    link.once('link:close', () => {
      const c = (this.inboundPerBlock.get(block) ?? 1) - 1;
      if (c > 0) this.inboundPerBlock.set(block, c);
      else this.inboundPerBlock.delete(block);
    });
    return true;
  }

  /** True when `link` is one of a neighbour's links (gossip runs over these only). */
  private isNeighbourLink(link: Link): boolean {
    return this.relayLinks.get(this.peerOf(link))?.has(link) ?? false;
  }

  /** Neighbours with an open link this relay dialed: what `degree` counts. */
  private dialedNeighbours(): Set<string> {
    const out = new Set<string>();
    for (const [fp, set] of this.relayLinks) for (const l of set) if (l.initiatedHere && l.isOpen) out.add(fp);
    return out;
  }

  /**
   * An open link to the relay with this identity, dialing one if needed (one dial per relay at a time, at most
   * `maxPendingDials` in all). Rejects with ERR_UNREACHABLE, or LimitError MAX_PENDING_DIALS (ERR_LIMIT) when that
   * many dials are in progress.
   */
  linkTo(identity: Uint8Array): Promise<Link> {
    const fp = fingerprintOf(identity);
    for (const l of this.relayLinks.get(fp) ?? []) if (l.isOpen) return Promise.resolve(l);
    const inFlight = this.dialing.get(fp);
    if (inFlight) return inFlight;
    const url = this.addressOf(fp);
    if (!url) return Promise.reject(new AlliumError('ERR_UNREACHABLE', 'relay not in the directory'));
    if (this.dialing.size >= (this.o.maxPendingDials ?? MAX_PENDING_DIALS)) {
      this.o.metrics.drops.inc({ reason: 'dial_limit' });
      return Promise.reject(new LimitError('MAX_PENDING_DIALS', 'too many relay links being dialed'));
    }
    const p = this.o.dial(url, identity).then(
      (link) => {
        this.dialing.delete(fp);
        this.attach(link);
        return link;
      },
      (e: unknown) => {
        this.dialing.delete(fp);
        throw isAlliumError(e) ? e : new AlliumError('ERR_UNREACHABLE', 'dial failed', { cause: e });
      },
    );
    this.dialing.set(fp, p);
    return p;
  }

  /**
   * Keeps `degree` relay links that this relay dialed: dials bootstrap relays while it has dialed none, and random
   * directory entries. Links other relays dialed are neighbours too but do not count, so relays that dial this one —
   * Sybils among them — cannot stop it from choosing its own neighbours.
   */
  maintain(): void {
    if (this.stopped) return;
    const self = this.o.identity.fingerprint;
    const have = new Set(this.neighbours());
    const dialed = this.dialedNeighbours();
    let missing = this.o.degree - dialed.size - this.dialing.size;
    if (missing <= 0) return;
    const candidates = new Set<string>();
    if (dialed.size === 0) for (const fp of this.bootstrap.keys()) candidates.add(fp);
    const now = this.now();
    for (const d of this.o.directory.all()) if (d.exp > now) candidates.add(d.fingerprint);
    const list = [...candidates].filter((fp) => fp !== self && !have.has(fp) && !this.dialing.has(fp));
    // One authority first, unless one is a neighbour already (a relay's own descriptor then reaches an authority
    // directly, §5.1), then relays weighted by their consensus weight when there is a consensus (a count-based draw
    // would favour whoever runs the most relays).
    const weight = (fp: string): number => (this.consensus.current ? this.consensus.weightOf(fp) : 1);
    const hasAuthority = [...have].some((fp) => this.authorities.has(fp));
    const authorityList = hasAuthority ? [] : list.filter((fp) => this.authorities.has(fp));
    const authorityFirst = authorityList.length ? [authorityList[Math.floor(this.rand() * authorityList.length)]!] : [];
    while (missing > 0 && list.length > 0) {
      let fp: string;
      if (authorityFirst.length > 0) fp = authorityFirst.shift()!;
      else {
        const ws = list.map(weight);
        const total = ws.reduce((a, b) => a + b, 0);
        let i = 0;
        if (total > 0) {
          let r = this.rand() * total;
          for (i = 0; i < list.length - 1; i++) {
            r -= ws[i]!;
            if (r < 0) break;
          }
        } else i = Math.floor(this.rand() * list.length);
        fp = list[i]!;
      }
      list.splice(list.indexOf(fp), 1);
      missing--;
      const id = this.o.directory.get(fp)?.id ?? parseFingerprint(fp);
      this.linkTo(id).catch((e: unknown) => {
        this.o.metrics.drops.inc({ reason: 'dial_failed' });
        this.o.log.debug({ relay: shortFp(fp), code: isAlliumError(e) ? e.code : 'unknown' }, 'overlay dial failed');
      });
    }
  }

  /**
   * Adds a descriptor and spreads it if it is new or newer: our own (`from` null) is pushed whole to every
   * neighbour; one received is announced to every neighbour not known to hold it.
   */
  publish(d: Descriptor, from: Link | null = null): void {
    const result = this.o.directory.add(d, this.now());
    this.o.metrics.directorySize.set(this.o.directory.size);
    if (result !== 'same') this.queueGossip(d, from, from === null);
  }

  private queueGossip(d: Descriptor, from: Link | null, own: boolean): void {
    const skip = new Set<string>();
    if (from) skip.add(this.peerOf(from));
    // Whoever announced this edition (or a newer one) holds it.
    const p = this.pulls.get(d.fingerprint);
    if (p && d.pub >= p.pub) {
      for (const [fp, pub] of p.offers) if (pub >= d.pub) skip.add(fp);
      if (from && p.asked === this.peerOf(from)) this.standing.set(p.asked, 1); // it delivered
      this.endPull(d.fingerprint, p);
    }
    if (this.o.bridge) return;
    this.gossipQueue.set(d.fingerprint, { d, own, skip });
    if (!this.batchTimer && !this.stopped) this.batchTimer = setTimeout(() => this.flushGossip(), own ? PUSH_BATCH_MS : ANNOUNCE_BATCH_MS);
  }

  private flushGossip(): void {
    this.batchTimer = null;
    const items = [...this.gossipQueue.values()].sort((a, b) => (a.d.fingerprint < b.d.fingerprint ? -1 : 1));
    this.gossipQueue.clear();
    for (const [fp, set] of this.relayLinks) {
      const link = openOne(set);
      if (!link) continue;
      const push: Uint8Array[] = [];
      const announce: [Uint8Array, number][] = [];
      for (const i of items) {
        // Nothing to the neighbours known to hold it, nor to its publisher.
        if (i.skip.has(fp) || fp === i.d.fingerprint) continue;
        if (i.own) push.push(i.d.raw);
        else announce.push([i.d.id, i.d.pub]);
      }
      for (let i = 0; i < push.length; i += DIR_PAGE) this.send(link, { t: 'gossip-push', ds: push.slice(i, i + DIR_PAGE) });
      for (let i = 0; i < announce.length; i += MAX_ANNOUNCE_ENTRIES) this.send(link, { t: 'gossip-announce', e: announce.slice(i, i + MAX_ANNOUNCE_ENTRIES) });
    }
  }

  /** The fingerprint of a relay link's peer. */
  private peerOf(link: Link): string {
    let fp = this.peerFps.get(link);
    if (fp === undefined) {
      fp = link.peer?.identity ? fingerprintOf(link.peer.identity) : '';
      this.peerFps.set(link, fp);
    }
    return fp;
  }

  /**
   * A neighbour announced descriptors. Those we hold at that edition or newer cost nothing more; for the others we
   * ask this neighbour, unless another announcer is already being asked for that edition: then this one is kept as
   * a fallback, or asked instead at once if the one being asked has let asks time out and this one stands better.
   */
  private onAnnounce(link: Link, entries: readonly (readonly [Uint8Array, number])[]): void {
    const from = this.peerOf(link);
    const block = addressBlock(link.socket.remoteAddress);
    const ids: Uint8Array[] = [];
    const asks: [string, number][] = [];
    for (const [id, pub] of entries) {
      const fp = fingerprintOf(id);
      const have = this.o.directory.get(fp);
      if (have && have.pub >= pub) {
        const q = this.gossipQueue.get(fp);
        if (q && q.d.pub <= pub) q.skip.add(from);
        continue;
      }
      let p = this.pulls.get(fp);
      if (p && p.pub >= pub) {
        if (!p.offers.has(from) && p.offers.size < MAX_PULL_OFFERS) p.offers.set(from, pub);
        const asked = this.standingOf(p.asked);
        if (pub === p.pub && asked < 0 && this.standingOf(from) > asked && !p.tried.has(from) && this.mayAsk(from, block)) {
          this.o.metrics.gossipPulls.inc({ event: 'retried' });
          this.setAsked(p, from, block);
          asks.push([fp, p.attempt]);
          ids.push(id);
        }
        continue;
      }
      if (!this.mayAsk(from, block) || (!p && !this.roomForPull(from))) {
        this.o.metrics.gossipPulls.inc({ event: 'dropped' });
        continue;
      }
      if (!p) {
        p = { id, fp, pub, offers: new Map(), tried: new Set(), asked: '', askedBlock: null, attempt: 0 };
        this.pulls.set(fp, p);
      }
      // A newer edition than any asked for so far: ask its announcer at once.
      p.pub = pub;
      p.offers.delete(from);
      p.offers.set(from, pub);
      this.setAsked(p, from, block);
      asks.push([fp, p.attempt]);
      ids.push(id);
    }
    if (ids.length) this.askFor(link, ids, asks);
  }

  /** Whether neighbour `n`, in `block`, may be asked for one more pull: under its own cap and its block's. */
  private mayAsk(n: string, block: string | null): boolean {
    if ((this.askedOf.get(n)?.size ?? 0) >= MAX_PULLS_PER_NEIGHBOUR) return false;
    return block === null || (this.askedOfBlock.get(block) ?? 0) < MAX_PULLS_PER_BLOCK;
  }

  /**
   * Room in the pull table for a new pull asked of `n`. When the table is full, a neighbour below its fair share
   * (MAX_PENDING_PULLS divided among the neighbours) takes the place of the oldest pull of the neighbour holding the
   * most, if that one holds more than its share; so Sybil neighbours that fill the table cannot keep an honest
   * neighbour's announcements out.
   */
  private roomForPull(n: string): boolean {
    if (this.pulls.size < MAX_PENDING_PULLS) return true;
    const share = Math.floor(MAX_PENDING_PULLS / Math.max(1, this.relayLinks.size));
    if ((this.askedOf.get(n)?.size ?? 0) >= share) return false;
    let victim: Set<string> | null = null;
    for (const set of this.askedOf.values()) if (!victim || set.size > victim.size) victim = set;
    if (!victim || victim.size <= share) return false;
    const fp = victim.values().next().value!;
    this.endPull(fp, this.pulls.get(fp)!);
    this.o.metrics.gossipPulls.inc({ event: 'evicted' });
    return true;
  }

  /** The address block of a neighbour: that of one of its open links (null: none). */
  private blockOfNeighbour(n: string): string | null {
    return addressBlock(openOne(this.relayLinks.get(n))?.socket.remoteAddress);
  }

  /** Sends a want and, after PULL_TIMEOUT_MS, asks other announcers for whatever has not arrived. */
  private askFor(link: Link, ids: Uint8Array[], asks: [string, number][]): void {
    this.o.metrics.gossipPulls.inc({ event: 'asked' }, ids.length);
    ids.sort(compareBytes); // a want names each identity once, in ascending order (specs/directory.md §5.2)
    for (let i = 0; i < ids.length; i += MAX_SUMMARY_ENTRIES) this.send(link, { t: 'gossip-want', ids: ids.slice(i, i + MAX_SUMMARY_ENTRIES) });
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.pullTimers.delete(timer);
      this.retryPulls(asks, true);
    }, PULL_TIMEOUT_MS);
    (timer as { unref?: () => void }).unref?.();
    this.pullTimers.add(timer);
  }

  /**
   * Asks another announcer for each pull whose last ask (`attempt`) went unanswered — the untried one in the best
   * standing, the earliest to announce among equals — and gives up when none is left.
   */
  private retryPulls(asks: readonly [string, number][], timedOut = false): void {
    const next = new Map<string, { ids: Uint8Array[]; asks: [string, number][] }>();
    for (const [fp, attempt] of asks) {
      const p = this.pulls.get(fp);
      if (!p || p.attempt !== attempt) continue;
      if (timedOut && this.relayLinks.has(p.asked)) this.standing.set(p.asked, Math.min(0, this.standingOf(p.asked)) - 1);
      let to: string | null = null;
      let best = -Infinity;
      for (const [n, pub] of p.offers) {
        if (pub < p.pub || p.tried.has(n) || !this.relayLinks.has(n) || !this.mayAsk(n, this.blockOfNeighbour(n))) continue;
        const st = this.standingOf(n);
        if (st > best) {
          best = st;
          to = n;
        }
      }
      if (to === null) {
        // Nobody else announced it: anti-entropy (or the next announcement) brings it.
        this.endPull(fp, p);
        this.o.metrics.gossipPulls.inc({ event: 'abandoned' });
        continue;
      }
      this.o.metrics.gossipPulls.inc({ event: 'retried' });
      this.setAsked(p, to, this.blockOfNeighbour(to));
      let g = next.get(to);
      if (!g) next.set(to, (g = { ids: [], asks: [] }));
      g.ids.push(p.id);
      g.asks.push([fp, p.attempt]);
    }
    for (const [to, g] of next) {
      const link = openOne(this.relayLinks.get(to));
      if (link) this.askFor(link, g.ids, g.asks);
      else this.retryPulls(g.asks); // no open link after all: the next announcer (`to` is tried now)
    }
  }

  /** Records a new ask of `to`, in `block`, for `p` (a new attempt). */
  private setAsked(p: Pull, to: string, block: string | null): void {
    if (p.asked) this.uncount(p);
    p.asked = to;
    p.askedBlock = block;
    p.tried.add(to);
    p.attempt++;
    let set = this.askedOf.get(to);
    if (!set) this.askedOf.set(to, (set = new Set()));
    set.add(p.fp);
    if (block !== null) this.askedOfBlock.set(block, (this.askedOfBlock.get(block) ?? 0) + 1);
  }

  private standingOf(n: string): number {
    return this.standing.get(n) ?? 0;
  }

  private endPull(fp: string, p: Pull): void {
    this.pulls.delete(fp);
    if (p.asked) this.uncount(p);
  }

  /** Takes `p` off the counts of the neighbour and block it was last asked of. */
  private uncount(p: Pull): void {
    const set = this.askedOf.get(p.asked);
    if (set) {
      set.delete(p.fp);
      if (set.size === 0) this.askedOf.delete(p.asked);
    }
    const b = p.askedBlock;
    if (b === null) return;
    const c = (this.askedOfBlock.get(b) ?? 0) - 1;
    if (c > 0) this.askedOfBlock.set(b, c);
    else this.askedOfBlock.delete(b);
  }

  /** A neighbour's last link closed: what it was asked for is asked of other announcers now. */
  private neighbourGone(fp: string): void {
    if (this.stopped) return;
    this.standing.delete(fp);
    this.headOf.delete(fp);
    this.admission?.peerGone(fp);
    const asks: [string, number][] = [];
    for (const [k, p] of this.pulls) if (p.asked === fp) asks.push([k, p.attempt]);
    if (asks.length) this.retryPulls(asks);
  }

  private scheduleGossip(): void {
    if (this.stopped) return;
    const jitter = 0.5 + this.rand();
    this.gossipTimer = setTimeout(() => {
      const ns = this.neighbours();
      if (ns.length) {
        const fp = ns[Math.floor(this.rand() * ns.length)]!;
        const link = [...(this.relayLinks.get(fp) ?? [])].find((l) => l.isOpen);
        if (link && this.o.bridge) this.fetchDirectory(link);
        else if (link) this.sendDigest(link);
      }
      this.scheduleGossip();
    }, this.o.gossipIntervalMs * jitter);
    (this.gossipTimer as { unref?: () => void }).unref?.();
  }

  /**
   * One page of our summary, the answer to a differing digest. A view larger than a page is summarised a page at a
   * time, each answer continuing where the previous one ended, so successive rounds cover the whole view.
   */
  private summaryPage(): ControlMessage {
    const after = this.summaryCursor;
    const page = this.o.directory.summaryPage(after, MAX_SUMMARY_ENTRIES);
    this.summaryCursor = page.more ? page.e[page.e.length - 1]![0] : null;
    return { t: 'gossip-summary', e: page.e, after, more: page.more };
  }

  /** Sends our digest; the link may then answer with one summary (specs/directory.md §5.3). */
  private sendDigest(link: Link): void {
    if (this.send(link, { t: 'gossip-digest', d: this.o.directory.digest(), n: this.o.directory.size })) this.digestSent.add(link);
  }

  /**
   * Sends a message of the relay's own (gossip). Skipped for a link over its high-water mark unless `answering`
   * (a message of an answer, which `reply` already gated). Returns whether it was queued.
   */
  private send(link: Link, m: ControlMessage, answering = false): boolean {
    if (!link.isOpen) return false;
    if (!answering && link.overHighWater) {
      this.o.metrics.drops.inc({ reason: 'control_send_congested' });
      return false;
    }
    try {
      const bytes = link.sendControl(m);
      if (m.t.startsWith('gossip')) this.o.metrics.gossipBytes.inc({ direction: 'out' }, this.o.gossipSize ? this.o.gossipSize(m) : bytes);
      return true;
    } catch (e) {
      this.o.metrics.drops.inc({ reason: 'control_send_failed' });
      this.o.log.debug({ code: isAlliumError(e) ? e.code : 'unknown' }, 'control send failed');
      return false;
    }
  }

  /**
   * Answers a request with the messages `make` returns, made when the link is under its high-water mark and sent
   * one at a time, each only while it still is (specs/link.md §4.2). A request that finds an earlier answer still
   * waiting is dropped.
   */
  private reply(link: Link, make: () => ControlMessage[]): void {
    const next = (rest: ControlMessage[]): void => {
      const m = rest.shift();
      if (m) this.send(link, m, true);
      if (rest.length && !link.answerRequest(() => next(rest))) this.o.metrics.drops.inc({ reason: 'answer_deferred_dropped' });
    };
    if (!link.answerRequest(() => next(make()))) this.o.metrics.drops.inc({ reason: 'answer_deferred_dropped' });
  }

  /**
   * A CONTROL message from `link`. `bytes`: its encoded length, which the link reports (so the gossip metrics need not
   * encode the message again); a caller handing in a message of its own may leave it out.
   */
  onControl(link: Link, m: ControlMessage, bytes?: number): void {
    const fromRelay = link.peer?.role === LinkRole.RELAY;
    if (this.o.bridge) {
      // No gossip at a bridge; pages answer its own fetches; its clients may ask for its descriptor.
      if (m.t.startsWith('gossip')) return;
      if (m.t === 'dir' && this.fetches.has(link)) return this.onDirectoryPage(link, m);
      if (m.t === 'bridge-get') {
        const d = this.o.bridge.descriptor();
        if (d) this.reply(link, () => [{ t: 'bridge', d }]);
        return;
      }
    }
    if (m.t.startsWith('gossip')) {
      if (!fromRelay) return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'gossip from a client link'));
      // A relay link that is not a neighbour (beyond MAX_INBOUND_NEIGHBOURS_PER_BLOCK) is served as a client is — its
      // digests and wants are answered, so it can still learn the directory — but nothing it offers is taken.
      if (!this.isNeighbourLink(link) && m.t !== 'gossip-digest' && m.t !== 'gossip-want')
        return void this.o.metrics.drops.inc({ reason: 'gossip_not_neighbour' });
      this.o.metrics.gossipBytes.inc({ direction: 'in' }, this.o.gossipSize ? this.o.gossipSize(m) : (bytes ?? encodeControl(m).length));
    }
    switch (m.t) {
      case 'gossip-digest':
        if (!crypto().equal(m.d, this.o.directory.digest())) this.reply(link, () => [this.summaryPage()]);
        return;
      case 'gossip-summary':
        // A summary answers our digest (one per digest): an unasked one could make us send the whole directory.
        if (!this.digestSent.has(link)) return void this.o.metrics.drops.inc({ reason: 'gossip_summary_unsolicited' });
        this.digestSent.delete(link);
        return this.reply(link, () => {
          // A cut summary speaks only for the identities it covers: nothing beyond its last entry is given. At most a
          // page's worth is given per summary (MAX_SUMMARY_GIVE); later rounds give the rest.
          const { want, give } = this.o.directory.diff(m.e, { after: m.after, more: m.more });
          if (give.length > MAX_SUMMARY_GIVE) this.o.metrics.drops.inc({ reason: 'gossip_give_capped' });
          const out = pages(give.slice(0, MAX_SUMMARY_GIVE).map((d) => d.raw));
          if (want.length) out.push({ t: 'gossip-want', ids: want.slice(0, MAX_SUMMARY_ENTRIES) });
          return out;
        });
      case 'gossip-want':
        return this.reply(link, () => pages(m.ids.map((id) => this.o.directory.getById(id)?.raw).filter((x): x is Uint8Array => !!x)));
      case 'gossip-push':
        for (const raw of m.ds) this.offer(link, raw, true);
        return;
      case 'gossip-announce':
        return this.onAnnounce(link, m.e);
      case 'dir-get':
        return this.reply(link, () => [this.directoryPage(m.since, m.after)]);
      case 'dir':
        return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'directory page sent to a relay'));
      case 'dir-want':
        return this.reply(link, () => [this.wantedPage(m.ids)]);
      case 'dir-found':
        // An answer to a client's dir-want: a relay asks nobody for it (specs/directory.md §6.1).
        return;
      case 'consensus-head':
        // Relays push heads they adopt; on a client link it can only be a reply to our own request (a bridge's).
        if (!fromRelay) {
          if (this.o.bridge) return;
          return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'consensus from a client link'));
        }
        if (m.c) this.offerConsensusHead(m.c, link);
        return;
      // Answers go through the link's request budget and high-water mark (specs/link.md §4.2), as pages do.
      case 'consensus-head-get':
        return this.reply(link, () => [{ t: 'consensus-head', c: this.consensus.current?.raw ?? null }]);
      case 'consensus-entries-get':
        return this.reply(link, () => [{ t: 'consensus-entries', d: m.d, from: m.from, ...this.consensus.entriesPage(m.d, m.from) }]);
      case 'consensus-diff-get':
        return this.reply(link, () => [{ t: 'consensus-diff', from: m.from, to: m.to, ...this.consensus.diffPage(m.from, m.to, m.after) }]);
      case 'consensus-entries':
      case 'consensus-diff':
      case 'view':
        // Replies to our own requests (net/directory-requests.ts waits for them).
        return;
      case 'vote-part':
      case 'consensus-sig':
        if (!fromRelay) return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'authority message from a client link'));
        this.o.onAuthorityMessage?.(link, m);
        return;
      case 'view-get':
        return this.sendView(link);
      case 'bridge-get':
      case 'bridge':
        // Bridge descriptors concern only a bridge and its clients; a public relay has none to give.
        return;
      case 'padding':
        // A client's link padding request: the node answers it (specs/link.md §4.4); from a relay it is ignored.
        return;
    }
  }

  /**
   * Bridge: fetches what a relay added since the last fetch on this link (specs/directory.md §6.1, paged), and its
   * consensuses. Descriptors are checked and added as gossiped ones are; a forged one closes the link.
   */
  private fetchDirectory(link: Link): void {
    if (this.fetches.has(link) || !link.isOpen || this.stopped) return;
    const since = Math.max(0, (this.fetchedAt.get(link) ?? 0) - 5_000);
    this.requestPage(link, since, null);
    if (this.o.authorities?.size) {
      fetchConsensusHead(link).then(
        (raw) => raw && this.offerConsensusHead(raw, link),
        () => undefined,
      );
    }
  }

  private requestPage(link: Link, since: number, after: Uint8Array | null): void {
    const old = this.fetches.get(link);
    if (old) clearTimeout(old.timer);
    const timer = setTimeout(() => this.fetches.delete(link), PAGE_TIMEOUT_MS);
    (timer as { unref?: () => void }).unref?.();
    this.fetches.set(link, { since, timer });
    this.send(link, { t: 'dir-get', since, after });
  }

  private onDirectoryPage(link: Link, m: Extract<ControlMessage, { t: 'dir' }>): void {
    const f = this.fetches.get(link)!;
    clearTimeout(f.timer);
    this.fetches.delete(link);
    for (const raw of m.ds) this.offer(link, raw);
    if (!link.isOpen) return;
    if (m.more && m.ds.length > 0) {
      let after: Uint8Array;
      try {
        after = verifyDescriptor(m.ds[m.ds.length - 1]!, 0, Number.MAX_SAFE_INTEGER).id;
      } catch (e) {
        return this.violation(link, isAlliumError(e) ? e : new AlliumError('ERR_DESCRIPTOR', 'bad descriptor'));
      }
      return this.requestPage(link, f.since, after);
    }
    this.fetchedAt.set(link, m.at);
  }

  private offer(link: Link, raw: Uint8Array, gossiped = false): void {
    const from = this.peerOf(link);
    const admission = this.admission;
    const now = this.now();
    // Decoded once: the identity for the admission check and the verification below share it. Bytes already held are
    // not decoded at all.
    let input: Uint8Array | OpenedDescriptor = raw;
    if (admission && from && !this.o.directory.held(raw, now)) {
      // Room for a new identity is checked before its signature (specs/directory.md §5.5): a neighbour pushing keys
      // it made up spends our CBOR decoder, not our signature checks.
      let id: Uint8Array | null = null;
      try {
        input = openDescriptor(raw);
        id = input.body.id;
      } catch {
        /* malformed: the checks below refuse it */
      }
      if (id) {
        const fp = toHex(id);
        if (!this.o.directory.get(fp) && !this.consensus.listed(fp) && !admission.has(fp) && !admission.hasRoom(from)) {
          admission.defer(from, id);
          return;
        }
      }
    }
    try {
      const { descriptor: d, held } = this.o.directory.verify(input, now);
      if (admission && !held && !this.o.directory.get(d.fingerprint) && !this.consensus.listed(d.fingerprint)) {
        // A new identity nobody vouches for: held back until its relay proves it is reachable where it says.
        admission.offer(d, from || d.fingerprint);
        if (gossiped) this.o.metrics.gossipDescriptors.inc({ result: 'pending' });
        const p = this.pulls.get(d.fingerprint);
        if (p && d.pub >= p.pub) this.endPull(d.fingerprint, p);
        return;
      }
      const result = held ? 'same' : this.o.directory.add(d, now);
      const descriptor = d;
      this.o.metrics.directorySize.set(this.o.directory.size);
      if (gossiped) this.o.metrics.gossipDescriptors.inc({ result: result === 'same' ? 'known' : 'new' });
      if (result !== 'same') {
        this.queueGossip(descriptor, link, false);
      } else {
        // The sender holds what we are about to announce: no need to announce it there.
        const q = this.gossipQueue.get(descriptor.fingerprint);
        if (q && q.d.pub <= descriptor.pub) q.skip.add(this.peerOf(link));
      }
    } catch (e) {
      if (gossiped) this.o.metrics.gossipDescriptors.inc({ result: 'refused' });
      const code = isAlliumError(e) ? e.code : 'ERR_INTERNAL';
      this.o.metrics.drops.inc({ reason: `descriptor_${code.toLowerCase().replace(/^err_/, '')}` });
      // Stale and expired descriptors can be honest races; forged or malformed ones are not.
      if (code !== 'ERR_DESCRIPTOR_STALE' && code !== 'ERR_DESCRIPTOR_EXPIRED' && code !== 'ERR_DESCRIPTOR_FUTURE' && code !== 'ERR_LIMIT') {
        this.violation(link, isAlliumError(e) ? e : new AlliumError('ERR_DESCRIPTOR', 'bad descriptor'));
      }
    }
  }

  /** A proven descriptor (§5.5): into the directory, and announced like any new one. */
  private admitted(d: Descriptor): void {
    if (this.stopped) return;
    try {
      const result = this.o.directory.add(d, this.now());
      this.o.metrics.directorySize.set(this.o.directory.size);
      if (result !== 'same') {
        this.learnAddress(d.id, d.addr);
        this.queueGossip(d, null, false);
      }
    } catch (e) {
      this.o.metrics.drops.inc({ reason: `descriptor_${(isAlliumError(e) ? e.code : 'ERR_INTERNAL').toLowerCase().replace(/^err_/, '')}` });
    }
  }

  /**
   * A signed consensus head from `from` (pushed by a neighbour, or answered to a bridge): if a majority of the
   * configured authorities signed it and it is newer than ours, fetch its entries from `from` — as a diff against
   * ours when it has one — check them, adopt it and pass the head on (specs/directory.md §7.3).
   */
  offerConsensusHead(raw: Uint8Array, from: Link): void {
    const auths = this.authorities;
    if (auths.size === 0) return;
    const now = this.now();
    const seenKey = toHex(crypto().hash(16, raw));
    let head = this.headsSeen.get(seenKey);
    if (head && head.validUntil > now) this.o.metrics.consensusHeads.inc({ result: 'held' });
    else {
      this.o.metrics.consensusHeads.inc({ result: 'verified' });
      try {
        head = verifyConsensusHead(raw, auths, now);
      } catch (e) {
        this.o.metrics.drops.inc({ reason: `consensus_${isAlliumError(e) ? e.code.toLowerCase() : 'invalid'}` });
        return;
      }
      this.headsSeen.delete(seenKey);
      this.headsSeen.set(seenKey, head);
      for (const k of this.headsSeen.keys()) {
        if (this.headsSeen.size <= HEADS_SEEN) break;
        this.headsSeen.delete(k);
      }
    }
    const key = toHex(head.digest);
    // A relay pushes the heads it adopted: the sender holds this consensus (neighbours only, so the table is bounded).
    const peer = this.peerOf(from);
    if (this.relayLinks.has(peer)) this.headOf.set(peer, key);
    const cur = this.consensus.current;
    if (cur && head.validAfter <= cur.validAfter) return;
    if (this.fetchingConsensus.has(key)) return;
    this.fetchingConsensus.add(key);
    const viaDiff = cur ? fetchConsensusDiff(from, cur, head).catch(() => fetchConsensusEntries(from, head)) : fetchConsensusEntries(from, head);
    viaDiff.then(
      (c) => {
        this.fetchingConsensus.delete(key);
        this.adoptConsensus(c, from);
      },
      (e: unknown) => {
        this.fetchingConsensus.delete(key);
        this.o.metrics.drops.inc({ reason: `consensus_entries_${isAlliumError(e) ? e.code.toLowerCase() : 'invalid'}` });
      },
    );
  }

  /** Adopts a checked consensus (ours as an authority, or fetched) if newer, and floods its head. */
  adoptConsensus(c: Consensus, from: Link | null = null): boolean {
    if (this.stopped || !this.consensus.adopt(c)) return false;
    this.o.onConsensus?.(c);
    if (this.o.bridge) return true; // a bridge's links are client links: relays take no consensus from them
    const d = toHex(c.digest);
    for (const [fp, set] of this.relayLinks) {
      if (this.headOf.get(fp) === d) continue; // it pushed this head to us: it holds the consensus
      const link = openOne(set);
      if (link && link !== from) this.send(link, { t: 'consensus-head', c: c.raw });
    }
    return true;
  }

  /** Signs what this relay serves (specs/directory.md §6.5). */
  private sendView(link: Link): void {
    const now = this.now();
    const served = this.o.directory.since(0).filter((d) => d.exp > now);
    const fields = { at: now, d: directoryDigest(served), n: served.length, c: this.consensus.current?.digest ?? null };
    this.reply(link, () => [{ t: 'view', ...fields, s: signViewStatement(fields, this.o.identity.secretKey) }]);
  }

  private directoryPage(since: number, after: Uint8Array | null): ControlMessage {
    const afterFp = after ? fingerprintOf(after) : '';
    const now = this.now();
    const list = this.o.directory
      .since(since)
      .filter((d) => d.fingerprint > afterFp && d.exp > now)
      .sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
    const page = list.slice(0, DIR_PAGE);
    return { t: 'dir', at: this.now(), ds: page.map((d) => d.raw), more: list.length > DIR_PAGE };
  }

  /**
   * The answer to dir-want (specs/directory.md §6.1): the unexpired descriptors held for the identities asked, in their
   * (ascending) order; at most one per identity, so at most MAX_DESCRIPTORS_PER_MESSAGE.
   */
  private wantedPage(ids: readonly Uint8Array[]): ControlMessage {
    const now = this.now();
    const ds: Uint8Array[] = [];
    for (const id of ids) {
      const d = this.o.directory.getById(id);
      if (d && d.exp > now) ds.push(d.raw);
    }
    return { t: 'dir-found', ds };
  }

  private violation(link: Link, err: AlliumError): void {
    this.o.metrics.errors.inc({ code: err.code });
    this.o.log.info({ link: link.id, code: err.code }, 'closing link after protocol violation');
    link.close(err);
  }

  /** Closes every relay link (shutdown). */
  closeAll(): void {
    for (const set of this.relayLinks.values()) for (const l of set) l.close();
  }
}

/** Descriptors as gossip-push messages of at most a page each. */
function pages(raws: readonly Uint8Array[]): ControlMessage[] {
  const out: ControlMessage[] = [];
  for (let i = 0; i < raws.length; i += DIR_PAGE) out.push({ t: 'gossip-push', ds: raws.slice(i, i + DIR_PAGE) });
  return out;
}

/** An open link of a neighbour's set, if any. */
function openOne(set: ReadonlySet<Link> | undefined): Link | null {
  if (set) for (const l of set) if (l.isOpen) return l;
  return null;
}
