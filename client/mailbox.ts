/**
 * Offline mailboxes, the client side (specs/messaging.md §9; the codec is protocol/mailbox.ts).
 *
 * - MailboxSender leaves a sealed message (sealed to the recipient's prekeys too when it publishes them: version 3,
 *   §9.6) in the first free slot of an inbox of the recipient for the current epoch
 *   — the per-contact inbox from us when the recipient is a pair (§9.1), else its first-contact inbox — at the
 *   slot's k holders, through circuits, with the proof of work the slot's index asks for (§9.3; solved in slices
 *   that yield to the event loop). It finds the first free slot in reading order with HEAD fetches, a window of slots
 *   at a time (never a slot above a free one, which readers might not reach; a slot is taken by the readers' rule,
 *   and one no holder answered fails the deposit), and then remembers where it stopped: the next slot, or the same
 *   one when nothing was stored there.
 * - MailboxCollector reads the identity's first-contact inbox and the per-contact inboxes of its pairs (contacts
 *   first, then other pairs in the room left) slot by slot until MAILBOX_SCAN_GAP slots in a row are free — a slot
 *   no holder answered is not free: the inbox is read again from there next pass, and the pass reports it; a slot is
 *   taken when an item of it opens or most of its answering holders have something, and the read position stops
 *   before the first free one — opens what it finds and hands the messages over in the senders'
 *   order, an epoch at a time and at most MAX_MAILBOX_COLLECT_BYTES of messages at a time, so a spammed inbox costs
 *   a bounded amount of memory. It only reads: nothing is deleted (items expire at the relays), so collecting
 *   changes nothing an observer of the slots could see or time. Each pass uses fresh circuits (a new ContentClient,
 *   which builds none ahead: it has no next operation to build them for once its pass ends), never the endpoint's
 *   own, so holders cannot link the mailbox to the endpoint descriptor it publishes; and within a pass, each inbox's
 *   reads (all its epochs and slots) are one content session, on circuits no other inbox uses (§9.5 "Circuits").
 *   A deposit's probe and stores are one session too.
 *
 * Holders of a slot may disagree when two senders race for it; a sender that meets `occupied` at some holder
 * also stores the same message (same id) in the next slot, and the collector drops copies by id.
 */
import { crypto } from '../crypto/index.js';
import { toHex } from '../protocol/bytes.js';
import type { Identity } from '../protocol/address.js';
import type { ContentStatus } from '../protocol/content-messages.js';
import { AlliumError, CryptoError, isAlliumError, LimitError, ProtocolError, throwIfAborted } from '../protocol/errors.js';
import {
  decodeMailboxDeletion,
  encodeMailboxItem,
  inboxKey,
  mailboxEpochAt,
  MAILBOX_CLOCK_SKEW_MS,
  MAILBOX_EPOCH_SECONDS,
  MAILBOX_ID_LEN,
  MAX_MAILBOX_MESSAGE_BYTES,
  MAX_MAILBOX_SLOTS,
  MAX_MAILBOX_TTL_MS,
  mailboxPowBinding,
  openMailboxItem,
  pairInboxKey,
  pairSecret,
  sealMailboxItem,
  slotLocator,
  type ItemPrekeys,
  type PrekeySecretLookup,
} from '../protocol/mailbox.js';
import { anySignal, signalOption, type AbortOptions } from '../net/abort.js';
import type { CircuitSource } from './client.js';
import { ContentClient, type ContentOptions, type ContentSession } from './content.js';
import { solveIntroPow } from './messaging/pow-solver.js';
import { choosePrekeys, fetchPrekeyRecord, PrekeyPublishers } from './prekeys.js';

/** Free slots in a row after which a collector stops reading an inbox. */
export const MAILBOX_SCAN_GAP = 3;
/** The most slots a sender's probe for the first free slot asks about at once (windows of 1, 2, 4, then this). */
const FRONTIER_WINDOW = 8;
/** Default life of an offline message. */
export const DEFAULT_MAILBOX_TTL_MS = MAX_MAILBOX_TTL_MS;
/** Message ids a collector remembers to drop copies and replays. */
const MAX_REMEMBERED_IDS = 10_000;
/** Inboxes whose read position a collector remembers (each epoch's first-contact and per-contact inboxes). */
const MAX_FRONTIERS = 4096;
/** Pairs whose last read a collector remembers (a contact book holds at most MAX_CONTACTS, 10 000). */
const MAX_PAIR_READS = 16_384;
/** Message bytes a collector holds before it hands them over (specs/limits.md MAX_MAILBOX_COLLECT_BYTES). */
export const MAX_MAILBOX_COLLECT_BYTES = 4 * 1024 * 1024;
/**
 * Epochs a pass reads at once (specs/messaging.md §9.5): a first pass reads about nine epochs, most of them empty, and
 * one after the other they cost a round of slot reads each before the newest, where the mail is, is reached.
 */
