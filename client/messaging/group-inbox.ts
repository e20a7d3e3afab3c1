/**
 * Version 2 of the group transport (specs/messaging.md §13.9), in two parts:
 *
 * - `GroupInbox`: the epochs a member holds (the current, the one before, retiring ones) and the group inbox derived from them:
 *   `deposit` puts envelopes, each once, in the first free slot of today's inbox (a slot most of whose holders hold
 *   another member's deposit: the next one); `collect` reads each day's inbox of the epochs held, from where it
 *   stopped, in windows of MAILBOX_SCAN_GAP slots until that many in a row are free, and hands every deposit that
 *   opens to the caller in slot order; `state` is what a restart needs (group-store.ts). The messenger's groups
 *   (groups.ts, `delivery: 'inbox'`) use it with their own roster, chains and storage.
 * - `GroupInboxMember`: one member on its own — roster, sender key, chains and a GroupInbox — for tests and
 *   measurement: an admin makes the epoch (`startEpoch`) and hands `roster` and `epoch` to each member over the
 *   pairwise path; the member takes them (`takeRoster`, `takeEpoch`): only a roster signed by an admin of the one held
 *   (or the first), only an epoch from an admin of that roster, for that revision, above the epoch held. `send`
 *   deposits our sender key first when the day's inbox does not have our current generation yet, then the message;
 *   `collect` returns each other member's message once however many holders or passes return it.
 *
 * Neither pushes deposits over open sessions, nor carries the roster and epoch (the caller's pairwise path does).
 */
