/**
 * The supernode overlay (specs/directory.md §5): links to other relays, and directory gossip over them.
 *
 * - Keeps up to `degree` links with relays chosen at random from the directory (plus any that dial us).
 * - Push: a new or newer descriptor is flooded to every relay link except the one it came from (batched briefly).
 * - Pull (anti-entropy): every `gossipInterval` one random neighbour gets our directory digest; if it differs, the
 *   neighbour answers with a summary of (identity, published) pairs and both sides exchange what the other lacks.
 *   A newly opened relay link starts with a digest exchange, so a joining relay learns the directory at once.
 * - Serves directory pages to clients (`dir-get` → `dir`).
 * Descriptors that fail verification are dropped and counted; a forged or malformed one closes the link.
 *
 * A bridge (specs/directory.md §9) runs the overlay without gossip: it dials relays as a client (so they cannot
 * tell it from one), learns the directory by fetching pages (`dir-get`) over those links every gossip interval,
 * floods nothing, and answers its own clients' `bridge-get` with its bridge descriptor.
 */
import type { Logger } from 'pino';
import type { IdentityKey } from '../crypto/keys.js';
import { fingerprintOf, parseFingerprint } from '../crypto/keys.js';
import { crypto } from '../crypto/index.js';
import { MAX_DESCRIPTORS_PER_MESSAGE, MAX_SUMMARY_ENTRIES, type ControlMessage } from '../protocol/control.js';
import { verifyDescriptor, type Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { AlliumError, isAlliumError } from '../protocol/errors.js';
import { LinkRole } from '../protocol/link-handshake.js';
import { encodeControl } from '../protocol/control.js';
import { verifyConsensus, type Consensus } from '../protocol/consensus.js';
import type { Link } from '../net/link.js';
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
}

const DIR_PAGE = MAX_DESCRIPTORS_PER_MESSAGE;
/** A bridge gives up on a directory page after this long (and asks again at the next interval). */
const PAGE_TIMEOUT_MS = 10_000;

export class Overlay {
  private readonly relayLinks = new Map<string, Set<Link>>();
  private readonly dialing = new Map<string, Promise<Link>>();
  private readonly addresses = new Map<string, string>();
  private readonly floodQueue = new Map<string, { d: Descriptor; from: Link | null }>();
  private floodTimer: ReturnType<typeof setTimeout> | null = null;
  private gossipTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** Newest signed consensus per configured authority. */
  private readonly consensuses = new Map<string, Consensus>();
  private readonly now: () => number;
  private readonly rand: () => number;
  /** Bridge: directory fetches in progress, and the responder time of the last complete fetch, per link. */
  private readonly fetches = new Map<Link, { since: number; timer: ReturnType<typeof setTimeout> }>();
  private readonly fetchedAt = new WeakMap<Link, number>();

  constructor(private readonly o: OverlayOptions) {
    this.now = o.now ?? Date.now;
    this.rand = o.random ?? Math.random;
  }

  /** Remembers how to reach a relay (bootstrap lines). */
  learnAddress(identity: Uint8Array, url: string): void {
    this.addresses.set(fingerprintOf(identity), url);
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
    if (this.floodTimer) clearTimeout(this.floodTimer);
    if (this.gossipTimer) clearTimeout(this.gossipTimer);
    for (const f of this.fetches.values()) clearTimeout(f.timer);
    this.fetches.clear();
  }

  /** True when this overlay runs for a bridge. */
  get isBridge(): boolean {
    return !!this.o.bridge;
  }

  /** Registers an open link (dialed or accepted). */
  attach(link: Link): void {
    this.o.onLink(link);
    link.on('link:control', (m) => this.onControl(link, m));
    if (link.peer?.role !== LinkRole.RELAY || !link.peer.identity) return;
    // A bridge keeps only the links it dialed (as a client) as neighbours, and gossips on none.
    if (this.o.bridge && !link.initiatedHere) return;
    const fp = fingerprintOf(link.peer.identity);
    let set = this.relayLinks.get(fp);
    if (!set) this.relayLinks.set(fp, (set = new Set()));
    set.add(link);
    link.once('link:close', () => {
      set!.delete(link);
      if (set!.size === 0) this.relayLinks.delete(fp);
      const f = this.fetches.get(link);
      if (f) clearTimeout(f.timer);
      this.fetches.delete(link);
    });
    if (this.o.bridge) return this.fetchDirectory(link);
    this.sendDigest(link);
    for (const c of this.consensuses.values()) this.send(link, { t: 'consensus', cs: [c.raw] });
  }

