/**
 * Private messaging and hidden services (docs/developer-guide.md §Messaging; specs/messaging.md, specs/rendezvous.md):
 * an identity listens at an address; anyone with the address reaches it through an introduction point and a
 * rendezvous point, each over its own circuit, so neither side learns where the other is and no relay sees both
 * ends. When the recipient is not listening, a message is sealed to it and left in its mailbox in the overlay, and
 * the recipient collects it when it listens again.
 *
 *   const alice = new Messenger(client, createIdentity());
 *   for await (const m of alice.listen()) console.log(m.from, m.data, m.offline);
 *   const r = await bob.send(alice.address, bytes);  // r.status: 'delivered' (acknowledged) or 'stored-offline'
 *   const stream = await bob.connect(address, 80);     // a hidden TCP service
 *
 * Live messages are acknowledged end to end: send() reports 'delivered' only once the recipient's Messenger has
 * received and emitted the message. A message whose conversation is lost before the acknowledgement comes is sent
 * again over a new rendezvous, then left in the mailbox, always under the same message id, and the recipient drops
 * copies of an id it has already emitted (specs/messaging.md §8.2–§8.3).
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
import { AbortedError, AlliumError, CryptoError, isAlliumError, LimitError, throwIfAborted, TimeoutError } from '../protocol/errors.js';
import { descriptorLocator, periodAt } from '../protocol/key-blinding.js';
import {
  decodeFrame,
  encodeAckFrame,
  encodeMessageFrame,
  MAX_ACK_IDS,
  MAX_LIVE_MESSAGE_BYTES,
  MESSAGE_ID_LEN,
  type ConversationFrame,
} from '../protocol/message-frames.js';
import { initiatorHandshake, responderHandshake } from '../protocol/message-handshake.js';
import { ntorClientFinish, ntorServer } from '../protocol/ntor.js';
import { pad, unpad } from '../protocol/padding.js';
import { MAX_MESSAGE_BYTES, RATCHET_OVERHEAD, type RatchetSession } from '../protocol/ratchet.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { COOKIE_LEN, decodeRv, encodeRv, introSignedMessage } from '../protocol/rendezvous-messages.js';
import { decodeBegin, encodeBegin, EndReason } from '../protocol/stream-messages.js';
import { signalOption } from '../net/abort.js';
import { Emitter } from '../net/emitter.js';
import type { ClientCircuit } from '../net/circuit.js';
import { pipeSocket } from '../net/pipe-socket.js';
import type { MuxStream } from '../net/stream-mux.js';
import { z } from 'zod';
import type { AlliumClient } from './client.js';
import { ContentClient } from './content.js';
import { weightedPick } from './path.js';
import { MailboxCollector, MailboxSender } from './mailbox.js';

export { createIdentity, formatAddress, parseAddress, type Identity };
export { MAX_MAILBOX_MESSAGE_BYTES, MAX_MAILBOX_TTL_MS } from '../protocol/mailbox.js';
export { MAX_LIVE_MESSAGE_BYTES } from '../protocol/message-frames.js';

const MESSAGES = 'allium:messages';
const SERVICE = 'allium:service';
const DESCRIPTOR_LIFETIME_MS = 3 * 3600_000;
const REPLY_TIMEOUT_MS = 30_000;
/** A conversation whose peer acknowledges nothing for this long while messages wait is given up (default). */
const DEFAULT_ACK_TIMEOUT_MS = REPLY_TIMEOUT_MS;
/** Conversations a message is handed to before send() gives up on a live delivery: the first and one rebuilt. */
const LIVE_ATTEMPTS = 2;
/** Message ids remembered per peer, to drop copies (a message sent again after its ack was lost, or its offline copy). */
const RECENT_IDS_PER_PEER = 1024;
/** Peers whose recent ids are remembered (the least recently heard from is forgotten first). */
const RECENT_ID_PEERS = 256;
/** After a send found the recipient offline, further sends go straight to its mailbox for this long. */
const OFFLINE_RECHECK_MS = 15_000;
/** An introduction point is replaced after this long (its replay set then starts afresh under a new key). */
const DEFAULT_INTRO_LIFETIME_MS = 18 * 3600_000;
/** … or after this many introductions, which bounds the replay set's memory. */
const DEFAULT_MAX_INTRODUCTIONS = 16_384;
const DEFAULT_POLL_MS = 60_000;
/** A replaced introduction point stays up this long after the new descriptor is out, for clients holding the old. */
const RETIRED_INTRO_GRACE_MS = 60_000;

// What peers can make an endpoint hold (specs/messaging.md §8.4, specs/limits.md "Endpoints"); each has an option.
/** Introductions that opened and await a rendezvous; past this the oldest is dropped. */
export const MAX_PENDING_INTRODUCTIONS = 64;
/** Introductions answered at once (a circuit to the rendezvous point being built, RENDEZVOUS1 not yet sent). */
export const MAX_CONCURRENT_RENDEZVOUS = 4;
/** Rendezvous circuits an endpoint keeps open for initiators; while at this, introductions wait in the queue. */
export const MAX_SERVICE_CIRCUITS = 512;
/** A rendezvous circuit with no open stream for this long is closed. */
export const SERVICE_CIRCUIT_IDLE_MS = 60_000;
/** Streams open at once on one rendezvous circuit (its one message stream included). */
export const MAX_SERVICE_STREAMS_PER_CIRCUIT = 64;
/** Peers with a conversation on file for send() to reuse; past this the longest filed is unfiled (not closed). */
export const MAX_CONVERSATIONS = 1024;
/** Messages a listen() call holds that the application has not taken yet; senders wait while it is full. */
export const MAX_LISTEN_QUEUE = 256;

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
   * The sender's message number: in a live conversation 0, 1, 2, … (acknowledgements are not counted; a message sent
   * again over a new conversation gets that conversation's number); for an offline message, the sender's count of
   * offline messages to us (it restarts with the sender's process; `sentAt` orders across restarts).
   */
  readonly seq: number;
  /** True for a message collected from the mailbox (the sender found us not listening). */
  readonly offline: boolean;
  /**
   * The message id (hex, 16 random bytes chosen by the sender): the same for every copy of one message, live or
   * offline, and the `id` of the sender's receipt. A copy of an id already emitted is dropped (within the limits of
   * specs/messaging.md §8.3), so applications see each id once.
   */
  readonly id?: string;
  /** Offline messages: the sender's clock when it sent. */
  readonly sentAt?: number;
}

