/**
 * Private messaging and hidden services (docs/developer-guide.md §Messaging; specs/messaging.md, specs/rendezvous.md):
 * an identity listens at an address; anyone with the address reaches it through an introduction point and a
 * rendezvous point, each over its own circuit, so neither side learns where the other is and no relay sees both
 * ends. When the recipient is not listening, a message is sealed to it and left in its mailbox in the overlay, and
 * the recipient collects it when it listens again.
 *
 *   const alice = new Messenger(client, createIdentity());
 *   for await (const m of alice.listen()) console.log(m.from, m.data, m.offline);
 *   const r = await bob.send(alice.address, bytes);  // r.status: 'delivered' (live session) or 'stored-offline'
 *   const stream = await bob.connect(address, 80);     // a hidden TCP service
 *
 * Client authorisation: an endpoint listening with `authorizedClients` (X25519 public keys from
 * createClientAuthKey()) publishes a descriptor only those clients can read; others get ERR_CLIENT_AUTH.
 */
import { connect as tcpConnect } from 'node:net';
import { crypto, type KeyPair } from '../crypto/index.js';
import { fingerprintOf } from '../crypto/keys.js';
import { createIdentity, formatAddress, parseAddress, type Identity } from '../protocol/address.js';
import { concatBytes, toHex } from '../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes } from '../protocol/cbor.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { MAX_AUTH_CLIENTS } from '../protocol/descriptor-auth.js';
import { createEndpointDescriptor, openEndpointDescriptor, type IntroPoint } from '../protocol/endpoint-descriptor.js';
import { AbortedError, AlliumError, CryptoError, isAlliumError, throwIfAborted, TimeoutError } from '../protocol/errors.js';
import { descriptorLocator, periodAt } from '../protocol/key-blinding.js';
import { initiatorHandshake, responderHandshake } from '../protocol/message-handshake.js';
import { ntorClientFinish, ntorServer } from '../protocol/ntor.js';
import { pad, unpad } from '../protocol/padding.js';
import { MAX_MESSAGE_BYTES, RATCHET_OVERHEAD, type RatchetSession } from '../protocol/ratchet.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { COOKIE_LEN, decodeRv, encodeRv, introSignedMessage } from '../protocol/rendezvous-messages.js';
import { decodeBegin, encodeBegin, EndReason } from '../protocol/stream-messages.js';
import { Emitter } from '../net/emitter.js';
import type { ClientCircuit } from '../net/circuit.js';
import { pipeSocket } from '../net/pipe-socket.js';
import type { MuxStream } from '../net/stream-mux.js';
import { z } from 'zod';
import type { AlliumClient } from './client.js';
import { ContentClient } from './content.js';
import { MailboxCollector, MailboxSender } from './mailbox.js';

export { createIdentity, formatAddress, parseAddress, type Identity };
export { MAX_MAILBOX_MESSAGE_BYTES, MAX_MAILBOX_TTL_MS } from '../protocol/mailbox.js';

const MESSAGES = 'allium:messages';
const SERVICE = 'allium:service';
const DESCRIPTOR_LIFETIME_MS = 3 * 3600_000;
const REPLY_TIMEOUT_MS = 30_000;
/** After a send found the recipient offline, further sends go straight to its mailbox for this long. */
const OFFLINE_RECHECK_MS = 15_000;
/** An introduction point is replaced after this long (its replay set then starts afresh under a new key). */
const DEFAULT_INTRO_LIFETIME_MS = 18 * 3600_000;
/** … or after this many introductions, which bounds the replay set's memory. */
const DEFAULT_MAX_INTRODUCTIONS = 16_384;
const DEFAULT_POLL_MS = 60_000;
/** A replaced introduction point stays up this long after the new descriptor is out, for clients holding the old. */
const RETIRED_INTRO_GRACE_MS = 60_000;

const introPayloadSchema = z.strictObject({ rp: zBytes(32), c: zBytes(COOKIE_LEN), x: zBytes(32), hs: zBytes(81) });

/** An X25519 key pair for client authorisation: give the public half to the endpoint, keep the pair. */
export type ClientAuthKey = KeyPair;

/** A new client-authorisation key pair. */
export function createClientAuthKey(): ClientAuthKey {
  return crypto().x25519Keypair();
}

export interface IncomingMessage {
  /** The sender's address (authenticated by the session handshake, or by its signature for offline messages). */
  readonly from: string;
  readonly data: Uint8Array;
  /**
   * The sender's message number: in a live conversation 0, 1, 2, …; for an offline message, the sender's count of
   * offline messages to us (it restarts with the sender's process; `sentAt` orders across restarts).
   */
  readonly seq: number;
  /** True for a message collected from the mailbox (the sender found us not listening). */
  readonly offline: boolean;
  /** Offline messages: the message id (hex), the same for every copy, and the sender's clock when it sent. */
  readonly id?: string;
  readonly sentAt?: number;
}

