/**
 * Private messaging and hidden services (docs/developer-guide.md §Messaging; specs/rendezvous.md): an identity
 * listens at an address; anyone with the address reaches it through an introduction point and a rendezvous point,
 * each over its own circuit, so neither side learns where the other is and no relay sees both ends.
 *
 *   const alice = new Messenger(client, createIdentity());
 *   for await (const m of alice.listen()) console.log(m.from, m.data);
 *   await bob.send(alice.address, bytes);          // end-to-end encrypted, double ratchet, padded
 *   const stream = await bob.connect(address, 80);  // a hidden TCP service
 *
 * Not yet: offline mailboxes (messages to an endpoint that is not listening fail with ERR_UNREACHABLE).
 */
import { connect as tcpConnect } from 'node:net';
import { crypto, type KeyPair } from '../crypto/index.js';
import { fingerprintOf } from '../crypto/keys.js';
import { createIdentity, formatAddress, parseAddress, type Identity } from '../protocol/address.js';
import { concatBytes, toHex } from '../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes } from '../protocol/cbor.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { createEndpointDescriptor, openEndpointDescriptor, type IntroPoint } from '../protocol/endpoint-descriptor.js';
import { AbortedError, AlliumError, isAlliumError, throwIfAborted } from '../protocol/errors.js';
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

export { createIdentity, formatAddress, parseAddress, type Identity };

const MESSAGES = 'allium:messages';
const SERVICE = 'allium:service';
const DESCRIPTOR_LIFETIME_MS = 3 * 3600_000;
const REPLY_TIMEOUT_MS = 30_000;

const introPayloadSchema = z.strictObject({ rp: zBytes(32), c: zBytes(COOKIE_LEN), x: zBytes(32), hs: zBytes(81) });

export interface IncomingMessage {
  /** The sender's address (authenticated by the session handshake). */
  readonly from: string;
  readonly data: Uint8Array;
  /** The sender's message number in this conversation (0, 1, 2, …). */
  readonly seq: number;
}

export interface MessengerOptions {
  /** Introduction points to keep (default 3). */
  introPoints?: number;
  /** Re-publish the descriptor this often (default 10 minutes) and whenever an introduction point is lost. */
  republishMs?: number;
  /** Hidden TCP services: port → local host:port to connect to. */
  services?: Record<number, { host: string; port: number }>;
}

export type MessengerEvents = {
  'message:received': [IncomingMessage];
  'endpoint:published': [number];
  'endpoint:error': [AlliumError];
};

