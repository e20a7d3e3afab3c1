/**
 * Relays inside the simulator. Each IS the shipped relay node — `createRelayNode` (relay/node.ts), the one function
 * that wires relay parts — given simulated components: the simulated network's transport, the virtual clock (which
 * stands in for the process's timers and Date), seeded randomness, plain-counter metrics and no files. What is left
 * here is what relay/relay.ts does as a Node shell: a host to listen on, the timers that call the node's `maintain`
 * and `repair`, and taking the relay down.
 *
 * - `FullRelay`: real links (net/link.ts: handshake, frame encryption, CONTROL fragmentation) over in-memory sockets
 *   and every part of the node: overlay, circuit reactor, streams, rendezvous, echo, an exit for an exit policy (whose
 *   destinations the simulated network does not reach), and for store relays the SQLite block store in a temporary
 *   directory, the content service and re-replication. Clients (client/client.ts) connect to it as to a real relay.
 * - `MessageRelay`: the same node over message-level links (sim/message-link.ts) and the directory store of
 *   sim/directory.ts, for networks of thousands of relays. Those links carry control messages, not cells, so the
 *   node has its circuit parts switched off; it gossips, publishes, renews and rotates as any relay.
 *
 * Both run the node's maintenance every `maintenance_interval`: descriptor expiry and renewal, onion-key rotation,
 * overlay links, and (full relays) idle circuits, stalled streams, the store's room and the out-of-memory check.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../crypto/index.js';
import { IdentityKey, OnionKeyRing } from '../crypto/keys.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { DirectoryStore } from '../protocol/directory-store.js';
import { HandshakeReplayCache, LinkRole, UPGRADE_TOKEN_PARAM } from '../protocol/link-handshake.js';
import { ReplayFilter } from '../protocol/replay-filter.js';
import type { Link } from '../net/link.js';
import { resolveRelayConfig, type RelayConfig, type RelayConfigInput } from '../relay/config.js';
import { BlockStore } from '../relay/block-store.js';
import type { ExitNetwork } from '../relay/exit.js';
import { createRelayNode, type RelayNode, type RelayNodeComponents } from '../relay/node.js';
import type { Overlay } from '../relay/overlay.js';
import type { CircuitReactor } from '../relay/circuits.js';
import type { ContentService } from '../relay/content.js';
import type { Replicator } from '../relay/replication.js';
import { SimDirectoryStore } from './directory.js';
import { SimMetrics } from './metrics.js';
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

/** The simulator's relay metrics (sim/metrics.ts: every member of relay/metrics.ts the relay's parts update). */
export class SimRelayMetrics extends SimMetrics {}

/** The simulated Internet ends at the relays: an exit's lookups find nothing and its connections go nowhere. */
const NO_DESTINATIONS: ExitNetwork = {
  resolve4: () => Promise.reject(new Error('no names outside the simulated network')),
  resolve6: () => Promise.reject(new Error('no names outside the simulated network')),
  connect: () => {
    const s = new Socket();
    process.nextTick(() => s.destroy(Object.assign(new Error('no route outside the simulated network'), { code: 'ENETUNREACH' })));
    return s;
  },
};

/** What the simulator keeps of every relay, whichever kind. */
export abstract class SimRelay {
  readonly identity: IdentityKey;
  readonly metrics = new SimRelayMetrics();
  readonly config: RelayConfig;
  readonly url: string;
  /** The relay node: every part, wired by createRelayNode. */
  abstract readonly node: RelayNode;
  state: 'new' | 'running' | 'down' = 'new';
  startedAt = 0;
  private readonly timers: ReturnType<typeof setInterval>[] = [];

  constructor(
    readonly world: World,
    readonly host: Host,
    readonly index: number,
    options: SimRelayOptions = {},
  ) {
    this.identity = IdentityKey.fromSeed(crypto().random(32));
    this.config = resolveRelayConfig({
      nickname: `sim${index}`,
      storage_quota: options.store ? 1024 ** 3 : 0,
      exit_policy: options.exit ? ['accept *:80', 'accept *:443', 'reject *:*'] : ['reject *:*'],
      advertised_bandwidth: Math.round(options.bandwidth ?? host.bandwidth),
      ...options.config,
    });
    this.url = `ws://${host.ip}:9001/allium`;
    host.identity = this.identity.publicKey;
    world.network.bind(this.url, host);
  }

