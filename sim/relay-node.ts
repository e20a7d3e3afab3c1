/**
 * Relays inside the simulator. Both kinds run the real relay components, wired the way relay/relay.ts wires them,
 * minus what needs an operating system (the HTTP and WebSocket server, key files, the metrics and status servers):
 *
 * - `FullRelay`: real links (net/link.ts: handshake, frame encryption, CONTROL fragmentation) over in-memory
 *   sockets, the overlay (relay/overlay.ts) with the real DirectoryStore, the circuit reactor (relay/circuits.ts),
 *   streams, and for store relays the SQLite block store, the content service and re-replication
 *   (relay/replication.ts) over one-hop circuits. Clients (client/client.ts) connect to it as to a real relay.
 * - `MessageRelay`: the overlay and its gossip for networks of thousands of relays, over message-level links
 *   (sim/message-link.ts) and the directory store of sim/directory.ts. No circuits.
 *
 * Both publish signed descriptors (protocol/descriptor.ts) and run relay.ts's maintenance: expire descriptors,
 * renew their own before `descriptor_renew`, rotate onion keys (full relays), and keep `overlay_degree` links.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../crypto/index.js';
import { IdentityKey, OnionKeyRing } from '../crypto/keys.js';
import { DestroyReason } from '../protocol/cell.js';
import { signDescriptor as signFields, type Descriptor } from '../protocol/descriptor.js';
import { DirectoryStore } from '../protocol/directory-store.js';
import { decodeUpgradeToken, HandshakeReplayCache, LinkResponder, LinkRole, UPGRADE_TOKEN_PARAM } from '../protocol/link-handshake.js';
import type { LinkSocket } from '../net/socket.js';
import { ReplayFilter } from '../protocol/replay-filter.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { decodeFetch } from '../protocol/content-messages.js';
import { isExitPolicy, parseExitPolicy } from '../protocol/exit-policy.js';
import { CircuitTable } from '../net/circuit.js';
import { openLink } from '../net/dial.js';
import { Link, type LinkOptions } from '../net/link.js';
import { CircuitReactor } from '../relay/circuits.js';
import { resolveRelayConfig, type RelayConfig, type RelayConfigInput } from '../relay/config.js';
import { PRIVATE_REJECT_LINES } from '../relay/exit.js';
import { Overlay } from '../relay/overlay.js';
import { StreamsHandler } from '../relay/streams.js';
import { BlockStore } from '../relay/block-store.js';
import { ContentService } from '../relay/content.js';
import { Replicator, replicationTransport } from '../relay/replication.js';
import { consensusPlacement } from '../relay/consensus-placement.js';
import { EchoService } from '../relay/measurement.js';
import { SimDirectoryStore } from './directory.js';
import { Counter, SimMetrics } from './metrics.js';
import type { Host } from './network.js';
import type { World } from './world.js';
import { messageSize } from './cbor-size.js';

export interface SimRelayOptions {
  /** Keys of the relay configuration file (relay/config.ts), defaults as there. */
  config?: RelayConfigInput;
  /** Offers content storage (capability "store"). */
  store?: boolean;
  /** Exits to ports 80 and 443. */
  exit?: boolean;
  /** Advertised bandwidth in bytes/s (default: the host's). */
  bandwidth?: number;
}

/** The simulator's relay metrics, with the announce-and-pull counters the overlay updates (relay/metrics.ts). */
export class SimRelayMetrics extends SimMetrics {
  readonly gossipDescriptors = new Counter();
  readonly gossipPulls = new Counter();
}

/** What the simulator keeps of every relay, whichever kind. */
export abstract class SimRelay {
  readonly identity: IdentityKey;
  readonly metrics = new SimRelayMetrics();
  readonly config: RelayConfig;
  readonly url: string;
  abstract readonly directory: DirectoryStore;
  abstract readonly overlay: Overlay;
  descriptor: Descriptor | null = null;
  state: 'new' | 'running' | 'down' = 'new';
  startedAt = 0;
  private maintenanceTimer: ReturnType<typeof setInterval> | null = null;
  protected onionPublic: () => Uint8Array;

