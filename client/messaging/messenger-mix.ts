/**
 * A Messenger's message mode (specs/mix.md §8): one MixClient over the link the AlliumClient keeps to its mix gateway
 * (a guard that is a mix relay, mix.md §8.1), with the mix address derived from the identity, and the messages boxed
 * under the pair's key (protocol/mix-message.ts) so that the recipient knows who wrote and no one else can tell.
 *
 * The link is the client's: when it closes, the next cell the MixClient would send reopens it. A gateway that changed
 * meanwhile (the guard expired, mix.md §8.6) is moved to: a new MixClient there with the same identity-derived
 * secrets takes over the queue, a poll-only MixClient drains the old inbox for MIX_INBOX_TTL, and every contact with
 * a mix address is sent an address box (kind 3) with the new address, kept until acknowledged as messages are. The
 * first message to a contact in a run is preceded by an address box too, so a contact that lacks our address can
 * acknowledge. Boxes that do not open are counted (`rejected`) and reported, never delivered. A message over
 * MAX_MIX_MESSENGER_BYTES goes in fragments (kind 5, mix.md §8.4), reassembled at the recipient in a table bounded per
 * sender and in all, whose entries time out, and acknowledged as a whole.
 *
 * Acknowledgements (mix.md §8.5): every message that opens is answered with an acknowledgement, queued in the
 * acknowledgement lane of our own payload stream (a slot that would otherwise carry drop cover), which alternates
 * with our own messages while both wait; acknowledgements to one contact that wait together are one packet (a
 * batch of up to MIX_ACK_BATCH ids, sealed when its slot comes); each contact has a token bucket of acknowledgements (MIX_ACK_BURST,
 * MIX_ACK_RATE), and a box over it is dropped unacknowledged (its sender retransmits); every message we send is
 * kept until its acknowledgement comes, sent again when a timer drawn from [2, 4] × expectedLatencyMs (CSPRNG),
 * started when its packet leaves, runs out, and given up (ERR_MIX_UNACKNOWLEDGED) after MIX_MAX_RETRANSMITS; an
 * address box given up so is reported (handlers.addressUnacknowledged).
 */
import type { Identity } from '../../protocol/address.js';
import { AlliumError, isAlliumError, LimitError } from '../../protocol/errors.js';
import { CellCommand } from '../../protocol/cell.js';
import type { CardMixAddress } from '../../protocol/contact-card.js';
import {
  MAX_MIX_FRAGMENTED_BYTES,
  MAX_MIX_MESSENGER_BYTES,
  MIX_ACK_BATCH,
  openMixMessage,
  sealMixAck,
  sealMixAckBatch,
  sealMixAddress,
  sealMixFragments,
  sealMixMessage,
  mixSecretsOf,
  type OpenedMixMessage,
} from '../../protocol/mix-message.js';
import { concatBytes } from '../../protocol/bytes.js';
import type { AbortOptions } from '../../net/abort.js';
import type { Link } from '../../net/link.js';
import { crypto } from '../../crypto/index.js';
import { MIX_DELAY_MEAN_MS, MIX_LAYERS, MIX_POLL_RATE, MIX_SEND_RATE, MixClient, type MixClientInit, type MixClientStats } from './mix-mode.js';
import type { MessengerHost, MessengerMixSettings } from './types.js';
import type { MixGatewayLink } from '../client.js';
import type { GroupStorage } from './group-store.js';
import { loadMixState, MAX_MIX_DRAINS, saveMixState, type MixState } from './mix-store.js';
import type { MixAddressVerdict } from './contacts.js';

/** Retransmissions of a message without an acknowledgement before it is given up (MIX_MAX_RETRANSMITS, mix.md §8.5). */
export const MIX_MAX_RETRANSMITS = 3;
/** Messages kept awaiting their acknowledgement (MAX_MIX_PENDING). */
export const MAX_MIX_PENDING = 1000;
/** Mean retransmission timeout in units of expectedLatencyMs, drawn uniformly from [2, 4] (MIX_ACK_TIMEOUT_FACTOR). */
export const MIX_ACK_TIMEOUT_FACTOR = 3;
/** How long a former gateway keeps mail, so how long its inbox is drained after a change (MIX_INBOX_TTL, mix.md §8.6). */
export const MIX_INBOX_TTL_MS = 3_600_000;
/** Contacts remembered as told our address in this run (MAX_MIX_ANNOUNCED); when full the set is emptied. */
export const MAX_MIX_ANNOUNCED = 10_000;
/** A contact's acknowledgement bucket: tokens at most (MIX_ACK_BURST, mix.md §8.5). */
export const MIX_ACK_BURST = 20;
/** Refill of a contact's acknowledgement bucket, tokens a second (MIX_ACK_RATE). */
export const MIX_ACK_RATE = 1;
/** Acknowledgement buckets kept (MAX_MIX_ACK_PEERS); refilled ones are removed when the table is full. */
export const MAX_MIX_ACK_PEERS = 1000;
/** Messages of one sender in the reassembly table at most (MIX_REASSEMBLY_PER_PEER, mix.md §8.4). */
export const MIX_REASSEMBLY_PER_PEER = 4;
/** Messages in the reassembly table at most (MAX_MIX_REASSEMBLY): at most 64 × MAX_MIX_FRAGMENTED_BYTES of chunks. */
export const MAX_MIX_REASSEMBLY = 64;
/**
 * Messages of senders that are no contact in the reassembly table at most, all such senders together
 * (MIX_REASSEMBLY_STRANGERS, mix.md §8.4): identities are free, so a bound per sender does not bound strangers, and
 * a stranger's entry never pushes out a contact's.
 */