export const MAILBOX_READ_AHEAD = 4;
/**
 * Windows of slots of one inbox a pass reads at once across its epochs (specs/messaging.md §9.5 "Circuits"): the
 * inbox's reads share one operation's circuits, and three windows (3 × MAILBOX_SCAN_GAP slots × 3 holders = 27
 * small FETCHes on 3 circuits, 9 a circuit) stay under a forwarder's MAX_FORWARDS_PER_CIRCUIT (12), which the four
 * epochs read at once (36 FETCHes) would reach. One of them is the newest epoch's, which never waits for the older
 * epochs' (its mail is what a returning owner waits for); the older epochs read ahead share the other two.
 */
export const MAILBOX_WINDOWS_PER_INBOX = 3;
/**
 * Inboxes whose circuits a pass keeps open at once (specs/messaging.md §9.5 "Circuits"): a pass reads every inbox
 * of an epoch before the next, so each inbox's circuits would otherwise stay open for the whole pass — with
 * MAX_MAILBOX_PAIRS pairs, about 770 circuits from one client at once, most of a guard's MAX_CIRCUITS_PER_BLOCK
 * (1024) for its address block. Past this bound the inbox read least recently, with no read in flight, has its
 * circuits closed, and gets new ones at its next read (more isolation, not less).
 */
export const MAILBOX_OPEN_INBOXES = 16;
/** Pairs a messenger keeps, and per-contact inboxes a pass reads (specs/limits.md MAX_MAILBOX_PAIRS). */
export const MAX_MAILBOX_PAIRS = 256;

interface Found {
  readonly m: CollectedMessage;
}

export interface DepositResult {
  /** The message id (hex), which the recipient sees too. */
  readonly id: string;
  readonly epoch: number;
  readonly slot: number;
  /** When relays drop the message (Unix ms). */
  readonly expires: number;
  /** True when it went to the per-contact inbox, false for the first-contact inbox. */
  readonly pairwise: boolean;
  /** True when it was sealed to the recipient's prekeys too (a version 3 item: forward secrecy, §9.6). */
  readonly prekeys: boolean;
}

export interface CollectedMessage {
  readonly from: Uint8Array;
  readonly data: Uint8Array;
  /** True when `data` is an attachment descriptor (specs/messaging.md §12.1). */
  readonly attachment: boolean;
  /** True when `data` is a group envelope (specs/messaging.md §13.2). */
  readonly group: boolean;
  /** True when `data` is a device envelope (specs/messaging.md §14.2). */
  readonly device: boolean;
  readonly t: number;
  readonly n: number;
  readonly id: string;
  readonly epoch: number;
  readonly slot: number;
}

/** Leaves sealed messages in recipients' inboxes. */
export class MailboxSender {
  private readonly content: ContentClient;
  /** inbox (hex) → the next slot to try. */
  private readonly next = new Map<string, number>();
  /** recipient → the counter of the next message to it. */
  private readonly counters = new Map<string, number>();
  /** Recipients known to publish prekeys, with the newest edition seen (§9.6; kept across restarts with a storage). */
  private readonly publishers: PrekeyPublishers;

  /**
   * `content`: the options of its ContentClient (measurement only: `directForMeasurement`). `prekeys`: look up the
   * recipient's prekey record and seal to it (default true; specs/messaging.md §9.6). `publishers`: the memory of
   * recipients that publish prekeys (default: one in memory; the messenger gives one kept in its prekey storage).
   */
  constructor(
    client: CircuitSource,
    private readonly identity: Identity,
    content: ContentOptions = {},
    private readonly options: { prekeys?: boolean; publishers?: PrekeyPublishers } = {},
  ) {
    this.content = new ContentClient(client, content);
    this.publishers = options.publishers ?? new PrekeyPublishers();
  }