  constructor(
    readonly world: World,
    readonly host: Host,
    readonly index: number,
    protected readonly options: SimRelayOptions = {},
  ) {
    this.identity = IdentityKey.fromSeed(crypto().random(32));
    this.config = resolveRelayConfig({ nickname: `sim${index}`, storage_quota: options.store ? 1024 ** 3 : 0, ...options.config });
    this.url = `ws://${host.ip}:9001/allium`;
    host.identity = this.identity.publicKey;
    world.network.bind(this.url, host);
    const onion = crypto().x25519Keypair().publicKey;
    this.onionPublic = () => onion;
  }

  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  get bootstrapLine(): string {
    return `${this.url} ${this.fingerprint}`;
  }

  get alive(): boolean {
    return this.state === 'running';
  }

  /** The exit policy as published (relay.ts prepends the private-range refusals). */
  get exitPolicyLines(): string[] {
    const lines = this.options.exit ? ['accept *:80', 'accept *:443', 'reject *:*'] : ['reject *:*'];
    return isExitPolicy(parseExitPolicy(lines)) && this.config.exit_reject_private ? [...PRIVATE_REJECT_LINES, ...lines] : lines;
  }

  /** Signs a fresh descriptor and hands it to the overlay to flood. */
  publishDescriptor(): Descriptor {
    const d = this.signDescriptor(Date.now());
    this.onPublish?.(d);
    this.overlay.publish(d);
    return d;
  }

  /** Called with each descriptor this relay publishes (experiments time their spread). */
  onPublish: ((d: Descriptor) => void) | null = null;

  /** Signs this relay's descriptor as published at `now` (and keeps it as its own). */
  signDescriptor(now: number): Descriptor {
    const d = signFields(
      {
        id: this.identity.publicKey,
        onion: this.onionPublic(),
        addr: this.url,
        nick: this.config.nickname,
        contact: '',
        family: [],
        bw: Math.round(this.options.bandwidth ?? this.host.bandwidth),
        exit: this.exitPolicyLines,
        caps: this.options.store ? ['store', 'intro', 'rendezvous'] : ['intro', 'rendezvous'],
        pub: now,
        exp: now + this.config.timing.descriptor_lifetime,
      },
      this.identity.secretKey,
    );
    // The same descriptor with its fingerprint as a flat string: the real one is built by concatenation, and
    // comparing such strings as map keys costs a thousand times per second at ten thousand relays.
    const flat: Descriptor = { ...d, fingerprint: Buffer.from(d.id).toString('hex') };
    this.world.verifyCache.add(flat);
    this.descriptor = flat;
    return flat;
  }

  /** Starts the relay: learns its bootstrap relays, publishes, joins the overlay. */
  start(bootstrap: readonly SimRelay[] = []): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.startedAt = Date.now();
    for (const b of bootstrap) if (b !== this) this.overlay.learnAddress(b.identity.publicKey, b.url);
    this.beforeStart();
    this.publishDescriptor();
    this.overlay.start();
    this.overlay.maintain();
    this.maintenanceTimer = setInterval(() => this.maintain(), this.config.timing.maintenance_interval);
  }

  /**
   * Starts a relay of a network that has already converged (its directory filled, its descriptor known to all):
   * joins the overlay without publishing.
   */
  startConverged(): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.startedAt = Date.now();
    this.beforeStart();
    this.overlay.start();
    this.overlay.maintain();
    this.maintenanceTimer = setInterval(() => this.maintain(), this.config.timing.maintenance_interval);
  }

  protected beforeStart(): void {}

  /** relay.ts maintain(): expiry, renewal, onion keys, overlay links. */
  maintain(): void {
    if (this.state !== 'running') return;
    const now = Date.now();
    this.directory.expire(now);
    const rotated = this.rotateKeys(now);
    const d = this.descriptor;
    if (rotated || !d || now - d.pub >= this.config.timing.descriptor_renew) this.publishDescriptor();
    this.overlay.maintain();
  }

  protected rotateKeys(_now: number): boolean {
    return false;
  }

  /** Takes the relay down: `crash` (the process died; peers see resets) or `vanish` (the host left the network). */
  down(how: 'crash' | 'vanish' = 'crash'): void {
    if (this.state !== 'running') {
      this.state = 'down';
      return;
    }
    this.state = 'down';
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    this.overlay.stop();
    this.world.network.down(this.host, how);
    this.afterDown();
  }

  protected afterDown(): void {}
}