export const MIX_REASSEMBLY_STRANGERS = 4;
/** Time from a message's first fragment to its removal from the reassembly table, complete or not (MIX_REASSEMBLY_TTL). */
export const MIX_REASSEMBLY_TTL_MS = 120_000;
/** Contacts remembered as reading fragments or not (MAX_MIX_PEER_MARKS, mix.md §8.4); the oldest is forgotten first. */
export const MAX_MIX_PEER_MARKS = 10_000;

export interface MessengerMixHandlers {
  /** A message that opened: its sender's identity key, id and body (a copy of an id too: the caller drops copies). */
  message(from: Uint8Array, id: Uint8Array, body: Uint8Array): void;
  /** The mix address to acknowledge `from`'s messages to (its contact record's), if any. */
  mixAddressOf(from: Uint8Array): Promise<CardMixAddress | undefined>;
  /** The contacts whose records hold a mix address (told our new one when the gateway changes, mix.md §8.6). */
  mixContacts(): Promise<readonly { key: Uint8Array; mix: CardMixAddress }[]>;
  /** Whether a contact record holds `from` as its current key (an address box from anyone else is dropped). */
  isContact(from: Uint8Array): Promise<boolean>;
  /**
   * An address box from `from` of address sequence `seq` (mix.md §8.6, ContactBook.setMix): its contact record's mix
   * address replaced ('applied'), its sequence raised ('unchanged'), or nothing changed ('copy', 'older', 'ahead');
   * false: `from` is no contact. 'applied', 'unchanged' and 'copy' are acknowledged, the others not.
   */
  addressChanged(from: Uint8Array, mix: CardMixAddress, seq: number): Promise<MixAddressVerdict | false>;
  /** A message we sent was acknowledged by its recipient `to`. */
  delivered(to: Uint8Array, id: Uint8Array): void;
  /**
   * A message we sent was given up: ERR_MIX_UNACKNOWLEDGED; or LimitError MAX_MIX_MESSENGER_BYTES, with `body`, when
   * a message in fragments was due to be sent again and its recipient's messenger had shown meanwhile that it does
   * not read fragments (mix.md §8.4).
   */
  failed(to: Uint8Array, id: Uint8Array, e: AlliumError, body?: Uint8Array): void;
  /**
   * Our address box to the contact `to` was given up after MIX_MAX_RETRANSMITS retransmissions (mix.md §8.6): it may
   * not be able to reach us in message mode.
   */
  addressUnacknowledged?(to: Uint8Array): void;
  error(e: AlliumError): void;
}

/** Counters of acknowledgements (mix.md §8.5). */
export interface MessengerMixAckStats {
  /** Boxes acknowledged (copies included), whether their acknowledgements leave alone or in a batch. */
  acksSent: number;
  /** Acknowledgement packets queued: one for each batch (mix.md §8.5), so at most acksSent. */
  ackPackets: number;
  /** Boxes from contacts over their acknowledgement rate: a message dropped, an address applied, neither acknowledged. */
  acksLimited: number;
  /** Acknowledgements that ended a pending message. */
  acksReceived: number;
  /** Messages sent again after their timer ran out. */
  retransmitted: number;
  /** Messages given up (ERR_MIX_UNACKNOWLEDGED). */
  unacknowledged: number;
  /** Address boxes queued (first message to a contact in a run, or a gateway change; mix.md §8.6). */
  addressesSent: number;
  /** Address boxes of ours acknowledged. */
  addressesAcknowledged: number;
  /** Address boxes of ours given up after MIX_MAX_RETRANSMITS retransmissions. */
  addressesUnacknowledged: number;
  /** Address boxes of ours sent again after their timer ran out. */
  addressesRetransmitted: number;
  /** Address boxes from contacts applied to their records. */
  addressesReceived: number;
  /**
   * Address boxes from contacts not newer than the last applied: a copy of the address held (acknowledged only), or
   * another address (an older box delayed, or a sender whose clock went back: neither applied nor acknowledged).
   */
  addressesOlder: number;
  /** Address boxes from contacts with a sequence more than MIX_SEQ_AHEAD past our clock: refused, not acknowledged. */
  addressesAhead: number;
  /** Gateway changes moved to. */
  gatewayChanges: number;
  /** Fragment boxes of ours queued (each message over MAX_MIX_MESSENGER_BYTES, each time it is sent; mix.md §8.4). */
  fragmentsSent: number;
  /** Messages of contacts reassembled from their fragments (copies completed again included). */
  reassembled: number;
  /** Entries removed from the reassembly table incomplete: timed out, or pushed out by a bound (mix.md §8.4). */
  reassemblyDropped: number;
  /**
   * Fragments dropped: their count is not that of the message's entry, or their sender is no contact and the table
   * is full of contacts' entries (mix.md §8.4).
   */
  fragmentsRefused: number;
}

/** A message being reassembled from its fragments (mix.md §8.4). */
interface Reassembly {
  readonly from: Uint8Array;
  /** Its sender was a contact when the entry was made (mix.md §8.4): strangers share MIX_REASSEMBLY_STRANGERS entries. */
  readonly contact: boolean;
  readonly count: number;
  readonly chunks: (Uint8Array | undefined)[];
  have: number;
  readonly timer: ReturnType<typeof setTimeout>;
}

