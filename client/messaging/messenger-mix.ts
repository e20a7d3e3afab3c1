/**
 * A Messenger's message mode (specs/mix.md §8): one MixClient over the link the AlliumClient keeps to its mix gateway
 * (a guard that is a mix relay, mix.md §8.1), with the mix address derived from the identity, and the messages boxed
 * under the pair's key (protocol/mix-message.ts) so that the recipient knows who wrote and no one else can tell.
 *
 * The link is the client's: when it closes, the next cell the MixClient would send reopens it (to the same gateway;
 * a gateway that changed is reported as ERR_MIX_UNREACHABLE, since the published card names the old one). Boxes that
 * do not open are counted (`rejected`) and reported, never delivered.
 *
 * Acknowledgements (mix.md §8.5): every message that opens is answered with an acknowledgement box, queued ahead of
 * our messages in our own payload stream (a slot that would otherwise carry drop cover); every message we send is
 * kept until its acknowledgement comes, sent again when a timer drawn from [2, 4] × expectedLatencyMs (CSPRNG),
 * started when its packet leaves, runs out, and given up (ERR_MIX_UNACKNOWLEDGED) after MIX_MAX_RETRANSMITS.
 */
import type { Identity } from '../../protocol/address.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { CellCommand } from '../../protocol/cell.js';
import type { CardMixAddress } from '../../protocol/contact-card.js';
import { openMixMessage, sealMixAck, sealMixMessage, mixSecretsOf } from '../../protocol/mix-message.js';
import type { AbortOptions } from '../../net/abort.js';
import type { Link } from '../../net/link.js';
import { crypto } from '../../crypto/index.js';
import { MIX_DELAY_MEAN_MS, MIX_LAYERS, MIX_POLL_RATE, MIX_SEND_RATE, MixClient, type MixClientInit, type MixClientStats } from './mix-mode.js';
import type { MessengerHost, MessengerMixSettings } from './types.js';

/** Retransmissions of a message without an acknowledgement before it is given up (MIX_MAX_RETRANSMITS, mix.md §8.5). */
export const MIX_MAX_RETRANSMITS = 3;
/** Messages kept awaiting their acknowledgement (MAX_MIX_PENDING). */
export const MAX_MIX_PENDING = 1000;
/** Mean retransmission timeout in units of expectedLatencyMs, drawn uniformly from [2, 4] (MIX_ACK_TIMEOUT_FACTOR). */
export const MIX_ACK_TIMEOUT_FACTOR = 3;

export interface MessengerMixHandlers {
  /** A message that opened: its sender's identity key, id and body (a copy of an id too: the caller drops copies). */
  message(from: Uint8Array, id: Uint8Array, body: Uint8Array): void;
  /** The mix address to acknowledge `from`'s messages to (its contact record's), if any. */
  mixAddressOf(from: Uint8Array): Promise<CardMixAddress | undefined>;
  /** A message we sent was acknowledged by its recipient `to`. */
  delivered(to: Uint8Array, id: Uint8Array): void;
  /** A message we sent was given up: ERR_MIX_UNACKNOWLEDGED. */
  failed(to: Uint8Array, id: Uint8Array, e: AlliumError): void;
  error(e: AlliumError): void;
}

/** Counters of acknowledgements (mix.md §8.5). */
export interface MessengerMixAckStats {
  /** Acknowledgements queued for messages that opened (copies included). */
  acksSent: number;
  /** Acknowledgements that ended a pending message. */
  acksReceived: number;
  /** Messages sent again after their timer ran out. */
  retransmitted: number;
  /** Messages given up (ERR_MIX_UNACKNOWLEDGED). */
  unacknowledged: number;
}