/** What happened to a message given to send(). */
export type SendReceipt =
  | {
      /** Handed to a live end-to-end session with the recipient's endpoint (no read receipt is implied). */
      readonly status: 'delivered';
      readonly to: string;
      readonly seq: number;
    }
  | {
      /** Sealed to the recipient and left in its mailbox, to be collected when it listens. */
      readonly status: 'stored-offline';
      readonly to: string;
      readonly id: string;
      /** When relays drop it if it has not been collected (Unix ms). */
      readonly expires: number;
    };

export interface SendOptions {
  signal?: AbortSignal;
  /** Fail with ERR_TIMEOUT after this long. */
  timeoutMs?: number;
  /**
   * 'auto' (default): a live session if the endpoint can be reached, else the mailbox; 'never': live only
   * (ERR_UNREACHABLE when not listening); 'only': straight to the mailbox.
   */
  offline?: 'auto' | 'never' | 'only';
  /** Life of an offline message (default and maximum MAX_MAILBOX_TTL_MS, 7 days). */
  ttlMs?: number;
  /** Our key for an endpoint that requires client authorisation (default: MessengerOptions.clientAuth). */
  clientAuth?: ClientAuthKey;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  clientAuth?: ClientAuthKey;
}

export interface ListenOptions {
  signal?: AbortSignal;
  /** Only these X25519 public keys may read our descriptor (replaces MessengerOptions.authorizedClients). */
  authorizedClients?: readonly Uint8Array[];
}

export interface MessengerOptions {
  /** Introduction points to keep (default 3). */
  introPoints?: number;
  /** Re-publish the descriptor this often (default 10 minutes) and whenever an introduction point is lost. */
  republishMs?: number;
  /** Replace an introduction point after this long (default 18 h) … */
  introPointLifetimeMs?: number;
  /** … or after this many introductions through it (default 16384). */
  maxIntroductionsPerPoint?: number;
  /** Hidden TCP services: port → local host:port to connect to. */
  services?: Record<number, { host: string; port: number }>;
  /** Client authorisation: only these X25519 public keys can find the endpoint (at most 32). */
  authorizedClients?: readonly Uint8Array[];
  /** Our client-authorisation key for endpoints that require one. */
  clientAuth?: ClientAuthKey;
  /** Offline mailboxes. */
  offline?: {
    /** Collect offline messages while listening (default true). */
    collect?: boolean;
    /** Look for new offline messages this often while listening (default 60 s). */
    pollMs?: number;
    /** Default life of messages we leave offline (default 7 days). */
    ttlMs?: number;
  };
}

export type MessengerEvents = {
  'message:received': [IncomingMessage];
  /** A message was handed to a live session. */
  'message:delivered': [Extract<SendReceipt, { status: 'delivered' }>];
  /** A message was left in the recipient's mailbox. */
  'message:stored-offline': [Extract<SendReceipt, { status: 'stored-offline' }>];
  /** send() failed (it also throws the error). */
  'message:failed': [{ to: string; error: AlliumError }];
  /** A mailbox collection pass finished, with the number of messages it delivered. */
  'mailbox:checked': [number];
  'endpoint:published': [number];
  'endpoint:error': [AlliumError];
};

interface IntroState {
  relay: Descriptor;
  circuit: ClientCircuit;
  auth: KeyPair;
  enc: KeyPair;
  /** Replay tags of introductions accepted under `enc`: it dies with the introduction point and its key. */
  seen: Set<string>;
  established: number;
  retired: boolean;
}

