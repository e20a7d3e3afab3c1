/**
 * The relay daemon: a WebSocket server that accepts links, an overlay of links to other relays with directory
 * gossip, the circuit reactor, and the housekeeping that keeps them healthy (descriptor renewal, onion-key
 * rotation, expiry, the out-of-memory handler, rate limits). `start()` and `stop()` are idempotent.
 *
 * The WebSocket server listens with plain HTTP or, given a certificate, with TLS. Every request that is not an
 * admitted upgrade gets the same plain 404 (specs/link.md §2.6). A probe-resistant relay — every bridge, and a
 * public relay that opts in — upgrades only requests whose upgrade token opens under its identity (and bridge
 * secret) and is not a replay; everything else, at any path, gets that 404 after the same work. A bridge never
 * publishes its descriptor: it hands it only to its own clients, and dials other relays as a client.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext as tlsContext } from 'node:tls';
import { existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import { crypto } from '../crypto/index.js';
import { IdentityKey, OnionKeyRing, parseFingerprint } from '../crypto/keys.js';
import { DestroyReason } from '../protocol/cell.js';
import { signDescriptor, type Descriptor } from '../protocol/descriptor.js';
import { DirectoryStore } from '../protocol/directory-store.js';
import { AlliumError, ConfigError, isAlliumError, ProtocolError } from '../protocol/errors.js';
import {
  decodeUpgradeToken,
  FRAME_LEN,
  HandshakeReplayCache,
  LinkResponder,
  LinkRole,
  MSG1_HEAD_LEN,
  UPGRADE_TOKEN_PARAM,
} from '../protocol/link-handshake.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import { ReplayFilter } from '../protocol/replay-filter.js';
import type { ReplayGuard } from '../protocol/onion.js';
import { openLink } from '../net/dial.js';
import { Link, type LinkOptions } from '../net/link.js';
import { fromWs } from '../net/socket.js';
import { createNodeSocketFactory } from '../net/ws-node.js';
import type { SocketFactory } from '../net/dial.js';
import { isPublicUnicast } from '../protocol/dial-policy.js';
import { CircuitReactor } from './circuits.js';
import { parseBootstrapLine, parseHostPort, resolveRelayConfig, type RelayConfig, type RelayConfigInput } from './config.js';
import { ensureDataDir, loadOrCreateIdentity, loadOrCreateOnionKeys, saveOnionKeys, writeFileAtomic } from './keystore.js';
import { ReplayJournals } from './replay-journal.js';
import { createLogger, shortFp } from './logger.js';
import { RelayMetrics } from './metrics.js';
import { Overlay } from './overlay.js';
import { ExitService, PRIVATE_REJECT_LINES } from './exit.js';
import { StreamsHandler } from './streams.js';
import { BlockStore } from './block-store.js';
import { ContentService } from './content.js';
import { Replicator, replicationTransport } from './replication.js';
import { RendezvousService } from './rendezvous.js';
import { startAdminServer } from './admin.js';
import { preflightRelay } from './preflight.js';
import { RelayNotices } from './notices.js';
import { applyReload, type ReloadReport } from './reload.js';
import { ALLIUM_VERSION } from './version.js';
import { listenOn } from '../net/listen.js';
import { CircuitTable } from '../net/circuit.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { isExitPolicy, parseExitPolicy } from '../protocol/exit-policy.js';
import { TokenBucket } from './token-bucket.js';
import { AddressBuckets } from './address-buckets.js';
import { LinkAdmission } from './link-admission.js';
import { MemoryGuard } from './memory-guard.js';
import { ReadPacer } from './read-pacer.js';
import { createAuthority, type AuthorityService } from './authority.js';
import type { RelayHistory } from './authority-history.js';
import type { ReachabilityTester } from './authority-reachability.js';
import { consensusPlacement, consensusStatus, countConsensus } from './consensus-placement.js';
import { EchoService } from './measurement.js';

export { ALLIUM_VERSION };

export interface RelayOptions {
  log?: Logger;
  now?: () => number;
}

const NOT_FOUND_BODY = '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n';

/**
 * The headers of the relay's miss, in order. The request handler and the upgrade handler both send exactly these,
 * so an upgrade the relay refuses is byte for byte a request for a missing page (apart from the Date).
 */
function missHeaders(): Record<string, string> {
  return {
    'Content-Type': 'text/html',
    'Content-Length': String(Buffer.byteLength(NOT_FOUND_BODY)),
    Date: new Date().toUTCString(),
    Connection: 'close',
  };
}

function sendMiss(res: ServerResponse): void {
  res.sendDate = false;
  res.writeHead(404, 'Not Found', missHeaders());
  res.end(NOT_FOUND_BODY);
}