/** A relay of the large-overlay tier: gossip over message-level links. */
export class MessageRelay extends SimRelay {
  readonly directory: SimDirectoryStore;
  readonly overlay: Overlay;

  constructor(world: World, host: Host, index: number, options: SimRelayOptions = {}, onChange?: ConstructorParameters<typeof SimDirectoryStore>[1]) {
    super(world, host, index, options);
    this.directory = new SimDirectoryStore(world.verifyCache, onChange);
    const self = { role: LinkRole.RELAY, identity: this.identity.publicKey, version: 1 } as const;
    this.overlay = new Overlay({
      identity: this.identity,
      directory: this.directory,
      metrics: this.metrics.asRelayMetrics,
      log: world.log,
      dial: (url, id) => world.network.dialMessages(host, url, id, self, messageSize as (m: unknown) => number) as unknown as Promise<Link>,
      onLink: () => undefined,
      degree: this.config.overlay_degree,
      gossipIntervalMs: this.config.timing.gossip_interval,
      now: () => Date.now(),
      random: world.rng.fork().random,
      gossipSize: messageSize,
    });
    host.acceptMessages = (link) => {
      if (this.state === 'running') this.overlay.attach(link as unknown as Link);
      else link.close();
    };
  }
}

/** A relay of the full tier: real links, circuits and content. */
export class FullRelay extends SimRelay {
  readonly directory = new DirectoryStore();
  readonly overlay: Overlay;
  readonly reactor: CircuitReactor;
  readonly links = new Set<Link>();
  private readonly onionKeys: OnionKeyRing;
  private readonly replay = new ReplayFilter({ capacity: 100_000 });
  private readonly handshakeReplay: HandshakeReplayCache;
  private readonly ownCircuits: CircuitTable;
  store: BlockStore | null = null;
  content: ContentService | null = null;
  /** FETCH requests (reads) this relay answered as a holder. */
  fetchesServed = 0;
  /** Head-only FETCH requests (other relays' repair checks) it answered. */
  headFetchesServed = 0;
  replicator: Replicator | null = null;
  private dataDir: string | null = null;
  private repairTimer: ReturnType<typeof setInterval> | null = null;

  constructor(world: World, host: Host, index: number, options: SimRelayOptions = {}) {
    super(world, host, index, options);
    const cfg = this.config;
    this.onionKeys = OnionKeyRing.create(Date.now(), { lifetimeMs: cfg.timing.onion_key_lifetime, overlapMs: cfg.timing.onion_key_overlap });
    this.onionPublic = () => this.onionKeys.current.keyPair.publicKey;
    const windowMs = 2 * cfg.timing.clock_skew;
    this.handshakeReplay = new HandshakeReplayCache(windowMs, 100_000);
    this.ownCircuits = new CircuitTable((link, id) => this.reactor.has(link, id));
    const metrics = this.metrics.asRelayMetrics;
    this.reactor = new CircuitReactor({
      identity: this.identity,
      onionKeys: () => this.onionKeys.usable,
      replay: this.replay,
      linkTo: (id) => this.overlay.linkTo(id),
      metrics,
      log: world.log,
      now: () => Date.now(),
      originated: (link, id) => this.ownCircuits.has(link, id),
    });
    const streams = new StreamsHandler(this.reactor, metrics);
    this.reactor.addHandler(streams);
    this.reactor.addHandler(new EchoService(this.reactor, () => this.overlay.authorities));
    if (options.store) {
      this.dataDir = mkdtempSync(join(tmpdir(), 'allium-sim-'));
      this.store = new BlockStore(this.dataDir, cfg.storage_quota, 'normal');
      this.content = new ContentService(this.store, metrics, world.log);
      streams.register(RelayCommand.STORE, this.content.onStore);
      const onFetch = this.content.onFetch;
      streams.register(RelayCommand.FETCH, (hop, mux, stream, data) => {
        try {
          // Head-only FETCHes are other relays' repair checks; the rest are reads.
          if (decodeFetch(data).h) this.headFetchesServed++;
          else this.fetchesServed++;
        } catch {
          /* malformed: the content service answers it */
        }
        onFetch(hop, mux, stream, data);
      });
      this.replicator = new Replicator({
        store: this.store,
        directory: this.directory,
        identity: this.identity,
        k: cfg.replication_factor,
        ...replicationTransport((id) => this.overlay.linkTo(id), this.ownCircuits),
        repairIntervalMs: cfg.timing.repair_interval,
        placement: () => consensusPlacement(this.overlay.consensus.current, world.now),
        now: () => world.now,
        metrics,
        log: world.log,
      });
    }
    const factory = world.network.socketFactory(host);
    this.overlay = new Overlay({
      identity: this.identity,
      directory: this.directory,
      metrics,
      log: world.log,
      dial: (url, id) => openLink(factory, url, { role: 'initiator', responder: id, identity: this.identity }, this.linkOptions()),
      onLink: (link) => this.wireLink(link),
      degree: cfg.overlay_degree,
      gossipIntervalMs: cfg.timing.gossip_interval,
      now: () => Date.now(),
      random: world.rng.fork().random,
    });
    host.acceptSocket = (socket, _ip, url) => this.accept(socket, url);
  }

