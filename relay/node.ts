/**
 * A relay node: every part of a relay wired together, in one place. Learned from js-libp2p's components + init:
 * `createRelayNode(components, config)` takes what the node uses — identity, onion keys, replay state, directory
 * store, an optional block store, a transport, a clock, a logger, metrics, randomness — and the relay configuration
 * (relay/config.ts, whose every key states its default), and returns the parts:
 *
 *   overlay      links to other relays and directory gossip (relay/overlay.ts)
 *   and, made by relay/node-parts.ts when the links carry cells:
 *   reactor      the circuit reactor (relay/circuits.ts), with its endpoint handlers:
 *     streams      last-hop streams (relay/streams.ts), behind which
 *     exit         the exit (relay/exit.ts), when the exit policy accepts anything
 *     content      STORE and FETCH (relay/content.ts), when there is a block store
 *     rendezvous   introduction and rendezvous points (relay/rendezvous.ts)
 *     echo         capacity measurement by the authorities (relay/measurement.ts)
 *   replicator   re-replication of stored items over one-hop circuits (relay/replication.ts)
 *   authority    reachability tests, measurements and votes, for a directory authority (relay/authority.ts)
 *   memory       the out-of-memory handler (relay/memory-guard.ts); read pacing (relay/read-pacer.ts) on every link
 *
 * and the node's own work: `acceptLink(socket, token)` (a socket the front door admitted becomes a link), `dial`,
 * `start()`, `maintain(now)` (the housekeeping of every part, each maintenance interval), `repair()` (a replication
 * pass, each repair interval), `publishDescriptor()` and `stop()`.
 *
 * The node owns no file, server or timer. The shipped relay (relay/relay.ts) is this node in a Node shell — data
 * directory and key files, the HTTP(S) front door, metrics and admin servers, the timers that call `maintain` and
 * `repair` — and the simulator's relays (sim/relay-node.ts) are this node over memory sockets and the virtual clock.
 * Nothing else wires relay parts together: what a simulation measures is the relay that ships.
 *
 * A node over a message transport (the simulator's large overlays, whose links carry control messages only, no
 * cells) has its circuit parts switched off: no reactor, streams, exit, content, replication, authority or memory
 * handler; it gossips and publishes like any relay.
 *
 * Why this file is above ~400 lines: it is the one place where a relay's lifetime is decided — which parts exist,
 * how links become theirs, what each maintenance pass does, how the descriptor is made and when it is renewed, the
 * order of a shutdown — and those steps read each other's state (the onion key rotation decides the renewal, the
 * store's room decides the descriptor's caps, a stopped node refuses links). The wiring of the circuit parts is
 * split out (relay/node-parts.ts) because it is a table with no state; what stays would have to pass the node's
 * private state back and forth if cut further. A third of the length is the components' documentation.
 */