import { crypto } from '../../crypto/index.js';
import type { Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { AlliumError, isAlliumError, LimitError, NotFoundError, throwIfAborted } from '../../protocol/errors.js';
import {
  decodeGroupEpoch,
  encodeGroupEpoch,
  groupDay,
  groupInboxKey,
  lastEpochDay,
  MAX_GROUP_EPOCH_STEP,
  MAX_GROUP_HELD_EPOCHS,
  nextGroupDay,
  openGroupDeposit,
  sealGroupDeposit,
  type GroupDay,
  type GroupEpoch,
  type OpenedDeposit,
} from '../../protocol/group-inbox.js';
import { verifyRoster, type GroupMessage, type Roster, type SenderKeyDistribution } from '../../protocol/group-messages.js';
import {
  encodeMailboxItem,
  mailboxEpochAt,
  mailboxPowBinding,
  MAILBOX_CLOCK_SKEW_MS,
  MAILBOX_EPOCH_SECONDS,
  MAX_MAILBOX_SLOTS,
  MAX_MAILBOX_TTL_MS,
  slotLocator,
} from '../../protocol/mailbox.js';
import { OwnSenderKey, SenderChain } from '../../protocol/sender-key.js';
import { signalOption, type AbortOptions } from '../../net/abort.js';
import type { CircuitSource } from '../client.js';
import { ContentClient, type ContentOptions, type ContentSession } from '../content.js';
import { MAILBOX_SCAN_GAP } from '../mailbox.js';
import type { GroupInboxState } from './group-store.js';
import { solveIntroPow } from './pow-solver.js';

/** Messages held per group while their sender key has not come (specs/limits.md MAX_GROUP_PENDING). */
const DEFAULT_MAX_PENDING = 256;

export interface InboxGroupMessage {
  readonly from: Uint8Array;
  readonly data: Uint8Array;
}

/** An epoch held: its first day, and the secret of the oldest day not yet finished (earlier ones wiped). */
interface HeldEpoch {
  readonly epoch: GroupEpoch;
  oldest: GroupDay;
  /** When an epoch after its successor was taken: it is read by one more complete pass, then dropped (§13.9). */
  retiredAt?: number;
  /** A complete pass begun after it retired read it (dropping it early, over the bound, loses nothing it saw). */
  readRetired?: boolean;
  /** day → the first slot not yet read. */
  readonly frontier: Map<number, number>;
}

/** Read positions remembered per epoch: the days a pass reads (§13.9: at most 9). */
const MAX_FRONTIER_DAYS = 16;

/**
 * The transport of a version 2 group (specs/messaging.md §13.9): the epochs held (the current, the one before, retiring ones),
 * deposits into today's inbox of the current one, and passes over the inboxes of both. Who may hand over an epoch,
 * the roster and the chains are the caller's (GroupInboxMember here; Group in groups.ts).
 */
export class GroupInbox {
  /** The epochs held, oldest first: those retiring, the one before the current, the current (`cur`). */
  private held: HeldEpoch[] = [];
  /** The epoch deposits go under: the last taken, until its days end. */
  private cur: HeldEpoch | null = null;
  /** What happened outside a pass that the next pass reports (an epoch dropped unread). */
  private readonly lost: AlliumError[] = [];
  private lastQ = -1;
  /** The roster revision of the last epoch taken: epochs are ordered by (r, q) (§13.9). */
  private lastR = -1;
  /** Day inbox (hex) → the next slot we expect to be free for a deposit. */
  private readonly writeHint = new Map<string, number>();

  constructor(
    readonly group: Uint8Array,
    private readonly content: ContentClient,
    private readonly now: () => number = Date.now,
    private readonly ttlMs: number = MAX_MAILBOX_TTL_MS,
    state?: GroupInboxState,
  ) {
    if (!state) return;
    this.lastQ = state.q;
    this.lastR = state.r;
    // Oldest first, as state() writes them; the last is the current when it is the last taken.
    this.held = state.epochs.map((h): HeldEpoch => ({
      epoch: { kind: 'epoch', group, q: h.q, r: h.r, d: h.d, es: new Uint8Array(32) },
      oldest: { group, q: h.q, day: h.day, secret: Uint8Array.from(h.secret) },
      frontier: new Map(h.frontier.map(([d, i]) => [d, i])),
    }));
    const last = this.held.at(-1);
    this.cur = last && last.epoch.q === state.q && last.epoch.r === state.r ? last : null;
    // Those before the one before the current are still to be read once (since the restart: the time is not kept).
    const keep = this.cur ? 2 : 1;
    for (const h of this.held.slice(0, Math.max(0, this.held.length - keep))) h.retiredAt = this.now();
  }

  private get current(): HeldEpoch | null {
    return this.cur;
  }

  /** The last group epoch taken (−1 before the first), held or dropped once its days ended. */
  get epoch(): number {
    return this.lastQ;
  }

  /** The epoch deposits go under (null when none is held). */
  get currentEpoch(): { readonly q: number; readonly r: number; readonly d: number } | null {
    return this.current?.epoch ?? null;
  }

  /**
   * The current epoch as an admin hands it to a member that missed it (§13.9, "Asking for a missed epoch"): `d` the
   * oldest day held and `es` that day's secret (the epoch's first secret is wiped with its day). Null without one.
   */
  reissue(): Uint8Array | null {
    const h = this.cur;
    if (!h) return null;
    return encodeGroupEpoch({ kind: 'epoch', group: this.group, q: h.epoch.q, r: h.epoch.r, d: h.oldest.day, es: h.oldest.secret });
  }

  /** A fresh epoch `lastQ + 1` for roster revision `r`, starting today (the caller takes it and hands it out). */
  makeEpoch(r: number): Uint8Array {
    return encodeGroupEpoch({ kind: 'epoch', group: this.group, q: this.lastQ + 1, r, d: mailboxEpochAt(this.now()), es: crypto().random(32) });
  }

  /**
   * Decodes an epoch envelope and checks its days against our clock. Throws ERR_CBOR_* / ERR_SCHEMA, LimitError
   * MAX_GROUP_EPOCH_DAYS, ERR_GROUP_MEMBERSHIP (another group's).
   */
  decode(encoded: Uint8Array): GroupEpoch {
    const e = decodeGroupEpoch(encoded, mailboxEpochAt(this.now()));
    if (!crypto().equal(e.group, this.group)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'an epoch of another group');
    return e;
  }

  /**
   * Takes epoch `e` (checked by the caller): false when it is not above the last taken. Throws LimitError
   * MAX_GROUP_EPOCH_STEP for one more than MAX_GROUP_EPOCH_STEP above it (§13.9: one admin's jump would otherwise
   * make every later epoch "not above").
   */
  take(e: GroupEpoch): boolean {
    // Ordered by (r, q): an epoch for a later roster is above whatever q an admin of an earlier one (since removed)
    // handed us for it, so a removed admin's jump in q does not make the real epoch of the next roster "not above".
    if (e.r < this.lastR || (e.r === this.lastR && e.q <= this.lastQ)) return false;
    if (this.lastQ >= 0 && e.q - this.lastQ > MAX_GROUP_EPOCH_STEP) {
      throw new LimitError('MAX_GROUP_EPOCH_STEP', `a group epoch ${e.q - this.lastQ} above the one held`);
    }
    this.lastQ = e.q;
    this.lastR = e.r;
    // The epoch before the previous one is not wiped unread (§13.9): deposits made under it while we were away or
    // between two passes are read by the next complete pass that begins MAILBOX_CLOCK_SKEW_MS from now, then it goes.
    const at = this.now();
    for (const h of this.held) if (h !== this.cur) h.retiredAt ??= at;
    this.cur = { epoch: { ...e, es: new Uint8Array(32) }, oldest: groupDay(e, e.d), frontier: new Map() };
    this.held.push(this.cur);
    while (this.held.length > MAX_GROUP_HELD_EPOCHS) {
      const h = this.held.shift()!;
      crypto().wipe(h.oldest.secret);
      if (!h.readRetired && this.lost.length < MAX_GROUP_HELD_EPOCHS) {
        this.lost.push(new LimitError('MAX_GROUP_HELD_EPOCHS', `group epoch ${h.epoch.q} dropped before a pass read it to its end`));
      }
    }
    return true;
  }

  /** Today's day of the current epoch (to tag what was deposited for it); null without an epoch. */
  today(): { q: number; day: number } | null {
    const held = this.current;
    return held ? { q: held.epoch.q, day: Math.max(held.oldest.day, mailboxEpochAt(this.now())) } : null;
  }

  /**
   * Deposits `envelopes` in order, each once, in today's inbox of the current epoch. Returns the day and the slot of
   * the last. Throws ERR_GROUP_MEMBERSHIP (no epoch), LimitError MAX_GROUP_EPOCH_DAYS / MAX_GROUP_DEPOSIT_BYTES /
   * MAX_MAILBOX_SLOTS, ERR_UNREACHABLE, ERR_QUOTA, ERR_ABORTED.
   */
  async deposit(
    from: Identity,
    envelopes: ReadonlyArray<GroupMessage | SenderKeyDistribution>,
    options: AbortOptions = {},
  ): Promise<{ day: number; slot: number }> {
    const held = this.current;
    if (!held) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'no group epoch held');
    const day = nextGroupDay(held.oldest, Math.max(held.oldest.day, mailboxEpochAt(this.now())), held.epoch.d);
    // One operation for the deposit's stores (§13.9, §9.5 "Circuits"): slots of one inbox, on circuits of their own.
    const session = this.content.session();
    try {
      let slot = -1;
      for (const env of envelopes) slot = await this.depositOne(held, day, from, env, session, options);
      return { day: day.day, slot };
    } finally {
      session.close();
      if (day.secret !== held.oldest.secret) crypto().wipe(day.secret);
    }
  }

  private async depositOne(
    held: HeldEpoch,
    day: GroupDay,
    from: Identity,
    envelope: GroupMessage | SenderKeyDistribution,
    session: ContentSession,
    options: AbortOptions,
  ): Promise<number> {
    const x = toHex(groupInboxKey(day));
    const exp = this.now() + this.ttlMs;
    let statuses: string[] = [];
    for (let i = Math.max(this.writeHint.get(x) ?? 0, this.readPosition(held, day)); i < MAX_MAILBOX_SLOTS; i++) {
      throwIfAborted(options.signal);
      const sealed = sealGroupDeposit({ day, from, envelope, index: i, exp });
      // No probe first: the hint (our last deposit, or how far we read) is near the frontier, and a slot's work below
      // index 32 is 256 hashes, less than a round trip; a slot another member took answers `occupied`.
      const w = await solveIntroPow(sealed.slot, sealed.effort, mailboxPowBinding(sealed.item), signalOption(options.signal));
      statuses = await this.content.storeAll('mailbox', sealed.slot, encodeMailboxItem(sealed.item, w), { session, ...signalOption(options.signal) });
      const outcome = depositOutcome(statuses);
      if (outcome === 'stored') {
        if (this.writeHint.size >= 64) this.writeHint.delete(this.writeHint.keys().next().value!);
        this.writeHint.set(x, i + 1);
        return i;
      }
      if (outcome === 'failed') break;
      // Another member took the slot first at most of its holders: the next one. A copy we left at the others opens
      // once at each reader (the copy in the next slot spends the same key, §13.3).
    }
    if (statuses.length === 0 || depositOutcome(statuses) === 'next') throw new LimitError('MAX_MAILBOX_SLOTS', "the group's inbox is full for today");
    if (statuses.includes('quota')) throw new AlliumError('ERR_QUOTA', 'every holder of the slot is full');
    throw new AlliumError('ERR_UNREACHABLE', `no holder accepted the deposit (${statuses.join(', ')})`);
  }

  private readPosition(held: HeldEpoch, day: GroupDay): number {
    return held.frontier.get(day.day) ?? 0;
  }

  /**
   * One pass over the inboxes of the epochs held (specs/messaging.md §13.9, "Collecting"): every deposit that opens is
   * handed to `take` in slot order, day by day; `onError` gets what did not open, and an epoch whose days ended.
   * Throws ERR_ABORTED.
   */
  async collect(take: (d: OpenedDeposit) => void, onError: (e: AlliumError) => void = () => {}, options: AbortOptions = {}): Promise<void> {
    const now = this.now();
    const last = mailboxEpochAt(now + MAILBOX_CLOCK_SKEW_MS);
    const done = mailboxEpochAt(now - MAILBOX_CLOCK_SKEW_MS); // days before this one take no more deposits
    const floor = mailboxEpochAt(now - MAX_MAILBOX_TTL_MS - MAILBOX_EPOCH_SECONDS * 1000);
    for (const e of this.lost.splice(0)) onError(e);
    for (const held of [...this.held]) {
      // An epoch derives no day beyond MAX_GROUP_EPOCH_DAYS (§13.9): its inboxes are read up to that day, and once
      // that day takes no more deposits the epoch is dropped (reported: an admin should have started a new one).
      const end = lastEpochDay(held.epoch.d);
      // The first day a window of which no holder answered (§13.9): it and later days are not known to be read.
      let unread = Infinity;
      // One operation for the epoch's days (§13.9, §9.5 "Circuits"): another group epoch, or inbox, never shares it.
      const session = this.content.session();
      try {
        for (let d = Math.max(held.oldest.day, floor); d <= Math.min(last, end); d++) {
          const day = nextGroupDay(held.oldest, d, held.epoch.d);
          try {
            if (!(await this.readDay(held, day, session, take, onError, options.signal)) && unread === Infinity) unread = d;
          } finally {
            if (day.secret !== held.oldest.secret) crypto().wipe(day.secret);
          }
        }
      } finally {
        session.close();
      }
      if (unread !== Infinity) {
        onError(new AlliumError('ERR_UNREACHABLE', `no holder of a slot of group epoch ${held.epoch.q} answered: read again next pass`));
        // Its days are kept (secrets and read positions) until a pass reads them with answers.
        const to = Math.min(unread, done);
        if (to > held.oldest.day) this.advance(held, to);
        continue;
      }
      if (done > end) {
        this.dropEpoch(held);
        onError(new LimitError('MAX_GROUP_EPOCH_DAYS', `group epoch ${held.epoch.q} ended: an admin starts a new one`));
        continue;
      }
      // A retiring epoch read to its end by a pass that began late enough after it retired: nothing more comes.
      if (held.retiredAt !== undefined && now >= held.retiredAt + MAILBOX_CLOCK_SKEW_MS) {
        this.dropEpoch(held);
        continue;
      }
      if (held.retiredAt !== undefined && now >= held.retiredAt) held.readRetired = true;
      // Days before `done` are read to their end and take no more deposits: their secrets are wiped, so state taken
      // later opens nothing of them (forward secrecy per day, §13.9).
      if (done > held.oldest.day) this.advance(held, done);
    }
  }

  /** Wipes the secrets of `held`'s days before `day` and forgets their read positions. */
  private advance(held: HeldEpoch, day: number): void {
    const next = nextGroupDay(held.oldest, day, held.epoch.d);
    crypto().wipe(held.oldest.secret);
    for (const d of held.frontier.keys()) if (d < day) held.frontier.delete(d);
    held.oldest = next;
  }

  /** Forgets an epoch whose days have all ended. */
  private dropEpoch(held: HeldEpoch): void {
    crypto().wipe(held.oldest.secret);
    this.held = this.held.filter((h) => h !== held);
    if (this.cur === held) this.cur = null;
  }

  private async readDay(
    held: HeldEpoch,
    day: GroupDay,
    session: ContentSession,
    take: (d: OpenedDeposit) => void,
    onError: (e: AlliumError) => void,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const x = groupInboxKey(day);
    let slot = held.frontier.get(day.day) ?? 0;
    let free = 0;
    // The read position moves only over slots all taken from it on: a slot still free may yet get a deposit (§13.9).
    let contiguous = true;
    while (slot < MAX_MAILBOX_SLOTS && free < MAILBOX_SCAN_GAP) {
      throwIfAborted(signal);
      const window = Array.from({ length: Math.min(MAILBOX_SCAN_GAP, MAX_MAILBOX_SLOTS - slot) }, (_, i) => slot + i);
      const answers = await Promise.all(window.map((s) => this.content.fetchAnswers('mailbox', slotLocator(x, s), { session, ...signalOption(signal) })));
      for (let i = 0; i < window.length; i++) {
        const { copies, answered } = answers[i]!;
        // No holder answered: not known to be free. The day stops here, to be read on from this slot next pass.
        if (answered === 0) return false;
        let opens = false;
        const distinct = new Map(copies.filter((c) => c.length > 0).map((c) => [toHex(crypto().hash(32, c)), c]));
        for (const bytes of distinct.values()) {
          let opened: OpenedDeposit;
          try {
            opened = openGroupDeposit(day, slotLocator(x, window[i]!), bytes);
          } catch (e) {
            onError(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'group deposit handling failed', { cause: e }));
            continue;
          }
          opens = true;
          take(opened);
        }
        // Taken: a copy opened, or (the writers' rule, §13.9 "Sending") the holders with an item are at least as many
        // as those without, so no writer deposits there. Else free: a holder's junk does not move us past it.
        if (!opens && copies.length < answered - copies.length) {
          free++;
          contiguous = false;
          continue;
        }
        free = 0;
        if (!contiguous) continue;
        if (!held.frontier.has(day.day) && held.frontier.size >= MAX_FRONTIER_DAYS) held.frontier.delete(held.frontier.keys().next().value!);
        held.frontier.set(day.day, window[i]! + 1);
      }
      slot = window[window.length - 1]! + 1;
    }
    return true;
  }

  /** Everything a restart needs (copies of the secrets; the caller wipes them once sealed). */
  state(): GroupInboxState {
    return {
      q: this.lastQ,
      r: this.lastR,
      epochs: this.held.map((h) => ({
        q: h.epoch.q,
        r: h.epoch.r,
        d: h.epoch.d,
        day: h.oldest.day,
        secret: Uint8Array.from(h.oldest.secret),
        frontier: [...h.frontier],
      })),
    };
  }

  /** Wipes the day secrets held. */
  close(): void {
    for (const h of this.held) crypto().wipe(h.oldest.secret);
    this.held = [];
    this.cur = null;
  }
}

