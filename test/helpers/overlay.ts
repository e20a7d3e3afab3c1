/**
 * An overlay (relay/overlay.ts) in this process, with real links (net/link.ts: handshake, frame encryption, CONTROL
 * fragmentation) over in-memory sockets (net/memory-socket.ts), a real directory store, real metrics, and an
 * injected clock for every time the overlay reads (descriptor checks, expiry). Peers are links the test holds the
 * other end of; dials go to a stub the test controls.
 */
import pino from 'pino';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { DirectoryStore } from '../../protocol/directory-store.js';
import type { ControlMessage } from '../../protocol/control.js';
import { HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { Link, type LinkOptions } from '../../net/link.js';
import { memorySocketPair } from '../../net/memory-socket.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { Overlay, type OverlayOptions } from '../../relay/overlay.js';

/** A signed relay descriptor for `identity` (a fresh one when absent), published at `pub`. */
export function descriptorFor(o: {
  identity?: IdentityKey;
  pub: number;
  lifetimeMs?: number;
  addr?: string;
  nick?: string;
  caps?: Descriptor['caps'];
}): Descriptor {
  const identity = o.identity ?? IdentityKey.fromSeed(crypto().random(32));
  return signDescriptor(
    {
      id: identity.publicKey,
      onion: crypto().x25519Keypair().publicKey,
      addr: o.addr ?? 'ws://198.51.100.1:9001/allium',
      nick: o.nick ?? 'peer',
      contact: '',
      family: [],
      bw: 1000,
      exit: ['reject *:*'],
      caps: o.caps ?? [],
      pub: o.pub,
      exp: o.pub + (o.lifetimeMs ?? 3_600_000),
    },
    identity.secretKey,
  );
}

/** Resolves with the next CONTROL message of type `t` on `link` (after every listener registered before it ran). */
export function nextControl<T extends ControlMessage['t']>(link: Link, t: T): Promise<Extract<ControlMessage, { t: T }>> {
  return new Promise((resolve) => {
    const off = link.on('link:control', (m) => {
      if (m.t !== t) return;
      off();
      resolve(m as Extract<ControlMessage, { t: T }>);
    });
  });
}

/** Resolves when `link` closes, with its error. */
export function closed(link: Link): Promise<string | null> {
  if (link.isClosed) return Promise.resolve('closed');
  return new Promise((resolve) => link.once('link:close', (e) => resolve(e ? e.code : null)));
}

/** Two links joined over memory sockets: `a` dials `b`, whose relay identity is `responder`. Resolves once both are open. */
export async function linkPair(o: {
  responder: IdentityKey;
  /** The dialer's relay identity; absent: it dials as a client. */
  initiator?: IdentityKey;
  /** The address `b` sees for `a`, and `a` for `b`. */
  initiatorAddress?: string | null;
  responderAddress?: string | null;
  options?: LinkOptions;
  initiatorOptions?: LinkOptions;
}): Promise<{ a: Link; b: Link }> {
  const [sa, sb] = memorySocketPair({ firstAddress: o.initiatorAddress ?? null, secondAddress: o.responderAddress ?? null });
  const b = new Link(sb, { role: 'responder', identity: o.responder, replay: new HandshakeReplayCache(600_000, 100_000), maxClockSkewMs: 600_000 }, o.options);
  const a = new Link(
    sa,
    { role: 'initiator', responder: o.responder.publicKey, ...(o.initiator ? { identity: o.initiator } : {}) },
    o.initiatorOptions ?? o.options,
  );
  await Promise.all([new Promise((r) => a.once('link:open', r)), new Promise((r) => b.once('link:open', r))]);
  return { a, b };
}

export interface DialCall {
  readonly url: string;
  readonly fingerprint: string;
  /** Settles the dial: with a link, or by failing it. */
  resolve(link: Link): void;
  reject(e: unknown): void;
}

export class OverlayHarness {
  readonly identity = IdentityKey.fromSeed(crypto().random(32));
  readonly directory = new DirectoryStore();
  readonly metrics = new RelayMetrics();
  /** The overlay's clock (ms). */
  now = 1_750_000_000_000;
  /** Every dial the overlay made, in order; each stays pending until the test settles it. */
  readonly dials: DialCall[] = [];
  readonly overlay: Overlay;
  private readonly links = new Set<Link>();

  constructor(options: Partial<OverlayOptions> = {}) {
    this.overlay = new Overlay({
      identity: this.identity,
      directory: this.directory,
      metrics: this.metrics,
      log: pino({ level: 'silent' }),
      dial: (url, id) =>
        new Promise<Link>((resolve, reject) => {
          this.dials.push({ url, fingerprint: Buffer.from(id).toString('hex'), resolve, reject });
        }),
      onLink: () => undefined,
      degree: 8,
      gossipIntervalMs: 3_600_000,
      now: () => this.now,
      // These tables are about what a neighbour's gossip fills; Sybil admission (which dials each new identity before
      // it enters the directory) is measured with real relays in test/integration/authority-network.test.ts.
      admission: false,
      ...options,
    });
  }

  /**
   * A peer that dialed this relay (an inbound link), attached to the overlay. `identity` makes it a relay link;
   * `address` is what the relay sees as its remote address. Returns the peer's end and the relay's end.
   */
  async inbound(o: { identity?: IdentityKey; address?: string | null; options?: LinkOptions } = {}): Promise<{ peer: Link; mine: Link }> {
    const { a, b } = await linkPair({
      responder: this.identity,
      ...(o.identity ? { initiator: o.identity } : {}),
      initiatorAddress: o.address ?? null,
      ...(o.options ? { options: o.options } : {}),
    });
    this.links.add(a).add(b);
    this.overlay.attach(b);
    return { peer: a, mine: b };
  }

  /** A link this relay dialed to `peer` (an outbound link), attached to the overlay. */
  async outbound(peer: IdentityKey, address: string | null = null): Promise<{ peer: Link; mine: Link }> {
    const { a, b } = await linkPair({ responder: peer, initiator: this.identity, responderAddress: address });
    this.links.add(a).add(b);
    this.overlay.attach(a);
    return { peer: b, mine: a };
  }

  /** Fails every dial still pending (ERR_UNREACHABLE at the overlay). */
  failDials(): void {
    for (const d of this.dials) d.reject(new Error('dial failed (test)'));
  }

  /** Stops the overlay and closes every link the harness made. */
  stop(): void {
    this.overlay.stop();
    for (const l of this.links) l.close();
    this.failDials();
  }
}