import { addressBlock } from '../protocol/address-block.js';
import type { Logger } from 'pino';
import { crypto } from '../crypto/index.js';
import { parseFingerprint, type IdentityKey, type OnionKeyRing } from '../crypto/keys.js';
import { CellCommand, DestroyReason } from '../protocol/cell.js';
import { signDescriptor, type Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { AlliumError, ConfigError, isAlliumError } from '../protocol/errors.js';
import { isExitPolicy, parseExitPolicy } from '../protocol/exit-policy.js';
import { decodeUpgradeToken, FRAME_LEN, LinkResponder, LinkRole, type HandshakeReplayCache } from '../protocol/link-handshake.js';
import { acceptLinkPadding } from '../protocol/link-padding.js';
import type { ControlMessage } from '../protocol/control.js';
import type { ReplayGuard } from '../protocol/onion.js';
import type { ReplayFilter } from '../protocol/replay-filter.js';
import { CircuitTable } from '../net/circuit.js';
import { openLink, type SocketFactory } from '../net/dial.js';
import { Emitter } from '../net/emitter.js';
import { Link, type LinkOptions } from '../net/link.js';
import type { LinkSocket } from '../net/socket.js';
import type { AuthorityParts } from './authority.js';
import type { BlockStore } from './block-store.js';
import type { CircuitReactor } from './circuits.js';
import { parseBootstrapLine, type RelayConfig } from './config.js';
import { countConsensus } from './consensus-placement.js';
import type { ContentService } from './content.js';
import { PRIVATE_REJECT_LINES, type ExitNetwork, type ExitService } from './exit.js';
import { LinkAccounting } from './link-accounting.js';
import { createCircuitParts } from './node-parts.js';
import type { EchoService } from './measurement.js';
import type { CircuitPaddingService } from './circuit-padding.js';
import type { MemoryGuard } from './memory-guard.js';
import type { RelayMetrics } from './metrics.js';
import { Overlay } from './overlay.js';
import { ReadPacer } from './read-pacer.js';
import { TokenBucket } from './token-bucket.js';
import type { RendezvousService } from './rendezvous.js';
import type { Replicator } from './replication.js';
import type { ReplayJournals } from './replay-journal.js';
import { storeRoom, STORE_ROOM_OPEN, type StoreRoomState } from './store-room.js';
import type { StreamsHandler } from './streams.js';
import { MixNode } from './mix.js';
import { ReplayFilter as MixReplayFilter } from '../protocol/replay-filter.js';

/**
 * How the node reaches other relays. Over sockets, it makes real links (net/link.ts: handshake, frame encryption)
 * and carries circuits. Over messages (the simulator's large overlays), `dial` returns link stand-ins that carry
 * control messages only, `measure` counting each message's encoded size for the gossip metrics; the node then has
 * no circuit parts.
 */
export type RelayTransport =
  | { readonly kind: 'sockets'; readonly socketFactory: SocketFactory }
  | { readonly kind: 'messages'; readonly dial: (url: string, identity: Uint8Array) => Promise<Link>; readonly measure?: (m: ControlMessage) => number };

/** Where accepted onions and link handshakes are journaled before they are answered (relay/replay-journal.ts). */
export type ReplayJournal = Pick<ReplayJournals, 'appendOnion' | 'openOnion' | 'deleteOnion' | 'linkJournalRecords' | 'resetLink'>;

/** What a relay node uses. */
export interface RelayNodeComponents {
  identity: IdentityKey;
  /** The onion keys (rotated by `maintain`). */
  onionKeys: OnionKeyRing;
  /** Keeps the ring after a rotation (the shell writes onion-keys.json; default: memory only). */
  saveOnionKeys?: (ring: OnionKeyRing) => void;
  /** The onion keys' replay filters (specs/circuits.md §3.4.1). */
  replay: ReplayFilter;
  /** The link handshake replay cache (specs/link.md §2.4). */
  handshakeReplay: HandshakeReplayCache;
  /** The replay journals (default: none; a restart then cannot restore the replay state). */
  journals?: ReplayJournal | null;
  directory: DirectoryStore;
  /** The content store; required when the configuration offers storage over sockets (storage_quota > 0, not a bridge). */
  blockStore?: BlockStore | null;
  transport: RelayTransport;
  /** The clock (ms); timers are the process's (the simulator's virtual clock replaces both). */
  now: () => number;
  log: Logger;
  metrics: RelayMetrics;
  /** Non-security draws (which neighbour to gossip with; default: the CSPRNG). */
  random?: () => number;
  /** The URL this relay is reached at, as published (the shell knows it once it listens). */
  address: () => string;
  /** A bridge's secret (specs/link.md §2.5): clients must know it to complete a handshake. */
  bridgeSecret?: Uint8Array | null;
  /** Free bytes on the store's disk (default: unknown, so only the quota and failed writes close the store). */
  diskFree?: () => number;
  /** Where an authority keeps its history and shared-random state (default: in memory). */
  stateDir?: string | null;
  /** Sees each dial the overlay makes (the shell's notices report failing bootstrap relays); returns the same promise. */
  watchDial?: (url: string, identity: Uint8Array, dialing: Promise<Link>) => Promise<Link>;
  /** Sees each descriptor the node signs and returns the one to keep and publish (the simulator's verify cache). */
  signed?: (d: Descriptor) => Descriptor;
  /** The exit's lookups and connections (default: the system's). */
  exitNetwork?: ExitNetwork;
}

export type RelayNodeEvents = {
  /** A descriptor of this relay is published: emitted before it is flooded (a bridge only keeps it). */
  'descriptor:published': [Descriptor];
};

/** The nodes this module made (isRelayNode): a node cannot be made any other way. */
const made = new WeakSet<object>();

/** True for a node made by createRelayNode (tests check that the simulator's relays are). */
export function isRelayNode(x: unknown): x is RelayNode {
  return typeof x === 'object' && x !== null && made.has(x);
}

/** Builds a relay node from its components and configuration (see the top of this file). */
export function createRelayNode(components: RelayNodeComponents, config: RelayConfig): RelayNode {
  const node = new Node(components, config);
  made.add(node);
  return node;
}

/** The exit policy as published: private ranges refused first unless exit_reject_private is off. */
export function exitPolicyLines(config: RelayConfig): string[] {
  const lines = config.exit_policy;
  if (!isExitPolicy(parseExitPolicy(lines)) || !config.exit_reject_private) return lines;
  return [...PRIVATE_REJECT_LINES, ...lines];
}

class Node extends Emitter<RelayNodeEvents> {
  readonly identity: IdentityKey;
  readonly onionKeys: OnionKeyRing;
  readonly directory: DirectoryStore;
  readonly metrics: RelayMetrics;
  readonly log: Logger;
  readonly overlay: Overlay;
  /** Fingerprints of the configured directory authorities (this relay included when it is one). */
  readonly authorities: ReadonlySet<string>;
  readonly reactor: CircuitReactor | null;
  readonly streams: StreamsHandler | null;
  readonly rendezvous: RendezvousService | null;
  readonly echo: EchoService | null;
  /** Circuit padding machines (specs/padding.md). */
  readonly padding: CircuitPaddingService | null;
  readonly exit: ExitService | null;
  readonly store: BlockStore | null;
  readonly content: ContentService | null;
  readonly replicator: Replicator | null;
  readonly authority: AuthorityParts | null;
  readonly memory: MemoryGuard | null;
  /** The mix of message mode (specs/mix.md §4), when config `mix` is on. */
  readonly mix: MixNode<Link> | null;
  private readonly mixReplay = new MixReplayFilter();
  /** Circuits this relay builds itself (replication, measurement), kept apart from those it carries. */
  readonly ownCircuits: CircuitTable;
  /** Open links that carry cells (a message transport's are the overlay's alone). */
  readonly links = new Set<Link>();
  readonly accounting: LinkAccounting;
  private readonly now: () => number;
  /** The relay-wide link padding budget (link_padding_budget), made when a client first asks. */
  private paddingBudget: TokenBucket | null = null;
  private readonly replay: ReplayFilter;
  private readonly journaledReplay: ReplayGuard;
  private readonly handshakeReplay: HandshakeReplayCache;
  private readonly journals: ReplayJournal | null;
  private readonly c: RelayNodeComponents;
  private own: Descriptor | null = null;
  private room: StoreRoomState = STORE_ROOM_OPEN;
  private readPacer: ReadPacer | null = null;
  private historySavedAt = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(
    components: RelayNodeComponents,
    readonly config: RelayConfig,
  ) {
    super();
    const c = (this.c = components);
    const cfg = config;
    this.identity = c.identity;
    this.onionKeys = c.onionKeys;
    this.directory = c.directory;
    this.metrics = c.metrics;
    this.log = c.log;
    this.now = c.now;
    this.replay = c.replay;
    this.handshakeReplay = c.handshakeReplay;
    this.journals = c.journals ?? null;
    this.accounting = new LinkAccounting(c.metrics);
    this.authorities = new Set([...cfg.directory_authorities.map((f) => f.toLowerCase()), ...(cfg.authority ? [c.identity.fingerprint] : [])]);
    const cells = c.transport.kind === 'sockets';
    const offersStore = cfg.storage_quota > 0 && !cfg.bridge;
    // A bridge is in no directory, so no client would place content there: it stores nothing.
    this.store = offersStore ? (c.blockStore ?? null) : null;
    if (cells && offersStore && !this.store) throw new AlliumError('ERR_INTERNAL', 'a relay offering storage needs its block store');
    if (!cells && cfg.authority) throw new ConfigError('authority: a directory authority needs a transport that carries circuits');
    // Checks an onion's replay tag and journals it before the onion is answered (specs/circuits.md §3.4.1).
    this.journaledReplay = {
      checkAndRecord: (onionKey, tag) => {
        if (this.replay.checkAndRecord(onionKey, tag)) return true;
        this.journals?.appendOnion(onionKey, tag);
        return false;
      },
    };
    this.ownCircuits = new CircuitTable((link, id) => this.reactor?.has(link, id) ?? false);
    this.overlay = new Overlay({
      identity: c.identity,
      directory: c.directory,
      metrics: c.metrics,
      log: c.log,
      dial: (url, id) => (c.watchDial ? c.watchDial(url, id, this.dial(url, id)) : this.dial(url, id)),
      onLink: cells ? (link) => this.wireLink(link) : () => undefined,
      degree: cfg.overlay_degree,
      maxInboundPerBlock: cfg.max_inbound_neighbours_per_block,
      gossipIntervalMs: cfg.timing.gossip_interval,
      authorities: this.authorities,
      now: c.now,
      ...(c.random ? { random: c.random } : {}),
      ...(c.transport.kind === 'messages' && c.transport.measure ? { gossipSize: c.transport.measure } : {}),
      onAuthorityMessage: (link, m) => this.authority?.service.onMessage(link, m),
      onConsensus: (consensus) => countConsensus(c.metrics, consensus),
      ...(cfg.bridge ? { bridge: { descriptor: () => this.own?.raw ?? null } } : {}),
      ...(cfg.sybil_admission ? {} : { admission: false }),
    });
    this.mix =
      cells && cfg.mix
        ? new MixNode<Link>({
            identity: c.identity.publicKey,
            keys: () => this.onionKeys.usable,
            replay: this.mixReplay,
            now: c.now,
            forward: async (next, packet) => (await this.overlay.linkTo(next)).sendCell(0, CellCommand.MIX, packet),
            sendMail: (link, body) => link.sendCell(0, CellCommand.MIX_MAIL, body),
            onDrop: (reason) => c.metrics.drops.inc({ reason }),
            blockOf: (link) => (link.peer?.role === LinkRole.RELAY ? null : addressBlock(link.socket.remoteAddress)),
          })
        : null;
    const parts = cells
      ? createCircuitParts({
          config: cfg,
          identity: c.identity,
          onionKeys: () => this.onionKeys.usable,
          replay: this.journaledReplay,
          directory: c.directory,
          overlay: this.overlay,
          authorities: this.authorities,
          ownCircuits: this.ownCircuits,
          links: this.links,
          store: this.store,
          exitPolicyLines: this.exitPolicyLines,
          exitNetwork: c.exitNetwork,
          stateDir: c.stateDir ?? null,
          dial: (url, id) => this.dial(url, id),
          now: c.now,
          log: c.log,
          metrics: c.metrics,
        })
      : null;
    this.memory = parts?.memory ?? null;
    this.reactor = parts?.reactor ?? null;
    this.streams = parts?.streams ?? null;
    this.rendezvous = parts?.rendezvous ?? null;
    this.echo = parts?.echo ?? null;
    this.padding = parts?.padding ?? null;
    this.exit = parts?.exit ?? null;
    this.content = parts?.content ?? null;
    this.replicator = parts?.replicator ?? null;
    this.authority = parts?.authority ?? null;
    // Keys loaded from disk may have outlived their lifetime: rotate before the first onion is opened.
    this.rotateOnionKeys(this.now());
  }

  /** This relay's descriptor as last signed (null before the first). */
  get descriptor(): Descriptor | null {
    return this.own;
  }

  /** The exit policy as published. */
  get exitPolicyLines(): string[] {
    return exitPolicyLines(this.config);
  }

  /** Whether the store takes new items now (the descriptor lists `store`; specs/content.md §7.3). */
  get storeOpen(): boolean {
    return this.room.open;
  }

  private linkOptions(): LinkOptions {
    const t = this.config.timing;
    return {
      timers: { handshakeTimeoutMs: t.handshake_timeout, keepaliveMs: t.link_keepalive, idleTimeoutMs: t.link_idle_timeout },
      now: this.now,
      admitFrame: (link) => this.admitFrame(link),
    };
  }

  /** Rate limits on reading (relay/read-pacer.ts): per link, and relay-wide shared fairly. */
  private admitFrame(link: Link): boolean {
    const cfg = this.config;
    this.readPacer ??= new ReadPacer({
      bytesPerSecond: cfg.bandwidth_rate,
      burstBytes: cfg.bandwidth_burst,
      cellsPerSecondPerLink: cfg.cells_per_second_per_link,
      now: this.now,
      pause: (l) => {
        this.metrics.rateLimitPauses.inc();
        l.socket.pause();
      },
      resume: (l) => l.socket.resume(),
    });
    this.readPacer.admit(link);
    return true;
  }

  /** The bandwidth settings changed (a reload): the pacer is made again from them at the next frame read. */
  bandwidthChanged(): void {
    this.readPacer = null;
  }

  /**
   * Dials a relay: as a relay (signing with the identity), or as a bridge, which other relays must see as a client.
   * The socket factory decides which addresses may be dialed (specs/link.md §1.1). Rejects with ERR_DIAL_REFUSED
   * (counted) or ERR_UNREACHABLE.
   */
  dial(url: string, id: Uint8Array): Promise<Link> {
    const t = this.c.transport;
    if (t.kind === 'messages') return t.dial(url, id);
    const setup = this.config.bridge ? { role: 'initiator' as const, responder: id } : { role: 'initiator' as const, responder: id, identity: this.identity };
    return openLink(t.socketFactory, url, setup, this.linkOptions()).catch((e: unknown) => {
      if (isAlliumError(e) && e.code === 'ERR_DIAL_REFUSED') this.metrics.drops.inc({ reason: 'dial_refused_address' });
      throw e;
    });
  }

  /** A responder for this relay's identity, link replay cache and bridge secret (the front door opens tokens with it). */
  responder(): LinkResponder {
    const psk = this.c.bridgeSecret;
    return new LinkResponder({ identity: this.identity, replay: this.handshakeReplay, maxClockSkewMs: this.config.timing.clock_skew, ...(psk ? { psk } : {}) });
  }

  /**
   * Takes a socket the front door admitted (specs/link.md §2.6): `token` is the responder that already opened and
   * admitted its upgrade token, the token itself (opened and admitted here: one that fails closes the socket as
   * after a bad first message), or null (the handshake runs in band). Returns the link, which joins the overlay
   * once its handshake completes; null when the socket was closed instead.
   */
  acceptLink(socket: LinkSocket, token: LinkResponder | string | null): Link | null {
    if (this.state === 'stopped') {
      socket.close(1001);
      return null;
    }
    let accepted: LinkResponder | null = null;
    if (typeof token === 'string') {
      const r = this.responder();
      try {
        r.open(decodeUpgradeToken(token));
        r.admit(this.now());
        accepted = r;
      } catch (e) {
        r.discard();
        this.metrics.handshakes.inc({ result: isAlliumError(e) ? e.code : 'ERR_LINK_PROBE' });
        socket.close(1002);
        return null;
      }
    } else accepted = token;
    const psk = this.c.bridgeSecret;
    const link = new Link(
      socket,
      {
        role: 'responder',
        identity: this.identity,
        replay: this.handshakeReplay,
        maxClockSkewMs: this.config.timing.clock_skew,
        ...(psk ? { psk } : {}),
        ...(accepted ? { accepted } : {}),
      },
      this.linkOptions(),
    );
    link.once('link:close', (err) => {
      if (link.peer === null) this.metrics.handshakes.inc({ result: err ? err.code : 'closed' });
    });
    link.once('link:open', () => {
      this.metrics.handshakes.inc({ result: 'ok' });
      this.overlay.attach(link);
    });
    return link;
  }

  /** Takes a link that is open already (the simulator's message-level links): it joins the overlay. */
  attachLink(link: Link): void {
    if (this.state === 'stopped') return void link.close();
    this.overlay.attach(link);
  }

  /** A link carrying cells: to the reactor, counted and accounted for until it closes. */
  /**
   * A client's `padding` request (specs/link.md §4.4): pads the link towards it within the relay-wide budget while
   * link_padding is on; bounds out of range are ignored.
   */
  private onPaddingRequest(link: Link, lo: number, hi: number): void {
    if (!this.config.link_padding) return;
    const p = acceptLinkPadding(lo, hi);
    if (p === 'ignore') return;
    const rate = this.config.link_padding_budget ?? this.config.bandwidth_rate / 10;
    const budget = (this.paddingBudget ??= new TokenBucket(rate, Math.max(FRAME_LEN, 2 * rate), this.now));
    link.setPadding(p, {
      ...(this.c.random ? { random: this.c.random } : {}),
      allow: () => {
        if (!budget.tryTake(FRAME_LEN)) {
          this.metrics.paddingSkipped.inc();
          return false;
        }
        this.metrics.paddingFrames.inc();
        return true;
      },
    });
  }

  private wireLink(link: Link): void {
    const reactor = this.reactor!;
    this.links.add(link);
    const kind = link.peer?.role === LinkRole.RELAY ? 'relay' : 'client';
    this.metrics.links.inc({ kind });
    this.accounting.track(link);
    link.on('link:cell', (cell) => {
      this.metrics.cellsIn.inc();
      if (cell.circId === 0) return this.onMixCell(link, kind, cell.command, cell.body);
      reactor.onCell(link, cell);
    });
    if (kind === 'client') link.on('link:control', (m) => m.t === 'padding' && this.onPaddingRequest(link, m.lo, m.hi));
    link.on('link:close', (err) => {
      this.accounting.untrack(link);
      this.links.delete(link);
      this.metrics.links.dec({ kind });
      if (err) this.metrics.errors.inc({ code: err.code });
      reactor.onLinkClosed(link);
      this.mix?.onLinkClosed(link);
    });
  }

  /** Message-mode cells (specs/mix.md §3): packets from anyone, polls from clients; anything else is counted. */
  private onMixCell(link: Link, kind: 'relay' | 'client', command: number, body: Uint8Array): void {
    if (this.mix && command === CellCommand.MIX) return this.mix.onPacket(link, body);
    if (this.mix && command === CellCommand.MIX_POLL && kind === 'client') return this.mix.onPoll(link, body);
    this.metrics.drops.inc({ reason: 'mix_not_offered' });
  }

  /**
   * Joins the network: learns the configured bootstrap relays, publishes a descriptor (unless `publish` is false: a
   * simulated network that has converged already), opens the overlay's links and starts an authority's parts.
   */
  start(options: { publish?: boolean } = {}): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    for (const line of this.config.bootstrap) {
      const b = parseBootstrapLine(line);
      if (!crypto().equal(b.identity, this.identity.publicKey)) this.overlay.learnAddress(b.identity, b.url);
    }
    this.checkStoreRoom(this.now()); // a relay that starts full never advertises its store
    if (options.publish !== false) this.publishDescriptor();
    this.overlay.start();
    this.overlay.maintain();
    this.authority?.tester.start();
    this.authority?.service.start();
  }

  /**
   * Makes a new onion key when the current one is old or its replay filter full, and drops keys past their overlap
   * with their filters and journals. The new key's journal exists before the key can open an onion.
   */
  private rotateOnionKeys(now: number): boolean {
    const ring = this.onionKeys;
    const full = this.replay.isFull(ring.current.keyPair.publicKey) || this.mixReplay.isFull(ring.current.keyPair.publicKey);
    const { rotated, dropped } = ring.rotate(now, full);
    if (rotated) this.journals?.openOnion(ring.current.keyPair.publicKey, true);
    for (const k of dropped) {
      this.replay.forget(k.publicKey);
      this.mixReplay.forget(k.publicKey);
      this.journals?.deleteOnion(k.publicKey);
    }
    if (rotated || dropped.length) this.c.saveOnionKeys?.(ring);
    if (rotated) this.log.info('rotated onion key');
    return rotated;
  }

  /** Opens or closes the store by its room (relay/store-room.ts); true when it changed. */
  private checkStoreRoom(now: number): boolean {
    const store = this.store;
    if (!store) return false;
    const roomLeft = store.roomLeft();
    let diskFree = Number.POSITIVE_INFINITY;
    try {
      diskFree = this.c.diskFree?.() ?? Number.POSITIVE_INFINITY;
    } catch {
      /* no statfs here: rely on the quota and on failed writes */
    }
    const failedAt = store.lastWriteFailureAt;
    const { state, change } = storeRoom(this.room, {
      now,
      quota: store.quota,
      roomLeft,
      diskFree,
      minFreeDisk: this.config.storage_min_free_disk,
      lastWriteFailureAt: failedAt,
      renewMs: this.config.timing.descriptor_renew,
    });
    const closedAt = this.room.closedAt;
    this.room = state;
    if (change === 'closed') {
      this.metrics.storeOpen.set(0);
      this.log.warn(
        { roomLeft, diskFree: Number.isFinite(diskFree) ? diskFree : null, writeFailed: failedAt > 0 },
        'store full: no longer advertising it; new items go to other relays',
      );
    } else if (change === 'opened') {
      this.metrics.storeOpen.set(1);
      this.log.info({ roomLeft, closedForMs: now - closedAt }, 'store has room again: advertising it');
    }
    return change !== null;
  }

  /**
   * Housekeeping, every maintenance interval: expired descriptors go; onion keys rotate; the link replay journal is
   * compacted; the store opens or closes; the descriptor is renewed when due or when a key or the store changed;
   * the overlay keeps its links and drops an expired consensus; an authority saves its history; the out-of-memory
   * handler runs; the reactor destroys idle circuits and its handlers end stalled streams and idle exit
   * connections; the links' bytes are accounted for.
   */
  maintain(now: number = this.now()): void {
    if (this.state !== 'running') return;
    try {
      const expired = this.directory.expire(now);
      if (expired.length) this.log.debug({ count: expired.length }, 'descriptors expired');
      this.metrics.directorySize.set(this.directory.size);
      const rotated = this.rotateOnionKeys(now);
      const j = this.journals;
      if (j && j.linkJournalRecords > 2 * this.handshakeReplay.size + 10_000) j.resetLink(this.handshakeReplay.entries(now));
      const d = this.own;
      const storeChanged = this.checkStoreRoom(now);
      if (rotated || storeChanged || !d || now - d.pub >= this.config.timing.descriptor_renew) this.publishDescriptor();
      this.overlay.maintain();
      this.overlay.consensus.expire(now);
      const history = this.authority?.history;
      if (history && now - this.historySavedAt >= 60_000) {
        this.historySavedAt = now;
        history.save(now);
      }
      this.memory?.check();
      this.reactor?.maintain(now);
      this.mix?.sweep();
      this.accounting.sweep();
    } catch (e) {
      this.log.error({ err: e }, 'maintenance failed');
    }
  }

  /** The out-of-memory check, now (it also runs in every maintenance pass). */
  checkMemory(): void {
    this.memory?.check();
  }

  /** One replication pass (each repair interval), then the store's gauges. */
  async repair(): Promise<void> {
    if (!this.replicator || this.state !== 'running') return;
    try {
      await this.replicator.tick();
      this.content?.updateGauges();
    } catch (e) {
      this.log.warn({ err: e }, 'replication pass failed');
    }
  }

  /** Signs this relay's descriptor as published at `now` and keeps it as its own (not published). */
  signDescriptor(now: number): Descriptor {
    const cfg = this.config;
    const signed = signDescriptor(
      {
        id: this.identity.publicKey,
        onion: this.onionKeys.current.keyPair.publicKey,
        addr: this.c.address(),
        nick: cfg.nickname,
        contact: cfg.contact,
        family: cfg.family.map(parseFingerprint),
        bw: cfg.advertised_bandwidth ?? cfg.bandwidth_rate,
        exit: this.exitPolicyLines,
        caps: cfg.bridge
          ? []
          : [...(cfg.storage_quota > 0 && this.room.open ? (['store'] as const) : []), 'intro', 'rendezvous', ...(this.mix ? (['mix'] as const) : [])],
        pub: now,
        exp: now + cfg.timing.descriptor_lifetime,
      },
      this.identity.secretKey,
      cfg.bridge ? 'bridge' : 'relay',
    );
    const d = this.c.signed ? this.c.signed(signed) : signed;
    this.own = d;
    return d;
  }

  /**
   * Signs and floods a fresh descriptor. A bridge signs its descriptor under the bridge context and keeps it to
   * itself: it answers its clients' bridge-get with it and never adds it to a directory (specs/directory.md §9).
   */
  publishDescriptor(): Descriptor {
    const d = this.signDescriptor(this.now());
    this.emit('descriptor:published', d);
    if (!this.config.bridge) this.overlay.publish(d);
    return d;
  }

  /** Stops the parts: closes circuits (HIBERNATING), exit connections and links; saves an authority's history. */
  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.replicator?.stop();
    this.authority?.service.stop();
    this.authority?.tester.stop();
    this.authority?.history.save(this.now());
    this.overlay.stop();
    this.reactor?.closeAll(DestroyReason.HIBERNATING);
    this.exit?.closeAll();
    this.mix?.stop();
    for (const l of [...this.links]) l.close();
  }
}

/** A relay node (relay/node.ts): made only by createRelayNode. */
export type RelayNode = Node;
