/**
 * The relay daemon: the relay node (relay/node.ts, where every relay part is wired) in a Node shell. The shell owns
 * what needs an operating system — the data directory and its key, replay and state files, the HTTP(S) server and its
 * front door (relay/front-door.ts: the 404 of every miss, probe resistance, link slots and handshake rates), the
 * metrics and admin servers, the timers that run the node's maintenance and replication, TLS reloads and the
 * operator's notices — and nothing of the protocol. `start()` and `stop()` are idempotent.
 *
 * A bridge never publishes its descriptor: it hands it only to its own clients, and dials other relays as a client.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https';
import { existsSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { IdentityKey } from '../crypto/keys.js';
import { formatBootstrapLine } from '../protocol/bootstrap-line.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { DirectoryStore } from '../protocol/directory-store.js';
import { AlliumError } from '../protocol/errors.js';
import { HandshakeReplayCache } from '../protocol/link-handshake.js';
import { isPublicUnicast } from '../protocol/dial-policy.js';
import { createNodeSocketFactory } from '../net/ws-node.js';
import { listenOn } from '../net/listen.js';
import { BandwidthHistory } from './bandwidth-history.js';
import { BlockStore } from './block-store.js';
import { formatBridgeLine, loadOrCreateBridgeSecret } from './bridge-secret.js';
import type { CircuitReactor } from './circuits.js';
import { parseHostPort, resolveRelayConfig, type RelayConfig, type RelayConfigInput } from './config.js';
import type { ExitService } from './exit.js';
import { FrontDoor } from './front-door.js';
import { ensureDataDir, loadOrCreateIdentity, loadOrCreateOnionKeys, saveOnionKeys } from './keystore.js';
import { createLogger, shortFp } from './logger.js';
import { closeServer, startMetricsServer } from './metrics-server.js';
import { RelayMetrics } from './metrics.js';
import { createRelayNode, exitPolicyLines, type RelayNode } from './node.js';
import { RelayNotices } from './notices.js';
import type { Overlay } from './overlay.js';
import { preflightRelay } from './preflight.js';
import { applyReload, type ReloadReport } from './reload.js';
import type { Replicator } from './replication.js';
import type { ReplayJournals } from './replay-journal.js';
import { restoreReplayState } from './replay-state.js';
import { relayStatus } from './status.js';
import { loadTlsFiles, TlsReloader } from './tls-files.js';
import { ALLIUM_VERSION } from './version.js';

export { ALLIUM_VERSION };
export { formatBridgeLine, loadOrCreateBridgeSecret } from './bridge-secret.js';
export { loadTlsFiles } from './tls-files.js';

export interface RelayOptions {
  log?: Logger;
  now?: () => number;
}

export class Relay {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly metrics: RelayMetrics;
  readonly directory = new DirectoryStore();
  readonly startedAt: number;
  private readonly now: () => number;
  private nodeImpl: RelayNode | null = null;
  private journals: ReplayJournals | null = null;
  private bridgeSecret: Uint8Array | null = null;
  private frontDoor: FrontDoor | null = null;
  private tls: TlsReloader | null = null;
  private server: Server | HttpsServer | null = null;
  private metricsServer: { server: Server; port: number } | null = null;
  private adminServer: { server: Server; port: number } | null = null;
  private readonly bandwidth: BandwidthHistory;
  private blockStore: BlockStore | null = null;
  /** What the relay tells its operator: warnings, bootstrap failures, joined, reachability, heartbeat. */
  private notices: RelayNotices | null = null;
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private boundPort = 0;

  constructor(config: RelayConfigInput | RelayConfig, options: RelayOptions = {}) {
    this.config = resolveRelayConfig(config);
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.log = options.log ?? createLogger(this.config.log_level, 'allium-relay', undefined, this.config.log_format);
    // Node's process series (prom-client's default collectors: an event-loop delay monitor sampling every 10 ms, a GC
    // observer) only where they are served: a relay without `metrics` would wake for them ~100 times a second.
    this.metrics = new RelayMetrics({}, { processMetrics: !!this.config.metrics });
    this.bandwidth = new BandwidthHistory(() => {
      const a = this.nodeImpl?.accounting;
      a?.sweep();
      return a?.totals ?? { in: 0, out: 0 };
    }, this.now);
  }

  /** The relay node: every part, wired (relay/node.ts). */
  get node(): RelayNode {
    if (!this.nodeImpl) throw new AlliumError('ERR_INTERNAL', 'relay not started');
    return this.nodeImpl;
  }

  get identity(): IdentityKey {
    return this.node.identity;
  }

  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  get overlay(): Overlay {
    return this.node.overlay;
  }

  get circuits(): CircuitReactor {
    return this.node.reactor!;
  }

  /** The URL clients and relays dial, as published. */
  get address(): string {
    if (this.config.public_address) return this.config.public_address;
    const { host } = parseHostPort(this.config.listen, 'listen');
    const h = host.includes(':') ? `[${host}]` : host;
    return `${this.config.tls_cert ? 'wss' : 'ws'}://${h}:${this.boundPort}${this.config.path}`;
  }

  /**
   * "ws://host:port/path FINGERPRINT", the line other relays and clients use to bootstrap through this one; with
   * directory authorities configured, followed by "authorities=A1+A2+…" (specs/directory.md §6.7), so a client given
   * the line follows the same consensus.
   */
  get bootstrapLine(): string {
    return formatBootstrapLine(this.address, this.fingerprint, this.config.directory_authorities);
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
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.adminServer.port}/`;
  }

  get metricsAddress(): string | null {
    if (!this.metricsServer) return null;
    const host = parseHostPort(this.config.metrics, 'metrics').host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.metricsServer.port}/metrics`;
  }

  get descriptor(): Descriptor | null {
    return this.nodeImpl?.descriptor ?? null;
  }

  /** The exit policy as published: private ranges refused first unless exit_reject_private is off. */
  get exitPolicyLines(): string[] {
    return exitPolicyLines(this.config);
  }

  get exit(): ExitService | null {
    return this.nodeImpl?.exit ?? null;
  }

  /** Fingerprints of the configured directory authorities (this relay included when it is one). */
  get authorities(): ReadonlySet<string> {
    return this.node.authorities;
  }

  get linkCount(): number {
    return this.nodeImpl?.links.size ?? 0;
  }

  /** Everything the status page shows (also a handy API for tests and tools). */
  status(): Promise<Record<string, unknown>> {
    return relayStatus({ config: this.config, node: this.node, startedAt: this.startedAt, now: this.now(), history: this.bandwidth.samples });
  }

  /** Room for every handshake the rate limit admits within the replay window, so the cache never fills first. */
  private newHandshakeReplay(journals: ReplayJournals): HandshakeReplayCache {
    const windowMs = 2 * this.config.timing.clock_skew;
    const hps = this.config.handshakes_per_second;
    return new HandshakeReplayCache(windowMs, Math.ceil((hps * windowMs) / 1000) + 2 * hps + 1000, (tag, expires) => journals.appendLink(tag, expires));
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const cfg = this.config;
    await preflightRelay(cfg); // every listener and path checked before a key is made or the network joined
    const tls = cfg.tls_cert ? loadTlsFiles(cfg.tls_cert, cfg.tls_key) : null;
    ensureDataDir(cfg.data_dir);
    const { identity, created } = loadOrCreateIdentity(cfg.data_dir);
    if (cfg.bridge) this.bridgeSecret = loadOrCreateBridgeSecret(cfg.data_dir);
    const firstRun = !existsSync(join(cfg.data_dir, 'onion-keys.json'));
    const onionKeys = loadOrCreateOnionKeys(cfg.data_dir, this.now(), { lifetimeMs: cfg.timing.onion_key_lifetime, overlapMs: cfg.timing.onion_key_overlap });
    const restored = restoreReplayState({
      dataDir: cfg.data_dir,
      identity,
      ring: onionKeys,
      firstRun,
      now: this.now(),
      clockSkewMs: cfg.timing.clock_skew,
      newHandshakeReplay: (j) => this.newHandshakeReplay(j),
      log: this.log,
    });
    this.journals = restored.journals;
    if (cfg.storage_quota > 0 && !cfg.bridge)
      this.blockStore = new BlockStore(cfg.data_dir, cfg.storage_quota, cfg.store_sync, { mailboxV1Until: cfg.mailbox_v1_until });
    const node = (this.nodeImpl = createRelayNode(
      {
        identity,
        onionKeys,
        saveOnionKeys: (ring) => saveOnionKeys(cfg.data_dir, ring),
        replay: restored.replay,
        handshakeReplay: restored.handshakeReplay,
        journals: restored.journals,
        directory: this.directory,
        blockStore: this.blockStore,
        transport: { kind: 'sockets', socketFactory: createNodeSocketFactory(cfg.allow_private_addresses ? {} : { allowAddress: isPublicUnicast }) },
        now: this.now,
        log: this.log,
        metrics: this.metrics,
        address: () => this.address,
        bridgeSecret: this.bridgeSecret,
        diskFree: () => {
          const fs = statfsSync(cfg.data_dir);
          return Number(fs.bavail) * Number(fs.bsize);
        },
        stateDir: cfg.data_dir,
        watchDial: (url, id, dialing) => this.notices?.dialed(url, id, dialing) ?? dialing,
      },
      cfg,
    ));
    this.log.info({ relay: shortFp(identity.fingerprint), created }, created ? 'created a new relay identity' : 'loaded relay identity');
    const notices = (this.notices = new RelayNotices(this));
    this.frontDoor = new FrontDoor({
      config: cfg,
      metrics: this.metrics,
      now: this.now,
      node,
      accepting: () => this.state === 'starting' || this.state === 'running',
    });
    await this.listen(tls ? new TlsReloader(() => ({ cert: this.config.tls_cert, key: this.config.tls_key }), tls, this.log) : null);
    if (cfg.metrics) this.metricsServer = await startMetricsServer(cfg.metrics, this.metrics, () => node.accounting.sweep());
    // The status page's code loads only on a relay that serves it (most do not; docs/operator-guide.md).
    if (cfg.admin) this.adminServer = await (await import('./admin.js')).startAdminServer(cfg.admin, cfg.admin_token, { status: () => this.status() });
    this.every(1000, () => this.bandwidth.sample());
    node.start();
    this.every(cfg.timing.maintenance_interval, () => this.maintain());
    if (node.replicator) this.every(cfg.timing.repair_interval, () => void node.repair());
    this.state = 'running';
    this.log.info({ relay: shortFp(identity.fingerprint), address: this.address, bridge: cfg.bridge, probeResistant: this.probeResistant }, 'relay running');
    notices.start();
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    (t as { unref?: () => void }).unref?.();
    this.timers.push(t);
  }

  private async listen(tls: TlsReloader | null): Promise<void> {
    const { host, port } = parseHostPort(this.config.listen, 'listen');
    const door = this.frontDoor!;
    const server = tls ? createTlsServer({ cert: tls.current.cert, key: tls.current.key }, door.onRequest) : createServer(door.onRequest);
    server.on('upgrade', door.onUpgrade);
    server.on('clientError', (_e, socket) => socket.destroy());
    this.server = server;
    if (tls) tls.serve(server as HttpsServer);
    this.tls = tls;
    await listenOn(server, host, port, 'listen');
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : port;
  }

  /** The node's housekeeping (relay/node.ts maintain()), then the front door's and a TLS renewal check. */
  private maintain(): void {
    if (this.state !== 'running') return;
    const now = this.now();
    this.node.maintain(now);
    this.frontDoor?.sweep();
    this.tls?.check(now);
  }

  /** Signs and floods a fresh descriptor (a bridge only keeps it). */
  publishDescriptor(): void {
    this.node.publishDescriptor();
  }

  /**
   * Applies a new configuration as far as a running relay can (SIGHUP; relay/reload.ts lists what takes effect and
   * what needs a restart). `next` must be validated (resolveRelayConfig).
   */
  reload(next: RelayConfig): ReloadReport {
    return applyReload(this.config, next, {
      log: this.log,
      setBandwidth: () => this.nodeImpl?.bandwidthChanged(),
      reloadTls: () => this.tls?.check(this.now(), true) ?? true,
      republish: () => {
        if (this.state === 'running') this.publishDescriptor();
      },
    });
  }

  /** The content store (null when storage_quota is 0). */
  get store(): BlockStore | null {
    return this.blockStore;
  }

  get replicator(): Replicator | null {
    return this.nodeImpl?.replicator ?? null;
  }

  /**
   * The out-of-memory handler (relay/memory-guard.ts): while links and last-hop stream buffers together hold more
   * than max_queue_bytes, close the link or destroy the circuit holding the most.
   */
  checkMemory(): void {
    this.node.checkMemory();
  }

  /** Stops accepting, closes circuits cleanly, flushes and closes links, stops servers. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping' || this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.notices?.stop();
    for (const t of this.timers) clearInterval(t);
    this.nodeImpl?.stop();
    await new Promise((r) => setTimeout(r, 20));
    this.frontDoor?.close();
    await Promise.all([closeServer(this.server), closeServer(this.metricsServer?.server ?? null), closeServer(this.adminServer?.server ?? null)]);
    this.blockStore?.close();
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