interface IntroState {
  relay: Descriptor;
  circuit: ClientCircuit;
  auth: KeyPair;
  enc: KeyPair;
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
          onMessage({ from: peer, data: unpad(plaintext, RATCHET_OVERHEAD), seq });
        } catch (e) {
          onError(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'message handling failed', { cause: e }));
        }
      }
    });
    stream.on('stream:end', () => (this.closed = true));
    circuit.once('circuit:close', () => (this.closed = true));
  }

  send(data: Uint8Array): number {
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
  private readonly content: ContentClient;
  private readonly intros = new Map<string, IntroState>();
  private readonly conversations = new Map<string, Promise<Conversation>>();
  private readonly seenIntroductions = new Set<string>();
  private revision = 0;
  private listening = false;
  private republishTimer: ReturnType<typeof setInterval> | null = null;
  private readonly queue: IncomingMessage[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly client: AlliumClient,
    readonly identity: Identity = createIdentity(),
    private readonly options: MessengerOptions = {},
  ) {
    super();
    this.address = formatAddress(identity.publicKey);
    this.content = new ContentClient(client);
    client.useAddressConnector((address, port, signal) => this.connect(address, port, signal ? { signal } : {}));
  }

  // ------------------------------------------------------------------ listening (the endpoint side)

  /**
   * Starts listening: keeps introduction points and a published descriptor, and yields incoming messages until
   * close() or the signal aborts.
   */
  async *listen(options: { signal?: AbortSignal } = {}): AsyncGenerator<IncomingMessage> {
    await this.startListening(options.signal);
    const onMsg = (m: IncomingMessage): void => {
      this.queue.push(m);
      this.wake?.();
    };
    const off = this.on('message:received', onMsg);
    const onAbort = (): void => this.wake?.();
    options.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (this.queue.length) yield this.queue.shift()!;
        if (this.closed || options.signal?.aborted) return;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      off();
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Establishes introduction points and publishes the descriptor (idempotent). */
  async startListening(signal?: AbortSignal): Promise<void> {
    if (this.listening) return;
    this.listening = true;
    await this.ensureIntroPoints(signal);
    await this.publish(signal);
    this.republishTimer = setInterval(() => void this.maintain(), this.options.republishMs ?? 600_000);
    (this.republishTimer as { unref?: () => void }).unref?.();
  }

  private async ensureIntroPoints(signal?: AbortSignal): Promise<boolean> {
    const want = this.options.introPoints ?? 3;
    let changed = false;
    const candidates = this.client.directory.all().filter((d) => d.caps.includes('intro') && !this.intros.has(d.fingerprint));
    while (this.intros.size < want && candidates.length) {
      throwIfAborted(signal);
      const relay = candidates.splice(Math.floor(Math.random() * candidates.length), 1)[0]!;
      try {
        await this.establishIntro(relay, signal);
        changed = true;
      } catch (e) {
        if (e instanceof AbortedError) throw e;
      }
    }
    if (this.intros.size === 0) throw new AlliumError('ERR_UNREACHABLE', 'no introduction point could be established');
    return changed;
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
    await ack;
    const state: IntroState = { relay, circuit, auth, enc };
    this.intros.set(relay.fingerprint, state);
    circuit.on('circuit:message', (_hop, m) => {
      if (m.command === RelayCommand.INTRODUCE2) void this.onIntroduce(state, m);
    });
    circuit.once('circuit:close', () => {
      this.intros.delete(relay.fingerprint);
      if (!this.closed) void this.maintain(); // an introduction point vanished: replace it and republish
    });
  }

  private async maintain(): Promise<void> {
    if (this.closed) return;
    try {
      await this.ensureIntroPoints();
      await this.publish();
    } catch (e) {
      this.emit('endpoint:error', isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'republish failed', { cause: e }));
    }
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
    this.revision = Math.max(this.revision + 1, now);
    // The current period and the next, so clients whose clocks cross the boundary first still find us.
    for (const p of [period, period + 1]) {
      const d = createEndpointDescriptor(this.identity, p, body, { revision: this.revision });
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
      if (this.seenIntroductions.has(tag)) throw new AlliumError('ERR_MESSAGE_REPLAY', 'introduction replayed');
      this.seenIntroductions.add(tag);
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
      this.emit('endpoint:error', isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'introduction failed', { cause: e }));
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

  /** Meets the endpoint at `address` and returns a circuit whose last (virtual) hop is that endpoint. */
  private async rendezvous(address: string, signal?: AbortSignal, as: Identity = this.identity): Promise<{ circuit: ClientCircuit; session: RatchetSession }> {
    const identityKey = parseAddress(address);
    const now = Date.now();
    const period = periodAt(Math.floor(now / 1000));
    const locator = descriptorLocator(identityKey, period);
    // The newest revision any holder has: an endpoint republishes when an introduction point is lost.
    let descriptor: ReturnType<typeof openEndpointDescriptor> | null = null;
    for (const bytes of await this.content.fetchFromAll('endpoint', locator, signal)) {
      try {
        const d = openEndpointDescriptor(identityKey, period, bytes, { now });
        if (!descriptor || d.revision > descriptor.revision) descriptor = d;
      } catch {
        /* a forged or stale copy */
      }
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

  private conversationWith(address: string, signal?: AbortSignal): Promise<Conversation> {
    const key = formatAddress(parseAddress(address));
    const have = this.conversations.get(key);
    if (have) {
      return have.then(
        (c) => {
          if (!c.closed) return c;
          this.conversations.delete(key);
          return this.conversationWith(address, signal);
        },
        () => {
          this.conversations.delete(key);
          return this.conversationWith(address, signal);
        },
      );
    }
    const p = (async () => {
      const { circuit, session } = await this.rendezvous(address, signal);
      const stream = await this.openStream(circuit, MESSAGES, 1, signal);
      return new Conversation(
        key,
        circuit,
        stream,
        session,
        (m) => this.emit('message:received', m),
        (e) => this.emit('endpoint:error', e),
      );
    })();
    this.conversations.set(key, p);
    p.catch(() => this.conversations.delete(key));
    return p;
  }

  /**
   * Sends a message to an address: end-to-end encrypted (double ratchet), padded to a size bucket, delivered in
   * order. Throws ERR_ADDRESS_* for a bad address, ERR_UNREACHABLE when the endpoint cannot be reached,
   * ERR_TIMEOUT, ERR_ABORTED. Returns the message's sequence number in the conversation.
   */
  async send(address: string, data: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<number> {
    const conv = await this.conversationWith(address, options.signal);
    return conv.send(data);
  }

  /**
   * Opens a stream to a hidden TCP service `port` at `address`. The service does not learn who connects: each
   * connection uses a fresh throwaway identity, not this messenger's.
   */
  async connect(address: string, port: number, options: { signal?: AbortSignal } = {}): Promise<MuxStream> {
    const { circuit } = await this.rendezvous(address, options.signal, createIdentity());
    try {
      return await this.openStream(circuit, SERVICE, port, options.signal);
    } catch (e) {
      circuit.close();
      throw e;
    }
  }

  /** Stops listening and closes every conversation. */
  close(): void {
    this.closed = true;
    if (this.republishTimer) clearInterval(this.republishTimer);
    for (const i of this.intros.values()) i.circuit.close();
    this.intros.clear();
    for (const p of this.conversations.values()) void p.then((c) => c.circuit.close()).catch(() => undefined);
    this.conversations.clear();
    this.content.close();
    this.wake?.();
  }
}