interface Pending {
  /** A message of the application, or an address box (mix.md §8.6: its body is our address when it is sealed). */
  readonly kind: 'message' | 'address';
  readonly toKey: Uint8Array;
  /** Where it goes: re-targeted when the recipient's address box comes. */
  to: CardMixAddress;
  readonly id: Uint8Array;
  readonly body: Uint8Array;
  /** Retransmissions so far. */
  retransmits: number;
  timer?: ReturnType<typeof setTimeout>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Acknowledgements to one contact at one address waiting together for a slot (mix.md §8.5). */
interface AckBatch {
  /** The ids acknowledged, each once, at most MIX_ACK_BATCH. */
  readonly ids: Uint8Array[];
  readonly has: Set<string>;
  /** Every box it acknowledges came from a messenger that reads kind 4 (mix.md §8.5); if not, it holds one id. */
  readonly batches: boolean;
}

/** A former gateway's inbox, polled until its mail has expired (mix.md §8.6). */
interface Drain {
  readonly gateway: Uint8Array;
  readonly client: MixClient;
  link: Link | null;
  reopening: Promise<void> | null;
  /** When its mail has expired (Unix ms): the drain ends. */
  readonly until: number;
  timer: ReturnType<typeof setTimeout>;
  stopped: boolean;
}

export class MessengerMix {
  private mix: MixClient | null = null;
  private link: Link | null = null;
  private gateway: Uint8Array | null = null;
  private starting: Promise<void> | null = null;
  private reopening: Promise<void> | null = null;
  private closed = false;
  /** Message-mode messages that did not open (forged, damaged, not for us): dropped. */
  rejected = 0;
  readonly acks: MessengerMixAckStats = {
    acksSent: 0,
    ackPackets: 0,
    acksLimited: 0,
    acksReceived: 0,
    retransmitted: 0,
    unacknowledged: 0,
    addressesSent: 0,
    addressesAcknowledged: 0,
    addressesUnacknowledged: 0,
    addressesRetransmitted: 0,
    addressesReceived: 0,
    addressesOlder: 0,
    addressesAhead: 0,
    gatewayChanges: 0,
    fragmentsSent: 0,
    reassembled: 0,
    reassemblyDropped: 0,
    fragmentsRefused: 0,
  };
  /**
   * Messages being reassembled, by sender and id, oldest first (mix.md §8.4): at most MIX_REASSEMBLY_PER_PEER of one
   * sender and MAX_MIX_REASSEMBLY in all, each removed MIX_REASSEMBLY_TTL after its first fragment.
   */
  private readonly reassembly = new Map<string, Reassembly>();
  /** Whether each contact's last box carried the fragments mark (mix.md §8.4), oldest first; at most MAX_MIX_PEER_MARKS. */
  private readonly peerMarks = new Map<string, boolean>();
  /** Our messages awaiting an acknowledgement, by message id (at most MAX_MIX_PENDING). */
  private readonly pending = new Map<string, Pending>();
  /** MixClient frame id of a queued copy → its message id (a copy's timer starts when it leaves). */
  private readonly queued = new Map<string, string>();
  /** Our pending address box to each contact (its key → the box's id), so a newer one replaces it. */
  private readonly addressPending = new Map<string, string>();
  /**
   * The address sequence of the last address box we sealed (mix.md §8.6: strictly increasing, from the clock, and
   * kept in the "mix" record so that a clock that went back does not take it back).
   */
  private addressSeq = 0;
  /** The "mix" record was read (or there is no storage): until then, and after a read that failed, nothing is saved. */
  private stateLoaded = false;
  /** Saves run one after another; one asked for while another waits is that one (it writes the state of its time). */
  private saving: Promise<void> = Promise.resolve();
  private saveQueued = false;
  /** The state when message mode closed (saves still queued write it: close() stops the drains, not the record). */
  private finalState: MixState | null = null;
  /** Contacts told our current address in this run (at most MAX_MIX_ANNOUNCED). */
  private readonly announced = new Set<string>();
  /** Former gateways whose inboxes are still polled (at most MAX_MIX_DRAINS). */
  private readonly drains: Drain[] = [];
  /** Acknowledgement buckets by contact key (at most MAX_MIX_ACK_PEERS, mix.md §8.5). */
  private readonly ackBuckets = new Map<string, { tokens: number; at: number }>();
  /**
   * Open acknowledgement batches by contact key and address: the batch whose packet has not left (mix.md §8.5). At
   * most one for each entry of the acknowledgement lane (MAX_MIX_ACK_QUEUE); emptied when the lane is dropped.
   */
  private readonly ackBatches = new Map<string, AckBatch>();