  /**
   * Seals `data` to `recipient` and stores it in a free slot. `id` (MAILBOX_ID_LEN bytes, default random) names the
   * message: a message first tried over a live conversation keeps that conversation's id, so the recipient drops
   * whichever copy arrives second. `pairwise`: the recipient is a pair (specs/messaging.md §9.1), so the message goes
   * to the per-contact inbox from us, which only the two of us can find; else to its first-contact inbox. Either way
   * the item is sealed to the recipient's prekeys when it publishes them (version 3). `publishesPrekeys`: the
   * recipient said it publishes prekeys (its contact card, §11.1), so no record found means one withheld: never a
   * version 2 item. `onPrekeyRecord`: awaited when the recipient's prekey record is found, before anything is sealed
   * (the messenger marks a contact's `prekeys` there, §11.3), its errors thrown. Throws ERR_LIMIT (MAX_MAILBOX_MESSAGE_BYTES, or MAX_MAILBOX_SLOTS when today's
   * inbox is full), ERR_QUOTA, ERR_UNREACHABLE (no holder accepted, or no holder answered a probe for the first free
   * slot: nothing is stored), ERR_PREKEYS_UNAVAILABLE (a recipient known to publish
   * prekeys whose record is withheld, or whose item sealed to them every holder refused: never sent as version 2, §9.6),
   * ERR_ABORTED, ERR_CONFIG (bad ttl or id), and the errors of a stored memory of publishers that does not open.
   */
  async deposit(
    recipient: Uint8Array,
    data: Uint8Array,
    options: {
      ttlMs?: number;
      id?: Uint8Array;
      attachment?: boolean;
      group?: boolean;
      device?: boolean;
      pairwise?: boolean;
      publishesPrekeys?: boolean;
      onPrekeyRecord?: (options: AbortOptions) => Promise<unknown>;
    } & AbortOptions = {},
  ): Promise<DepositResult> {
    if (options.id !== undefined && options.id.length !== MAILBOX_ID_LEN) {
      throw new AlliumError('ERR_CONFIG', `a message id is ${MAILBOX_ID_LEN} bytes`);
    }
    if (data.length > MAX_MAILBOX_MESSAGE_BYTES) {
      throw new LimitError('MAX_MAILBOX_MESSAGE_BYTES', `a message of ${data.length} bytes does not fit a mailbox item`);
    }
    const ttl = options.ttlMs ?? DEFAULT_MAILBOX_TTL_MS;
    if (!Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_MAILBOX_TTL_MS) {
      throw new AlliumError('ERR_CONFIG', `an offline message lives 1 ms to ${MAX_MAILBOX_TTL_MS} ms`);
    }
    const now = Date.now();
    const exp = now + Math.floor(ttl);
    const epoch = mailboxEpochAt(now);
    const pairwise = options.pairwise === true;
    const inbox = pairwise ? pairInboxKey(pairSecret(this.identity, recipient), this.identity.publicKey, epoch) : inboxKey(recipient, epoch);
    const who = toHex(recipient);
    const key = toHex(inbox);
    const n = this.counters.get(who) ?? 0;
    this.counters.set(who, n + 1);
    const id = options.id ? Uint8Array.from(options.id) : crypto().random(MAILBOX_ID_LEN);
    // Sealed to the recipient's prekeys when it publishes them (version 3, §9.6), in either kind of inbox.
    let prekeys: ItemPrekeys | null = null;
    if (this.options.prekeys !== false) {
      prekeys = await this.prekeysOf(recipient, now, options.publishesPrekeys === true, options.signal);
      if (prekeys && options.onPrekeyRecord) await options.onPrekeyRecord(signalOption(options.signal));
    }
    // The deposit's probe and stores are one operation (§9.5 "Circuits"): the slots of one inbox, already linkable to
    // whoever knows its key, on circuits of their own, closed when the deposit ends.
    const session = this.content.session();
    try {
      return await this.depositIn(session, inbox, key, { recipient, data, id, n, now, exp, epoch, pairwise, prekeys }, options);
    } finally {
      session.close();
    }
  }

  /** deposit() from the first free slot on, on `session`'s circuits. */
  private async depositIn(
    session: ContentSession,
    inbox: Uint8Array,
    key: string,
    m: {
      recipient: Uint8Array;
      data: Uint8Array;
      id: Uint8Array;
      n: number;
      now: number;
      exp: number;
      epoch: number;
      pairwise: boolean;
      prekeys: ItemPrekeys | null;
    },
    options: { attachment?: boolean; group?: boolean; device?: boolean } & AbortOptions,
  ): Promise<DepositResult> {
    const { recipient, data, id, n, now, exp, epoch, pairwise, prekeys } = m;
    let slot = this.next.get(key) ?? (await this.frontier(inbox, session, options.signal));
    let stored: number | null = null;
    let statuses: ContentStatus[] = [];
    for (; slot < MAX_MAILBOX_SLOTS; slot++) {
      throwIfAborted(options.signal);
      const sealed = this.seal(prekeys, {
        sender: this.identity,
        recipient,
        inbox,
        index: slot,
        exp,
        t: now,
        n,
        data,
        id,
        attachment: options.attachment === true,
        group: options.group === true,
        device: options.device === true,
      });
      // The slot's price (specs/messaging.md §9.3): effort(slot) hashes on average, solved in slices.
      const w = await solveIntroPow(sealed.slot, sealed.effort, mailboxPowBinding(sealed.item), signalOption(options.signal));
      statuses = await this.content.storeAll('mailbox', sealed.slot, encodeMailboxItem(sealed.item, w), { session, ...signalOption(options.signal) });
      // Every holder refused the version 3 item (`invalid`: relays that predate it, or holders that force a
      // downgrade). The recipient publishes prekeys, so no version 2 item goes in its place (§9.6).
      if (prekeys && statuses.length > 0 && statuses.every((s) => s === 'invalid')) {
        if (stored !== null) break; // a copy is already stored in an earlier slot
        throw new ProtocolError('ERR_PREKEYS_UNAVAILABLE', "every holder of the slot refused the item sealed to the recipient's prekeys");
      }
      const accepted = statuses.some((s) => s === 'ok' || s === 'exists');
      if (accepted && stored === null) stored = slot;
      // Clean when no holder had something else there; otherwise another sender raced us: a copy goes next door.
      if (accepted && !statuses.includes('occupied')) break;
      if (!accepted && !statuses.includes('occupied')) break;
    }
    if (slot < MAX_MAILBOX_SLOTS) {
      // Hints are per inbox and epoch; the oldest go before the map grows (a lost hint costs a few HEAD fetches).
      // After a slot that accepted the message, the next one; after a failure, the same slot: nothing went in, and a
      // free slot left below the next deposit would hold readers there (specs/messaging.md §9.5).
      const accepted = statuses.some((s) => s === 'ok' || s === 'exists');
      if (this.next.size >= 1024) this.next.delete(this.next.keys().next().value!);
      this.next.delete(key);
      this.next.set(key, accepted ? slot + 1 : slot);
    }
    if (stored !== null) return { id: toHex(id), epoch, slot: stored, expires: exp, pairwise, prekeys: prekeys !== null };
    if (slot >= MAX_MAILBOX_SLOTS) throw new LimitError('MAX_MAILBOX_SLOTS', "the recipient's inbox is full for this epoch");
    if (statuses.includes('quota')) throw new AlliumError('ERR_QUOTA', 'every holder of the mailbox slot is full');
    throw new AlliumError('ERR_UNREACHABLE', `no holder accepted the offline message (${statuses.join(', ')})`);
  }