interface Pending {
  readonly toKey: Uint8Array;
  readonly to: CardMixAddress;
  readonly id: Uint8Array;
  readonly body: Uint8Array;
  /** Retransmissions so far. */
  retransmits: number;
  timer?: ReturnType<typeof setTimeout>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class MessengerMix {
  private mix: MixClient | null = null;
  private link: Link | null = null;
  private gateway: Uint8Array | null = null;
  private starting: Promise<void> | null = null;
  private reopening: Promise<void> | null = null;
  private closed = false;
  /** Message-mode messages that did not open (forged, damaged, not for us): dropped. */
  rejected = 0;
  readonly acks: MessengerMixAckStats = { acksSent: 0, acksReceived: 0, retransmitted: 0, unacknowledged: 0 };
  /** Our messages awaiting an acknowledgement, by message id (at most MAX_MIX_PENDING). */
  private readonly pending = new Map<string, Pending>();
  /** MixClient frame id of a queued copy → its message id (a copy's timer starts when it leaves). */
  private readonly queued = new Map<string, string>();

  constructor(
    private readonly host: MessengerHost,
    private readonly identity: Identity,
    private readonly settings: MessengerMixSettings,
    private readonly on: MessengerMixHandlers,
  ) {}

  /** The mean time from send() to the recipient's poll collecting it (mix.md §8.3). */
  get expectedLatencyMs(): number {
    const s = this.settings;
    return Math.round(
      (s.cover === false ? 0 : 1000 / (s.sendRate ?? MIX_SEND_RATE)) +
        (MIX_LAYERS + 2) * (s.delayMeanMs ?? MIX_DELAY_MEAN_MS) +
        1000 / (s.pollRate ?? MIX_POLL_RATE),
    );
  }

  /** Our mix address once running (mix.md §8.1). */
  get address(): CardMixAddress | undefined {
    return this.mix?.address;
  }

  get running(): boolean {
    return this.mix !== null && !this.closed;
  }

  get stats(): Readonly<MixClientStats> | undefined {
    return this.mix?.stats;
  }

  /** Opens the gateway link and starts the streams (idempotent). Throws ERR_MIX_UNREACHABLE, the dial's errors. */
  start(options: AbortOptions = {}): Promise<void> {
    this.starting ??= (async () => {
      if (!this.host.mixGateway || !this.host.mixRelays) throw new AlliumError('ERR_MIX_UNREACHABLE', 'this host offers no mix gateway');
      const g = await this.host.mixGateway(options);
      if (this.closed) return;
      this.gateway = g.identity;
      this.attach(g.link);
      const { inboxSecret, keys } = mixSecretsOf(this.identity);
      const init: MixClientInit = { gateway: g.identity, inboxSecret, keys, ...this.settings };
      const relays = this.host.mixRelays.bind(this.host);
      this.mix = new MixClient({ send: (kind, body) => this.sendCell(kind, body), mixes: () => relays() }, init);
      this.mix.on('mix:message', (data) => this.onData(data));
      this.mix.on('mix:sent', (frameId) => this.left(frameId));
      this.mix.start();
    })();
    this.starting.catch(() => (this.starting = null));
    return this.starting;
  }

  /**
   * Boxes `body` for `to` (its identity key and mix address), queues it for the payload stream and keeps it until
   * acknowledged (handlers.delivered) or given up (handlers.failed). Throws ERR_MIX_UNREACHABLE (not running),
   * LimitError MAX_MIX_MESSENGER_BYTES, ERR_LIMIT (MAX_MIX_SEND_QUEUE waiting, or MAX_MIX_PENDING unacknowledged).
   */
  send(toKey: Uint8Array, to: CardMixAddress, id: Uint8Array, body: Uint8Array): void {
    if (!this.mix || this.closed) throw new AlliumError('ERR_MIX_UNREACHABLE', 'message mode is not running');
    if (this.pending.size >= MAX_MIX_PENDING) throw new AlliumError('ERR_LIMIT', 'too many message-mode messages awaiting their acknowledgement');
    const p: Pending = { toKey, to, id, body, retransmits: 0 };
    this.queue(p);
    this.pending.set(hex(id), p);
  }

  /** Messages awaiting their acknowledgement. */
  get unacknowledged(): number {
    return this.pending.size;
  }

  close(): void {
    this.closed = true;
    this.mix?.stop();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.queued.clear();
  }

  /** Boxes `p` afresh (same id, new nonce) and queues it behind our queued messages. Throws as MixClient.send(). */
  private queue(p: Pending): void {
    const frameId = this.mix!.send(p.to, sealMixMessage(this.identity, p.toKey, p.id, p.body));
    this.queued.set(hex(frameId), hex(p.id));
  }

  /** A copy's packet left: its acknowledgement is awaited from now (mix.md §8.5). */
  private left(frameId: Uint8Array): void {
    const key = this.queued.get(hex(frameId));
    if (key === undefined) return; // an acknowledgement
    this.queued.delete(hex(frameId));
    const p = this.pending.get(key);
    if (!p || this.closed) return; // acknowledged meanwhile
    clearTimeout(p.timer);
    const ms = this.expectedLatencyMs * (MIX_ACK_TIMEOUT_FACTOR - 1 + 2 * crypto().uniform());
    p.timer = setTimeout(() => this.timedOut(key, p), ms);
  }

  private timedOut(key: string, p: Pending): void {
    if (this.closed || this.pending.get(key) !== p) return;
    if (p.retransmits >= MIX_MAX_RETRANSMITS) {
      this.pending.delete(key);
      this.acks.unacknowledged++;
      const sent = MIX_MAX_RETRANSMITS + 1;
      this.on.failed(p.toKey, p.id, new AlliumError('ERR_MIX_UNACKNOWLEDGED', `a message-mode message sent ${sent} times was never acknowledged`));
      return;
    }
    p.retransmits++;
    this.acks.retransmitted++;
    try {
      this.queue(p);
    } catch {
      // Our queue is full: this retransmission counts, and the timer tries again.
      p.timer = setTimeout(() => this.timedOut(key, p), this.expectedLatencyMs);
    }
  }

  private onData(data: Uint8Array): void {
    let m: ReturnType<typeof openMixMessage>;
    try {
      m = openMixMessage(this.identity, data);
    } catch (e) {
      this.rejected++;
      this.on.error(isAlliumError(e) ? e : new AlliumError('ERR_MESSAGE_AUTH', 'message-mode message refused', { cause: e }));
      return;
    }
    if (m.kind === 'ack') {
      const key = hex(m.id);
      const p = this.pending.get(key);
      // Only the message's recipient can end it; a late or repeated acknowledgement is ignored.
      if (!p || !crypto().equal(p.toKey, m.from)) return;
      clearTimeout(p.timer);
      this.pending.delete(key);
      this.acks.acksReceived++;
      this.on.delivered(p.toKey, p.id);
      return;
    }
    this.on.message(m.from, m.id, m.body);
    void this.acknowledge(m.from, m.id);
  }

  /** Answers a message that opened (a copy too: the first acknowledgement may be what was lost), ahead of our messages. */
  private async acknowledge(from: Uint8Array, id: Uint8Array): Promise<void> {
    let to: CardMixAddress | undefined;
    try {
      to = await this.on.mixAddressOf(from);
    } catch {
      return; // the contact book cannot be read: no acknowledgement, the sender retransmits
    }
    if (!to || !this.mix || this.closed) return;
    try {
      this.mix.send(to, sealMixAck(this.identity, from, id), { first: true });
      this.acks.acksSent++;
    } catch {
      /* our queue is full: the sender retransmits */
    }
  }

  private attach(link: Link): void {
    if (this.link === link) return;
    this.link = link;
    link.on('link:cell', (cell) => {
      if (cell.circId === 0 && cell.command === CellCommand.MIX_MAIL && this.link === link) this.mix?.onMail(cell.body);
    });
  }

  /** Whether the cell was handed to the link: false puts a real message back at the head of the queue (mix.md §5.1). */
  private sendCell(kind: 'packet' | 'poll', body: Uint8Array): boolean {
    const link = this.link;
    if (link?.isOpen) {
      try {
        link.sendCell(0, kind === 'packet' ? CellCommand.MIX : CellCommand.MIX_POLL, body);
        return true;
      } catch {
        /* closed under us: reopen below */
      }
    }
    // Nothing leaves in this slot (as when the gateway is out of the consensus); the link comes back for the next.
    if (this.closed || this.reopening || !this.host.mixGateway) return false;
    this.reopening = this.host
      .mixGateway()
      .then((g) => {
        if (this.closed) return;
        if (!this.gateway || !crypto().equal(g.identity, this.gateway))
          throw new AlliumError('ERR_MIX_UNREACHABLE', 'the mix gateway changed: the card names the old one');
        this.attach(g.link);
      })
      .catch((e: unknown) => this.on.error(isAlliumError(e) ? e : new AlliumError('ERR_MIX_UNREACHABLE', 'the mix gateway cannot be reached', { cause: e })))
      .finally(() => (this.reopening = null));
    return false;
  }
}
