/**
 * A relay's circuit, stream, content and exit components in this process, wired as relay/relay.ts wires them, with
 * clients on real links (handshake, frame encryption) over in-memory sockets and circuits built with real onions.
 * The reactor and its handlers take the rig's clock, which only `advance()` moves, so timeouts are tested without
 * sleeping. What a test attacks is the relay's side of each link (`relayLink`), which the rig exposes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto, type KeyPair } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { DestroyReason } from '../../protocol/cell.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { parseExitPolicy } from '../../protocol/exit-policy.js';
import { HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { buildCircuit, CircuitTable, type ClientCircuit } from '../../net/circuit.js';
import { Link } from '../../net/link.js';
import { memorySocketPair, type MemoryPathOptions } from '../../net/memory-socket.js';
import { BlockStore } from '../../relay/block-store.js';
import { CircuitReactor, type CircuitReactorOptions } from '../../relay/circuits.js';
import { ContentService, type ContentServiceOptions } from '../../relay/content.js';
import { ExitService, type ExitOptions } from '../../relay/exit.js';
import { silentLogger } from '../../relay/logger.js';
import { MemoryGuard } from '../../relay/memory-guard.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { RendezvousService } from '../../relay/rendezvous.js';
import { StreamsHandler, type StreamsHandlerOptions } from '../../relay/streams.js';

export interface RigOptions {
  /** Options of the circuit reactor beyond those the rig sets. */
  reactor?: Partial<CircuitReactorOptions>;
  /** Options of the streams handler (relay/streams.ts). */
  streams?: StreamsHandlerOptions;
  /** A content store (and its options, relay/content.ts). */
  store?: boolean | ContentServiceOptions;
  /** An exit with this policy and options (default: not an exit). */
  exit?: { policy: string[] } & Partial<Omit<ExitOptions, 'policy'>>;
  /** The relay an EXTEND routing slot reaches (any identity), over one relay link with this path. */
  next?: { rig: RelayRig; path?: MemoryPathOptions };
  /** An out-of-memory handler with this limit (relay/memory-guard.ts), told of cells sent into congested links. */
  maxQueueBytes?: number;
}

export interface RigConnection {
  /** The client's end of the link. */
  readonly client: Link;
  /** The relay's end, as the reactor sees it. */
  readonly relayLink: Link;
  readonly table: CircuitTable;
}

export class RelayRig {
  readonly identity = IdentityKey.generate();
  readonly onionKey: KeyPair = crypto().x25519Keypair();
  readonly metrics = new RelayMetrics();
  readonly reactor: CircuitReactor;
  readonly streams: StreamsHandler;
  readonly store: BlockStore | null = null;
  readonly content: ContentService | null = null;
  readonly exit: ExitService | null = null;
  readonly relayLinks = new Set<Link>();
  /** The rig's clock (ms): the reactor and the handlers read it; advance() moves it. */
  time = Date.now();
  /** The out-of-memory handler, when the rig has one. */
  readonly guard: MemoryGuard | null = null;
  /** Links this relay dialed (to `next`). */
  readonly dialed = new Set<Link>();
  private nextLink: Promise<Link> | null = null;
  private readonly dir: string | null = null;
  private readonly replay = new HandshakeReplayCache(120_000, 100_000);

  constructor(o: RigOptions = {}) {
    const now = (): number => this.time;
    this.reactor = new CircuitReactor({
      identity: this.identity,
      onionKeys: () => [this.onionKey],
      replay: new ReplayFilter({ capacity: 100_000 }),
      linkTo: () => (o.next ? (this.nextLink ??= this.dial(o.next.rig, o.next.path)) : Promise.reject(new Error('the rig relay extends nowhere'))),
      metrics: this.metrics,
      log: silentLogger(),
      now,
      onCongestedCells: (n: number) => this.guard?.noteCells(n),
      ...o.reactor,
    });
    if (o.maxQueueBytes) {
      this.guard = new MemoryGuard({
        maxBytes: o.maxQueueBytes,
        links: () => [...this.relayLinks, ...this.dialed],
        circuits: () => this.streams.buffers(),
        destroy: (hop) => this.reactor.destroy(hop, DestroyReason.RESOURCE_LIMIT),
        metrics: this.metrics,
        log: silentLogger(),
      });
    }
    this.streams = new StreamsHandler(this.reactor, this.metrics, o.streams);
    this.reactor.addHandler(this.streams);
    this.reactor.addHandler(new RendezvousService(this.reactor, this.metrics, now));
    if (o.store) {
      this.dir = mkdtempSync(join(tmpdir(), 'allium-rig-'));
      this.store = new BlockStore(this.dir, 64 * 1024 * 1024, 'normal');
      this.content = new ContentService(this.store, this.metrics, silentLogger(), undefined, typeof o.store === 'object' ? o.store : {});
      this.streams.register(RelayCommand.STORE, this.content.onStore);
      this.streams.register(RelayCommand.FETCH, this.content.onFetch);
    }
    if (o.exit) {
      const { policy, ...rest } = o.exit;
      this.exit = new ExitService({ metrics: this.metrics, log: silentLogger(), now, ...rest, policy: parseExitPolicy(policy) });
      this.streams.register(RelayCommand.BEGIN, this.exit.open);
      this.streams.attach(this.exit);
    }
  }