export interface GroupInboxInit {
  readonly group: Uint8Array;
  /** Messages held while their sender key has not come (default MAX_GROUP_PENDING, 256). */
  readonly maxPending?: number;
  /** Life of a deposit (default MAX_MAILBOX_TTL_MS). */
  readonly ttlMs?: number;
  /** The options of the ContentClient (tests and measurement only). */
  readonly content?: ContentOptions;
}

/** One member's side of a version 2 group, on its own: roster, chains and a GroupInbox (tests and measurement). */
export class GroupInboxMember {
  private roster: Roster | null = null;
  private own = OwnSenderKey.create();
  /** The (q, e, day) our sender key was last deposited for. */
  private announced = '';
  private readonly chains = new Map<string, SenderChain>();
  private readonly pending: Array<{ from: Uint8Array; m: GroupMessage }> = [];
  private readonly content: ContentClient;
  private readonly inbox: GroupInbox;

  constructor(
    /** `content`: a ContentClient to use instead of one of our own over `client` (it is then not closed by close()). */
    components: { client: CircuitSource; identity: Identity; now?: () => number; content?: ContentClient },
    private readonly init: GroupInboxInit,
  ) {
    this.identity = components.identity;
    this.ownsContent = components.content === undefined;
    this.content = components.content ?? new ContentClient(components.client, init.content ?? {});
    this.inbox = new GroupInbox(init.group, this.content, components.now ?? Date.now, init.ttlMs ?? MAX_MAILBOX_TTL_MS);
  }
  private readonly identity: Identity;
  private readonly ownsContent: boolean;