  /** An open link to the relay with this identity, dialing one if needed. Rejects with ERR_UNREACHABLE. */
  linkTo(identity: Uint8Array): Promise<Link> {
    const fp = fingerprintOf(identity);
    for (const l of this.relayLinks.get(fp) ?? []) if (l.isOpen) return Promise.resolve(l);
    const inFlight = this.dialing.get(fp);
    if (inFlight) return inFlight;
    const url = this.o.directory.get(fp)?.addr ?? this.addresses.get(fp);
    if (!url) return Promise.reject(new AlliumError('ERR_UNREACHABLE', 'relay not in the directory'));
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

  /** Keeps `degree` relay links: dials bootstrap relays first, then random directory entries. */
  maintain(): void {
    if (this.stopped) return;
    const self = this.o.identity.fingerprint;
    const have = new Set(this.neighbours());
    let missing = this.o.degree - have.size - this.dialing.size;
    if (missing <= 0) return;
    const candidates = new Set<string>();
    if (have.size === 0) for (const fp of this.addresses.keys()) candidates.add(fp);
    for (const d of this.o.directory.all()) candidates.add(d.fingerprint);
    const list = [...candidates].filter((fp) => fp !== self && !have.has(fp) && !this.dialing.has(fp));
    while (missing-- > 0 && list.length > 0) {
      const fp = list.splice(Math.floor(this.rand() * list.length), 1)[0]!;
      const id = this.o.directory.get(fp)?.id ?? parseFingerprint(fp);
      this.linkTo(id).catch((e: unknown) => {
        this.o.metrics.drops.inc({ reason: 'dial_failed' });
        this.o.log.debug({ relay: shortFp(fp), code: isAlliumError(e) ? e.code : 'unknown' }, 'overlay dial failed');
      });
    }
  }

  /** Adds our own or a received descriptor and floods it if it is new. */
  publish(d: Descriptor, from: Link | null = null): void {
    const result = this.o.directory.add(d, this.now());
    this.o.metrics.directorySize.set(this.o.directory.size);
    if (result !== 'same') this.queueFlood(d, from);
  }

  private queueFlood(d: Descriptor, from: Link | null): void {
    if (this.o.bridge) return;
    this.floodQueue.set(d.fingerprint, { d, from });
    if (!this.floodTimer && !this.stopped) this.floodTimer = setTimeout(() => this.flushFlood(), 20);
  }

  private flushFlood(): void {
    this.floodTimer = null;
    const items = [...this.floodQueue.values()];
    this.floodQueue.clear();
    for (const set of this.relayLinks.values()) {
      for (const link of set) {
        const ds = items.filter((i) => i.from !== link).map((i) => i.d.raw);
        for (let i = 0; i < ds.length; i += DIR_PAGE) this.send(link, { t: 'gossip-push', ds: ds.slice(i, i + DIR_PAGE) });
        break; // one link per neighbour is enough
      }
    }
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

  private sendDigest(link: Link): void {
    this.send(link, { t: 'gossip-digest', d: this.o.directory.digest(), n: this.o.directory.size });
  }

  private send(link: Link, m: ControlMessage): void {
    if (!link.isOpen) return;
    try {
      if (m.t.startsWith('gossip')) this.o.metrics.gossipBytes.inc({ direction: 'out' }, this.o.gossipSize ? this.o.gossipSize(m) : encodeControl(m).length);
      link.sendControl(m);
    } catch (e) {
      this.o.metrics.drops.inc({ reason: 'control_send_failed' });
      this.o.log.debug({ code: isAlliumError(e) ? e.code : 'unknown' }, 'control send failed');
    }
  }

  onControl(link: Link, m: ControlMessage): void {
    const fromRelay = link.peer?.role === LinkRole.RELAY;
    if (this.o.bridge) {
      // No gossip at a bridge; pages answer its own fetches; its clients may ask for its descriptor.
      if (m.t.startsWith('gossip')) return;
      if (m.t === 'dir' && this.fetches.has(link)) return this.onDirectoryPage(link, m);
      if (m.t === 'bridge-get') {
        const d = this.o.bridge.descriptor();
        if (d) this.send(link, { t: 'bridge', d });
        return;
      }
    }
    if (m.t.startsWith('gossip')) {
      if (!fromRelay) return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'gossip from a client link'));
      this.o.metrics.gossipBytes.inc({ direction: 'in' }, this.o.gossipSize ? this.o.gossipSize(m) : encodeControl(m).length);
    }
    switch (m.t) {
      case 'gossip-digest':
        if (!crypto().equal(m.d, this.o.directory.digest())) this.send(link, { t: 'gossip-summary', e: this.o.directory.summary().slice(0, MAX_SUMMARY_ENTRIES) });
        return;
      case 'gossip-summary': {
        const { want, give } = this.o.directory.diff(m.e);
        const raws = give.map((d) => d.raw);
        for (let i = 0; i < raws.length; i += DIR_PAGE) this.send(link, { t: 'gossip-push', ds: raws.slice(i, i + DIR_PAGE) });
        if (want.length) this.send(link, { t: 'gossip-want', ids: want.slice(0, MAX_SUMMARY_ENTRIES) });
        return;
      }
      case 'gossip-want': {
        const raws = m.ids.map((id) => this.o.directory.getById(id)?.raw).filter((x): x is Uint8Array => !!x);
        for (let i = 0; i < raws.length; i += DIR_PAGE) this.send(link, { t: 'gossip-push', ds: raws.slice(i, i + DIR_PAGE) });
        return;
      }
      case 'gossip-push':
        for (const raw of m.ds) this.offer(link, raw);
        return;
      case 'dir-get':
        return this.serveDirectory(link, m.since, m.after);
      case 'dir':
        return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'directory page sent to a relay'));
      case 'consensus':
        if (!fromRelay) return this.violation(link, new AlliumError('ERR_LINK_HANDSHAKE', 'consensus from a client link'));
        for (const raw of m.cs) this.offerConsensus(raw, link);
        return;
      case 'consensus-get':
        // One consensus per message, then an empty one that ends the answer.
        for (const c of this.consensuses.values()) this.send(link, { t: 'consensus', cs: [c.raw] });
        this.send(link, { t: 'consensus', cs: [] });
        return;
      case 'bridge-get':
      case 'bridge':
        // Bridge descriptors concern only a bridge and its clients; a public relay has none to give.
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
    if (this.o.authorities?.size) this.send(link, { t: 'consensus-get' });
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