  /**
   * The prekeys to seal an item to `recipient` (§9.6), or null for a recipient that publishes none as far as we know.
   * Throws ERR_PREKEYS_UNAVAILABLE when no holder gives a record that opens although the recipient said it publishes
   * them (`required`: its card; or a conversation's hello, remembered) or published one for this epoch (a record of an
   * edition we saw covers it): never a silent version 2.
   */
  private async prekeysOf(recipient: Uint8Array, now: number, required: boolean, signal?: AbortSignal): Promise<ItemPrekeys | null> {
    await this.publishers.load(signalOption(signal));
    const newest = this.publishers.newestEdition(recipient);
    const found = await fetchPrekeyRecord(this.content, recipient, now, signalOption(signal));
    if (!found) {
      if (required || this.publishers.saidPublishes(recipient) || this.publishers.publishedFor(recipient, now)) {
        throw new ProtocolError('ERR_PREKEYS_UNAVAILABLE', 'the recipient publishes prekeys, but no holder gave a record for this epoch');
      }
      return null;
    }
    // Remembered (and saved) before anything is sealed: a restart from here on knows the recipient publishes.
    await this.publishers.seen(recipient, found.edition, signalOption(signal));
    return choosePrekeys(found, now, newest);
  }

  /**
   * Seals to the prekeys when there are any; a record whose keys give no shared secret (a small-order key:
   * ERR_KEY_FORMAT) is dropped and the item sealed as version 2.
   */
  private seal(prekeys: ItemPrekeys | null, o: Parameters<typeof sealMailboxItem>[0]): ReturnType<typeof sealMailboxItem> {
    if (prekeys) {
      try {
        return sealMailboxItem({ ...o, prekeys });
      } catch (e) {
        if (!isAlliumError(e) || e.code !== 'ERR_KEY_FORMAT') throw e;
      }
    }
    return sealMailboxItem(o);
  }

  /**
   * Remembers that `recipient` said it publishes prekeys (a hello with PREKEYS in a conversation, specs/messaging.md
   * §8.1): from now on it is never written version 2 (kept across restarts with the memory's storage). Throws the
   * errors of a stored memory that does not open, and the storage's.
   */
  async saidPublishes(recipient: Uint8Array, options: AbortOptions = {}): Promise<void> {
    await this.publishers.said(recipient, options);
  }

  /**
   * True when the slot is taken as readers count it (§9.5): the holders answering with something are at least as many
   * as those answering without. Throws ERR_UNREACHABLE when no holder answered (not known to be free), ERR_ABORTED.
   */
  private async occupied(inbox: Uint8Array, slot: number, session: ContentSession, signal?: AbortSignal): Promise<boolean> {
    const { copies, answered } = await this.content.fetchAnswers('mailbox', slotLocator(inbox, slot), { head: true, session, ...signalOption(signal) });
    if (answered === 0) throw new AlliumError('ERR_UNREACHABLE', `no holder of slot ${slot} of the inbox answered: its first free slot is not known`);
    return copies.length >= answered - copies.length;
  }