  constructor(
    private readonly host: MessengerHost,
    private readonly identity: Identity,
    private readonly settings: MessengerMixSettings,
    private readonly on: MessengerMixHandlers,
    /** Where the gateway and the drains are kept across a restart (mix.md §8.6); none: a restart forgets them. */
    private readonly storage?: GroupStorage,
    /** A monotonic clock in ms for the acknowledgement buckets (mix.md §8.5): a wall clock stepping back must not empty them. */
    private readonly monotonic: () => number = () => performance.now(),
    /** How long an entry of the reassembly table is kept (MIX_REASSEMBLY_TTL, mix.md §8.4); shorter only in tests. */
    private readonly reassemblyTtlMs: number = MIX_REASSEMBLY_TTL_MS,
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

  /** Boxes waiting for a slot of the current client's payload stream: messages and address boxes, and acknowledgements. */
  get waiting(): number {
    return this.mix ? this.mix.waiting + this.mix.acksWaiting : 0;
  }

  /** Opens the gateway link and starts the streams (idempotent). Throws ERR_MIX_UNREACHABLE, the dial's errors. */
  start(options: AbortOptions = {}): Promise<void> {
    this.starting ??= (async () => {
      if (!this.host.mixGateway || !this.host.mixRelays) throw new AlliumError('ERR_MIX_UNREACHABLE', 'this host offers no mix gateway');
      const g = await this.host.mixGateway(options);
      if (this.closed) return;
      // Read first: the address sequence must be known before any address box is sealed (mix.md §8.6).
      const stored = await this.loadState();
      if (this.closed) return;
      this.gateway = g.identity;
      this.attach(g.link);
      this.mix = this.client(g.identity);
      this.mix.start();
      this.resume(g.identity, stored);
    })();
    this.starting.catch(() => (this.starting = null));
    return this.starting;
  }

  /**
   * With storage (mix.md §8.6): drains still due resume until their end, and a gateway that changed while we were down
   * is drained and our contacts told, as at a change while running. Then the state is saved.
   */
  private resume(gateway: Uint8Array, stored: MixState | undefined): void {
    if (!this.stateLoaded) return;
    const now = Date.now();
    for (const [g, until] of stored?.drains ?? []) if (until > now && !crypto().equal(g, gateway)) this.drain(g, null, until);
    if (stored && !crypto().equal(stored.gateway, gateway)) {
      this.acks.gatewayChanges++;
      this.drain(stored.gateway, null);
      void this.announceAll();
    }
    this.saveState();
  }

  /**
   * Reads the "mix" record (mix.md §8.6) and takes its address sequence. A storage that fails to read is reported
   * (handlers.error) and nothing is saved in this run: the record it holds is not overwritten by one that lacks it.
   */
  private async loadState(): Promise<MixState | undefined> {
    if (!this.storage) return undefined;
    try {
      const stored = await loadMixState(this.storage, this.identity);
      this.addressSeq = Math.max(this.addressSeq, stored?.addressSeq ?? 0);
      this.stateLoaded = true;
      return stored;
    } catch (e) {
      this.on.error(
        isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'the message-mode state could not be read; it is not saved in this run', { cause: e }),
      );
      return undefined;
    }
  }

  private currentState(): MixState | null {
    if (this.finalState) return this.finalState;
    if (!this.gateway) return null;
    return { gateway: this.gateway, drains: this.drains.map((d) => [d.gateway, d.until] as const), addressSeq: this.addressSeq };
  }

  /**
   * Saves the gateway, the drains and the address sequence (mix.md §8.6): one save at a time, a save asked for while
   * one waits being that one, which writes the state as it is when it runs — so the last to land is the latest. A
   * storage that fails costs only what a restart would.
   */
  private saveState(): void {
    if (!this.storage || this.closed || !this.stateLoaded || !this.gateway || this.saveQueued) return;
    const storage = this.storage;
    this.saveQueued = true;
    this.saving = this.saving.then(async () => {
      this.saveQueued = false;
      const state = this.currentState();
      if (state) await saveMixState(storage, this.identity, state).catch(() => undefined);
    });
  }

  /** Resolves when the saves asked for so far have landed (or failed). */
  flushed(): Promise<void> {
    return this.saving;
  }

  /** A MixClient at `gateway` with the identity's secrets (mix.md §8.1); with `drain`, a poll-only one for a former gateway's inbox. */
  private client(gateway: Uint8Array, drain?: () => Drain): MixClient {
    const { inboxSecret, keys } = mixSecretsOf(this.identity);
    const init: MixClientInit = { ...this.settings, gateway, inboxSecret, keys, ...(drain ? { cover: false, loopRate: 0 } : {}) };
    const relays = this.host.mixRelays!.bind(this.host);
    const send = drain
      ? (kind: 'packet' | 'poll', body: Uint8Array) => this.drainCell(drain(), kind, body)
      : (kind: 'packet' | 'poll', body: Uint8Array) => this.sendCell(kind, body);
    const c = new MixClient({ send, mixes: () => relays() }, init);
    c.on('mix:message', (data) => this.onData(data));
    if (!drain) c.on('mix:sent', (frameId) => this.left(frameId));
    return c;
  }

  /**
   * Boxes `body` for `to` (its identity key and mix address), queues it for the payload stream and keeps it until
   * acknowledged (handlers.delivered) or given up (handlers.failed); the first message to a contact in a run is
   * preceded by an address box (mix.md §8.6). A body over MAX_MIX_MESSENGER_BYTES goes in fragments (mix.md §8.4).
   * Throws ERR_MIX_UNREACHABLE (not running), LimitError MAX_MIX_FRAGMENTED_BYTES, LimitError MAX_MIX_MESSENGER_BYTES
   * (a longer body to a contact whose last box said its messenger does not read fragments), ERR_LIMIT
   * (MAX_MIX_SEND_QUEUE waiting, no room for every fragment, or MAX_MIX_PENDING unacknowledged).
   */
  send(toKey: Uint8Array, to: CardMixAddress, id: Uint8Array, body: Uint8Array): void {
    if (!this.mix || this.closed) throw new AlliumError('ERR_MIX_UNREACHABLE', 'message mode is not running');
    if (body.length > MAX_MIX_FRAGMENTED_BYTES)
      throw new LimitError('MAX_MIX_FRAGMENTED_BYTES', `a message in message mode is at most ${MAX_MIX_FRAGMENTED_BYTES} bytes`);
    if (body.length > MAX_MIX_MESSENGER_BYTES && this.readsFragments(toKey) === false)
      throw new LimitError(
        'MAX_MIX_MESSENGER_BYTES',
        `the contact's messenger does not read fragments: a message to it in message mode is at most ${MAX_MIX_MESSENGER_BYTES} bytes`,
      );
    if (this.pending.size >= MAX_MIX_PENDING) throw new AlliumError('ERR_LIMIT', 'too many message-mode messages awaiting their acknowledgement');
    const p: Pending = { kind: 'message', toKey, to, id, body, retransmits: 0 };
    if (!this.announced.has(hex(toKey))) this.announce(toKey, to);
    this.queue(p);
    this.pending.set(hex(id), p);
  }