  /** The components every simulated relay shares: keys, replay state, clock, randomness, metrics, no files. */
  protected components(directory: DirectoryStore, transport: RelayNodeComponents['transport']): RelayNodeComponents {
    const cfg = this.config;
    const world = this.world;
    return {
      identity: this.identity,
      onionKeys: OnionKeyRing.create(Date.now(), { lifetimeMs: cfg.timing.onion_key_lifetime, overlapMs: cfg.timing.onion_key_overlap }),
      replay: new ReplayFilter({ capacity: 100_000 }),
      handshakeReplay: new HandshakeReplayCache(2 * cfg.timing.clock_skew, 100_000),
      directory,
      transport,
      now: () => Date.now(),
      log: world.log,
      metrics: this.metrics.asRelayMetrics,
      random: world.rng.fork().random,
      address: () => this.url,
      // The same descriptor with its fingerprint as a flat string: the real one is built by concatenation, and
      // comparing such strings as map keys costs a thousand times per second at ten thousand relays.
      signed: (d) => {
        const flat: Descriptor = { ...d, fingerprint: Buffer.from(d.id).toString('hex') };
        world.verifyCache.add(flat);
        return flat;
      },
      exitNetwork: NO_DESTINATIONS,
    };
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

  get directory(): DirectoryStore {
    return this.node.directory;
  }

  get overlay(): Overlay {
    return this.node.overlay;
  }

  /** This relay's descriptor as last signed. */
  get descriptor(): Descriptor | null {
    return this.node.descriptor;
  }

  /** The exit policy as published (private ranges refused first). */
  get exitPolicyLines(): string[] {
    return this.node.exitPolicyLines;
  }

  /** Signs a fresh descriptor and hands it to the overlay to flood. */
  publishDescriptor(): Descriptor {
    return this.node.publishDescriptor();
  }

  /** Called with each descriptor this relay publishes, before it is flooded (experiments time their spread). */
  onPublish: ((d: Descriptor) => void) | null = null;

  /** Takes the node's events the simulator follows (each subclass, once its node exists). */
  protected follow(node: RelayNode): RelayNode {
    node.on('descriptor:published', (d) => this.onPublish?.(d));
    return node;
  }

  /** Signs this relay's descriptor as published at `now` (and keeps it as its own). */
  signDescriptor(now: number): Descriptor {
    return this.node.signDescriptor(now);
  }

  /** Starts the relay: learns its bootstrap relays, publishes, joins the overlay. */
  start(bootstrap: readonly SimRelay[] = []): void {
    if (this.state !== 'new') return;
    this.config.bootstrap = bootstrap.filter((b) => b !== this).map((b) => b.bootstrapLine);
    this.run(true);
  }

  /**
   * Starts a relay of a network that has already converged (its directory filled, its descriptor known to all):
   * joins the overlay without publishing.
   */
  startConverged(): void {
    if (this.state !== 'new') return;
    this.run(false);
  }

  private run(publish: boolean): void {
    this.state = 'running';
    this.startedAt = Date.now();
    this.node.start({ publish });
    const every = (ms: number, fn: () => void): void => void this.timers.push(setInterval(fn, ms));
    every(this.config.timing.maintenance_interval, () => this.node.maintain());
    if (this.node.replicator) every(this.config.timing.repair_interval, () => void this.node.repair());
  }

  /** One maintenance pass now (relay/node.ts maintain()). */
  maintain(): void {
    this.node.maintain();
  }

  /** Takes the relay down: `crash` (the process died; peers see resets) or `vanish` (the host left the network). */
  down(how: 'crash' | 'vanish' = 'crash'): void {
    if (this.state !== 'running') {
      this.state = 'down';
      return;
    }
    this.state = 'down';
    for (const t of this.timers) clearInterval(t);
    // The host's connections die first, so the node's shutdown (circuits closed, links closed) reaches no one.
    this.world.network.down(this.host, how);
    this.node.stop();
  }
}

/** A relay of the large-overlay tier: the node over message-level links, gossip only. */
export class MessageRelay extends SimRelay {
  readonly node: RelayNode;

  constructor(world: World, host: Host, index: number, options: SimRelayOptions = {}, onChange?: ConstructorParameters<typeof SimDirectoryStore>[1]) {
    super(world, host, index, options);
    const self = { role: LinkRole.RELAY, identity: this.identity.publicKey, version: 1 } as const;
    const dial = (url: string, id: Uint8Array): Promise<Link> =>
      world.network.dialMessages(host, url, id, self, messageSize as (m: unknown) => number) as unknown as Promise<Link>;
    this.node = this.follow(
      createRelayNode(this.components(new SimDirectoryStore(world.verifyCache, onChange), { kind: 'messages', dial, measure: messageSize }), this.config),
    );
    host.acceptMessages = (link) => {
      if (this.state === 'running') this.node.attachLink(link as unknown as Link);
      else link.close();
    };
  }

  override get directory(): SimDirectoryStore {
    return this.node.directory as SimDirectoryStore;
  }
}

/** A relay of the full tier: real links, circuits and content. */
export class FullRelay extends SimRelay {
  readonly node: RelayNode;
  private dataDir: string | null = null;

  constructor(world: World, host: Host, index: number, options: SimRelayOptions = {}) {
    super(world, host, index, options);
    let blockStore: BlockStore | null = null;
    if (options.store) {
      this.dataDir = mkdtempSync(join(tmpdir(), 'allium-sim-'));
      blockStore = new BlockStore(this.dataDir, this.config.storage_quota, 'normal');
    }
    this.node = this.follow(
      createRelayNode(
        { ...this.components(new DirectoryStore(), { kind: 'sockets', socketFactory: world.network.socketFactory(host) }), blockStore },
        this.config,
      ),
    );
    // The front door of a public relay: the upgrade token in the URL carries the first handshake message.
    host.acceptSocket = (socket, _ip, url) => {
      if (this.state !== 'running') return socket.close(1001);
      this.node.acceptLink(socket, new URL(url).searchParams.get(UPGRADE_TOKEN_PARAM));
    };
  }

  get reactor(): CircuitReactor {
    return this.node.reactor!;
  }

  get links(): ReadonlySet<Link> {
    return this.node.links;
  }

  get store(): BlockStore | null {
    return this.node.store;
  }

  get content(): ContentService | null {
    return this.node.content;
  }

  get replicator(): Replicator | null {
    return this.node.replicator;
  }

  /** FETCH requests (reads) this relay answered as a holder. */
  get fetchesServed(): number {
    return this.node.content?.fetched.reads ?? 0;
  }

  /** Head-only FETCH requests (other relays' repair checks) it answered. */
  get headFetchesServed(): number {
    return this.node.content?.fetched.heads ?? 0;
  }

  /** Closes the block store and deletes its files (end of a run). */
  dispose(): void {
    if (this.state === 'running') this.down('crash');
    this.node.store?.close();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = null;
  }
}