  private offer(link: Link, raw: Uint8Array): void {
    try {
      const { result, descriptor } = this.o.directory.offer(raw, this.now());
      this.o.metrics.directorySize.set(this.o.directory.size);
      if (result !== 'same') {
        this.learnAddress(descriptor.id, descriptor.addr);
        this.queueFlood(descriptor, link);
      }
    } catch (e) {
      const code = isAlliumError(e) ? e.code : 'ERR_INTERNAL';
      this.o.metrics.drops.inc({ reason: `descriptor_${code.toLowerCase().replace(/^err_/, '')}` });
      // Stale and expired descriptors can be honest races; forged or malformed ones are not.
      if (code !== 'ERR_DESCRIPTOR_STALE' && code !== 'ERR_DESCRIPTOR_EXPIRED' && code !== 'ERR_DESCRIPTOR_FUTURE' && code !== 'ERR_LIMIT') {
        this.violation(link, isAlliumError(e) ? e : new AlliumError('ERR_DESCRIPTOR', 'bad descriptor'));
      }
    }
  }

  /** Adds a consensus (ours as an authority, or gossiped) if newer, and floods it. */
  offerConsensus(raw: Uint8Array, from: Link | null): void {
    const auths = this.o.authorities;
    if (!auths || auths.size === 0) return;
    let c: Consensus;
    try {
      c = verifyConsensus(raw, auths, this.now());
    } catch (e) {
      this.o.metrics.drops.inc({ reason: `consensus_${isAlliumError(e) ? e.code.toLowerCase() : 'invalid'}` });
      return;
    }
    const have = this.consensuses.get(c.authority);
    if (have && have.validAfter >= c.validAfter) return;
    this.consensuses.set(c.authority, c);
    if (this.o.bridge) return; // a bridge's links are client links: relays take no consensus from them
    for (const set of this.relayLinks.values()) {
      for (const link of set) {
        if (link !== from) this.send(link, { t: 'consensus', cs: [raw] });
        break;
      }
    }
  }

  get consensusCount(): number {
    return this.consensuses.size;
  }

  private serveDirectory(link: Link, since: number, after: Uint8Array | null): void {
    const afterFp = after ? fingerprintOf(after) : '';
    const now = this.now();
    const list = this.o.directory
      .since(since)
      .filter((d) => d.fingerprint > afterFp && d.exp > now)
      .sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
    const page = list.slice(0, DIR_PAGE);
    this.send(link, { t: 'dir', at: this.now(), ds: page.map((d) => d.raw), more: list.length > DIR_PAGE });
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