  /** The last group epoch taken (−1 before the first), held or dropped once its days ended. */
  get epoch(): number {
    return this.inbox.epoch;
  }

  /**
   * Takes a roster (specs/messaging.md §13.4): the first one naming us, or a later revision signed by an admin of the
   * roster held. Drops the chains of members no longer in it. Throws ERR_SIGNATURE, ERR_GROUP_MEMBERSHIP.
   */
  takeRoster(r: Roster): void {
    if (!crypto().equal(r.group, this.init.group)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a roster of another group');
    if (!verifyRoster(r)) throw new AlliumError('ERR_SIGNATURE', 'group roster signature');
    if (this.roster) {
      if (r.r <= this.roster.r) return;
      if (!isAdmin(this.roster, r.by)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a roster not signed by an admin');
    } else if (!isAdmin(r, r.by)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a roster not signed by one of its admins');
    this.roster = r;
    const keep = new Set(r.members.map(toHex));
    for (const [k, c] of this.chains) {
      if (keep.has(k)) continue;
      c.destroy();
      this.chains.delete(k);
    }
    for (let i = this.pending.length - 1; i >= 0; i--) if (!keep.has(toHex(this.pending[i]!.from))) this.pending.splice(i, 1);
  }

  /**
   * An admin's new epoch for the roster it holds (the admin hands `encoded` to every member of it, pairwise): a fresh
   * secret from the CSPRNG, starting today. The admin takes it itself too.
   */
  startEpoch(): Uint8Array {
    if (!this.roster || !isAdmin(this.roster, this.identity.publicKey)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'only an admin starts an epoch');
    const encoded = this.inbox.makeEpoch(this.roster.r);
    this.takeEpoch(this.identity.publicKey, encoded);
    return encoded;
  }

  /**
   * Takes an epoch envelope that came over the pairwise path from `from` (specs/messaging.md §13.9). A new epoch
   * makes a new generation of our sender key. Returns false for an epoch not above the one held. Throws ERR_CBOR_* /
   * ERR_SCHEMA, ERR_GROUP_MEMBERSHIP (not from an admin of the roster held, or for another revision or group),
   * LimitError MAX_GROUP_EPOCH_DAYS (it started more than MAX_GROUP_EPOCH_DAYS ago), MAX_GROUP_EPOCH_STEP.
   */
  takeEpoch(from: Uint8Array, encoded: Uint8Array): boolean {
    const e = this.inbox.decode(encoded);
    if (!this.roster || e.r !== this.roster.r || !isAdmin(this.roster, from)) {
      throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'an epoch not from an admin of the roster held');
    }
    const first = this.inbox.epoch < 0;
    if (!this.inbox.take(e)) return false;
    if (!first) this.own.rotate();
    this.announced = '';
    return true;
  }

  /**
   * Deposits `data` once in today's inbox (our sender key before it when the inbox lacks our generation). Throws
   * ERR_GROUP_MEMBERSHIP (no epoch), LimitError MAX_GROUP_MESSAGE_BYTES / MAX_MAILBOX_SLOTS, ERR_UNREACHABLE,
   * ERR_QUOTA, ERR_ABORTED.
   */
  async send(data: Uint8Array, options: AbortOptions = {}): Promise<{ day: number; slot: number }> {
    const today = this.inbox.today();
    if (!today || !this.roster) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'no group epoch held');
    const tag = `${today.q}:${this.own.e}:${today.day}`;
    const envelopes: Array<GroupMessage | SenderKeyDistribution> = [];
    if (this.announced !== tag) envelopes.push(this.own.distribution(this.init.group));
    envelopes.push(this.own.encrypt(this.init.group, this.identity.publicKey, data));
    const r = await this.inbox.deposit(this.identity, envelopes, options);
    this.announced = tag;
    return r;
  }

  /**
   * One pass over the inboxes of the epochs held (specs/messaging.md §13.9, "Collecting"). Returns the messages that
   * opened, in the order read; `onError` gets what did not open or was refused. Throws ERR_ABORTED.
   */
  async collect(onError: (e: AlliumError) => void = () => {}, options: AbortOptions = {}): Promise<InboxGroupMessage[]> {
    const out: InboxGroupMessage[] = [];
    await this.inbox.collect((d) => this.take(d, out, onError), onError, options);
    return out;
  }

  /** One deposit to the chains (specs/messaging.md §13.9 "Opening", then §13.3). */
  private take(d: OpenedDeposit, out: InboxGroupMessage[], onError: (e: AlliumError) => void): void {
    try {
      if (!this.roster || !this.roster.members.some((m) => crypto().equal(m, d.from))) {
        throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a deposit from someone not in the roster');
      }
      if (crypto().equal(d.from, this.identity.publicKey)) return; // our own
      const who = toHex(d.from);
      if (d.envelope.kind === 'sender-key') {
        const chain = this.chains.get(who);
        if (!chain) this.chains.set(who, SenderChain.from(d.envelope));
        else if (!chain.update(d.envelope)) return;
        // Held messages of this sender may open now.
        const held = this.pending.filter((p) => crypto().equal(p.from, d.from));
        for (const p of held) this.pending.splice(this.pending.indexOf(p), 1);
        for (const p of held) this.open(p.from, p.m, out, onError);
        return;
      }
      this.open(d.from, d.envelope, out, onError);
    } catch (e) {
      onError(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'group deposit handling failed', { cause: e }));
    }
  }