  /**
   * The first free slot in the order readers read (specs/messaging.md §9.5): slots from 0 upwards, in windows of 1,
   * 2, 4, 8 and then 8 slots probed at once. Never a slot above a free one: an item written out of turn (anyone may pay
   * a later slot's work) would otherwise send us over free slots, past where readers stop. MAX_MAILBOX_SLOTS when
   * none is free. Throws ERR_UNREACHABLE when no holder answered a slot below the first free one, ERR_ABORTED.
   */
  private async frontier(inbox: Uint8Array, session: ContentSession, signal?: AbortSignal): Promise<number> {
    let size = 1;
    for (let start = 0; start < MAX_MAILBOX_SLOTS; start += size, size = Math.min(size * 2, FRONTIER_WINDOW)) {
      const window = Array.from({ length: Math.min(size, MAX_MAILBOX_SLOTS - start) }, (_, i) => start + i);
      // Settled all before any is judged: a rejection is thrown in slot order, after the free slots below it.
      const taken = await Promise.allSettled(window.map((s) => this.occupied(inbox, s, session, signal)));
      for (let i = 0; i < window.length; i++) {
        const t = taken[i]!;
        if (t.status === 'rejected') throw t.reason;
        if (!t.value) return window[i]!;
      }
    }
    return MAX_MAILBOX_SLOTS;
  }

  close(): void {
    this.content.close();
  }
}

/**
 * The peers whose per-contact inboxes a collector reads (specs/messaging.md §9.5): `contacts` come first, every one
 * in turn; `others` (pairs that are not contacts) take the room left in a pass.
 */
export interface MailboxPairs {
  readonly contacts: readonly Uint8Array[];
  readonly others: readonly Uint8Array[];
}

/** One inbox a pass reads: the first-contact inbox (`peer` null) or the per-contact inbox from `peer`. */
interface InboxRef {
  readonly key: Uint8Array;
  readonly peer: Uint8Array | null;
}

/** One inbox's reads in a pass: its session (made at its first read), its epochs left, its older epochs' windows in flight. */
interface InboxRead {
  session: ContentSession | null;
  left: number;
  /** Its reads in flight (an inbox with none may have its session closed, MAILBOX_OPEN_INBOXES). */
  busy: number;
  readonly gate: Gate;
}

/** At most `n` calls of run() at once; the others wait their turn, in order. */
class Gate {
  private busy = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly n: number) {}

  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.busy >= this.n) await new Promise<void>((r) => this.queue.push(r));
    else this.busy++;
    try {
      return await f();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.busy--;
    }
  }
}

/** Collects an identity's offline messages. */
export class MailboxCollector {
  /** inbox (hex) → the first slot not yet read. */
  private readonly frontier = new Map<string, number>();
  /**
   * inbox (hex) → a bitmap of the slots past its read position found taken (specs/messaging.md §9.5): not read again
   * while a free slot below them holds the read position. At most MAX_FRONTIERS inboxes, MAX_MAILBOX_SLOTS / 8 bytes each.
   */
  private readonly takenAhead = new Map<string, Uint8Array>();
  private readonly seen = new Set<string>();
  private lastPass: number | null = null;
  /** Pair (hex identity key) → when its per-contact inbox was last read (the start of that pass). */
  private readonly pairRead = new Map<string, number>();
  private running: Promise<number> | null = null;

  constructor(
    private readonly client: CircuitSource,
    private readonly identity: Identity,
    /**
     * `maxCollectBytes`: message bytes held before they are handed over (default MAX_MAILBOX_COLLECT_BYTES).
     * `pairs`: the identity keys of our pairs (default none): their per-contact inboxes are read too, at most
     * MAX_MAILBOX_PAIRS a pass, contacts first (§9.5). `content`: the options of each pass's ContentClient (measurement only).
     * `prekeys`: our prekey secrets by id, to open version 3 items, and what to tell when one-time prekeys opened an
     * item (specs/messaging.md §9.6).
     */
    private readonly options: {
      maxCollectBytes?: number;
      pairs?: () => MailboxPairs | Promise<MailboxPairs>;
      content?: ContentOptions;
      prekeys?: { lookup: PrekeySecretLookup; opened: (oneTimeId: Uint8Array) => void };
    } = {},
  ) {}

  /**
   * One pass: reads every inbox that may hold unread mail (all epochs an unexpired item can be in on the first
   * pass, then the epochs since the last pass), delivers new messages in order (by the sender's clock, then
   * counter). Writes nothing: items stay at their holders until they expire. Returns how many were delivered:
   * `deliver` returning false means the caller dropped the message (it already had it, e.g. over a live
   * conversation), which is not counted; a promise holds the pass until the caller has taken the message.
   * Concurrent calls share a pass. A slot no holder answered is not taken for free (§9.5): its inbox is not counted
   * as read, so the next pass reads it again from there, and `onError` gets one ERR_UNREACHABLE for the pass.
   */
  collect(
    deliver: (m: CollectedMessage) => boolean | void | Promise<boolean | void>,
    onError: (e: AlliumError) => void,
    options: AbortOptions = {},
  ): Promise<number> {
    this.running ??= this.pass(deliver, onError, options.signal).finally(() => (this.running = null));
    return this.running;
  }