  /**
   * relay.ts onUpgrade() for a public relay: the upgrade token in the URL carries the first handshake message; a
   * token that does not open or admit gets the upgrade and then a close, as after a bad first message.
   */
  private accept(socket: LinkSocket, url: string): void {
    if (this.state !== 'running') return socket.close(1001);
    const cfg = this.config;
    const token = new URL(url).searchParams.get(UPGRADE_TOKEN_PARAM);
    let accepted: LinkResponder | null = null;
    if (token !== null) {
      const r = new LinkResponder({ identity: this.identity, replay: this.handshakeReplay, maxClockSkewMs: cfg.timing.clock_skew });
      try {
        r.open(decodeUpgradeToken(token));
        r.admit(Date.now());
        accepted = r;
      } catch {
        this.metrics.handshakes.inc({ result: 'token_refused' });
        return socket.close(1002);
      }
    }
    const link = new Link(
      socket,
      {
        role: 'responder',
        identity: this.identity,
        replay: this.handshakeReplay,
        maxClockSkewMs: cfg.timing.clock_skew,
        ...(accepted ? { accepted } : {}),
      },
      this.linkOptions(),
    );
    link.once('link:open', () => this.overlay.attach(link));
  }

  private linkOptions(): LinkOptions {
    const t = this.config.timing;
    return { timers: { handshakeTimeoutMs: t.handshake_timeout, keepaliveMs: t.link_keepalive, idleTimeoutMs: t.link_idle_timeout }, now: () => Date.now() };
  }

  private wireLink(link: Link): void {
    this.links.add(link);
    link.on('link:cell', (cell) => this.reactor.onCell(link, cell));
    link.on('link:close', () => {
      this.links.delete(link);
      this.reactor.onLinkClosed(link);
    });
  }

  protected override beforeStart(): void {
    if (this.replicator) {
      this.repairTimer = setInterval(() => {
        this.replicator!.tick().then(
          () => this.content?.updateGauges(),
          () => undefined,
        );
      }, this.config.timing.repair_interval);
    }
  }

  protected override rotateKeys(now: number): boolean {
    const full = this.replay.isFull(this.onionKeys.current.keyPair.publicKey);
    const { rotated, dropped } = this.onionKeys.rotate(now, full);
    for (const k of dropped) this.replay.forget(k.publicKey);
    return rotated;
  }


  protected override afterDown(): void {
    if (this.repairTimer) clearInterval(this.repairTimer);
    this.replicator?.stop();
    this.reactor.closeAll(DestroyReason.HIBERNATING);
    // The sockets are already dead; closing the links here only stops their timers on this side.
    for (const l of [...this.links]) l.close();
  }

  /** Closes the block store and deletes its files (end of a run). */
  dispose(): void {
    if (this.state === 'running') this.down('crash');
    this.store?.close();
    this.store = null;
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = null;
  }
}