  /**
   * Whether the contact `key`'s last box that opened in this run carried the fragments mark (mix.md §8.4); undefined
   * when none did. A message over MAX_MIX_MESSENGER_BYTES is refused to a contact for which it is false.
   */
  readsFragments(key: Uint8Array): boolean | undefined {
    return this.peerMarks.get(hex(key));
  }

  /** Messages being reassembled from their fragments (mix.md §8.4). */
  get reassembling(): number {
    return this.reassembly.size;
  }

  /** Former gateways whose inboxes are still polled (mix.md §8.6). */
  get draining(): number {
    return this.drains.length;
  }

  /**
   * Queues an address box (our current address) for `toKey` at `to`, replacing one still pending to it; nothing when
   * MAX_MIX_PENDING are pending or the queue is full (the contact learns the address from a newer card).
   */
  private announce(toKey: Uint8Array, to: CardMixAddress): void {
    const h = hex(toKey);
    const older = this.addressPending.get(h);
    if (older !== undefined) {
      clearTimeout(this.pending.get(older)?.timer);
      this.pending.delete(older);
      this.addressPending.delete(h);
    }
    if (!this.mix || this.pending.size >= MAX_MIX_PENDING) return;
    if (this.announced.size >= MAX_MIX_ANNOUNCED) this.announced.clear();
    const p: Pending = { kind: 'address', toKey, to, id: crypto().random(16), body: new Uint8Array(0), retransmits: 0 };
    try {
      this.queue(p);
    } catch {
      return;
    }
    this.announced.add(h);
    this.pending.set(hex(p.id), p);
    this.addressPending.set(h, hex(p.id));
    this.acks.addressesSent++;
  }

  /** Messages awaiting their acknowledgement (address boxes not counted). */
  get unacknowledged(): number {
    return this.pending.size - this.addressPending.size;
  }

  close(): void {
    this.finalState = this.currentState();
    this.closed = true;
    this.mix?.stop();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.queued.clear();
    this.addressPending.clear();
    this.ackBatches.clear();
    for (const r of this.reassembly.values()) clearTimeout(r.timer);
    this.reassembly.clear();
    for (const d of [...this.drains]) this.stopDrain(d); // a copy: stopDrain removes it from the list
  }

  /** Boxes `p` afresh (same id, new nonce) and queues it behind our queued messages. Throws as MixClient.send(). */
  private queue(p: Pending): void {
    const mix = this.mix!;
    let data: Uint8Array;
    if (p.kind === 'address') {
      this.addressSeq = Math.max(Date.now(), this.addressSeq + 1);
      data = sealMixAddress(this.identity, p.toKey, p.id, mix.address, this.addressSeq);
      this.saveState(); // the sequence is kept (mix.md §8.6); saves asked for meanwhile are one
    } else if (p.body.length > MAX_MIX_MESSENGER_BYTES) {
      // In fragments (mix.md §8.4): all queued or none, in order, one slot each.
      const boxes = sealMixFragments(this.identity, p.toKey, p.id, p.body);
      if (mix.room < boxes.length) throw new AlliumError('ERR_LIMIT', 'too many message-mode messages waiting');
      for (const box of boxes) this.queued.set(hex(mix.send(p.to, box)), hex(p.id));
      this.acks.fragmentsSent += boxes.length;
      return;
    } else data = sealMixMessage(this.identity, p.toKey, p.id, p.body);
    const frameId = mix.send(p.to, data);
    this.queued.set(hex(frameId), hex(p.id));
  }

  /** A copy's packet left: its acknowledgement is awaited from now (mix.md §8.5). */
  private left(frameId: Uint8Array): void {
    const key = this.queued.get(hex(frameId));
    if (key === undefined) return; // an acknowledgement
    this.queued.delete(hex(frameId));
    const p = this.pending.get(key);
    if (!p || this.closed) return; // acknowledged meanwhile
    // A message in fragments is awaited from its last fragment's leaving (mix.md §8.4).
    for (const k of this.queued.values()) if (k === key) return;
    clearTimeout(p.timer);
    const ms = this.expectedLatencyMs * (MIX_ACK_TIMEOUT_FACTOR - 1 + 2 * crypto().uniform());
    p.timer = setTimeout(() => this.timedOut(key, p), ms);
  }