/** A combined signal for `signal` and `timeoutMs`; `wrap` turns the timeout's abort into ERR_TIMEOUT. */
function deadline(signal: AbortSignal | undefined, timeoutMs: number | undefined, what: string): { signal: AbortSignal | undefined; wrap: (e: unknown) => unknown; clear: () => void } {
  if (timeoutMs === undefined) return { signal, wrap: (e) => e, clear: () => undefined };
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onAbort = (): void => ctl.abort();
  if (signal?.aborted) ctl.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    wrap: (e) => (timedOut && !signal?.aborted && isAlliumError(e) && e.kind === 'aborted' ? new TimeoutError(`${what} timed out after ${timeoutMs} ms`) : e),
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

function asAlliumError(e: unknown, what: string): AlliumError {
  return isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', what, { cause: e });
}

/** A conversation: a rendezvous circuit with the peer as a virtual hop, a message stream and a ratchet session. */
class Conversation {
  private buf: Uint8Array = new Uint8Array(0);
  closed = false;

  constructor(
    readonly peer: string,
    readonly circuit: ClientCircuit,
    readonly stream: MuxStream,
    readonly session: RatchetSession,
    onMessage: (m: IncomingMessage) => void,
    onError: (e: AlliumError) => void,
  ) {
    stream.on('stream:data', (d) => {
      stream.consumed(1);
      this.buf = concatBytes(this.buf, d);
      while (this.buf.length >= 4) {
        const len = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(0);
        if (len > MAX_MESSAGE_BYTES) {
          this.closed = true;
          this.buf = new Uint8Array(0);
          stream.end(EndReason.MISC);
          return onError(new AlliumError('ERR_LIMIT', 'message frame larger than MAX_MESSAGE_BYTES: conversation closed'));
        }
        if (this.buf.length < 4 + len) break;
        const frame = this.buf.slice(4, 4 + len);
        this.buf = this.buf.slice(4 + len);
        try {
          const { plaintext, seq } = session.decrypt(frame);
          onMessage({ from: peer, data: unpad(plaintext, RATCHET_OVERHEAD), seq, offline: false });
        } catch (e) {
          onError(asAlliumError(e, 'message handling failed'));
        }
      }
    });
    stream.on('stream:end', () => (this.closed = true));
    circuit.once('circuit:close', () => (this.closed = true));
  }

  send(data: Uint8Array): number {
    if (this.closed) throw new AlliumError('ERR_LINK_CLOSED', 'conversation closed');
    const { message, seq } = this.session.encrypt(pad(data, RATCHET_OVERHEAD));
    const frame = new Uint8Array(4 + message.length);
    new DataView(frame.buffer).setUint32(0, message.length);
    frame.set(message, 4);
    this.stream.write(frame);
    return seq;
  }
}

export class Messenger extends Emitter<MessengerEvents> {
  readonly address: string;
  /** Publishes our descriptor (its own circuits). */
  private readonly content: ContentClient;
  /** Looks up other endpoints' descriptors (other circuits, so holders cannot link our lookups to our endpoint). */
  private readonly lookups: ContentClient;
  private readonly outbox: MailboxSender;
  private readonly inbox: MailboxCollector;
  private readonly intros = new Map<string, IntroState>();
  private readonly conversations = new Map<string, Promise<Conversation>>();
  private readonly offlineUntil = new Map<string, number>();
  private authorizedClients: readonly Uint8Array[];
  private revision = 0;
  private listening: Promise<void> | null = null;
  private republishTimer: ReturnType<typeof setInterval> | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private maintaining: Promise<void> | null = null;
  private maintainAgain = false;
  private closed = false;
  private readonly closers = new Set<() => void>();
  private readonly retiring = new Set<IntroState>();

  constructor(
    private readonly client: AlliumClient,
    readonly identity: Identity = createIdentity(),
    private readonly options: MessengerOptions = {},
  ) {
    super();
    this.address = formatAddress(identity.publicKey);
    this.content = new ContentClient(client);
    this.lookups = new ContentClient(client);
    this.outbox = new MailboxSender(client, identity);
    this.inbox = new MailboxCollector(client, identity);
    this.authorizedClients = checkClients(options.authorizedClients ?? []);
    client.useAddressConnector((address, port, signal) => this.connect(address, port, signal ? { signal } : {}));
  }

  // ------------------------------------------------------------------ listening (the endpoint side)

  /**
   * Starts listening: keeps introduction points and a published descriptor, collects offline messages, and yields
   * incoming messages (live and offline) until close() or the signal aborts.
   */
  async *listen(options: ListenOptions = {}): AsyncGenerator<IncomingMessage> {
    const queue: IncomingMessage[] = [];
    let wake: (() => void) | null = null;
    const off = this.on('message:received', (m) => {
      queue.push(m);
      wake?.();
    });
    const stop = (): void => wake?.();
    options.signal?.addEventListener('abort', stop);
    this.closers.add(stop);
    try {
      await this.startListening(options);
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (this.closed || options.signal?.aborted) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      off();
      options.signal?.removeEventListener('abort', stop);
      this.closers.delete(stop);
    }
  }

  /**
   * Establishes introduction points, publishes the descriptor and starts collecting offline messages
   * (idempotent). Throws ERR_UNREACHABLE when no introduction point can be established, ERR_ABORTED.
   */
  startListening(options: ListenOptions | AbortSignal = {}): Promise<void> {
    const o: ListenOptions = options instanceof AbortSignal ? { signal: options } : options;
    if (this.closed) return Promise.reject(new AbortedError('messenger closed'));
    if (o.authorizedClients) this.authorizedClients = checkClients(o.authorizedClients);
    this.listening ??= (async () => {
      await this.ensureIntroPoints(o.signal);
      await this.publish(o.signal);
      this.republishTimer = setInterval(() => void this.maintain(), this.options.republishMs ?? 600_000);
      (this.republishTimer as { unref?: () => void }).unref?.();
      if (this.options.offline?.collect !== false) {
        this.pollTimer = setInterval(() => void this.checkMailbox().catch(() => undefined), this.options.offline?.pollMs ?? DEFAULT_POLL_MS);
        (this.pollTimer as { unref?: () => void }).unref?.();
        void this.checkMailbox().catch(() => undefined);
      }
    })();
    this.listening.catch(() => (this.listening = null));
    return this.listening;
  }

  /**
   * Collects offline messages now (listening does this on start and every `offline.pollMs`). They arrive as
   * 'message:received' events with `offline: true`. Resolves with the number delivered.
   */
  async checkMailbox(options: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.closed) throw new AbortedError('messenger closed');
    try {
      const n = await this.inbox.collect(
        (m) => {
          if (this.closed) return;
          this.emit('message:received', { from: formatAddress(m.from), data: m.data, seq: m.n, offline: true, id: m.id, sentAt: m.t });
        },
        (e) => this.emit('endpoint:error', e),
        options.signal,
      );
      this.emit('mailbox:checked', n);
      return n;
    } catch (e) {
      const err = asAlliumError(e, 'mailbox collection failed');
      if (err.code !== 'ERR_ABORTED') this.emit('endpoint:error', err);
      throw err;
    }
  }

  /** Changes who may read our descriptor, and republishes it when listening. */
  async setAuthorizedClients(keys: readonly Uint8Array[], options: { signal?: AbortSignal } = {}): Promise<void> {
    this.authorizedClients = checkClients(keys);
    if (this.listening) {
      await this.listening;
      await this.publish(options.signal);
    }
  }

  private async ensureIntroPoints(signal?: AbortSignal): Promise<void> {
    const want = this.options.introPoints ?? 3;
    const candidates = this.client.directory.all().filter((d) => d.caps.includes('intro') && !this.intros.has(d.fingerprint));
    while (this.intros.size < want && candidates.length) {
      throwIfAborted(signal);
      const relay = candidates.splice(Math.floor(Math.random() * candidates.length), 1)[0]!;
      try {
        await this.establishIntro(relay, signal);
      } catch (e) {
        if (e instanceof AbortedError) throw e;
      }
    }
    if (this.intros.size === 0) throw new AlliumError('ERR_UNREACHABLE', 'no introduction point could be established');
  }

  private async establishIntro(relay: Descriptor, signal?: AbortSignal): Promise<void> {
    const opts: { last: Descriptor; exitPort: null; signal?: AbortSignal } = { last: relay, exitPort: null };
    if (signal) opts.signal = signal;
    const circuit = await this.client.newCircuit(opts);
    const auth = crypto().ed25519Keypair();
    const enc = crypto().x25519Keypair();
    const binding = circuit.bindings[circuit.bindings.length - 1]!;
    const ack = circuit.waitFor(RelayCommand.INTRO_ESTABLISHED, REPLY_TIMEOUT_MS, signal);
    circuit.send({ command: RelayCommand.ESTABLISH_INTRO, streamId: 0, data: encodeRv('establishIntro', { k: auth.publicKey, s: crypto().sign(introSignedMessage(binding), auth.secretKey) }) });
    try {
      await ack;
    } catch (e) {
      circuit.close();
      throw e;
    }
    if (this.closed) {
      circuit.close();
      throw new AbortedError('messenger closed');
    }
    const state: IntroState = { relay, circuit, auth, enc, seen: new Set(), established: Date.now(), retired: false };
    this.intros.set(relay.fingerprint, state);
    circuit.on('circuit:message', (_hop, m) => {
      if (m.command === RelayCommand.INTRODUCE2) void this.onIntroduce(state, m);
    });
    circuit.once('circuit:close', () => {
      if (this.intros.get(relay.fingerprint) !== state) return; // retired and replaced: nothing to do
      this.intros.delete(relay.fingerprint);
      if (!this.closed) void this.maintain(); // an introduction point vanished: replace it and republish
    });
  }

  /** Takes out introduction points that are too old or have seen too many introductions (closed after republishing). */
  private retireIntroPoints(): IntroState[] {
    const now = Date.now();
    const lifetime = this.options.introPointLifetimeMs ?? DEFAULT_INTRO_LIFETIME_MS;
    const max = this.options.maxIntroductionsPerPoint ?? DEFAULT_MAX_INTRODUCTIONS;
    const out: IntroState[] = [];
    for (const [fp, s] of this.intros) {
      if (now - s.established < lifetime && s.seen.size < max) continue;
      s.retired = true;
      this.intros.delete(fp);
      out.push(s);
    }
    return out;
  }

  /** Replaces lost or worn introduction points and republishes; runs one at a time, again if asked meanwhile. */
  private maintain(): Promise<void> {
    if (this.maintaining) {
      this.maintainAgain = true;
      return this.maintaining;
    }
    this.maintaining = (async () => {
      do {
        this.maintainAgain = false;
        if (this.closed) return;
        const retired = this.retireIntroPoints();
        try {
          await this.ensureIntroPoints();
          await this.publish();
        } catch (e) {
          if (!this.closed) this.emit('endpoint:error', asAlliumError(e, 'republish failed'));
        } finally {
          for (const r of retired) this.closeLater(r);
        }
      } while (this.maintainAgain && !this.closed);
    })().finally(() => (this.maintaining = null));
    return this.maintaining;
  }

  /** Closes a replaced introduction point after a grace period (clients may still hold the previous descriptor). */
  private closeLater(r: IntroState): void {
    this.retiring.add(r);
    const timer = setTimeout(() => {
      this.retiring.delete(r);
      r.circuit.close();
    }, RETIRED_INTRO_GRACE_MS);
    (timer as { unref?: () => void }).unref?.();
    r.circuit.once('circuit:close', () => {
      clearTimeout(timer);
      this.retiring.delete(r);
    });
  }

  private async publish(signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const period = periodAt(Math.floor(now / 1000));
    const body = {
      v: 1 as const,
      intro: [...this.intros.values()].map((i) => ({ relay: i.relay.id, auth: i.auth.publicKey, enc: i.enc.publicKey })),
      created: now,
      expires: now + DESCRIPTOR_LIFETIME_MS,
    };
    if (body.intro.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no introduction point to publish');
    this.revision = Math.max(this.revision + 1, now);
    // The current period and the next, so clients whose clocks cross the boundary first still find us.
    for (const p of [period, period + 1]) {
      const d = createEndpointDescriptor(this.identity, p, body, { revision: this.revision, clients: this.authorizedClients });
      await this.content.storeEverywhere('endpoint', d.locator, d.bytes, signal);
    }
    this.emit('endpoint:published', this.revision);
  }

  /** INTRODUCE2: open the introduction, meet the initiator at its rendezvous point, start the session. */
  private async onIntroduce(ip: IntroState, m: RelayMessage): Promise<void> {
    try {
      const sealed = decodeRv('introduce2', m.data).p;
      const plain = crypto().open(sealed, ip.enc);
      if (!plain) throw new AlliumError('ERR_MESSAGE_AUTH', 'introduction does not open');
      const intro = decodeMessage(introPayloadSchema, plain, 512, 'introduction');
      const hs = responderHandshake({ identity: this.identity, prekey: ip.enc }, intro.hs);
      const tag = toHex(hs.replayTag);
      if (ip.seen.has(tag)) throw new AlliumError('ERR_MESSAGE_REPLAY', 'introduction replayed');
      ip.seen.add(tag);
      // A worn introduction point is replaced (its replay set goes with its key).
      if (ip.seen.size >= (this.options.maxIntroductionsPerPoint ?? DEFAULT_MAX_INTRODUCTIONS)) void this.maintain();
      const rp = this.client.directory.get(intro.rp);
      if (!rp) throw new AlliumError('ERR_UNREACHABLE', 'rendezvous point not in the directory');
      const circuit = await this.client.newCircuit({ last: rp, exitPort: null });
      const s = crypto().x25519(ip.enc.secretKey, intro.x);
      const { keys, Y, auth } = ntorServer(s, ip.enc, this.identity.publicKey, intro.x, (n) => crypto().random(n));
      circuit.send({ command: RelayCommand.RENDEZVOUS1, streamId: 0, data: encodeRv('rendezvous1', { c: intro.c, h: concatBytes(Y, auth) }) });
      circuit.addVirtualHop({ forward: keys.backward, backward: keys.forward, binding: keys.binding });
      const peer = formatAddress(hs.initiatorIdentityKey);
      circuit.mux.on('mux:begin', (stream, data) => this.onBegin(circuit, stream, data, peer, hs.session));
    } catch (e) {
      this.emit('endpoint:error', asAlliumError(e, 'introduction failed'));
    }
  }

  private onBegin(circuit: ClientCircuit, stream: MuxStream, data: Uint8Array, peer: string, session: RatchetSession): void {
    let target;
    try {
      target = decodeBegin(data);
    } catch {
      return circuit.mux.reset(stream, EndReason.MISC);
    }
    if (target.a === MESSAGES) {
      circuit.mux.accept(stream);
      const conv = new Conversation(
        peer,
        circuit,
        stream,
        session,
        (m) => this.emit('message:received', m),
        (e) => this.emit('endpoint:error', e),
      );
      if (!this.conversations.has(peer)) this.conversations.set(peer, Promise.resolve(conv));
      this.offlineUntil.delete(peer);
      return;
    }
    const service = target.a === SERVICE ? this.options.services?.[target.p] : undefined;
    if (!service) return circuit.mux.reset(stream, EndReason.EXIT_POLICY);
    const socket = tcpConnect({ host: service.host, port: service.port });
    socket.once('connect', () => {
      circuit.mux.accept(stream);
      pipeSocket(stream, socket);
    });
    socket.once('error', () => circuit.mux.reset(stream, EndReason.CONNECT_REFUSED));
  }

  // ------------------------------------------------------------------ connecting (the initiator side)

  /**
   * Meets the endpoint at `address` and returns a circuit whose last (virtual) hop is that endpoint. Throws
   * ERR_UNREACHABLE (no descriptor: not listening; or no introduction worked), ERR_CLIENT_AUTH (the endpoint
   * requires client authorisation that `clientAuth` does not give), ERR_TIMEOUT, ERR_ABORTED.
   */
  private async rendezvous(
    address: string,
    signal: AbortSignal | undefined,
    as: Identity,
    clientAuth: ClientAuthKey | undefined,
  ): Promise<{ circuit: ClientCircuit; session: RatchetSession }> {
    const identityKey = parseAddress(address);
    const now = Date.now();
    const period = periodAt(Math.floor(now / 1000));
    const locator = descriptorLocator(identityKey, period);
    // The newest revision any holder has: an endpoint republishes when an introduction point is lost.
    let descriptor: ReturnType<typeof openEndpointDescriptor> | null = null;
    let needsAuth = false;
    for (const bytes of await this.lookups.fetchFromAll('endpoint', locator, signal)) {
      try {
        const d = openEndpointDescriptor(identityKey, period, bytes, clientAuth ? { now, client: clientAuth } : { now });
        if (!descriptor || d.revision > descriptor.revision) descriptor = d;
      } catch (e) {
        // Only a validly signed descriptor gets as far as the client layer: this endpoint restricts who finds it.
        if (isAlliumError(e) && e.code === 'ERR_CLIENT_AUTH') needsAuth = true;
        /* otherwise a forged or stale copy */
      }
    }
    if (!descriptor && needsAuth) {
      throw new CryptoError('ERR_CLIENT_AUTH', clientAuth ? 'endpoint requires client authorisation and does not list our key' : 'endpoint requires client authorisation: no client key given');
    }
    if (!descriptor) throw new AlliumError('ERR_UNREACHABLE', 'endpoint unreachable: no descriptor found for this address (is it listening?)');
    const introRelays = new Set(descriptor.intro.map((i) => fingerprintOf(i.relay)));
    const rps = this.client.directory.all().filter((d) => d.caps.includes('rendezvous') && !introRelays.has(d.fingerprint));
    // A rendezvous point that cannot be reached (gone, but still in the directory) is replaced by another.
    let circuit: ClientCircuit | null = null;
    let rp: Descriptor | undefined;
    let buildError: unknown = new AlliumError('ERR_UNREACHABLE', 'no rendezvous point available');
    for (let attempt = 0; attempt < 3 && !circuit && rps.length; attempt++) {
      rp = rps.splice(Math.floor(Math.random() * rps.length), 1)[0]!;
      const opts: { last: Descriptor; exitPort: null; signal?: AbortSignal } = { last: rp, exitPort: null };
      if (signal) opts.signal = signal;
      try {
        circuit = await this.client.newCircuit(opts);
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        buildError = e;
      }
    }
    if (!circuit || !rp) throw buildError;
    const close = (): void => circuit.close();
    signal?.addEventListener('abort', close, { once: true });
    try {
      const cookie = crypto().random(COOKIE_LEN);
      const established = circuit.waitFor(RelayCommand.RENDEZVOUS_ESTABLISHED, REPLY_TIMEOUT_MS, signal);
      circuit.send({ command: RelayCommand.ESTABLISH_RENDEZVOUS, streamId: 0, data: encodeRv('establishRendezvous', { c: cookie }) });
      await established;
      const intros = [...descriptor.intro].sort(() => Math.random() - 0.5);
      let lastErr: unknown = new AlliumError('ERR_UNREACHABLE', 'endpoint unreachable');
      for (const ip of intros) {
        try {
          return await this.introduceAndMeet(circuit, identityKey, ip, rp, cookie, signal, as);
        } catch (e) {
          if (e instanceof AbortedError) throw e;
          lastErr = e;
        }
      }
      throw lastErr;
    } catch (e) {
      circuit.close();
      throw e;
    } finally {
      signal?.removeEventListener('abort', close);
    }
  }

  private async introduceAndMeet(
    rpCircuit: ClientCircuit,
    identityKey: Uint8Array,
    ip: IntroPoint,
    rp: Descriptor,
    cookie: Uint8Array,
    signal: AbortSignal | undefined,
    as: Identity,
  ): Promise<{ circuit: ClientCircuit; session: RatchetSession }> {
    const introRelay = this.client.directory.get(ip.relay);
    if (!introRelay) throw new AlliumError('ERR_UNREACHABLE', 'introduction point not in the directory');
    const hs = initiatorHandshake(as, { identityKey, prekey: ip.enc });
    const x = crypto().random(32);
    const X = crypto().x25519Public(x);
    const sealed = crypto().seal(encodeCbor({ rp: rp.id, c: cookie, x: X, hs: hs.handshake }), ip.enc);
    const opts: { last: Descriptor; exitPort: null; signal?: AbortSignal } = { last: introRelay, exitPort: null };
    if (signal) opts.signal = signal;
    const introCircuit = await this.client.newCircuit(opts);
    const met = rpCircuit.waitFor(RelayCommand.RENDEZVOUS2, REPLY_TIMEOUT_MS, signal);
    met.catch(() => undefined);
    try {
      const ack = introCircuit.waitFor(RelayCommand.INTRODUCE_ACK, REPLY_TIMEOUT_MS, signal);
      introCircuit.send({ command: RelayCommand.INTRODUCE1, streamId: 0, data: encodeRv('introduce1', { k: ip.auth, p: sealed }) });
      if (decodeRv('introduceAck', (await ack).data).s !== 'ok') throw new AlliumError('ERR_UNREACHABLE', 'introduction point does not know the endpoint');
    } finally {
      introCircuit.close();
    }
    const reply = decodeRv('rendezvous2', (await met).data).h;
    if (reply.length !== 64) throw new AlliumError('ERR_HANDSHAKE_AUTH', 'rendezvous reply has the wrong length');
    const keys = ntorClientFinish(x, X, { identity: identityKey, onionKey: ip.enc }, reply.subarray(0, 32), reply.subarray(32));
    crypto().wipe(x);
    rpCircuit.addVirtualHop(keys);
    return { circuit: rpCircuit, session: hs.session };
  }

  private openStream(circuit: ClientCircuit, a: string, p: number, signal?: AbortSignal): Promise<MuxStream> {
    const s = circuit.mux.open();
    return new Promise<MuxStream>((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortedError());
      const timer = setTimeout(() => fail(new AlliumError('ERR_TIMEOUT', 'endpoint did not answer')), REPLY_TIMEOUT_MS);
      const onAbort = (): void => fail(new AbortedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      const offC = s.once('stream:connected', () => {
        clearTimeout(timer);
        offE();
        signal?.removeEventListener('abort', onAbort);
        resolve(s);
      });
      const offE = s.once('stream:end', (r) => fail(new AlliumError(r === EndReason.EXIT_POLICY ? 'ERR_EXIT_POLICY' : 'ERR_STREAM_FAILED', `endpoint refused the stream (reason ${r})`)));
      function fail(e: AlliumError): void {
        clearTimeout(timer);
        offC();
        offE();
        signal?.removeEventListener('abort', onAbort);
        reject(e);
      }
      circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a, p }) });
    });
  }

  private conversationWith(key: string, signal: AbortSignal | undefined, clientAuth: ClientAuthKey | undefined): Promise<Conversation> {
    const have = this.conversations.get(key);
    if (have) {
      return have.then(
        (c) => {
          if (!c.closed) return c;
          if (this.conversations.get(key) === have) this.conversations.delete(key);
          return this.conversationWith(key, signal, clientAuth);
        },
        () => {
          if (this.conversations.get(key) === have) this.conversations.delete(key);
          return this.conversationWith(key, signal, clientAuth);
        },
      );
    }
    const p = (async () => {
      const { circuit, session } = await this.rendezvous(key, signal, this.identity, clientAuth);
      try {
        const stream = await this.openStream(circuit, MESSAGES, 1, signal);
        return new Conversation(
          key,
          circuit,
          stream,
          session,
          (m) => this.emit('message:received', m),
          (e) => this.emit('endpoint:error', e),
        );
      } catch (e) {
        circuit.close();
        throw e;
      }
    })();
    this.conversations.set(key, p);
    p.catch(() => {
      if (this.conversations.get(key) === p) this.conversations.delete(key);
    });
    return p;
  }

  /**
   * Sends a message to an address. When the endpoint is listening: over an end-to-end session (double ratchet,
   * padded, in order), status 'delivered'. When it is not (no descriptor, or the rendezvous fails), sealed to the
   * recipient and left in its mailbox, status 'stored-offline' (unless `offline: 'never'`). Throws
   * ERR_ADDRESS_* (bad address), ERR_CLIENT_AUTH (the endpoint requires a client key we lack), ERR_UNREACHABLE,
   * ERR_TIMEOUT, ERR_ABORTED, ERR_LIMIT (too large: MAX_MESSAGE_BYTES live, MAX_MAILBOX_MESSAGE_BYTES offline).
   */
  async send(address: string, data: Uint8Array, options: SendOptions = {}): Promise<SendReceipt> {
    const dl = deadline(options.signal, options.timeoutMs, 'send');
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      throwIfAborted(dl.signal);
      const identityKey = parseAddress(address);
      const to = formatAddress(identityKey);
      const mode = options.offline ?? 'auto';
      const knownOffline = mode === 'auto' && (this.offlineUntil.get(to) ?? 0) > Date.now() && !this.conversations.has(to);
      if (mode !== 'only' && !knownOffline) {
        try {
          const conv = await this.conversationWith(to, dl.signal, options.clientAuth ?? this.options.clientAuth);
          const receipt = { status: 'delivered' as const, to, seq: conv.send(data) };
          this.offlineUntil.delete(to);
          this.emit('message:delivered', receipt);
          return receipt;
        } catch (e) {
          if (mode === 'never' || !fallsBackToMailbox(e)) throw e;
          const now = Date.now();
          if (this.offlineUntil.size >= 1024) for (const [k, t] of this.offlineUntil) if (t <= now) this.offlineUntil.delete(k);
          this.offlineUntil.set(to, now + OFFLINE_RECHECK_MS);
        }
      }
      const deposit: { ttlMs?: number; signal?: AbortSignal } = {};
      const ttl = options.ttlMs ?? this.options.offline?.ttlMs;
      if (ttl !== undefined) deposit.ttlMs = ttl;
      if (dl.signal) deposit.signal = dl.signal;
      const r = await this.outbox.deposit(identityKey, data, deposit);
      const receipt = { status: 'stored-offline' as const, to, id: r.id, expires: r.expires };
      this.emit('message:stored-offline', receipt);
      return receipt;
    } catch (e) {
      const error = asAlliumError(dl.wrap(e), 'send failed');
      this.emit('message:failed', { to: address, error });
      throw error;
    } finally {
      dl.clear();
    }
  }

  /**
   * Opens a stream to a hidden TCP service `port` at `address`. The service does not learn who connects: each
   * connection uses a fresh throwaway identity, not this messenger's. Throws as send() does (without the mailbox),
   * and ERR_EXIT_POLICY when the endpoint serves no such port.
   */
  async connect(address: string, port: number, options: ConnectOptions = {}): Promise<MuxStream> {
    const dl = deadline(options.signal, options.timeoutMs, 'connect');
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      const { circuit } = await this.rendezvous(address, dl.signal, createIdentity(), options.clientAuth ?? this.options.clientAuth);
      try {
        return await this.openStream(circuit, SERVICE, port, dl.signal);
      } catch (e) {
        circuit.close();
        throw e;
      }
    } catch (e) {
      throw dl.wrap(e);
    } finally {
      dl.clear();
    }
  }

  /** Stops listening and closes every conversation. */
  close(): void {
    this.closed = true;
    if (this.republishTimer) clearInterval(this.republishTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const i of [...this.intros.values(), ...this.retiring]) i.circuit.close();
    this.intros.clear();
    this.retiring.clear();
    for (const p of this.conversations.values()) void p.then((c) => c.circuit.close()).catch(() => undefined);
    this.conversations.clear();
    this.content.close();
    this.lookups.close();
    this.outbox.close();
    for (const stop of this.closers) stop();
  }
}

/** Errors after which send() leaves the message in the mailbox: the endpoint is not there, or did not answer. */
function fallsBackToMailbox(e: unknown): boolean {
  return isAlliumError(e) && (e.code === 'ERR_UNREACHABLE' || e.code === 'ERR_TIMEOUT' || e.code === 'ERR_HANDSHAKE_AUTH' || e.code === 'ERR_LINK_CLOSED' || e.code === 'ERR_STREAM_FAILED');
}

function checkClients(keys: readonly Uint8Array[]): readonly Uint8Array[] {
  if (keys.length > MAX_AUTH_CLIENTS) throw new AlliumError('ERR_CONFIG', `at most ${MAX_AUTH_CLIENTS} authorised clients`);
  for (const k of keys) if (!(k instanceof Uint8Array) || k.length !== 32) throw new AlliumError('ERR_CONFIG', 'an authorised client key is a 32-byte X25519 public key');
  return keys.map((k) => Uint8Array.from(k));
}