/** What happened to a message given to send(). */
export type SendReceipt =
  | {
      /**
       * Acknowledged end to end: the recipient's Messenger received the message over a live session and emitted it
       * ('message:received'; the application may not have read it yet: this is no read receipt).
       */
      readonly status: 'delivered';
      readonly to: string;
      /** The message's number in the conversation that delivered it (IncomingMessage.seq at the recipient). */
      readonly seq: number;
      /** The message id (hex), which the recipient sees too (IncomingMessage.id). */
      readonly id: string;
    }
  | {
      /**
       * Sealed to the recipient and left in its mailbox, to be collected when it listens. When a live attempt came
       * first and its acknowledgement never arrived, the recipient may already have the message: it then drops the
       * offline copy, which carries the same id.
       */
      readonly status: 'stored-offline';
      readonly to: string;
      readonly id: string;
      /** When relays drop it if it has not been collected (Unix ms). */
      readonly expires: number;
    };

export interface SendOptions {
  /**
   * Stops the send (ERR_ABORTED). A message already handed to a conversation may still arrive: an aborted or timed
   * out send does not say it did not.
   */
  signal?: AbortSignal;
  /** Fail with ERR_TIMEOUT after this long (waiting for the acknowledgement included). */
  timeoutMs?: number;
  /**
   * 'auto' (default): a live session if the endpoint can be reached, else the mailbox (also when two conversations
   * were lost before the recipient acknowledged); 'never': live only (ERR_UNREACHABLE when not listening,
   * ERR_LINK_CLOSED or ERR_TIMEOUT when no acknowledgement came); 'only': straight to the mailbox.
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
  /**
   * A conversation whose peer acknowledges nothing for this long while messages wait for acknowledgement is closed,
   * and those messages are sent again over a new one (default 30 s).
   */
  ackTimeoutMs?: number;
  /** What initiators can make this endpoint hold (defaults: the constants of the same names, specs/limits.md). */
  limits?: {
    /** MAX_PENDING_INTRODUCTIONS (64). */
    maxPendingIntroductions?: number;
    /** MAX_CONCURRENT_RENDEZVOUS (4). */
    maxConcurrentRendezvous?: number;
    /** MAX_SERVICE_CIRCUITS (512). */
    maxServiceCircuits?: number;
    /** SERVICE_CIRCUIT_IDLE_MS (60 s). */
    serviceCircuitIdleMs?: number;
    /** MAX_SERVICE_STREAMS_PER_CIRCUIT (64). */
    maxServiceStreamsPerCircuit?: number;
    /** MAX_CONVERSATIONS (1024). */
    maxConversations?: number;
    /** MAX_LISTEN_QUEUE (256). */
    maxListenQueue?: number;
  };
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
  /** A message was acknowledged by the recipient over a live session. */
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

/** An introduction that opened and is not a replay, waiting for its turn to be answered. */
interface PendingIntroduction {
  readonly ip: IntroState;
  readonly rp: Descriptor;
  /** The initiator's cookie and ntor ephemeral. */
  readonly cookie: Uint8Array;
  readonly x: Uint8Array;
  readonly peer: string;
  readonly session: RatchetSession;
  /** When it arrived (an initiator waits REPLY_TIMEOUT_MS for RENDEZVOUS2; older ones are not answered). */
  readonly at: number;
}

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

/** A listen() call's messages that the application has not taken yet. */
interface ListenQueue {
  readonly items: { readonly m: IncomingMessage; readonly taken: () => void }[];
  wake: (() => void) | null;
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

interface PendingMessage {
  readonly resolve: (n: number) => void;
  readonly reject: (e: AlliumError) => void;
  readonly n: number;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** Runs `f` once the current burst of events is handled (acks for a burst of messages then share frames). */
function soon(f: () => void): void {
  if (typeof setImmediate === 'function') setImmediate(f);
  else setTimeout(f, 0);
}

/**
 * A conversation: a rendezvous circuit with the peer as a virtual hop, a message stream and a ratchet session.
 * Every message carries a random id and is acknowledged by the peer's Messenger once it has emitted it; send()
 * resolves on that acknowledgement. The conversation closes (failing every unacknowledged message with
 * ERR_LINK_CLOSED, or ERR_TIMEOUT) when its stream or circuit ends, or when messages wait `ackTimeoutMs` with no
 * acknowledgement coming in.
 */
class Conversation {
  private buf: Uint8Array = new Uint8Array(0);
  closed = false;
  /** Message frames sent on this stream so far (the next one's `n`). */
  private sent = 0;
  /** Unacknowledged messages, by id (hex), oldest first. */
  private readonly pending = new Map<string, PendingMessage>();
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  /** Ids received and not yet acknowledged (sent together once the current burst is handled). */
  private acks: Uint8Array[] = [];
  /** True once a frame from the peer decrypted: the handshake's claim of who the peer is then holds (§8). */
  authenticated = false;
  /** Sizes of the DATA cells received and not yet credited to the peer (stream SENDMEs), oldest first. */
  private readonly uncredited: number[] = [];
  /** Bytes of those cells that frames already handed over (or acks) took up. */
  private usedBytes = 0;
  /** True while a message read from the stream waits to be taken. */
  private delivering = false;
  /** Length of the frame being handled, with its length prefix. */
  private frameBytes = 0;
  private readonly closedHandlers: (() => void)[] = [];