  /** This relay as a path entry (buildCircuit reads only the identity and the onion key). */
  get descriptor(): Descriptor {
    return { id: this.identity.publicKey, onion: this.onionKey.publicKey } as unknown as Descriptor;
  }

  /**
   * Opens a link from `address` (the relay sees that remote address): a client link, or a relay link (the initiator
   * proves an identity). `toRelay` and `toClient` shape the two directions of the in-memory path.
   */
  async connect(
    o: { address?: string | null; role?: 'client' | 'relay'; toRelay?: MemoryPathOptions; toClient?: MemoryPathOptions } = {},
  ): Promise<RigConnection> {
    const [a, b] = memorySocketPair({
      forward: o.toRelay ?? {},
      backward: o.toClient ?? o.toRelay ?? {},
      firstAddress: o.address === undefined ? '198.51.100.7' : o.address,
    });
    const relayLink = new Link(b, { role: 'responder', identity: this.identity, replay: this.replay, maxClockSkewMs: 60_000 });
    const client = new Link(
      a,
      o.role === 'relay'
        ? { role: 'initiator', responder: this.identity.publicKey, identity: IdentityKey.generate() }
        : { role: 'initiator', responder: this.identity.publicKey },
    );
    relayLink.on('link:cell', (cell) => this.reactor.onCell(relayLink, cell));
    relayLink.on('link:close', () => {
      this.relayLinks.delete(relayLink);
      this.reactor.onLinkClosed(relayLink);
    });
    this.relayLinks.add(relayLink);
    await Promise.all(
      [client, relayLink].map(
        (l) =>
          new Promise<void>((resolve, reject) => {
            l.once('link:open', () => resolve());
            l.once('link:close', (e) => reject(e ?? new Error('link closed')));
          }),
      ),
    );
    return { client, relayLink, table: new CircuitTable() };
  }

  /** A relay link from this relay to `other`, its cells handled by this relay's reactor. */
  private async dial(other: RelayRig, path: MemoryPathOptions = {}): Promise<Link> {
    const c = await other.connect({ role: 'relay', address: '192.0.2.1', toRelay: path, toClient: {} });
    c.client.on('link:cell', (cell) => this.reactor.onCell(c.client, cell));
    c.client.on('link:close', () => {
      this.dialed.delete(c.client);
      this.reactor.onLinkClosed(c.client);
    });
    this.dialed.add(c.client);
    return c.client;
  }

  /** The link this relay dialed to its `next` relay (after a circuit went there). */
  get linkToNext(): Link {
    const l = [...this.dialed][0];
    if (!l) throw new Error('no link to the next relay yet');
    return l;
  }

  /** A circuit through this relay and then `next` (the rig given as `next`). */
  twoHopCircuit(c: RigConnection, next: RelayRig, timeoutMs = 10_000): Promise<ClientCircuit> {
    return buildCircuit(c.client, c.table, [this.descriptor, next.descriptor], { timeoutMs });
  }

  /** A one-hop circuit to this relay over `c`; rejects when the relay refuses it. */
  circuit(c: RigConnection, timeoutMs = 10_000): Promise<ClientCircuit> {
    return buildCircuit(c.client, c.table, [this.descriptor], { timeoutMs });
  }

  /** Moves the clock and runs the reactor's maintenance (idle circuits, stalled streams, idle exit connections). */
  advance(ms: number): void {
    this.time += ms;
    this.reactor.maintain(this.time);
  }

  /** The number of drops counted for `reason`. */
  async drops(reason: string): Promise<number> {
    const v = await this.metrics.drops.get();
    return v.values.filter((x) => x.labels['reason'] === reason).reduce((n, x) => n + x.value, 0);
  }

  close(): void {
    this.reactor.closeAll(DestroyReason.HIBERNATING);
    this.exit?.closeAll();
    for (const l of [...this.relayLinks, ...this.dialed]) l.close();
    this.store?.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Waits until `cond` holds, checking every few milliseconds (for events that take a few turns of the loop). */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