  private timedOut(key: string, p: Pending): void {
    if (this.closed || this.pending.get(key) !== p) return;
    if (p.retransmits >= MIX_MAX_RETRANSMITS) {
      this.pending.delete(key);
      if (p.kind === 'address') {
        // No message of the application was lost: no 'message:failed', but the contact is named (mix.md §8.6).
        this.addressPending.delete(hex(p.toKey));
        this.acks.addressesUnacknowledged++;
        this.on.addressUnacknowledged?.(p.toKey);
        return;
      }
      this.acks.unacknowledged++;
      const sent = MIX_MAX_RETRANSMITS + 1;
      this.on.failed(p.toKey, p.id, new AlliumError('ERR_MIX_UNACKNOWLEDGED', `a message-mode message sent ${sent} times was never acknowledged`));
      return;
    }
    if (p.kind === 'message' && p.body.length > MAX_MIX_MESSENGER_BYTES && this.readsFragments(p.toKey) === false) {
      // Its recipient's messenger has shown since that it does not read fragments (mix.md §8.4): no copy would open,
      // so the message fails now, as a first send() would (the Messenger sends it over circuits when allowed).
      this.pending.delete(key);
      this.on.failed(
        p.toKey,
        p.id,
        new LimitError(
          'MAX_MIX_MESSENGER_BYTES',
          `the contact's messenger does not read fragments: a message to it in message mode is at most ${MAX_MIX_MESSENGER_BYTES} bytes`,
        ),
        p.body,
      );
      return;
    }
    p.retransmits++;
    if (p.kind === 'message') this.acks.retransmitted++;
    else this.acks.addressesRetransmitted++;
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
    // The fragments mark is remembered for contacts alone (mix.md §8.4): by each path once it knows the sender is one.
    if (m.kind === 'fragment') {
      void this.fragmentFrom(m);
      return;
    }
    if (m.kind === 'ack' || m.kind === 'acks') {
      // A batch is each of its ids checked as a single acknowledgement is (at most MIX_ACK_BATCH: the decoder refuses
      // more); a repeated id finds its box ended already (mix.md §8.5).
      let ours = false;
      for (const id of m.kind === 'ack' ? [m.id] : m.acked!) ours = this.ackOf(m.from, id) || ours;
      if (ours) this.markOf(m.from, m.readsFragments);
      return;
    }
    if (m.kind === 'address') {
      void this.addressFrom(m.from, m.id, m.mix!, m.seq!, m.readsBatches, m.readsFragments);
      return;
    }
    void this.messageFrom(m.from, m.id, m.body, m.readsBatches, m.readsFragments);
  }

  /**
   * Remembers whether the contact `from`'s last box carried the fragments mark (mix.md §8.4): at most
   * MAX_MIX_PEER_MARKS, oldest first out. Called only for a contact's box (an acknowledgement that ended a box of
   * ours pending to it, or a message or address box from a contact): a stranger's boxes, whose identities are free,
   * cannot push contacts' marks out.
   */
  private markOf(from: Uint8Array, readsFragments: boolean): void {
    const k = hex(from);
    this.peerMarks.delete(k);
    this.peerMarks.set(k, readsFragments);
    if (this.peerMarks.size > MAX_MIX_PEER_MARKS) this.peerMarks.delete(this.peerMarks.keys().next().value!);
  }

  /**
   * A fragment that opened (mix.md §8.4): kept in its sender's and id's entry of the reassembly table (bounded per
   * sender and in all, the oldest pushed out; each removed MIX_REASSEMBLY_TTL after its first fragment); the entry's
   * last chunk makes the message, handled as a message box of that sender and id (one token, delivered once,
   * acknowledged by its id).
   */
  private async fragmentFrom(m: OpenedMixMessage): Promise<void> {
    const f = m.fragment!;
    const key = hex(m.from) + hex(m.id);
    let e = this.reassembly.get(key);
    if (!e) {
      let contact: boolean;
      try {
        contact = await this.on.isContact(m.from);
      } catch {
        contact = false; // the contact book cannot be read: a stranger's allowance
      }
      if (this.closed) return;
      // Another fragment of the message may have made the entry meanwhile.
      e = this.reassembly.get(key) ?? this.newReassembly(key, m.from, f.count, contact);
      if (!e) {
        this.acks.fragmentsRefused++;
        return;
      }
    }
    if (f.count !== e.count) {
      this.acks.fragmentsRefused++;
      return;
    }
    if (e.chunks[f.index]) return; // a copy
    e.chunks[f.index] = f.chunk;
    if (++e.have < e.count) return;
    clearTimeout(e.timer);
    this.reassembly.delete(key);
    this.acks.reassembled++;
    void this.messageFrom(m.from, m.id, concatBytes(...(e.chunks as Uint8Array[])), m.readsBatches, m.readsFragments);
  }

  /**
   * A new entry of the reassembly table (mix.md §8.4), making room by the bounds: the sender's oldest entry when it
   * has MIX_REASSEMBLY_PER_PEER; for a stranger, the oldest stranger's entry when strangers have
   * MIX_REASSEMBLY_STRANGERS, and none when the table is full of contacts' entries (undefined: the fragment is
   * dropped); for a contact, when the table is full, the oldest stranger's entry, else the oldest entry.
   */
  private newReassembly(key: string, from: Uint8Array, count: number, contact: boolean): Reassembly | undefined {
    const mine = [...this.reassembly].filter(([, x]) => crypto().equal(x.from, from));
    if (mine.length >= MIX_REASSEMBLY_PER_PEER) this.dropReassembly(mine[0]![0]);
    const strangers = [...this.reassembly].filter(([, x]) => !x.contact);
    if (!contact && strangers.length >= MIX_REASSEMBLY_STRANGERS) this.dropReassembly(strangers.shift()![0]);
    if (this.reassembly.size >= MAX_MIX_REASSEMBLY) {
      if (strangers.length > 0) this.dropReassembly(strangers[0]![0]);
      else if (!contact) return undefined;
      else this.dropReassembly(this.reassembly.keys().next().value!);
    }
    const timer = setTimeout(() => this.dropReassembly(key), this.reassemblyTtlMs);
    timer.unref?.();
    const e: Reassembly = { from, contact, count, chunks: new Array<Uint8Array | undefined>(count), have: 0, timer };
    this.reassembly.set(key, e);
    return e;
  }

  /** Removes an incomplete entry of the reassembly table (timed out, or pushed out by a bound). */
  private dropReassembly(key: string): void {
    const e = this.reassembly.get(key);
    if (!e) return;
    clearTimeout(e.timer);
    this.reassembly.delete(key);
    this.acks.reassemblyDropped++;
  }