  private async pass(
    deliver: (m: CollectedMessage) => boolean | void | Promise<boolean | void>,
    onError: (e: AlliumError) => void,
    signal?: AbortSignal,
  ): Promise<number> {
    const started = Date.now();
    // An inbox never read is read back to the oldest epoch an unexpired item can be in; else from its last read.
    const firstEpoch = (lastRead: number | null | undefined): number =>
      mailboxEpochAt(Math.max(0, lastRead == null ? started - MAX_MAILBOX_TTL_MS - MAILBOX_EPOCH_SECONDS * 1000 : lastRead - MAILBOX_CLOCK_SKEW_MS));
    const first = firstEpoch(this.lastPass);
    const last = mailboxEpochAt(started + MAILBOX_CLOCK_SKEW_MS);
    // No circuits built ahead (content.md §8.2): a pass reads a window of slots at once, so the circuits waiting
    // would serve the first read of the next window only, which its others wait for anyway, and the last set built
    // would close unused with the pass.
    const content = new ContentClient(this.client, { circuitsAhead: false, ...this.options.content });
    const maxBytes = this.options.maxCollectBytes ?? MAX_MAILBOX_COLLECT_BYTES;
    let delivered = 0;
    // Hands over `kept`, in the senders' order (nothing is written back: items expire at their holders).
    const handOver = async (kept: Found[]): Promise<void> => {
      const batch = kept.splice(0).sort((a, b) => a.m.t - b.m.t || a.m.n - b.m.n || a.m.epoch - b.m.epoch || a.m.slot - b.m.slot);
      for (const f of batch) {
        throwIfAborted(local.signal);
        if (this.seen.has(f.m.id)) continue;
        this.remember(f.m.id);
        if ((await deliver(f.m)) !== false) delivered++;
      }
    };
    // At most MAX_MAILBOX_PAIRS per-contact inboxes a pass, contacts first: those never read first, then the longest
    // unread, so a reader with more contacts reads every one in turn (each from its own last read).
    const pairs = this.choosePairs((await this.options.pairs?.()) ?? { contacts: [], others: [] }).map((peer) => ({
      peer,
      secret: pairSecret(this.identity, peer),
      from: firstEpoch(this.pairRead.get(toHex(peer))),
    }));
    // Inboxes (hex peer, '' for the first-contact inbox) with a slot no holder answered: not counted as read.
    const unanswered = new Set<string>();
    const epochs: number[] = [];
    for (let epoch = Math.min(first, ...pairs.map((p) => p.from)); epoch <= last; epoch++) epochs.push(epoch);
    // One operation per inbox (§9.5 "Circuits"): every epoch and slot of one inbox read on the same circuits, made at
    // its first read and closed after its last epoch's; two inboxes never share one. `left`: its epochs not yet read.
    const reads = new Map<string, InboxRead>();
    reads.set('', { session: null, left: epochs.filter((e) => e >= first).length, busy: 0, gate: new Gate(MAILBOX_WINDOWS_PER_INBOX - 1) });
    for (const p of pairs)
      reads.set(toHex(p.peer), { session: null, left: epochs.filter((e) => e >= p.from).length, busy: 0, gate: new Gate(MAILBOX_WINDOWS_PER_INBOX - 1) });
    // The inboxes with a session open, least recently read first: at most MAILBOX_OPEN_INBOXES.
    const open = new Map<string, InboxRead>();
    const sessionFor = (id: string, read: InboxRead): ContentSession => {
      if (!read.session) {
        if (open.size >= MAILBOX_OPEN_INBOXES) {
          for (const [k, r] of open) {
            if (r.busy > 0) continue;
            r.session?.close();
            r.session = null;
            open.delete(k);
            break;
          }
        }
        read.session = content.session();
      }
      open.delete(id); // re-inserted last: the map is in order of reading
      open.set(id, read);
      return read.session;
    };
    // Up to MAILBOX_READ_AHEAD epochs are read at once (the newest first), and handed over epoch by epoch, in order: `turn[i]` settles
    // once every earlier epoch is handed over. The epoch whose turn it is hands over at half of `maxBytes`; those
    // read ahead of it together hold at most the other half, each its share, and then wait for their turn.
    const turns = epochs.map(() => {
      let open!: () => void;
      const p = new Promise<void>((r) => (open = r));
      return { p, open };
    });
    turns[0]?.open();
    const aheadShare = maxBytes / 2 / Math.max(1, MAILBOX_READ_AHEAD - 1);
    // The readers' signal: the caller's, or the first reader's failure (each slot read listens to it).
    const failed = new AbortController();
    const local = anySignal(signal, failed.signal);
    const readEpoch = async (i: number): Promise<void> => {
      const epoch = epochs[i]!;
      const kept: Found[] = [];
      // Moves of read positions and slots marked taken, applied once what their slots held is handed over: a pass
      // that ends first (aborted, failed) leaves them to be read again by the next (ids delivered are remembered).
      const settled: (() => void)[] = [];
      const settle = (update: () => void): void => void settled.push(update);
      const handOverKept = async (): Promise<void> => {
        const done = settled.splice(0);
        await handOver(kept);
        for (const update of done) update();
      };
      let mine = 0;
      let ours = false;
      turns[i]!.p.then(
        () => (ours = true),
        () => undefined,
      );
      const keep = async (f: Found): Promise<void> => {
        kept.push(f);
        mine += f.m.data.length;
        if (ours ? mine >= maxBytes / 2 : mine >= aheadShare) {
          await turns[i]!.p;
          await handOverKept();
          mine = 0;
        }
      };
      const inboxes: InboxRef[] = [
        ...(epoch >= first ? [{ key: inboxKey(this.identity.publicKey, epoch), peer: null }] : []),
        ...pairs.filter((p) => epoch >= p.from).map((p) => ({ key: pairInboxKey(p.secret, p.peer, epoch), peer: p.peer })),
      ];
      for (const inbox of inboxes) {
        const id = inbox.peer ? toHex(inbox.peer) : '';
        const read = reads.get(id)!;
        const session = sessionFor(id, read);
        read.busy++;
        try {
          const gated = i === epochs.length - 1 ? null : read.gate;
          if (!(await this.readInbox(content, session, gated, epoch, inbox, keep, onError, local.signal, settle))) unanswered.add(id);
        } finally {
          read.busy--;
          if (--read.left <= 0) {
            session.close();
            read.session = null;
            open.delete(id);
          }
        }
      }
      await turns[i]!.p;
      await handOverKept();
      turns[i + 1]?.open();
    };
    try {
      // The newest epoch first: that is where mail waits, and it takes the most reads; the others oldest first.
      // (Only with another reader for the older epochs: a lone reader would wait for their turn for ever.)
      const order = epochs.length > 1 && MAILBOX_READ_AHEAD > 1 ? [epochs.length - 1, ...epochs.slice(0, -1).map((_, i) => i)] : epochs.map((_, i) => i);
      let next = 0;
      const reader = async (): Promise<void> => {
        while (next < order.length) await readEpoch(order[next++]!);
      };
      try {
        await Promise.all(Array.from({ length: Math.min(MAILBOX_READ_AHEAD, epochs.length) }, reader));
      } catch (e) {
        failed.abort(); // the other readers stop, and hand nothing over
        throw e;
      }
      if (unanswered.size > 0) {
        onError(new AlliumError('ERR_UNREACHABLE', `no holder of a mailbox slot answered (${unanswered.size} inboxes): read again from there next pass`));
      }
      if (!unanswered.has('')) this.lastPass = started;
      for (const p of pairs) {
        const k = toHex(p.peer);
        if (unanswered.has(k)) continue; // read again from its last read with answers
        this.pairRead.delete(k); // re-inserted last: the map is in order of reading
        this.pairRead.set(k, started);
        if (this.pairRead.size > MAX_PAIR_READS) this.pairRead.delete(this.pairRead.keys().next().value!);
      }
      return delivered;
    } finally {
      local.dispose();
      content.close();
    }
  }