/** The same response, written on a socket the HTTP server handed over for an upgrade. */
function writeMiss(socket: Duplex, method: string | undefined): void {
  const head = Object.entries(missHeaders())
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 404 Not Found\r\n${head}\r\n${method === 'HEAD' ? '' : NOT_FOUND_BODY}`);
}

/** Loads the bridge secret (data_dir/bridge.secret, 64 hex digits), creating it on first start. */
export function loadOrCreateBridgeSecret(dir: string): Uint8Array {
  const path = join(dir, 'bridge.secret');
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new ConfigError(`${path} is damaged: delete it for a new secret (and hand out the new bridge line)`);
    return fromHex(text);
  }
  const secret = crypto().random(32);
  writeFileAtomic(path, toHex(secret) + '\n');
  return secret;
}

/** "bridge URL FINGERPRINT secret=HEX" (specs/link.md §2.5). */
export function formatBridgeLine(url: string, fingerprint: string, secret: Uint8Array): string {
  return `bridge ${url} ${fingerprint} secret=${toHex(secret)}`;
}

export class Relay {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly metrics: RelayMetrics;
  readonly directory = new DirectoryStore();
  private readonly now: () => number;
  private identityKey: IdentityKey | null = null;
  private onionKeys: OnionKeyRing | null = null;
  private replay = new ReplayFilter();
  private journals: ReplayJournals | null = null;
  private handshakeReplay: HandshakeReplayCache;
  private server: Server | HttpsServer | null = null;
  private bridgeSecret: Uint8Array | null = null;
  private tls: { cert: Buffer; key: Buffer; mtime: number; checked: number } | null = null;
  private metricsServer: Server | null = null;
  private adminServer: Server | null = null;
  private adminPort = 0;
  private readonly history: { t: number; in: number; out: number }[] = [];
  private historyTimer: ReturnType<typeof setInterval> | null = null;
  private lastTotals = { in: 0, out: 0 };
  private wss: WebSocketServer | null = null;
  private overlayImpl: Overlay | null = null;
  private exitImpl: ExitService | null = null;
  private streamsImpl: StreamsHandler | null = null;
  private storeImpl: BlockStore | null = null;
  private contentImpl: ContentService | null = null;
  private replicatorImpl: Replicator | null = null;
  private repairTimer: ReturnType<typeof setInterval> | null = null;
  private readonly ownCircuits = new CircuitTable((link, id) => this.reactorImpl?.has(link, id) ?? false);
  private reactorImpl: CircuitReactor | null = null;
  /** What the relay tells its operator: warnings, bootstrap failures, joined, reachability, heartbeat. */
  private noticesImpl: RelayNotices | null = null;
  private authorityImpl: AuthorityService | null = null;
  private testerImpl: ReachabilityTester | null = null;
  private historyImpl: RelayHistory | null = null;
  private readonly links = new Set<Link>();
  /** Links per address and per block, the relays' reserve and idle-client eviction (specs/link.md §7). */
  private readonly admission: LinkAdmission;
  private handshakeBucket: TokenBucket;
  /** Per-address and per-block handshake buckets, charged before handshakeBucket (specs/link.md §7). */
  private readonly addressBuckets: AddressBuckets;
  private readonly socketFactory: SocketFactory;
  private maintenanceTimer: ReturnType<typeof setInterval> | null = null;
  private ownDescriptor: Descriptor | null = null;
  /** The store takes new items and the descriptor lists `store` (checkStoreRoom). */
  private storeOpen = true;
  private storeClosedAt = 0;
  private storeClearSince = 0;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private boundPort = 0;
  private metricsPort = 0;
  readonly startedAt: number;

  constructor(config: RelayConfigInput | RelayConfig, options: RelayOptions = {}) {
    this.config = resolveRelayConfig(config);
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.log = options.log ?? createLogger(this.config.log_level, 'allium-relay', undefined, this.config.log_format);
    this.metrics = new RelayMetrics();
    this.handshakeReplay = this.newHandshakeReplay();
    this.handshakeBucket = new TokenBucket(this.config.handshakes_per_second, this.config.handshakes_per_second * 2, this.now);
    this.admission = new LinkAdmission(
      { maxLinks: this.config.max_links, maxLinksPerIp: this.config.max_links_per_ip, maxLinksPerBlock: this.config.max_links_per_block, relayLinksReserved: this.config.relay_links_reserved },
      this.now,
    );
    this.addressBuckets = new AddressBuckets({ perIp: this.config.handshakes_per_second_per_ip, perBlock: this.config.handshakes_per_second_per_block, now: this.now });
    this.socketFactory = createNodeSocketFactory(this.config.allow_private_addresses ? {} : { allowAddress: isPublicUnicast });
  }

  /** Room for every handshake the rate limit admits within the replay window, so the cache never fills first. */
  private newHandshakeReplay(): HandshakeReplayCache {
    const windowMs = 2 * this.config.timing.clock_skew;
    const hps = this.config.handshakes_per_second;
    return new HandshakeReplayCache(windowMs, Math.ceil((hps * windowMs) / 1000) + 2 * hps + 1000, (tag, expires) => this.journals?.appendLink(tag, expires));
  }

  get identity(): IdentityKey {
    if (!this.identityKey) throw new AlliumError('ERR_INTERNAL', 'relay not started');
    return this.identityKey;
  }

  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  get overlay(): Overlay {
    if (!this.overlayImpl) throw new AlliumError('ERR_INTERNAL', 'relay not started');
    return this.overlayImpl;
  }

  get circuits(): CircuitReactor {
    if (!this.reactorImpl) throw new AlliumError('ERR_INTERNAL', 'relay not started');
    return this.reactorImpl;
  }

  /** The URL clients and relays dial, as published. */
  get address(): string {
    if (this.config.public_address) return this.config.public_address;
    const { host } = parseHostPort(this.config.listen, 'listen');
    const h = host.includes(':') ? `[${host}]` : host;
    return `${this.config.tls_cert ? 'wss' : 'ws'}://${h}:${this.boundPort}${this.config.path}`;
  }

  /** "ws://host:port/path FINGERPRINT", the line other relays and clients use to bootstrap through this one. */
  get bootstrapLine(): string {
    return `${this.address} ${this.fingerprint}`;
  }

  get port(): number {
    return this.boundPort;
  }

  /** True for bridges and for public relays with probe_resistant set. */
  get probeResistant(): boolean {
    return this.config.bridge || this.config.probe_resistant;
  }

  /** "bridge URL FINGERPRINT secret=HEX", what a bridge's clients configure; null for a public relay. */
  get bridgeLine(): string | null {
    if (!this.bridgeSecret) return null;
    return formatBridgeLine(this.address, this.fingerprint, this.bridgeSecret);
  }

  get adminAddress(): string | null {
    if (!this.adminServer) return null;
    const host = parseHostPort(this.config.admin, 'admin').host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.adminPort}/`;
  }

  private totals(): { in: number; out: number } {
    for (const l of this.links) (l as Link & { account?: () => void }).account?.();
    return { in: this.bytesInTotal, out: this.bytesOutTotal };
  }

  private bytesInTotal = 0;
  private bytesOutTotal = 0;

  private sampleBandwidth(): void {
    const t = this.totals();
    this.history.push({ t: this.now(), in: Math.max(0, t.in - this.lastTotals.in), out: Math.max(0, t.out - this.lastTotals.out) });
    this.lastTotals = t;
    if (this.history.length > 300) this.history.shift();
  }

  /** Everything the status page shows (also a handy API for tests and tools). */
  async status(): Promise<Record<string, unknown>> {
    const sum = async (m: { get(): Promise<{ values: { value: number; labels: Partial<Record<string, string | number>> }[] }> }, label?: string): Promise<{ total: number; by: Record<string, number> }> => {
      const v = await m.get();
      const by: Record<string, number> = {};
      let total = 0;
      for (const x of v.values) {
        total += x.value;
        if (label) by[String(x.labels[label] ?? '')] = (by[String(x.labels[label] ?? '')] ?? 0) + x.value;
      }
      return { total, by };
    };
    const links = await sum(this.metrics.links, 'kind');
    const neighbours = new Set(this.overlay.neighbours());
    const st = this.storeImpl?.stats();
    return {
      version: ALLIUM_VERSION,
      nickname: this.config.nickname,
      fingerprint: this.fingerprint,
      bridge: this.config.bridge,
      uptimeSeconds: Math.floor((this.now() - this.startedAt) / 1000),
      links: { relay: links.by['relay'] ?? 0, client: links.by['client'] ?? 0 },
      circuits: this.circuits.size,
      cells: { in: (await sum(this.metrics.cellsIn)).total, out: (await sum(this.metrics.cellsOut)).total },
      bytes: { in: this.bytesInTotal, out: this.bytesOutTotal },
      history: this.history,
      drops: (await sum(this.metrics.drops, 'reason')).by,
      errors: (await sum(this.metrics.errors, 'code')).by,
      store: {
        blocks: st?.blocks ?? 0,
        records: st?.records ?? 0,
        bytes: st?.bytes ?? 0,
        quota: st?.quota ?? 0,
        replicated: this.replicatorImpl?.pushed ?? 0,
        generation: this.replicatorImpl?.generation() ?? '',
      },
      consensus: consensusStatus(this.overlayImpl?.consensus.current ?? null, this.fingerprint),
      authority: this.authorityImpl?.status() ?? null,
      directory: this.directory.all().map((d) => ({
        nickname: d.nick,
        fingerprint: d.fingerprint,
        address: d.addr,
        caps: d.caps,
        exit: d.exit.some((l) => l.startsWith('accept')),
        neighbour: neighbours.has(d.fingerprint),
      })),
      neighbours: [...neighbours],
    };
  }

  get metricsAddress(): string | null {
    if (!this.metricsServer) return null;
    const host = parseHostPort(this.config.metrics, 'metrics').host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.metricsPort}/metrics`;
  }

  get descriptor(): Descriptor | null {
    return this.ownDescriptor;
  }

  /** The exit policy as published: private ranges refused first unless exit_reject_private is off. */
  get exitPolicyLines(): string[] {
    const lines = this.config.exit_policy;
    if (!isExitPolicy(parseExitPolicy(lines)) || !this.config.exit_reject_private) return lines;
    return [...PRIVATE_REJECT_LINES, ...lines];
  }

  get exit(): ExitService | null {
    return this.exitImpl;
  }

  get linkCount(): number {
    return this.links.size;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const cfg = this.config;
    await preflightRelay(cfg); // every listener and path checked before a key is made or the network joined
    if (cfg.tls_cert) this.tls = loadTlsFiles(cfg.tls_cert, cfg.tls_key);
    ensureDataDir(cfg.data_dir);
    const { identity, created } = loadOrCreateIdentity(cfg.data_dir);
    if (cfg.bridge) this.bridgeSecret = loadOrCreateBridgeSecret(cfg.data_dir);
    this.identityKey = identity;
    const onionKeysExisted = existsSync(join(cfg.data_dir, 'onion-keys.json'));
    this.onionKeys = loadOrCreateOnionKeys(cfg.data_dir, this.now(), {
      lifetimeMs: cfg.timing.onion_key_lifetime,
      overlapMs: cfg.timing.onion_key_overlap,
    });
    this.restoreReplayState(identity, !onionKeysExisted);
    this.rotateOnionKeys();
    this.log.info({ relay: shortFp(identity.fingerprint), created }, created ? 'created a new relay identity' : 'loaded relay identity');

    this.reactorImpl = new CircuitReactor({
      identity,
      onionKeys: () => this.onionKeys!.usable,
      replay: this.journaledReplay,
      linkTo: (id) => this.overlay.linkTo(id),
      metrics: this.metrics,
      log: this.log,
      now: this.now,
      originated: (link, id) => this.ownCircuits.has(link, id),
      maxCircuitsPerBlock: cfg.max_circuits_per_block,
      maxCircuitsPerRelayBlock: cfg.max_circuits_per_relay_block,
      createsPerSecondPerLink: cfg.creates_per_second_per_link,
      createsPerSecondPerBlock: cfg.creates_per_second_per_block,
      createsPerSecondPerRelayBlock: cfg.creates_per_second_per_relay_block,
      onCongestedCells: (n) => this.guard.noteCells(n),
    });
    this.streamsImpl = new StreamsHandler(this.reactorImpl, this.metrics);
    this.reactorImpl.addHandler(this.streamsImpl);
    this.reactorImpl.addHandler(new RendezvousService(this.reactorImpl, this.metrics, this.now));
    this.reactorImpl.addHandler(new EchoService(this.reactorImpl, () => this.authorities));
    if (isExitPolicy(parseExitPolicy(this.exitPolicyLines))) {
      this.exitImpl = new ExitService({
        policy: parseExitPolicy(this.exitPolicyLines),
        metrics: this.metrics,
        log: this.log,
        dnsServers: cfg.exit_dns_servers,
        resolveTimeoutMs: cfg.timing.exit_resolve_timeout,
        maxPendingResolves: cfg.exit_max_pending_resolves,
        maxPendingResolvesPerCircuit: cfg.exit_max_pending_resolves_per_circuit,
        maxStreamsPerCircuit: cfg.exit_max_streams_per_circuit,
        maxStreamsPerClientBlock: cfg.exit_max_streams_per_client_block,
        now: this.now,
      });
      this.streamsImpl.register(RelayCommand.BEGIN, this.exitImpl.open);
      this.streamsImpl.attach(this.exitImpl);
    }
    // A bridge is in no directory, so no client would place content there: it stores nothing.
    if (cfg.storage_quota > 0 && !cfg.bridge) {
      this.storeImpl = new BlockStore(cfg.data_dir, cfg.storage_quota, cfg.store_sync);
      this.contentImpl = new ContentService(this.storeImpl, this.metrics, this.log);
      this.streamsImpl.register(RelayCommand.STORE, this.contentImpl.onStore);
      this.streamsImpl.register(RelayCommand.FETCH, this.contentImpl.onFetch);
      this.replicatorImpl = new Replicator({
        store: this.storeImpl,
        directory: this.directory,
        identity,
        k: cfg.replication_factor,
        ...replicationTransport((id) => this.overlay.linkTo(id), this.ownCircuits),
        repairIntervalMs: cfg.timing.repair_interval,
        placement: () => consensusPlacement(this.overlayImpl?.consensus.current ?? null, this.now()),
        metrics: this.metrics,
        log: this.log,
        now: this.now,
      });
    }
    const notices = (this.noticesImpl = new RelayNotices(this));
    this.overlayImpl = new Overlay({
      identity,
      directory: this.directory,
      metrics: this.metrics,
      log: this.log,
      dial: (url, id) => notices.dialed(url, id, this.dial(url, id)),
      onLink: (link) => this.wireLink(link),
      degree: cfg.overlay_degree,
      maxInboundPerBlock: cfg.max_inbound_neighbours_per_block,
      gossipIntervalMs: cfg.timing.gossip_interval,
      authorities: this.authorities,
      now: this.now,
      onAuthorityMessage: (link, m) => this.authorityImpl?.onMessage(link, m),
      onConsensus: (c) => countConsensus(this.metrics, c),
      ...(cfg.bridge ? { bridge: { descriptor: () => this.ownDescriptor?.raw ?? null } } : {}),
      ...(cfg.sybil_admission ? {} : { admission: false }),
    });
    if (cfg.authority) this.startAuthority(identity);
    for (const line of cfg.bootstrap) {
      const b = parseBootstrapLine(line);
      if (!crypto().equal(b.identity, identity.publicKey)) this.overlayImpl.learnAddress(b.identity, b.url);
    }

    await this.listen();
    if (cfg.metrics) await this.listenMetrics();
    if (cfg.admin) {
      const a = await startAdminServer(cfg.admin, cfg.admin_token, { status: () => this.status() });
      this.adminServer = a.server;
      this.adminPort = a.port;
    }
    this.historyTimer = setInterval(() => this.sampleBandwidth(), 1000);
    (this.historyTimer as { unref?: () => void }).unref?.();
    this.checkStoreRoom(this.now()); // a relay that starts full never advertises its store
    this.publishDescriptor();
    this.overlayImpl.start();
    this.overlayImpl.maintain();
    this.testerImpl?.start();
    this.authorityImpl?.start();
    this.maintenanceTimer = setInterval(() => this.maintain(), cfg.timing.maintenance_interval);
    if (this.replicatorImpl) {
      this.repairTimer = setInterval(() => {
        this.replicatorImpl!.tick().then(
          () => this.contentImpl?.updateGauges(),
          (e: unknown) => this.log.warn({ err: e }, 'replication pass failed'),
        );
      }, cfg.timing.repair_interval);
    }
    this.state = 'running';
    this.log.info({ relay: shortFp(identity.fingerprint), address: this.address, bridge: cfg.bridge, probeResistant: this.probeResistant }, 'relay running');
    notices.start();
  }

  private linkOptions(): LinkOptions {
    const t = this.config.timing;
    return {
      timers: { handshakeTimeoutMs: t.handshake_timeout, keepaliveMs: t.link_keepalive, idleTimeoutMs: t.link_idle_timeout },
      now: this.now,
      admitFrame: (link) => this.admitFrame(link),
    };
  }

  /**
   * Dials a relay: as a relay (signing with the identity), or as a bridge, which other relays must see as a client.
   * Only public unicast addresses unless allow_private_addresses is set (specs/link.md §1.1): addresses come from
   * descriptors anyone can sign. Rejects with ERR_DIAL_REFUSED (counted) or ERR_UNREACHABLE.
   */
  private dial(url: string, id: Uint8Array): Promise<Link> {
    const setup = this.config.bridge ? { role: 'initiator' as const, responder: id } : { role: 'initiator' as const, responder: id, identity: this.identity };
    return openLink(this.socketFactory, url, setup, this.linkOptions()).catch((e: unknown) => {
      if (isAlliumError(e) && e.code === 'ERR_DIAL_REFUSED') this.metrics.drops.inc({ reason: 'dial_refused_address' });
      throw e;
    });
  }

  /** Rate limits on reading (relay/read-pacer.ts): per link, and relay-wide shared fairly. */
  private readPacer: ReadPacer | null = null;
  private admitFrame(link: Link): boolean {
    this.readPacer ??= new ReadPacer({
      bytesPerSecond: this.config.bandwidth_rate,
      burstBytes: this.config.bandwidth_burst,
      cellsPerSecondPerLink: this.config.cells_per_second_per_link,
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

  private wireLink(link: Link): void {
    this.links.add(link);
    const kind = link.peer?.role === LinkRole.RELAY ? 'relay' : 'client';
    this.metrics.links.inc({ kind });
    let lastIn = 0;
    let lastOut = 0;
    let lastCellsOut = 0;
    const account = (): void => {
      this.metrics.cellsOut.inc(link.stats.cellsOut - lastCellsOut);
      lastCellsOut = link.stats.cellsOut;
      this.metrics.bytesIn.inc(link.stats.bytesIn - lastIn);
      this.metrics.bytesOut.inc(link.stats.bytesOut - lastOut);
      this.bytesInTotal += link.stats.bytesIn - lastIn;
      this.bytesOutTotal += link.stats.bytesOut - lastOut;
      lastIn = link.stats.bytesIn;
      lastOut = link.stats.bytesOut;
    };
    link.on('link:cell', (cell) => {
      this.metrics.cellsIn.inc();
      this.reactorImpl!.onCell(link, cell);
    });
    link.on('link:close', (err) => {
      account();
      this.links.delete(link);
      this.metrics.links.dec({ kind });
      if (err) this.metrics.errors.inc({ code: err.code });
      this.reactorImpl!.onLinkClosed(link);
    });
    (link as Link & { account?: () => void }).account = account;
  }

  private async listen(): Promise<void> {
    const { host, port } = parseHostPort(this.config.listen, 'listen');
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: FRAME_LEN });
    // Anything that is not our WebSocket upgrade looks like a web server's miss.
    const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
      if (this.probeResistant) this.probeCost();
      sendMiss(res);
    };
    this.server = this.tls ? createTlsServer({ cert: this.tls.cert, key: this.tls.key }, onRequest) : createServer(onRequest);
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_e, socket) => socket.destroy());
    await listenOn(this.server, host, port, 'listen');
    const addr = this.server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : port;
  }

  private refuse(socket: Duplex, status: number, reason: string): void {
    this.metrics.handshakes.inc({ result: reason });
    const body = status === 404 ? NOT_FOUND_BODY : '';
    socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\nContent-Type: text/html\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }

  private newResponder(): LinkResponder {
    const psk = this.bridgeSecret;
    return new LinkResponder({
      identity: this.identity,
      replay: this.handshakeReplay,
      maxClockSkewMs: this.config.timing.clock_skew,
      ...(psk ? { psk } : {}),
    });
  }

  /**
   * The work of checking an upgrade token, spent on a request that carries none, so that a miss and a refused
   * upgrade cost the relay the same (one X25519 and one AEAD open) and answer in the same time.
   */
  private probeCost(): void {
    try {
      this.newResponder().open(crypto().random(MSG1_HEAD_LEN));
    } catch {
      /* expected: random bytes never open */
    }
  }

  /**
   * Admission of an upgrade (specs/link.md §2.6, §7). A probe-resistant relay answers every failure before the
   * token is proven — wrong path, no token, a token that does not open, a replay, a stale clock — with the plain 404
   * of any other miss. A public relay upgrades those (and then closes a link whose token failed), as before tokens.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const ip = req.socket.remoteAddress ?? 'unknown';
    const pr = this.probeResistant;
    const miss = (result: string): void => {
      this.metrics.handshakes.inc({ result });
      writeMiss(socket, req.method);
    };
    let url: URL | null = null;
    try {
      url = new URL(req.url ?? '/', 'http://relay.invalid');
    } catch {
      /* a request target that is not a path */
    }
    if (!url || url.pathname !== this.config.path) {
      if (pr) this.probeCost();
      return miss('wrong_path');
    }
    const token = url.searchParams.get(UPGRADE_TOKEN_PARAM);
    let responder: LinkResponder | null = null;
    let failure: AlliumError | null = null;
    if (token !== null) {
      const r = this.newResponder();
      try {
        r.open(decodeUpgradeToken(token));
        responder = r;
      } catch (e) {
        failure = isAlliumError(e) ? e : new ProtocolError('ERR_LINK_PROBE', 'upgrade token refused');
      }
    } else if (pr) {
      this.probeCost();
      failure = new ProtocolError('ERR_LINK_PROBE', 'no upgrade token');
    }
    if (failure && pr) return miss(failure.code);
    if (this.state !== 'running' && this.state !== 'starting') return pr ? miss('stopping') : this.refuse(socket, 503, 'stopping');
    // Past this point a probe-resistant relay knows the peer made a valid first message for it.
    const admitted = this.admission.admit(ip, responder?.claimedRole === LinkRole.RELAY, this.links);
    if (typeof admitted === 'string') return this.refuse(socket, 503, admitted);
    // One address, then its /24 or /48, then the relay: a flood from one place cannot spend everyone's budget.
    const over = this.addressBuckets.admit(ip);
    if (over) return this.refuse(socket, 503, over === 'ip' ? 'handshake_rate_ip' : 'handshake_rate_block');
    if (!this.handshakeBucket.tryTake(1)) return this.refuse(socket, 503, 'handshake_rate');
    if (responder) {
      try {
        responder.admit(this.now());
      } catch (e) {
        responder.discard();
        responder = null;
        failure = isAlliumError(e) ? e : new ProtocolError('ERR_LINK_PROBE', 'upgrade token refused');
        if (pr) return miss(failure.code);
      }
    }
    if (admitted.evict && !failure) {
      this.metrics.drops.inc({ reason: 'link_evicted_idle' });
      this.admission.evict(admitted.evict);
    }
    const release = this.admission.hold(ip);
    this.wss!.handleUpgrade(req, socket, head, (ws) => {
      if (failure) {
        // A public relay: the upgrade is done, the handshake is not; close as after a bad first message.
        this.metrics.handshakes.inc({ result: failure.code });
        ws.once('close', release);
        ws.close(1002);
        return;
      }
      const link = new Link(
        fromWs(ws as never, ip),
        {
          role: 'responder',
          identity: this.identity,
          replay: this.handshakeReplay,
          maxClockSkewMs: this.config.timing.clock_skew,
          ...(this.bridgeSecret ? { psk: this.bridgeSecret } : {}),
          ...(responder ? { accepted: responder } : {}),
        },
        this.linkOptions(),
      );
      link.once('link:close', (err) => {
        release();
        if (link.peer === null) this.metrics.handshakes.inc({ result: err ? err.code : 'closed' });
      });
      link.once('link:open', () => {
        this.metrics.handshakes.inc({ result: 'ok' });
        this.overlayImpl!.attach(link);
      });
    });
  }

  private async listenMetrics(): Promise<void> {
    const { host, port } = parseHostPort(this.config.metrics, 'metrics');
    this.metricsServer = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      for (const l of this.links) (l as Link & { account?: () => void }).account?.();
      this.metrics.text().then(
        (text) => res.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await listenOn(this.metricsServer, host, port, 'metrics');
    const a = this.metricsServer.address();
    this.metricsPort = typeof a === 'object' && a ? a.port : port;
  }

  /**
   * Signs and floods a fresh descriptor. A bridge signs its descriptor under the bridge context and keeps it to
   * itself: it answers its clients' bridge-get with it and never adds it to a directory (specs/directory.md §9).
   */
  publishDescriptor(): void {
    const cfg = this.config;
    const now = this.now();
    const d = signDescriptor(
      {
        id: this.identity.publicKey,
        onion: this.onionKeys!.current.keyPair.publicKey,
        addr: this.address,
        nick: cfg.nickname,
        contact: cfg.contact,
        family: cfg.family.map(parseFingerprint),
        bw: cfg.advertised_bandwidth ?? cfg.bandwidth_rate,
        exit: this.exitPolicyLines,
        caps: cfg.bridge ? [] : this.storeImpl && this.storeOpen ? ['store', 'intro', 'rendezvous'] : ['intro', 'rendezvous'],
        pub: now,
        exp: now + cfg.timing.descriptor_lifetime,
      },
      this.identity.secretKey,
      cfg.bridge ? 'bridge' : 'relay',
    );
    this.ownDescriptor = d;
    if (!cfg.bridge) this.overlay.publish(d);
  }

  /** Fingerprints of the configured directory authorities (this relay included when it is one). */
  private authoritySet: Set<string> | null = null;
  get authorities(): ReadonlySet<string> {
    this.authoritySet ??= new Set([...this.config.directory_authorities.map((f) => f.toLowerCase()), ...(this.config.authority ? [this.identity.fingerprint] : [])]);
    return this.authoritySet;
  }

  /**
   * Restores each onion key's replay filter and the link replay cache from their journals. When the journals may
   * have lost writes (or a key's is missing or damaged), retires every onion key and starts the link replay cache
   * cold instead, since this run cannot know what the last one accepted (specs/circuits.md §3.4.1, specs/link.md
   * §2.4). A data directory in which no relay ran before (`firstRun`: no onion-keys.json) has accepted nothing and
   * needs neither. Runs before any link is accepted; leaves a journal open for appending for every usable key and
   * for the link cache.
   */
  private restoreReplayState(identity: IdentityKey, firstRun: boolean): void {
    const now = this.now();
    const ring = this.onionKeys!;
    const journals = new ReplayJournals(this.config.data_dir, identity);
    this.journals = journals;
    const begun = journals.begin();
    let problem: string | null = begun.complete ? null : begun.reason;
    const replay = new ReplayFilter();
    for (const k of ring.usable) {
      if (problem) break;
      const tags = journals.readOnion(k.publicKey);
      if (!tags) problem = 'an onion key has no intact replay journal';
      else for (let o = 0; o < tags.length; o += 16) replay.checkAndRecord(k.publicKey, tags.subarray(o, o + 16));
    }
    const handshakes = this.newHandshakeReplay();
    if (!problem) {
      const entries = journals.readLink();
      if (!entries || !handshakes.restore(entries, now)) problem = 'the link replay journal is missing or damaged';
    }
    if (!problem) {
      this.replay = replay;
      this.handshakeReplay = handshakes;
      this.log.info('restored the replay state of the last run from its journals');
    } else {
      if (!firstRun) {
        ring.retireAll(now);
        saveOnionKeys(this.config.data_dir, ring);
        const coldUntil = now + this.config.timing.clock_skew;
        this.handshakeReplay.startCold(coldUntil);
        this.log.warn(
          { reason: problem, linkColdUntil: new Date(coldUntil).toISOString() },
          'replay state of the last run not recoverable: retired the onion keys (clients holding the old descriptor cannot build through this relay until they fetch the new one) and refusing link handshakes timestamped before the cold period ends',
        );
      }
    }
    journals.deleteOnionsExcept(ring.usable.map((k) => k.publicKey));
    for (const k of ring.usable) journals.openOnion(k.publicKey, problem !== null);
    journals.resetLink(this.handshakeReplay.entries(now));
  }

  /** Checks an onion's replay tag and journals it before the onion is answered (specs/circuits.md §3.4.1). */
  private readonly journaledReplay: ReplayGuard = {
    checkAndRecord: (onionKey, tag) => {
      if (this.replay.checkAndRecord(onionKey, tag)) return true;
      this.journals!.appendOnion(onionKey, tag);
      return false;
    },
  };
  /** As a directory authority: reachability tests, measurements and voting (relay/authority.ts). */
  private startAuthority(identity: IdentityKey): void {
    const a = createAuthority({
      config: this.config,
      identity,
      authorities: this.authorities,
      directory: this.directory,
      overlay: this.overlay,
      dial: (url, id) => this.dial(url, id),
      circuits: this.ownCircuits,
      now: this.now,
      log: this.log,
    });
    this.historyImpl = a.history;
    this.testerImpl = a.tester;
    this.authorityImpl = a.service;
  }

  private historySavedAt = 0;

  private rotateOnionKeys(): boolean {
    const ring = this.onionKeys!;
    const full = this.replay.isFull(ring.current.keyPair.publicKey);
    const { rotated, dropped } = ring.rotate(this.now(), full);
    // The new key's journal exists before the key can open an onion; a retired key's goes with it.
    if (rotated) this.journals?.openOnion(ring.current.keyPair.publicKey, true);
    for (const k of dropped) {
      this.replay.forget(k.publicKey);
      this.journals?.deleteOnion(k.publicKey);
    }
    if (rotated || dropped.length) saveOnionKeys(this.config.data_dir, ring);
    if (rotated) this.log.info('rotated onion key');
    return rotated;
  }

  private maintain(): void {
    if (this.state !== 'running') return;
    const now = this.now();
    try {
      const expired = this.directory.expire(now);
      if (expired.length) this.log.debug({ count: expired.length }, 'descriptors expired');
      this.metrics.directorySize.set(this.directory.size);
      const rotated = this.rotateOnionKeys();
      const j = this.journals;
      if (j && j.linkJournalRecords > 2 * this.handshakeReplay.size + 10_000) j.resetLink(this.handshakeReplay.entries(now));
      const d = this.ownDescriptor;
      const storeChanged = this.checkStoreRoom(now);
      if (rotated || storeChanged || !d || now - d.pub >= this.config.timing.descriptor_renew) this.publishDescriptor();
      this.overlay.maintain();
      this.overlay.consensus.expire(now);
      if (this.historyImpl && now - this.historySavedAt >= 60_000) {
        this.historySavedAt = now;
        this.historyImpl.save(now);
      }
      this.checkMemory();
      this.reactorImpl?.maintain(now);
      this.addressBuckets.sweep();
      this.reloadTls(now);
      for (const l of this.links) (l as Link & { account?: () => void }).account?.();
    } catch (e) {
      this.log.error({ err: e }, 'maintenance failed');
    }
  }

  /**
   * Whether the store takes new items (specs/content.md §7.3). It closes at once — and the relay republishes
   * without `store`, so placement moves to other relays and repair copies what it holds there — when the items it
   * must keep fill 98 % of the quota, when the disk has less than storage_min_free_disk free, or when a write
   * failed for want of space. It opens again once all of that has cleared with room to spare (below 90 % of the
   * quota, twice the minimum free on disk, no failed write) for a renewal interval (at most ten minutes), so a
   * relay at the edge does not flap. Returns true when it changed.
   */
  private checkStoreRoom(now: number): boolean {
    const store = this.storeImpl;
    if (!store) return false;
    const quota = store.quota;
    const room = store.roomLeft();
    let free = Number.POSITIVE_INFINITY;
    try {
      const fs = statfsSync(this.config.data_dir);
      free = Number(fs.bavail) * Number(fs.bsize);
    } catch {
      /* no statfs here: rely on the quota and on failed writes */
    }
    const minFree = this.config.storage_min_free_disk;
    const failedAt = store.lastWriteFailureAt;
    const full = room <= quota * 0.02 || free < minFree || (failedAt > 0 && now - failedAt < 60_000);
    const clear = room >= quota * 0.1 && free >= 2 * minFree && (failedAt === 0 || now - failedAt >= 60_000);
    if (this.storeOpen && full) {
      this.storeOpen = false;
      this.storeClosedAt = now;
      this.storeClearSince = 0;
      this.metrics.storeOpen.set(0);
      this.log.warn({ roomLeft: room, diskFree: Number.isFinite(free) ? free : null, writeFailed: failedAt > 0 }, 'store full: no longer advertising it; new items go to other relays');
      return true;
    }
    if (!this.storeOpen) {
      if (!clear) {
        this.storeClearSince = 0;
        return false;
      }
      this.storeClearSince ||= now;
      if (now - this.storeClearSince >= Math.min(this.config.timing.descriptor_renew, 10 * 60_000)) {
        this.storeOpen = true;
        this.metrics.storeOpen.set(1);
        this.log.info({ roomLeft: room, closedForMs: now - this.storeClosedAt }, 'store has room again: advertising it');
        return true;
      }
    }
    return false;
  }

  /**
   * Picks up renewed certificate files (an ACME client replaces them every few weeks) without a restart: checked at
   * most once a minute, by modification time.
   */
  private reloadTls(now: number, force = false): boolean {
    const t = this.tls;
    if (!t || !this.server || (!force && now - t.checked < 60_000)) return true;
    t.checked = now;
    try {
      const mtime = Math.max(statSync(this.config.tls_cert).mtimeMs, statSync(this.config.tls_key).mtimeMs);
      if (!force && mtime === t.mtime) return true;
      const next = loadTlsFiles(this.config.tls_cert, this.config.tls_key);
      (this.server as HttpsServer).setSecureContext({ cert: next.cert, key: next.key });
      this.tls = { ...next, checked: now };
      this.log.info('reloaded the TLS certificate');
      return true;
    } catch (e) {
      this.log.warn({ code: isAlliumError(e) ? e.code : 'unknown' }, 'TLS certificate files changed but could not be loaded; keeping the old ones');
      return false;
    }
  }

  /**
   * Applies a new configuration as far as a running relay can (SIGHUP; relay/reload.ts lists what takes effect and
   * what needs a restart). `next` must be validated (resolveRelayConfig).
   */
  reload(next: RelayConfig): ReloadReport {
    return applyReload(this.config, next, {
      log: this.log,
      // the pacer is made again from the applied config at the next frame read
      setBandwidth: () => (this.readPacer = null),
      reloadTls: () => this.reloadTls(this.now(), true),
      republish: () => {
        if (this.state === 'running') this.publishDescriptor();
      },
    });
  }


  /** The content store (null when storage_quota is 0). */
  get store(): BlockStore | null {
    return this.storeImpl;
  }

  get replicator(): Replicator | null {
    return this.replicatorImpl;
  }

  /**
   * The out-of-memory handler (relay/memory-guard.ts): while links and last-hop stream buffers together hold more
   * than max_queue_bytes, close the link or destroy the circuit holding the most.
   */
  private memoryGuard: MemoryGuard | null = null;

  private get guard(): MemoryGuard {
    return (this.memoryGuard ??= new MemoryGuard({
      maxBytes: this.config.max_queue_bytes,
      links: () => this.links,
      circuits: () => this.streamsImpl?.buffers() ?? [],
      destroy: (hop) => this.reactorImpl?.destroy(hop, DestroyReason.RESOURCE_LIMIT),
      metrics: this.metrics,
      log: this.log,
    }));
  }

  checkMemory(): void {
    this.guard.check();
  }

  /** Stops accepting, closes circuits cleanly, flushes and closes links, stops servers. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping' || this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.noticesImpl?.stop();
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    if (this.repairTimer) clearInterval(this.repairTimer);
    if (this.historyTimer) clearInterval(this.historyTimer);
    this.replicatorImpl?.stop();
    this.authorityImpl?.stop();
    this.testerImpl?.stop();
    this.historyImpl?.save(this.now());
    this.overlayImpl?.stop();
    this.reactorImpl?.closeAll(DestroyReason.HIBERNATING);
    this.exitImpl?.closeAll();
    for (const l of [...this.links]) l.close();
    await new Promise((r) => setTimeout(r, 20));
    for (const c of this.wss?.clients ?? []) c.terminate();
    await Promise.all([closeServer(this.server), closeServer(this.metricsServer), closeServer(this.adminServer)]);
    this.wss?.close();
    this.storeImpl?.close();
    // Every link and the listener are closed: nothing more can be accepted, so the journals are complete.
    try {
      this.journals?.close();
    } catch (e) {
      this.log.warn({ err: e }, 'could not close the replay journals cleanly');
    }
    this.state = 'stopped';
    this.log.info('relay stopped');
  }
}

/** Reads and checks a certificate and key (ERR_CONFIG naming the key when unreadable, not PEM, or not a pair). */
export function loadTlsFiles(certPath: string, keyPath: string): { cert: Buffer; key: Buffer; mtime: number; checked: number } {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certPath);
  } catch {
    throw new ConfigError(`tls_cert: cannot read ${certPath}`);
  }
  try {
    key = readFileSync(keyPath);
  } catch {
    throw new ConfigError(`tls_key: cannot read ${keyPath}`);
  }
  try {
    tlsContext({ cert, key });
  } catch (e) {
    throw new ConfigError(`tls_cert/tls_key: not a usable PEM certificate and matching key (${(e as Error).message})`);
  }
  return { cert, key, mtime: Math.max(statSync(certPath).mtimeMs, statSync(keyPath).mtimeMs), checked: 0 };
}

function closeServer(s: Server | HttpsServer | null): Promise<void> {
  if (!s) return Promise.resolve();
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections?.();
  });
}