  /**
   * An acknowledgement from `from` of the box `id`: it ends our box of that id pending to `from`; an id of no pending
   * box, of one pending to another contact, or already ended, is ignored (mix.md §8.5). True when it ended one.
   */
  private ackOf(from: Uint8Array, id: Uint8Array): boolean {
    const key = hex(id);
    const p = this.pending.get(key);
    // Only the message's recipient can end it; a late or repeated acknowledgement is ignored.
    if (!p || !crypto().equal(p.toKey, from)) return false;
    clearTimeout(p.timer);
    this.pending.delete(key);
    if (p.kind === 'address') {
      this.addressPending.delete(hex(p.toKey));
      this.acks.addressesAcknowledged++;
      return true;
    }
    this.acks.acksReceived++;
    this.on.delivered(p.toKey, p.id);
    return true;
  }

  /**
   * A message box that opened: delivered and acknowledged; from a contact over its acknowledgement rate, dropped
   * (mix.md §8.5: its sender retransmits); from a sender we cannot acknowledge (no contact with a mix address),
   * delivered unacknowledged. `readsBatches`: the box's sender reads kind 4 (its nonce's mark, mix.md §8.5);
   * `readsFragments`: it reads kind 5, remembered when it is a contact with a mix address (mix.md §8.4).
   */
  private async messageFrom(from: Uint8Array, id: Uint8Array, body: Uint8Array, readsBatches: boolean, readsFragments: boolean): Promise<void> {
    let to: CardMixAddress | undefined;
    try {
      to = await this.on.mixAddressOf(from);
    } catch {
      to = undefined; // the contact book cannot be read: delivered, no acknowledgement (the sender retransmits)
    }
    if (this.closed) return;
    if (to) this.markOf(from, readsFragments);
    if (to && !this.takeAckToken(from)) {
      this.acks.acksLimited++;
      return;
    }
    this.on.message(from, id, body);
    if (to) this.acknowledge(from, id, to, readsBatches);
  }

  /**
   * Takes a token from `from`'s acknowledgement bucket (MIX_ACK_BURST, refilled at MIX_ACK_RATE); false when it is
   * empty, or when MAX_MIX_ACK_PEERS buckets are kept and none has refilled to be removed (mix.md §8.5).
   */
  private takeAckToken(from: Uint8Array): boolean {
    // A monotonic clock, and never less than nothing elapsed: a clock stepping back must not drain every bucket.
    const now = this.monotonic();
    const refilled = (b: { tokens: number; at: number }): number => Math.min(MIX_ACK_BURST, b.tokens + (Math.max(0, now - b.at) / 1000) * MIX_ACK_RATE);
    const key = hex(from);
    let b = this.ackBuckets.get(key);
    if (!b) {
      if (this.ackBuckets.size >= MAX_MIX_ACK_PEERS) for (const [k, x] of this.ackBuckets) if (refilled(x) >= MIX_ACK_BURST) this.ackBuckets.delete(k);
      if (this.ackBuckets.size >= MAX_MIX_ACK_PEERS) return false;
      b = { tokens: MIX_ACK_BURST, at: now };
      this.ackBuckets.set(key, b);
    }
    b.tokens = refilled(b);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /**
   * A contact's address box (mix.md §8.6). One from a key that is no contact is dropped unacknowledged; one from a
   * contact over its acknowledgement rate is dropped too, before anything is applied (its sender retransmits), so a
   * contact cannot make us rewrite the book faster than MIX_ACK_RATE. Then: a newer address goes to its record, our
   * messages pending to it go there, and the box is acknowledged there; the address held with a newer sequence
   * ('unchanged') or a copy of it ('copy') is acknowledged to it; another address not newer ('older') or a sequence
   * too far ahead ('ahead') changes nothing and is not acknowledged, so its sender does not take it as told.
   */
  private async addressFrom(from: Uint8Array, id: Uint8Array, mix: CardMixAddress, seq: number, readsBatches: boolean, readsFragments: boolean): Promise<void> {
    let r: MixAddressVerdict | false;
    try {
      if (!(await this.on.isContact(from)) || this.closed) return;
      this.markOf(from, readsFragments);
      if (!this.takeAckToken(from)) {
        this.acks.acksLimited++; // neither applied nor acknowledged: the sender retransmits (mix.md §8.5)
        return;
      }
      r = await this.on.addressChanged(from, mix, seq);
    } catch {
      return; // the contact book cannot be read or written: no acknowledgement, the sender retransmits
    }
    if (!r || this.closed) return;
    if (r === 'ahead') {
      this.acks.addressesAhead++;
      return;
    }
    if (r === 'older' || r === 'copy') this.acks.addressesOlder++;
    else this.acks.addressesReceived++;
    if (r === 'older') return;
    if (r === 'applied') for (const p of this.pending.values()) if (crypto().equal(p.toKey, from)) p.to = mix;
    this.acknowledge(from, id, mix, readsBatches);
  }

  /**
   * Answers a box that opened (a copy too: the first acknowledgement may be what was lost) in the acknowledgement
   * lane, which alternates with our own messages (mix.md §5.2): in the open batch to `from` at `to` while it has room,
   * else in a new batch, sealed when its slot comes — a kind 2 acknowledgement of one id, or a kind 4 batch — and
   * closed when its packet leaves (mix.md §8.5). A box whose sender has not shown that it reads kind 4
   * (`readsBatches` false: a messenger from before batches refuses them) neither joins a batch nor opens one that
   * another can join: its acknowledgement is a kind 2 of its own.
   */
  private acknowledge(from: Uint8Array, id: Uint8Array, to: CardMixAddress, readsBatches: boolean): void {
    if (!this.mix || this.closed) return;
    const key = hex(from) + hex(to.gateway) + hex(to.inbox) + hex(to.key);
    const open = this.ackBatches.get(key);
    if (open && open.batches && readsBatches && open.ids.length < MIX_ACK_BATCH) {
      if (!open.has.has(hex(id))) {
        open.ids.push(id);
        open.has.add(hex(id));
      }
      this.acks.acksSent++;
      return;
    }
    const b: AckBatch = { ids: [id], has: new Set([hex(id)]), batches: readsBatches };
    const close = (): void => {
      if (this.ackBatches.get(key) === b) this.ackBatches.delete(key);
    };
    this.ackBatches.set(key, b);
    try {
      // Sealed at each slot it is to leave in, with the ids it holds then; closed when it has left.
      const seal = (): Uint8Array => (b.ids.length === 1 ? sealMixAck(this.identity, from, b.ids[0]!) : sealMixAckBatch(this.identity, from, b.ids));
      this.mix.send(to, seal, { ack: true, left: close });
      this.acks.acksSent++;
      this.acks.ackPackets++;
    } catch {
      close(); // the lane is full: the sender retransmits
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
        if (!this.gateway || !crypto().equal(g.identity, this.gateway)) return this.moveTo(g);
        this.attach(g.link);
      })
      .catch((e: unknown) => this.on.error(isAlliumError(e) ? e : new AlliumError('ERR_MIX_UNREACHABLE', 'the mix gateway cannot be reached', { cause: e })))
      .finally(() => (this.reopening = null));
    return false;
  }