  /**
   * The pairs this pass reads, at most MAX_MAILBOX_PAIRS: contacts first, then other pairs in the room left; within
   * each, never read first (in the given order), then the longest unread.
   */
  private choosePairs(pairs: MailboxPairs): Uint8Array[] {
    const order = (all: readonly Uint8Array[], skip: ReadonlySet<string>): Uint8Array[] => {
      const unique = new Map(all.map((k) => [toHex(k), k] as const).filter(([k]) => !skip.has(k)));
      const never = [...unique].filter(([k]) => !this.pairRead.has(k)).map(([, v]) => v);
      const read = [...unique].filter(([k]) => this.pairRead.has(k)).sort(([a], [b]) => this.pairRead.get(a)! - this.pairRead.get(b)!);
      return [...never, ...read.map(([, v]) => v)];
    };
    const contacts = order(pairs.contacts, new Set()).slice(0, MAX_MAILBOX_PAIRS);
    const others = order(pairs.others.slice(0, MAX_MAILBOX_PAIRS), new Set(pairs.contacts.map((k) => toHex(k))));
    return [...contacts, ...others.slice(0, MAX_MAILBOX_PAIRS - contacts.length)];
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > MAX_REMEMBERED_IDS) this.seen.delete(this.seen.values().next().value!);
  }

  private async readInbox(
    content: ContentClient,
    session: ContentSession,
    gate: Gate | null,
    epoch: number,
    ref: InboxRef,
    keep: (f: Found) => Promise<void>,
    onError: (e: AlliumError) => void,
    signal: AbortSignal | undefined,
    settle: (update: () => void) => void,
  ): Promise<boolean> {
    const inbox = ref.key;
    const name = toHex(inbox);
    let slot = this.frontier.get(name) ?? 0;
    let free = 0;
    // The read position moves only over slots all taken from it on: a slot still free may yet get a deposit (§9.5).
    let contiguous = true;
    // Slots past the read position an earlier pass found taken: what they hold was read then, and a taken slot takes
    // no other deposit, so they are not read again (§9.5).
    const known = this.takenAhead.get(name);
    const isKnown = (s: number): boolean => known !== undefined && (known[s >>> 3]! & (1 << (s & 7))) !== 0;
    const markTaken = (s: number): void => {
      let bits = this.takenAhead.get(name);
      if (!bits) {
        bits = new Uint8Array(MAX_MAILBOX_SLOTS / 8);
        this.takenAhead.set(name, bits);
        if (this.takenAhead.size > MAX_FRONTIERS) this.takenAhead.delete(this.takenAhead.keys().next().value!);
      }
      bits[s >>> 3]! |= 1 << (s & 7);
    };
    while (slot < MAX_MAILBOX_SLOTS && free < MAILBOX_SCAN_GAP) {
      throwIfAborted(signal);
      // Read a window of slots at once (those not known taken).
      const window = Array.from({ length: Math.min(MAILBOX_SCAN_GAP, MAX_MAILBOX_SLOTS - slot) }, (_, i) => slot + i);
      const readWindow = (): Promise<({ copies: Uint8Array[]; answered: number } | null)[]> => {
        throwIfAborted(signal); // a window that waited its turn past an abort
        return Promise.all(
          window.map((s) => (isKnown(s) ? null : content.fetchAnswers('mailbox', slotLocator(inbox, s), { session, ...signalOption(signal) }))),
        );
      };
      const answers = await (gate ? gate.run(readWindow) : readWindow());
      for (let i = 0; i < window.length; i++) {
        const s = window[i]!;
        const answer = answers[i]!;
        if (answer === null) {
          free = 0; // known taken
          if (contiguous) settle(() => this.advance(name, s + 1));
          continue;
        }
        const { copies, answered } = answer;
        // No holder answered: not known to be free (§9.5). The inbox stops here, to be read on from this slot.
        if (answered === 0) return false;
        const opened = copies.length > 0 ? this.readSlot(epoch, s, slotLocator(inbox, s), ref.peer, copies, onError) : [];
        for (const f of opened) await keep(f);
        // Taken: an item opened, or (the writers' rule) the holders with something are at least as many as those
        // without, so no writer deposits there. Else free: one holder's junk does not move us past it.
        if (opened.length === 0 && copies.length < answered - copies.length) {
          free++;
          contiguous = false;
          continue;
        }
        free = 0;
        if (contiguous) settle(() => this.advance(name, s + 1));
        else settle(() => markTaken(s));
      }
      slot = window[window.length - 1]! + 1;
    }
    return true;
  }

  /** Moves an inbox's read position to `next` (the inboxes kept in order of use: the oldest go first). */
  private advance(name: string, next: number): void {
    this.frontier.delete(name);
    this.frontier.set(name, next);
    if (this.frontier.size > MAX_FRONTIERS) this.frontier.delete(this.frontier.keys().next().value!);
  }

  /**
   * What the holders of one slot returned: items or empty (expired) markers. An item in the per-contact inbox from
   * `peer` must be from `peer` (ERR_MESSAGE_AUTH otherwise: the pair secret is the two parties' alone).
   */
  private readSlot(epoch: number, slot: number, rk: Uint8Array, peer: Uint8Array | null, copies: Uint8Array[], onError: (e: AlliumError) => void): Found[] {
    const out: Found[] = [];
    const items = new Map<string, Uint8Array>();
    for (const c of copies) if (c.length > 0 && !isDeletion(c)) items.set(toHex(crypto().hash(32, c)), c);
    for (const bytes of items.values()) {
      try {
        const pre = this.options.prekeys;
        const o = openMailboxItem(this.identity, rk, bytes, { now: Date.now(), ...(pre ? { prekeys: pre.lookup } : {}) });
        if (o.prekeys?.opk && pre) pre.opened(o.prekeys.opk);
        if (peer && !crypto().equal(o.from, peer)) throw new CryptoError('ERR_MESSAGE_AUTH', 'a per-contact inbox holds an item from someone else');
        const m: CollectedMessage = {
          from: o.from,
          data: o.data,
          attachment: o.attachment,
          group: o.group,
          device: o.device,
          t: o.t,
          n: o.n,
          id: toHex(o.id),
          epoch,
          slot,
        };
        out.push({ m });
      } catch (e) {
        onError(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'mailbox item handling failed', { cause: e }));
      }
    }
    return out;
  }
}

/** A deletion of earlier versions, still served by a relay that has not been upgraded: not an item, skipped. */
function isDeletion(bytes: Uint8Array): boolean {
  try {
    decodeMailboxDeletion(bytes);
    return true;
  } catch {
    return false;
  }
}

/** For tests: the routing key of slot `slot` of `address`'s inbox for an epoch. */
export function mailboxSlot(identityKey: Uint8Array, epoch: number, slot: number): Uint8Array {
  return slotLocator(inboxKey(identityKey, epoch), slot);
}