  constructor(
    readonly peer: string,
    readonly circuit: ClientCircuit,
    readonly stream: MuxStream,
    readonly session: RatchetSession,
    /**
     * Hands an incoming message over; resolves once the application has it (true), or with false when it was a
     * duplicate (acknowledged all the same, not emitted) or could not be handed over (the conversation closed).
     */
    private readonly onMessage: (m: IncomingMessage) => Promise<boolean>,
    private readonly onError: (e: AlliumError) => void,
    private readonly ackTimeoutMs: number,
    /** Called once, when the first frame from the peer decrypts. */
    private readonly onAuthenticated: (c: Conversation) => void = () => undefined,
  ) {
    stream.on('stream:data', (d) => {
      this.uncredited.push(d.length);
      this.buf = concatBytes(this.buf, d);
      this.readFrames();
    });
    stream.on('stream:end', () => this.fail(new AlliumError('ERR_LINK_CLOSED', 'conversation closed before the peer acknowledged the message')));
    circuit.once('circuit:close', () => this.fail(new AlliumError('ERR_LINK_CLOSED', 'conversation circuit closed before the peer acknowledged the message')));
  }

  /**
   * Reads the frames received so far, one message at a time: while a message waits to be taken by the application,
   * nothing more is read, and a cell is credited to the peer only once every frame its bytes belong to has been
   * handed over. So the peer's stream window (STREAM_WINDOW cells) bounds what it can make us buffer, and a reader
   * that does not keep up stops the sender (§8.4).
   */
  private readFrames(): void {
    while (!this.delivering && this.buf.length >= 4 && !this.closed) {
      const len = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(0);
      if (len > MAX_MESSAGE_BYTES) {
        this.buf = new Uint8Array(0);
        this.stream.end(EndReason.MISC);
        this.fail(new AlliumError('ERR_LINK_CLOSED', 'conversation closed: the peer sent a frame larger than MAX_MESSAGE_BYTES'));
        return this.onError(new AlliumError('ERR_LIMIT', 'message frame larger than MAX_MESSAGE_BYTES: conversation closed'));
      }
      if (this.buf.length < 4 + len) break;
      const frame = this.buf.slice(4, 4 + len);
      this.buf = this.buf.slice(4 + len);
      this.frameBytes = 4 + len;
      try {
        const plaintext = this.session.decrypt(frame).plaintext;
        if (!this.authenticated) {
          this.authenticated = true;
          this.onAuthenticated(this);
        }
        this.onFrame(decodeFrame(unpad(plaintext, RATCHET_OVERHEAD)));
      } catch (e) {
        this.onError(asAlliumError(e, 'message handling failed'));
      }
      if (!this.delivering) this.used(this.frameBytes);
    }
  }

  /** Frames of `bytes` bytes are done with: credits the peer for the cells they used up. */
  private used(bytes: number): void {
    this.usedBytes += bytes;
    let cells = 0;
    while (this.uncredited.length > 0 && this.uncredited[0]! <= this.usedBytes) {
      this.usedBytes -= this.uncredited.shift()!;
      cells++;
    }
    if (cells > 0 && !this.closed) this.stream.consumed(cells);
  }

  private onFrame(f: ConversationFrame): void {
    if (f.kind === 'ack') {
      let progress = false;
      for (const id of f.ids) {
        const key = toHex(id);
        const p = this.pending.get(key);
        if (!p) continue; // late (its sender gave up waiting) or unknown: nothing to do
        this.pending.delete(key);
        p.signal?.removeEventListener('abort', p.onAbort);
        p.resolve(p.n);
        progress = true;
      }
      if (progress) this.armAckTimer(true);
      return;
    }
    // Acknowledged once handed over, whether new or a copy (a copy means our earlier ack was lost), and even if a
    // listener threw: the message was emitted, and its id is remembered. Nothing more is read until then.
    this.delivering = true;
    const bytes = this.frameBytes;
    const handedOver = (): void => {
      this.delivering = false;
      if (this.closed) return;
      this.used(bytes);
      if (this.acks.push(f.id) === 1) soon(() => this.flushAcks());
      this.readFrames();
    };
    this.onMessage({ from: this.peer, data: f.data, seq: f.n, offline: false, id: toHex(f.id) }).then(handedOver, (e: unknown) => {
      this.onError(asAlliumError(e, 'message handling failed'));
      handedOver();
    });
  }

  private flushAcks(): void {
    const ids = this.acks;
    this.acks = [];
    try {
      for (let i = 0; i < ids.length && !this.closed; i += MAX_ACK_IDS) this.writeFrame(encodeAckFrame(ids.slice(i, i + MAX_ACK_IDS)));
    } catch (e) {
      this.onError(asAlliumError(e, 'acknowledgement failed'));
    }
  }