  /**
   * The gateway changed (mix.md §8.6): a MixClient at the new one with the same secrets takes over the queue (boxed
   * afresh, in order; queued acknowledgements are dropped, their senders retransmit), the old inbox is drained for
   * MIX_INBOX_TTL, and every contact with a mix address is sent an address box.
   */
  private async moveTo(g: MixGatewayLink): Promise<void> {
    const old = this.mix!;
    const oldGateway = this.gateway!;
    const oldLink = this.link;
    old.stop();
    this.ackBatches.clear(); // the old client's acknowledgement lane is dropped with it (mix.md §8.6)
    this.acks.gatewayChanges++;
    this.gateway = g.identity;
    this.attach(g.link);
    this.mix = this.client(g.identity);
    const waiting = [...new Set(this.queued.values())];
    this.queued.clear();
    for (const key of waiting) {
      const p = this.pending.get(key);
      if (!p) continue;
      try {
        this.queue(p);
      } catch {
        /* the new queue is full: its timer (if it left before) or none; it waits for the next retransmission */
      }
    }
    // Back to a gateway still drained (A → B → A): its inbox is the new client's own again.
    for (const d of this.drains.filter((x) => crypto().equal(x.gateway, g.identity))) this.stopDrain(d);
    this.drain(oldGateway, oldLink);
    this.announced.clear();
    this.mix.start();
    await this.announceAll();
  }

  /** Sends every contact with a mix address an address box with our current address (mix.md §8.6). */
  private async announceAll(): Promise<void> {
    let contacts: readonly { key: Uint8Array; mix: CardMixAddress }[];
    try {
      contacts = await this.on.mixContacts();
    } catch {
      return; // the book cannot be read: contacts learn the address from a newer card or our next message
    }
    if (this.closed) return;
    for (const c of contacts) this.announce(c.key, c.mix);
  }

  /** Polls the former gateway's inbox until its mail has expired (MIX_INBOX_TTL from now, or `until`). */
  private drain(gateway: Uint8Array, link: Link | null, until = Date.now() + MIX_INBOX_TTL_MS): void {
    for (const d of this.drains.filter((x) => crypto().equal(x.gateway, gateway))) this.stopDrain(d, false); // drained again from now
    if (this.drains.length >= MAX_MIX_DRAINS) this.stopDrain(this.drains[0]!, false);
    const timer = setTimeout(() => this.stopDrain(d), Math.max(0, until - Date.now()));
    timer.unref?.();
    const d: Drain = { gateway, link: null, reopening: null, until, timer, stopped: false, client: this.client(gateway, () => d) };
    if (link) this.attachDrain(d, link);
    this.drains.push(d);
    d.client.start();
    this.saveState();
  }

  private stopDrain(d: Drain, save = true): void {
    d.stopped = true;
    clearTimeout(d.timer);
    d.client.stop();
    const i = this.drains.indexOf(d);
    if (i >= 0) this.drains.splice(i, 1);
    if (save) this.saveState(); // not when closing: saveState does nothing then, and the record stays for the next start
  }

  private attachDrain(d: Drain, link: Link): void {
    d.link = link;
    link.on('link:cell', (cell) => {
      if (cell.circId === 0 && cell.command === CellCommand.MIX_MAIL && d.link === link && !d.stopped) d.client.onMail(cell.body);
    });
  }

  /** A poll of a former gateway's inbox; the link to it is reopened for the next while it is a listed mix relay. */
  private drainCell(d: Drain, kind: 'packet' | 'poll', body: Uint8Array): boolean {
    if (kind !== 'poll' || d.stopped) return false;
    const link = d.link;
    if (link?.isOpen) {
      try {
        link.sendCell(0, CellCommand.MIX_POLL, body);
        return true;
      } catch {
        /* closed under us: reopen below */
      }
    }
    if (this.closed || d.reopening || !this.host.mixLink) return false;
    d.reopening = this.host
      .mixLink(d.gateway)
      .then((l) => {
        if (!d.stopped && !this.closed) this.attachDrain(d, l);
      })
      .catch(() => undefined) // out of the consensus or unreachable: tried again at the next poll until the drain ends
      .finally(() => (d.reopening = null));
    return false;
  }
}