  private open(from: Uint8Array, m: GroupMessage, out: InboxGroupMessage[], onError: (e: AlliumError) => void): void {
    const chain = this.chains.get(toHex(from));
    try {
      if (!chain) throw new NotFoundError('no sender key yet');
      out.push({ from, data: chain.decrypt(from, m) });
    } catch (e) {
      if (e instanceof NotFoundError) {
        this.pending.push({ from, m });
        if (this.pending.length > (this.init.maxPending ?? DEFAULT_MAX_PENDING)) {
          this.pending.shift();
          onError(new LimitError('MAX_GROUP_PENDING', 'a held group message was dropped'));
        }
      } else if (!(isAlliumError(e) && e.code === 'ERR_MESSAGE_REPLAY')) {
        onError(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'group message handling failed', { cause: e }));
      }
    }
  }

  /** Wipes every key and closes the circuits. */
  close(): void {
    this.own.destroy();
    for (const c of this.chains.values()) c.destroy();
    this.chains.clear();
    this.inbox.close();
    if (this.ownsContent) this.content.close();
  }
}

/**
 * What to do with a deposit after its holders answered (specs/messaging.md §13.9, "Sending"): it is stored when more
 * holders accepted it (ok, or exists: the same item) than found the slot occupied; it goes to the next slot when
 * holders found it occupied as often or more (another member got there first); else it failed.
 */
export function depositOutcome(statuses: readonly string[]): 'stored' | 'next' | 'failed' {
  let accepted = 0;
  let occupied = 0;
  for (const s of statuses) {
    if (s === 'ok' || s === 'exists') accepted++;
    else if (s === 'occupied') occupied++;
  }
  if (accepted > occupied) return 'stored';
  return occupied > 0 ? 'next' : 'failed';
}

function isAdmin(r: Roster, who: Uint8Array): boolean {
  return r.admins.some((i) => crypto().equal(r.members[i]!, who));
}