  /** Pads, encrypts and writes one frame plaintext. */
  private writeFrame(plaintext: Uint8Array): void {
    const { message } = this.session.encrypt(pad(plaintext, RATCHET_OVERHEAD));
    const frame = new Uint8Array(4 + message.length);
    new DataView(frame.buffer).setUint32(0, message.length);
    frame.set(message, 4);
    this.stream.write(frame);
  }

  /**
   * True when send() can use this conversation: open, and its session can encrypt (a responder session can only
   * after the peer's first message, which is also what proves the peer is who its handshake claims).
   */
  get canSend(): boolean {
    return !this.closed && this.session.canSend;
  }

  /** (Re)starts the acknowledgement timer while messages wait; `restart` after an ack came in. */
  private armAckTimer(restart: boolean): void {
    if (this.pending.size === 0) {
      if (this.ackTimer) clearTimeout(this.ackTimer);
      this.ackTimer = null;
      return;
    }
    if (this.ackTimer && !restart) return;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.close(new AlliumError('ERR_TIMEOUT', `the peer acknowledged nothing for ${this.ackTimeoutMs} ms: conversation closed`));
    }, this.ackTimeoutMs);
    (this.ackTimer as { unref?: () => void }).unref?.();
  }

  /**
   * Sends a message with id `id` and resolves with its number on this stream once the peer acknowledges it.
   * Rejects with ERR_LINK_CLOSED or ERR_TIMEOUT when the conversation is lost first (the message may or may not
   * have arrived), ERR_ABORTED, ERR_LIMIT (too large).
   */
  send(id: Uint8Array, data: Uint8Array, signal?: AbortSignal): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.closed) return reject(new AlliumError('ERR_LINK_CLOSED', 'conversation closed'));
      if (signal?.aborted) return reject(new AbortedError());
      // Counts as lost (specs/messaging.md §8): the caller moves on to another conversation or the mailbox.
      if (!this.session.canSend) return reject(new AlliumError('ERR_LINK_CLOSED', 'conversation cannot send: the peer has not authenticated'));
      const key = toHex(id);
      if (this.pending.has(key)) return reject(new AlliumError('ERR_INTERNAL', 'message id already waiting for an acknowledgement'));
      if (data.length > MAX_LIVE_MESSAGE_BYTES) {
        return reject(new LimitError('MAX_MESSAGE_BYTES', `a message of ${data.length} bytes does not fit a conversation (at most ${MAX_LIVE_MESSAGE_BYTES})`));
      }
      const n = this.sent;
      try {
        this.writeFrame(encodeMessageFrame(n, id, data));
      } catch (e) {
        return reject(asAlliumError(e, 'message encryption failed'));
      }
      this.sent++;
      const onAbort = (): void => {
        if (this.pending.get(key) !== entry) return;
        this.pending.delete(key);
        this.armAckTimer(false);
        reject(new AbortedError());
      };
      const entry: PendingMessage = { resolve, reject, n, signal, onAbort };
      this.pending.set(key, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.armAckTimer(false);
    });
  }

  /** Closes the circuit and fails every unacknowledged message with `err`. */
  close(err: AlliumError): void {
    this.fail(err);
    this.circuit.close();
  }

  /** Runs `fn` once the conversation closes (at once if it has). */
  onClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.closedHandlers.push(fn);
  }

  private fail(err: AlliumError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) {
      p.signal?.removeEventListener('abort', p.onAbort);
      p.reject(err);
    }
    for (const fn of this.closedHandlers.splice(0)) fn();
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
  /**
   * peer address → the conversation send() uses (being built, or open). An entry goes when its conversation closes
   * or fails to build; at most maxConversations, the longest filed unfiled first.
   */
  private readonly conversations = new Map<string, Promise<Conversation>>();
  private readonly offlineUntil = new Map<string, number>();
  /** Every open conversation (ours and those peers opened to us), closed with the messenger. */
  private readonly live = new Set<Conversation>();
  /** peer address → ids of messages from it emitted lately (oldest first), to drop copies. */
  private readonly recentIds = new Map<string, Set<string>>();
  /** The queues of the listen() calls running now. */
  private readonly listenQueues = new Set<ListenQueue>();
  /** Messages waiting for room in a full listen() queue, each with a test of whether its source has gone. */
  private readonly roomWaiters = new Set<{ resolve: () => void; gone: () => boolean }>();
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
  /** Introductions waiting to be answered, oldest first (at most maxPendingIntroductions). */
  private readonly introQueue: PendingIntroduction[] = [];
  /** Introductions being answered now (at most maxConcurrentRendezvous). */
  private answering = 0;
  /** Open rendezvous circuits initiators reach us on (at most maxServiceCircuits). */
  private readonly serviceCircuits = new Set<ClientCircuit>();

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
    client.useAddressConnector((address, port, options) => this.connect(address, port, options));
  }

  // ------------------------------------------------------------------ listening (the endpoint side)

  /**
   * Starts listening: keeps introduction points and a published descriptor, collects offline messages, and yields
   * incoming messages (live and offline) until close() or the signal aborts.
   */
  async *listen(options: ListenOptions = {}): AsyncGenerator<IncomingMessage> {
    // At most maxListenQueue messages wait here; each source (a conversation, the mailbox) hands over its next
    // message only once the application has taken the last (specs/messaging.md §8.4).
    const queue: ListenQueue = { items: [], wake: null };
    this.listenQueues.add(queue);
    const stop = (): void => queue.wake?.();
    options.signal?.addEventListener('abort', stop);
    this.closers.add(stop);
    try {
      await this.startListening(options);
      for (;;) {
        while (queue.items.length) {
          const { m, taken } = queue.items.shift()!;
          taken();
          this.roomFreed();
          yield m;
        }
        if (this.closed || options.signal?.aborted) return;
        await new Promise<void>((r) => (queue.wake = r));
        queue.wake = null;
      }
    } finally {
      this.listenQueues.delete(queue);
      for (const { taken } of queue.items.splice(0)) taken();
      this.roomFreed();
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
          if (this.closed) return false;
          return this.receive({ from: formatAddress(m.from), data: m.data, seq: m.n, offline: true, id: m.id, sentAt: m.t }, () => this.closed);
        },
        (e) => this.emit('endpoint:error', e),
        options,
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
    // Weighted by capacity among relays eligible as introduction points (Stable with a consensus): a count-based
    // draw would favour whoever runs the most relays (specs/rendezvous.md §2).
    const view = this.client.directory.view;
    const stable = view.relays.filter((d) => view.introEligible(d) && !this.intros.has(d.fingerprint));
    // Stable relays when there are any; in a network too young or too small for that, any relay offering it.
    const candidates = stable.length > 0 ? stable : view.relays.filter((d) => d.caps.includes('intro') && !this.intros.has(d.fingerprint));
    while (this.intros.size < want && candidates.length) {
      throwIfAborted(signal);
      const relay = weightedPick(candidates, () => crypto().uniform(), 'middle', view);
      if (!relay) break;
      candidates.splice(candidates.indexOf(relay), 1);
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
    circuit.setPurpose('setup'); // nothing but INTRO_ESTABLISHED from the introduction point (relay-crypto.md §6.2)
    const auth = crypto().ed25519Keypair();
    const enc = crypto().x25519Keypair();
    const binding = circuit.bindings[circuit.bindings.length - 1]!;
    const ack = circuit.waitFor(RelayCommand.INTRO_ESTABLISHED, REPLY_TIMEOUT_MS, signalOption(signal));
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
    circuit.setPurpose('intro'); // from now on INTRODUCE2, and nothing else
    const state: IntroState = { relay, circuit, auth, enc, seen: new Set(), established: Date.now(), retired: false };
    this.intros.set(relay.fingerprint, state);
    circuit.on('circuit:message', (_hop, m) => {
      if (m.command === RelayCommand.INTRODUCE2) this.onIntroduce(state, m);
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
      await this.content.storeEverywhere('endpoint', d.locator, d.bytes, signalOption(signal));
    }
    this.emit('endpoint:published', this.revision);
  }

  /**
   * INTRODUCE2: open the introduction and check it is no replay, then queue it to be answered (specs/messaging.md
   * §8.4): at most maxPendingIntroductions wait, the oldest dropped first, so a flood of valid introductions from
   * whoever knows the address costs a bounded queue, not a circuit each.
   */
  private onIntroduce(ip: IntroState, m: RelayMessage): void {
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
      this.introQueue.push({ ip, rp, cookie: intro.c, x: intro.x, peer: formatAddress(hs.initiatorIdentityKey), session: hs.session, at: Date.now() });
      if (this.introQueue.length > (this.options.limits?.maxPendingIntroductions ?? MAX_PENDING_INTRODUCTIONS)) {
        this.introQueue.shift();
        this.emit('endpoint:error', new LimitError('MAX_PENDING_INTRODUCTIONS', 'introductions arrive faster than they are answered: the oldest waiting one was dropped'));
      }
      this.answerIntroductions();
    } catch (e) {
      this.emit('endpoint:error', asAlliumError(e, 'introduction failed'));
    }
  }

  /**
   * Answers queued introductions, oldest first, while fewer than maxConcurrentRendezvous are being answered and
   * fewer than maxServiceCircuits rendezvous circuits are open. One whose initiator has stopped waiting is dropped.
   */
  private answerIntroductions(): void {
    const concurrent = this.options.limits?.maxConcurrentRendezvous ?? MAX_CONCURRENT_RENDEZVOUS;
    const circuits = this.options.limits?.maxServiceCircuits ?? MAX_SERVICE_CIRCUITS;
    while (!this.closed && this.introQueue.length > 0 && this.answering < concurrent && this.answering + this.serviceCircuits.size < circuits) {
      const next = this.introQueue.shift()!;
      if (Date.now() - next.at > REPLY_TIMEOUT_MS) continue;
      this.answering++;
      void this.meetInitiator(next).finally(() => {
        this.answering--;
        this.answerIntroductions();
      });
    }
  }

  /** Meets the initiator of an introduction at its rendezvous point (rendezvous.md §4.2) and serves the circuit. */
  private async meetInitiator(p: PendingIntroduction): Promise<void> {
    try {
      const circuit = await this.client.newCircuit({ last: p.rp, exitPort: null });
      if (this.closed) return circuit.close();
      circuit.setPurpose('setup');
      const s = crypto().x25519(p.ip.enc.secretKey, p.x);
      const { keys, Y, auth } = ntorServer(s, p.ip.enc, this.identity.publicKey, p.x, (n) => crypto().random(n));
      circuit.send({ command: RelayCommand.RENDEZVOUS1, streamId: 0, data: encodeRv('rendezvous1', { c: p.cookie, h: concatBytes(Y, auth) }) });
      circuit.addVirtualHop({ forward: keys.backward, backward: keys.forward, binding: keys.binding });
      circuit.setPurpose('service'); // the initiator, our virtual last hop, opens streams to us
      this.serve(circuit, p.peer, p.session);
    } catch (e) {
      this.emit('endpoint:error', asAlliumError(e, 'introduction failed'));
    }
  }

  /**
   * Serves a rendezvous circuit: takes the streams the initiator opens (at most maxServiceStreamsPerCircuit at once,
   * and one message stream in the circuit's life: its session serves one conversation), and closes the circuit once
   * it has had no open stream for serviceCircuitIdleMs (from the rendezvous, or from its last stream's end).
   */
  private serve(circuit: ClientCircuit, peer: string, session: RatchetSession): void {
    const idleMs = this.options.limits?.serviceCircuitIdleMs ?? SERVICE_CIRCUIT_IDLE_MS;
    const maxStreams = this.options.limits?.maxServiceStreamsPerCircuit ?? MAX_SERVICE_STREAMS_PER_CIRCUIT;
    const served = { messages: false };
    let idle: ReturnType<typeof setTimeout> | null = null;
    const stopIdle = (): void => {
      if (idle) clearTimeout(idle);
      idle = null;
    };
    const startIdle = (): void => {
      stopIdle();
      if (circuit.mux.size > 0 || circuit.state !== 'open') return;
      idle = setTimeout(() => circuit.close(), idleMs);
      (idle as { unref?: () => void }).unref?.();
    };
    this.serviceCircuits.add(circuit);
    circuit.once('circuit:close', () => {
      stopIdle();
      this.serviceCircuits.delete(circuit);
      this.answerIntroductions();
    });
    circuit.mux.on('mux:begin', (stream, data) => {
      stopIdle();
      stream.once('stream:end', startIdle);
      // The new stream is already counted.
      if (circuit.mux.size > maxStreams) return circuit.mux.reset(stream, EndReason.RESOURCE_LIMIT);
      this.onBegin(circuit, stream, data, peer, session, served);
    });
    startIdle();
  }

  private onBegin(circuit: ClientCircuit, stream: MuxStream, data: Uint8Array, peer: string, session: RatchetSession, served: { messages: boolean }): void {
    let target;
    try {
      target = decodeBegin(data);
    } catch {
      return circuit.mux.reset(stream, EndReason.MISC);
    }
    if (target.a === MESSAGES) {
      if (served.messages) return circuit.mux.reset(stream, EndReason.RESOURCE_LIMIT);
      served.messages = true;
      circuit.mux.accept(stream);
      // The handshake only claims who `peer` is: the stream becomes our conversation with that peer once a frame on
      // it authenticates (specs/messaging.md §8). Until then an impostor's stream can neither take our messages to
      // the peer nor block them.
      this.conversation(peer, circuit, stream, session, (conv) => this.bindAuthenticated(peer, conv));
      return;
    }
    const service = target.a === SERVICE ? this.options.services?.[target.p] : undefined;
    if (!service) return circuit.mux.reset(stream, EndReason.EXIT_POLICY);
    const socket = tcpConnect({ host: service.host, port: service.port });
    // A stream that ends (or whose circuit closes) before the connection is made takes the connection with it.
    const offEnd = stream.once('stream:end', () => socket.destroy());
    socket.once('connect', () => {
      offEnd();
      if (stream.state === 'closed') return void socket.destroy();
      circuit.mux.accept(stream);
      pipeSocket(stream, socket);
    });
    socket.once('error', () => {
      offEnd();
      circuit.mux.reset(stream, EndReason.CONNECT_REFUSED);
    });
  }

  /**
   * A conversation the peer opened has authenticated: our replies to the peer go over it, unless one of ours that
   * can send is still open.
   */
  private bindAuthenticated(peer: string, conv: Conversation): void {
    if (this.closed || conv.closed) return;
    this.offlineUntil.delete(peer);
    const have = this.conversations.get(peer);
    const mine = Promise.resolve(conv);
    if (!have) {
      this.file(peer, mine, conv);
      return;
    }
    void have.then(
      (c) => {
        if (!c.canSend && this.conversations.get(peer) === have && conv.canSend) this.file(peer, mine, conv);
      },
      () => undefined,
    );
  }

  /**
   * Files `p` as the conversation with `peer`; `conv`, once known, is unfiled when it closes. At maxConversations
   * the entry filed longest ago makes room (its conversation stays open; a send to that peer builds a new one).
   */
  private file(peer: string, p: Promise<Conversation>, conv?: Conversation): void {
    this.conversations.delete(peer); // re-inserted last
    const max = this.options.limits?.maxConversations ?? MAX_CONVERSATIONS;
    if (this.conversations.size >= max) this.conversations.delete(this.conversations.keys().next().value!);
    this.conversations.set(peer, p);
    conv?.onClosed(() => {
      if (this.conversations.get(peer) === p) this.conversations.delete(peer);
    });
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
    for (const bytes of await this.lookups.fetchFromAll('endpoint', locator, signalOption(signal))) {
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
    const view = this.client.directory.view;
    const stable = view.relays.filter((d) => view.rendezvousEligible(d) && !introRelays.has(d.fingerprint));
    const rps = stable.length > 0 ? stable : view.relays.filter((d) => d.caps.includes('rendezvous') && !introRelays.has(d.fingerprint));
    // A rendezvous point that cannot be reached (gone, but still in the directory) is replaced by another.
    let circuit: ClientCircuit | null = null;
    let rp: Descriptor | undefined;
    let buildError: unknown = new AlliumError('ERR_UNREACHABLE', 'no rendezvous point available');
    for (let attempt = 0; attempt < 3 && !circuit && rps.length; attempt++) {
      rp = weightedPick(rps, () => crypto().uniform(), 'middle', view);
      if (!rp) break;
      rps.splice(rps.indexOf(rp), 1);
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
    circuit.setPurpose('setup'); // only RENDEZVOUS_ESTABLISHED and RENDEZVOUS2 from the rendezvous point
    const close = (): void => circuit.close();
    signal?.addEventListener('abort', close, { once: true });
    try {
      const cookie = crypto().random(COOKIE_LEN);
      const established = circuit.waitFor(RelayCommand.RENDEZVOUS_ESTABLISHED, REPLY_TIMEOUT_MS, signalOption(signal));
      circuit.send({ command: RelayCommand.ESTABLISH_RENDEZVOUS, streamId: 0, data: encodeRv('establishRendezvous', { c: cookie }) });
      await established;
      const intros = crypto().shuffle([...descriptor.intro]);
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
    introCircuit.setPurpose('setup'); // only INTRODUCE_ACK
    const met = rpCircuit.waitFor(RelayCommand.RENDEZVOUS2, REPLY_TIMEOUT_MS, signalOption(signal));
    met.catch(() => undefined);
    try {
      const ack = introCircuit.waitFor(RelayCommand.INTRODUCE_ACK, REPLY_TIMEOUT_MS, signalOption(signal));
      introCircuit.send({ command: RelayCommand.INTRODUCE1, streamId: 0, data: encodeRv('introduce1', { k: ip.auth, p: sealed }) });
      const status = decodeRv('introduceAck', (await ack).data).s;
      if (status === 'busy') throw new AlliumError('ERR_UNREACHABLE', 'introduction point is rate limiting introductions to the endpoint');
      if (status !== 'ok') throw new AlliumError('ERR_UNREACHABLE', 'introduction point does not know the endpoint');
    } finally {
      introCircuit.close();
    }
    const reply = decodeRv('rendezvous2', (await met).data).h;
    if (reply.length !== 64) throw new AlliumError('ERR_HANDSHAKE_AUTH', 'rendezvous reply has the wrong length');
    const keys = ntorClientFinish(x, X, { identity: identityKey, onionKey: ip.enc }, reply.subarray(0, 32), reply.subarray(32));
    crypto().wipe(x);
    rpCircuit.addVirtualHop(keys);
    rpCircuit.setPurpose('general'); // replies on the streams we open to the endpoint
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

  /** A conversation on an accepted or opened message stream, closed with the messenger. */
  private conversation(peer: string, circuit: ClientCircuit, stream: MuxStream, session: RatchetSession, onAuthenticated?: (c: Conversation) => void): Conversation {
    const conv: Conversation = new Conversation(
      peer,
      circuit,
      stream,
      session,
      (m): Promise<boolean> => this.receive(m, () => conv.closed),
      (e) => this.emit('endpoint:error', e),
      this.options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
      onAuthenticated,
    );
    this.live.add(conv);
    const forget = (): void => void this.live.delete(conv);
    stream.once('stream:end', forget);
    circuit.once('circuit:close', forget);
    return conv;
  }

  /**
   * Hands an incoming message to the application: waits while a listen() queue is full, then emits it unless its id
   * was emitted lately from the same peer (a message sent again after its acknowledgement was lost, or the offline
   * copy of a message that also arrived live), and resolves once every listen() call running took it (at once when
   * none runs). Resolves false for a copy, and when the messenger closed or the source went (`gone`) first.
   */
  private async receive(m: IncomingMessage, gone: () => boolean): Promise<boolean> {
    const max = this.options.limits?.maxListenQueue ?? MAX_LISTEN_QUEUE;
    while (!this.closed && !gone() && [...this.listenQueues].some((q) => q.items.length >= max)) {
      await new Promise<void>((resolve) => {
        for (const w of this.roomWaiters) if (w.gone()) (this.roomWaiters.delete(w), w.resolve());
        this.roomWaiters.add({ resolve, gone });
      });
    }
    if (this.closed || gone() || !this.isNew(m)) return false;
    const queues = [...this.listenQueues];
    let holds = queues.length;
    const taken = new Promise<void>((resolve) => {
      const take = (): void => void (--holds === 0 && resolve());
      for (const q of queues) {
        q.items.push({ m, taken: take });
        q.wake?.();
      }
      if (holds === 0) resolve();
    });
    this.emit('message:received', m);
    await taken;
    return true;
  }

  /** Lets messages waiting for room in the listen() queues try again. */
  private roomFreed(): void {
    const waiting = [...this.roomWaiters];
    this.roomWaiters.clear();
    for (const w of waiting) w.resolve();
  }

  /** False when `m`'s id was emitted lately from the same peer; otherwise remembers it. */
  private isNew(m: IncomingMessage): boolean {
    if (this.closed) return false;
    if (m.id !== undefined) {
      let ids = this.recentIds.get(m.from);
      if (ids) this.recentIds.delete(m.from); // re-inserted below: the map is kept in order of last use
      else ids = new Set();
      this.recentIds.set(m.from, ids);
      if (this.recentIds.size > RECENT_ID_PEERS) this.recentIds.delete(this.recentIds.keys().next().value!);
      if (ids.has(m.id)) return false;
      ids.add(m.id);
      if (ids.size > RECENT_IDS_PER_PEER) ids.delete(ids.values().next().value!);
    }
    return true;
  }

  private conversationWith(key: string, signal: AbortSignal | undefined, clientAuth: ClientAuthKey | undefined): Promise<Conversation> {
    const have = this.conversations.get(key);
    if (have) {
      return have.then(
        (c) => {
          if (c.canSend) return c;
          // Closed, or (never filed here, but checked all the same) a session that cannot encrypt: build our own.
          if (this.conversations.get(key) === have) this.conversations.delete(key);
          return this.conversationWith(key, signal, clientAuth);
        },
        () => {
          if (this.conversations.get(key) === have) this.conversations.delete(key);
          return this.conversationWith(key, signal, clientAuth);
        },
      );
    }
    const p: Promise<Conversation> = (async () => {
      const { circuit, session } = await this.rendezvous(key, signal, this.identity, clientAuth);
      try {
        const stream = await this.openStream(circuit, MESSAGES, 1, signal);
        if (this.closed) throw new AbortedError('messenger closed');
        const conv = this.conversation(key, circuit, stream, session);
        conv.onClosed(() => {
          if (this.conversations.get(key) === p) this.conversations.delete(key);
        });
        return conv;
      } catch (e) {
        circuit.close();
        throw e;
      }
    })();
    this.file(key, p);
    p.catch(() => {
      if (this.conversations.get(key) === p) this.conversations.delete(key);
    });
    return p;
  }

  /**
   * Sends a message to an address. When the endpoint is listening: over an end-to-end session (double ratchet,
   * padded, in order), status 'delivered' once the recipient's Messenger acknowledges that it received and emitted
   * the message. A conversation lost before the acknowledgement (circuit or stream closed, or `ackTimeoutMs` without
   * one) is rebuilt once with a new rendezvous and the message sent again under the same id; the recipient drops
   * copies. When the endpoint is not listening (no descriptor, or the rendezvous fails), or the rebuilt conversation
   * is lost too, the message is sealed to the recipient and left in its mailbox, status 'stored-offline' (unless
   * `offline: 'never'`). Throws ERR_ADDRESS_* (bad address), ERR_CLIENT_AUTH (the endpoint requires a client key
   * we lack), ERR_UNREACHABLE, ERR_LINK_CLOSED (no acknowledgement, `offline: 'never'`), ERR_TIMEOUT, ERR_ABORTED,
   * ERR_LIMIT (too large: MAX_LIVE_MESSAGE_BYTES live, MAX_MAILBOX_MESSAGE_BYTES offline). After ERR_TIMEOUT or
   * ERR_ABORTED the message may still arrive (once).
   */
  async send(address: string, data: Uint8Array, options: SendOptions = {}): Promise<SendReceipt> {
    const dl = deadline(options.signal, options.timeoutMs, 'send');
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      throwIfAborted(dl.signal);
      const identityKey = parseAddress(address);
      const to = formatAddress(identityKey);
      const mode = options.offline ?? 'auto';
      // One id for every copy of this message: each live attempt and the offline one.
      const id = crypto().random(MESSAGE_ID_LEN);
      const knownOffline = mode === 'auto' && (this.offlineUntil.get(to) ?? 0) > Date.now() && !this.conversations.has(to);
      if (mode !== 'only' && !knownOffline) {
        try {
          const seq = await this.sendLive(to, id, data, dl.signal, options.clientAuth ?? this.options.clientAuth);
          const receipt = { status: 'delivered' as const, to, seq, id: toHex(id) };
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
      const deposit: { ttlMs?: number; signal?: AbortSignal; id: Uint8Array } = { id };
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
   * Hands a message to the conversation with `to` (built if need be) and resolves with its number there once the
   * peer acknowledges it. A conversation lost first is replaced (a new rendezvous) and the message sent again, up to
   * LIVE_ATTEMPTS conversations in all; then the last loss is thrown (ERR_LINK_CLOSED or ERR_TIMEOUT), as are the
   * errors of building a conversation.
   */
  private async sendLive(to: string, id: Uint8Array, data: Uint8Array, signal: AbortSignal | undefined, clientAuth: ClientAuthKey | undefined): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const conv = await this.conversationWith(to, signal, clientAuth);
      try {
        return await conv.send(id, data, signal);
      } catch (e) {
        if (this.closed) throw new AbortedError('messenger closed');
        const lost = isAlliumError(e) && (e.code === 'ERR_LINK_CLOSED' || e.code === 'ERR_TIMEOUT');
        if (!lost || attempt >= LIVE_ATTEMPTS) throw e;
      }
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
    this.introQueue.length = 0;
    for (const c of [...this.serviceCircuits]) c.close();
    for (const p of this.conversations.values()) void p.then((c) => c.close(new AbortedError('messenger closed'))).catch(() => undefined);
    this.conversations.clear();
    for (const c of this.live) c.close(new AbortedError('messenger closed'));
    this.live.clear();
    this.content.close();
    this.lookups.close();
    this.outbox.close();
    for (const stop of this.closers) stop();
    this.roomFreed();
  }
}

/**
 * Errors after which send() leaves the message in the mailbox: the endpoint is not there, did not answer, or the
 * conversation was lost (twice) before it acknowledged the message.
 */
function fallsBackToMailbox(e: unknown): boolean {
  return isAlliumError(e) && (e.code === 'ERR_UNREACHABLE' || e.code === 'ERR_TIMEOUT' || e.code === 'ERR_HANDSHAKE_AUTH' || e.code === 'ERR_LINK_CLOSED' || e.code === 'ERR_STREAM_FAILED');
}

function checkClients(keys: readonly Uint8Array[]): readonly Uint8Array[] {
  if (keys.length > MAX_AUTH_CLIENTS) throw new AlliumError('ERR_CONFIG', `at most ${MAX_AUTH_CLIENTS} authorised clients`);
  for (const k of keys) if (!(k instanceof Uint8Array) || k.length !== 32) throw new AlliumError('ERR_CONFIG', 'an authorised client key is a 32-byte X25519 public key');
  return keys.map((k) => Uint8Array.from(k));
}
