/**
 * A conversation (specs/messaging.md §8): a rendezvous circuit with the peer as a virtual hop, a message stream on it
 * and a ratchet session. Frames are length-prefixed, padded and encrypted; every message carries a random id and is
 * acknowledged by the peer's Messenger once it has emitted it. What a peer can make us buffer is bounded by its
 * stream window: a cell is credited back only once every frame in it has been handed to the application (§8.4).
 */
import { concatBytes, toHex } from '../../protocol/bytes.js';
import { AbortedError, AlliumError, LimitError } from '../../protocol/errors.js';
import { decodeAttachment, type Attachment } from '../../protocol/attachment.js';
import {
  decodeFrame,
  encodeAckFrame,
  encodeHelloFrame,
  encodeMessageFrame,
  MAX_ACK_IDS,
  MAX_LIVE_MESSAGE_BYTES,
  type ConversationFrame,
  type FrameContent,
} from '../../protocol/message-frames.js';
import { pad, unpad } from '../../protocol/padding.js';
import { MAX_MESSAGE_BYTES, RATCHET_OVERHEAD, type RatchetSession } from '../../protocol/ratchet.js';
import { EndReason } from '../../protocol/stream-messages.js';
import type { AbortOptions } from '../../net/abort.js';
import type { ClientCircuit } from '../../net/circuit.js';
import type { MuxStream } from '../../net/stream-mux.js';
import { streamRefused } from './rendezvous.js';
import { asAlliumError, type IncomingMessage } from './types.js';

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
export class Conversation {
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
  /** True once our hello went out (specs/messaging.md §8.1: before our first frame of any other kind). */
  private helloSent = false;

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
    /**
     * Our hello (specs/messaging.md §8.1): `flags` we send ahead of our first frame, and `taken`, called with the
     * flags of each hello from the peer (it decrypted: the peer's own word).
     */
    private readonly hello: { readonly flags: number; readonly taken: (flags: number) => void } = { flags: 0, taken: () => undefined },
  ) {
    stream.on('stream:data', (d) => {
      this.uncredited.push(d.length);
      this.buf = concatBytes(this.buf, d);
      this.readFrames();
    });
    // A stream still opening (our first messages went with BEGIN, specs/streams.md §2.8) that ends was refused: what
    // we wrote was discarded unread, and is reported failed as the refusal, not as a lost conversation.
    let opened = stream.state === 'open';
    if (!opened) stream.once('stream:connected', () => (opened = true));
    stream.on('stream:end', (r) =>
      this.fail(opened ? new AlliumError('ERR_LINK_CLOSED', 'conversation closed before the peer acknowledged the message') : streamRefused(r)),
    );
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
    if (f.kind === 'hello') {
      this.hello.taken(f.flags);
      return;
    }
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
    let attachment: Attachment | undefined;
    if (f.attachment) {
      try {
        attachment = decodeAttachment(f.data);
      } catch (e) {
        // Never deliverable, so acknowledged at once: the sender is not made to resend it (specs/messaging.md §8.1).
        this.onError(asAlliumError(e, 'attachment descriptor refused'));
        if (this.acks.push(f.id) === 1) soon(() => this.flushAcks());
        return;
      }
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
    const m: IncomingMessage = {
      from: this.peer,
      data: f.data,
      seq: f.n,
      offline: false,
      id: toHex(f.id),
      ...(attachment ? { attachment } : {}),
      ...(f.group ? { group: true } : {}),
      ...(f.device ? { deviceEnvelope: true } : {}),
    };
    this.onMessage(m).then(handedOver, (e: unknown) => {
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

  /**
   * Pads, encrypts and writes one frame plaintext; our hello first, ahead of the first one and in the same write, so
   * that the two share cells (§8.1).
   */
  private writeFrame(plaintext: Uint8Array): void {
    if (!this.helloSent) {
      this.helloSent = true;
      const hello = this.encryptFrame(encodeHelloFrame(this.hello.flags));
      this.stream.write(concatBytes(hello, this.encryptFrame(plaintext)));
      return;
    }
    this.stream.write(this.encryptFrame(plaintext));
  }

  /** One frame: the padded, encrypted plaintext with its length prefix. */
  private encryptFrame(plaintext: Uint8Array): Uint8Array {
    const { message } = this.session.encrypt(pad(plaintext, RATCHET_OVERHEAD));
    const frame = new Uint8Array(4 + message.length);
    new DataView(frame.buffer).setUint32(0, message.length);
    frame.set(message, 4);
    return frame;
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
  send(id: Uint8Array, data: Uint8Array, options: AbortOptions & { content?: FrameContent } = {}): Promise<number> {
    const { signal } = options;
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
        this.writeFrame(encodeMessageFrame(n, id, data, options.content ?? 'data'));
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
