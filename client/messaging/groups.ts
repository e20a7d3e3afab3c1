/**
 * Group conversations with sender keys (specs/messaging.md §13; docs/developer-guide.md §Groups).
 *
 *   const group = await alice.createGroup('allotment', [bob.address, carol.address]);
 *   await group.send(bytes);                        // encrypted once, handed to each member pairwise
 *   bob.on('group:message', (m) => …);              // m.group, m.from, m.data
 *   await group.remove(carol.address);              // every remaining member then updates its sender key
 *
 * Every member keeps the signed roster (who is in, who is an admin) and a sender key of its own
 * (protocol/sender-key.ts), and holds a copy of every other member's. Rosters, sender keys and messages are group
 * envelopes (protocol/group-messages.ts) sent member by member over the messenger's pairwise delivery: a
 * conversation if the member listens, else its mailbox (the frame kind 4 and the item "k": 2). No relay sees the
 * roster: it travels only inside pairwise sessions.
 *
 * Order per member: every envelope to one member goes through one queue, so that member gets a sender key before
 * the messages under it (a message whose key has not come is held, at most MAX_GROUP_PENDING per group).
 *
 * State at rest (§13.7): with a GroupStorage, every change to a group is saved (sealed, group-store.ts) before its
 * effects leave: before a message under a new index is handed to anyone (so no index is used twice across a restart),
 * and before a received message is emitted and acknowledged (so a copy that comes again after a restart opens
 * nothing: exactly once). A crash between saving and emitting loses that message; it is never emitted twice.
 *
 * Bounds (specs/limits.md): groups in all (MAX_GROUPS) and per inviter (MAX_GROUPS_PER_INVITER); skipped keys per
 * sender (MAX_GROUP_SKIP), per group (MAX_GROUP_SKIPPED_PER_GROUP) and in all (MAX_GROUP_SKIPPED), paid by the chain
 * holding the most (SkipPool); held messages per group (MAX_GROUP_PENDING) and in all (MAX_GROUP_PENDING_TOTAL), paid
 * by the group holding the most.
 *
 * Version 2 (§13.9, `createGroup(…, { delivery: 'inbox' })`): the admin hands each member the roster and a group epoch
 * over the pairwise path instead, and every message is one deposit in the group inbox (group-inbox.ts); members read it
 * with collect() (the messenger does while listening) and emit the same events. Sender keys travel by deposit; every
 * membership change starts a new epoch, and each member a new generation on taking it.
 *
 * Not here: resolving two admins' concurrent changes of one revision (the first a member sees wins; §13.4); one
 * ciphertext in the content store for large messages (§13.5); an outbox that survives a restart (a send cut short by
 * close() reached the members its report names).
 */
import { crypto } from '../../crypto/index.js';
import { formatAddress, parseAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { AbortedError, AlliumError, ConfigError, isAlliumError, LimitError, TimeoutError } from '../../protocol/errors.js';
import {
  decodeGroupEnvelope,
  encodeGroupEnvelope,
  GROUP_ID_LEN,
  MAX_GROUP_MEMBERS,
  signRoster,
  verifyRoster,
  type GroupMessage,
  type Roster,
  type SenderKeyDistribution,
} from '../../protocol/group-messages.js';
import { MAX_GROUP_SKIP, OwnSenderKey, SenderChain, SkipPool } from '../../protocol/sender-key.js';
import {
  decodeGroupEpoch,
  decodeGroupEpochRequest,
  encodeGroupEpochRequest,
  GROUP_EPOCH_ASK_MS,
  GROUP_EPOCH_CHECK_MS,
  isGroupEpochEnvelope,
  isGroupEpochRequest,
  type GroupEpoch,
  type GroupEpochRequest,
} from '../../protocol/group-inbox.js';
import { mailboxEpochAt } from '../../protocol/mailbox.js';
import { anySignal, type AbortOptions } from '../../net/abort.js';
import type { ContentClient } from '../content.js';
import { GroupInbox } from './group-inbox.js';
import {
  groupStoreKey,
  openGroupRecord,
  openOrphans,
  ORPHANS_RECORD,
  sealGroupRecord,
  sealOrphans,
  wipeGroupRecord,
  type GroupInboxState,
  type GroupRecord,
  type GroupStorage,
} from './group-store.js';

/** Groups one messenger is in (specs/limits.md). */
export const MAX_GROUPS = 1000;
/** Groups one messenger is in by invitation of one identity (the signer of the roster that added it). */
export const MAX_GROUPS_PER_INVITER = 32;
/** Group messages held per group while their sender key has not come (specs/limits.md). */
export const MAX_GROUP_PENDING = 256;
/** Group messages held in all of a messenger's groups while their sender key has not come. */
export const MAX_GROUP_PENDING_TOTAL = 1024;
/** Skipped message keys held for all the members of one group together. */
export const MAX_GROUP_SKIPPED_PER_GROUP = 2000;
/** Skipped message keys held in all of a messenger's groups together. */
export const MAX_GROUP_SKIPPED = 20_000;

/** The bounds of a messenger's groups (specs/limits.md); every field defaults to the constant of its name. */
export interface GroupLimits {
  /** MAX_GROUPS (1000). */
  maxGroups: number;
  /** MAX_GROUPS_PER_INVITER (32). */
  maxGroupsPerInviter: number;
  /** MAX_GROUP_PENDING (256): held messages per group, and envelopes held for groups not joined yet. */
  maxPending: number;
  /** MAX_GROUP_PENDING_TOTAL (1024). */
  maxPendingTotal: number;
  /** MAX_GROUP_SKIP (1000): skipped keys per sender and group. */
  maxSkip: number;
  /** MAX_GROUP_SKIPPED_PER_GROUP (2000). */
  maxSkippedPerGroup: number;
  /** MAX_GROUP_SKIPPED (20 000). */
  maxSkipped: number;
}

export function groupLimits(given: Partial<GroupLimits> = {}): GroupLimits {
  return {
    maxGroups: given.maxGroups ?? MAX_GROUPS,
    maxGroupsPerInviter: given.maxGroupsPerInviter ?? MAX_GROUPS_PER_INVITER,
    maxPending: given.maxPending ?? MAX_GROUP_PENDING,
    maxPendingTotal: given.maxPendingTotal ?? MAX_GROUP_PENDING_TOTAL,
    maxSkip: given.maxSkip ?? MAX_GROUP_SKIP,
    maxSkippedPerGroup: given.maxSkippedPerGroup ?? MAX_GROUP_SKIPPED_PER_GROUP,
    maxSkipped: given.maxSkipped ?? MAX_GROUP_SKIPPED,
  };
}

/** What a Group needs of the table it is in: its bounds, the shared pools, and saving. */
interface GroupContext {
  readonly limits: GroupLimits;
  /** Every chain of every group: MAX_GROUP_SKIPPED. */
  readonly skipped: SkipPool;
  /** Makes room for one more held message in all groups (MAX_GROUP_PENDING_TOTAL). */
  readonly roomToHold: () => void;
  /** Saves the group (when there is storage), then emits its messages that wait on the save; rejects if it fails. */
  readonly save: (g: Group) => Promise<void>;
  /**
   * Runs the sends a received envelope calls for (our key in reply to a roster) without holding up its
   * acknowledgement: the conversation that carried the envelope reads nothing more until it is acknowledged, and the
   * peer's acknowledgement of those sends comes back on that same conversation (§13.4).
   */
  readonly later: (sends: Promise<void>) => void;
  /** The group inbox of a version 2 group (§13.9). Throws ERR_CONFIG when the table was given no content store. */
  readonly inbox: (group: Uint8Array, state?: GroupInboxState) => GroupInbox;
  /** How long a send of a version 2 group waits for the epoch of the roster held (ERR_TIMEOUT after). */
  readonly epochWaitMs: number;
  /** How long a version 2 member holds a roster without its epoch before it asks an admin, and then asks again (§13.9). */
  readonly epochAskMs: number;
  /** How often a version 2 member holding its roster's epoch asks an admin whether it missed a later one (§13.9). */
  readonly epochCheckMs: number;
  /** The clock of the group inbox (rate limits of epoch requests). */
  readonly now: () => number;
}

/** How a group carries its messages: version 1, pairwise to each member; version 2, one deposit in a group inbox (§13.9). */
export type GroupDelivery = 'pairwise' | 'inbox';

/** A message of a group, decrypted and verified as its sender's. */
export interface GroupIncoming {
  /** The group id (hex). */
  readonly group: string;
  /** The sender's address: its person's, for a message a linked device sent (specs/messaging.md §13.8). */
  readonly from: string;
  /** The device that sent it, when it is a linked device of the person `from` (its address). */
  readonly device?: string;
  readonly data: Uint8Array;
  /** The sender's key generation and the message's index in it: (generation, index) is unique per sender. */
  readonly generation: number;
  readonly index: number;
}

export interface GroupMemberChange {
  readonly group: string;
  readonly member: string;
  /** Who signed the change (the member itself when it left). */
  readonly by: string;
}

export interface GroupKeyUpdate {
  readonly group: string;
  readonly member: string;
  readonly generation: number;
}

export type GroupEvents = {
  'group:message': [GroupIncoming];
  /** A member was added (`member` is our own address when we were added: we joined). */
  'group:member-added': [GroupMemberChange];
  /** A member was removed or left (`member` is our own address when we were removed). */
  'group:member-removed': [GroupMemberChange];
  /** A member's sender key has a new generation (ours too, after updateKey() or a removal). */
  'group:key-updated': [GroupKeyUpdate];
  /** A member was made an admin or stopped being one. */
  'group:admins-changed': [{ readonly group: string; readonly admins: readonly string[]; readonly by: string }];
};

/** What a group send reached: members that acknowledged it or got it in their mailbox, and those it failed for. */
export interface GroupSendReport {
  readonly group: string;
  readonly generation: number;
  readonly index: number;
  readonly delivered: readonly string[];
  readonly storedOffline: readonly string[];
  readonly failed: ReadonlyArray<{ readonly to: string; readonly error: AlliumError }>;
  /**
   * A group of delivery 'inbox' (§13.9): the day and slot of the group inbox the message was deposited in, once;
   * `delivered` is then empty and `storedOffline` names every other member (each reads it when it next collects).
   */
  readonly inbox?: { readonly day: number; readonly slot: number };
}

/** What groups need of the messenger: pairwise delivery of an envelope, events and error reports. */
export interface GroupHost {
  readonly identity: Identity;
  /**
   * Who we are in rosters (§13.8): our identity (the default); or, on a device linked to a person (§14), the person's
   * key. `sends`: we send messages and keys (default true); `changes`: we may change the group — add, remove, set
   * admins, leave, create, start epochs (default `sends`; false on a linked device: the primary changes the group);
   * `siblings`: our person has other devices, which get what we send as members do (default false).
   */
  readonly member?: () => { readonly key: Uint8Array; readonly sends: boolean; readonly changes?: boolean; readonly siblings?: boolean };
  /**
   * The person whose device list we hold names `device` as one of its devices other than the first (§13.8, §14.4):
   * a member takes that device's envelopes as the person's. Without it, only roster members send.
   */
  readonly personOf?: (device: Uint8Array) => Uint8Array | undefined;
  /**
   * Version 2, on a linked device: sends our person's device list to every device of `to` not yet told its current
   * revision, before our first deposit (§13.8: members must hold the list naming us).
   */
  readonly introduce?: (to: readonly string[], options: AbortOptions) => Promise<void>;
  sendEnvelope(to: string, envelope: Uint8Array, options: AbortOptions): Promise<EnvelopeReceipt>;
  emit<K extends keyof GroupEvents>(event: K, ...args: GroupEvents[K]): void;
  error(e: AlliumError): void;
}

/**
 * Runs `f` with a signal of its own linked to the caller's: one call fans out to every member, and the caller's
 * signal then carries one listener, not one per member (net/abort.ts lifts Node's listener limit on signals made there).
 */
async function fanOut<T>(options: AbortOptions, f: (o: AbortOptions) => Promise<T>): Promise<T> {
  const linked = anySignal(options.signal);
  try {
    return await f({ signal: linked.signal });
  } finally {
    linked.dispose();
  }
}

/** What pairwise delivery of one envelope came to (the messenger's SendReceipt, of which only the status is used). */
export interface EnvelopeReceipt {
  readonly status: 'delivered' | 'stored-offline' | 'mixed';
}

/** `e` as an AlliumError (ERR_INTERNAL with `what` for anything else). */
function asAlliumError(e: unknown, what: string): AlliumError {
  return isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', what, { cause: e });
}

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && crypto().equal(a, b);

/** One group as a member sees it. */
export class Group {
  readonly idBytes: Uint8Array;
  /** The group id (hex of 32 random bytes). */
  readonly id: string;
  /** Who signed the roster that invited us (undefined for a group we created). */
  readonly inviter: Uint8Array | undefined;
  private roster: Roster;
  /** The roster's envelope, encoded once per roster for saving. */
  private rosterBytes: Uint8Array | null = null;
  /** Members' identity keys by address (parsed once: parsing checks the point). */
  private readonly keyOf = new Map<string, Uint8Array>();
  private readonly own: OwnSenderKey;
  /** Members holding our current generation (from the index we handed them); not stored: after a restart every
   * member gets our key again before our next message (a copy of a generation it holds changes nothing). */
  private readonly keyHolders = new Set<string>();
  private readonly chains = new Map<string, SenderChain>();
  /** The skipped keys of this group's chains together (MAX_GROUP_SKIPPED_PER_GROUP). */
  private readonly skipped: SkipPool;
  private pending: Array<{ from: string; m: GroupMessage }> = [];
  /** Messages decrypted but not yet emitted: they wait for the state that consumed their keys to be saved. */
  private ready: GroupIncoming[] = [];
  /** Per member, the tail of its queue of envelopes. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private active = true;
  /** Version 2 (§13.9): the group inbox; null for a version 1 group. */
  private inbox: GroupInbox | null = null;
  /** The (epoch, generation, day) our sender key was last deposited for: not stored (a restart deposits it again). */
  private announced = '';
  /** Sends of a version 2 group, one at a time (our sender key goes before the first message of a tag). */
  private sending: Promise<unknown> = Promise.resolve();
  /** The pass over the inbox running, if any. */
  private collecting: Promise<number> | null = null;
  /** Sends waiting for the epoch of the roster held. */
  private epochWaiters: Array<() => void> = [];
  /** An admin's epochs not yet handed over, per member address: kept (and stored) until delivered, retried (§13.9). */
  private readonly handovers = new Map<string, { roster: Uint8Array; epoch: Uint8Array; newcomer: boolean; sending?: boolean }>();
  /** The retry of handovers running, if any. */
  private retrying: Promise<void> | null = null;
  /** When the roster held was taken (or the group loaded): a member asks for its epoch once it has waited (§13.9). */
  private rosterAt: number;
  /** When we last asked an admin for a missed epoch, and how often: each ask goes to the next admin. */
  private askedAt = -Infinity;
  private asks = 0;
  /** When we last asked an admin whether we are behind while holding our roster's epoch (or the group came). */
  private checkedAt: number;
  /** An admin's last answer to each requester's epoch request (§13.9): only members and listed devices, each kept
   * GROUP_EPOCH_ASK_MS, so at most one entry per member and device of the group. Not stored. */
  private readonly answered = new Map<string, number>();

  constructor(
    private readonly host: GroupHost,
    roster: Roster,
    private readonly ctx: GroupContext,
    from?: { inviter?: Uint8Array; record?: GroupRecord; delivery?: GroupDelivery },
  ) {
    this.roster = roster;
    this.rosterAt = ctx.now();
    this.checkedAt = ctx.now();
    this.idBytes = roster.group.slice();
    this.id = toHex(roster.group);
    this.inviter = from?.inviter?.slice() ?? from?.record?.inviter?.slice();
    this.skipped = new SkipPool(ctx.limits.maxSkippedPerGroup);
    const r = from?.record;
    if (!r) {
      this.own = OwnSenderKey.create();
      if (from?.delivery === 'inbox') this.inbox = ctx.inbox(this.idBytes);
      return;
    }
    if (r.inbox) this.inbox = ctx.inbox(this.idBytes, r.inbox);
    this.own = OwnSenderKey.fromParts(r.own);
    this.active = r.active;
    for (const c of r.chains) {
      const a = formatAddress(c.member);
      // Only members' keys are cached: a linked device's chain is checked against its person's list on each use.
      if (this.indexOf(c.member) >= 0) this.keyOf.set(a, c.member.slice());
      this.chains.set(a, SenderChain.restore(c.chain, ctx.limits.maxSkip, this.pools()));
    }
    this.pending = r.pending.map((p) => ({ from: formatAddress(p.member), m: p.message }));
    for (const h of r.handovers ?? []) {
      this.handovers.set(formatAddress(h.member), { roster: h.roster.slice(), epoch: h.epoch.slice(), newcomer: h.newcomer });
    }
  }

  private setRoster(next: Roster): void {
    this.roster = next;
    this.rosterAt = this.ctx.now();
    this.rosterBytes = null;
    const members = new Set(next.members.map(toHex));
    for (const [a, k] of [...this.keyOf]) if (!members.has(toHex(k))) this.keyOf.delete(a);
    for (const a of [...this.handovers.keys()]) if (!members.has(toHex(parseAddress(a)))) this.dropHandover(a);
  }

  /** The identity key of member `address`, or undefined when it is not a member. */
  private memberKey(address: string): Uint8Array | undefined {
    const have = this.keyOf.get(address);
    if (have) return have;
    const key = parseAddress(address);
    if (this.indexOf(key) < 0) return undefined;
    this.keyOf.set(address, key);
    return key;
  }

  /**
   * Who may send us envelopes of this group as `from` (§13.8): a member (its person is itself), or a device the held
   * list of a member names (its person is that member). Undefined for anyone else.
   */
  private sender(from: string): { key: Uint8Array; person: Uint8Array } | undefined {
    const key = this.memberKey(from);
    if (key) return { key, person: key };
    const device = parseAddress(from);
    const person = this.host.personOf?.(device);
    return person && this.indexOf(person) >= 0 ? { key: device, person } : undefined;
  }

  /** Drops the chain and held messages of `from` (no longer a member nor a member's device). */
  private forget(from: string): void {
    this.chains.get(from)?.destroy();
    this.chains.delete(from);
    this.keyHolders.delete(from);
    this.pending = this.pending.filter((p) => p.from !== from);
  }

  /**
   * @internal Person `person`'s device list changed (§13.8): its devices get our key again with our next message, and
   * the chains of devices no list names any more are dropped (so a member cycling devices cannot make us hold more
   * than one chain per member and device listed). True when a chain was dropped (the group is to be saved).
   */
  devicesChanged(person: Uint8Array): boolean {
    if (this.indexOf(person) < 0) return false;
    this.keyHolders.delete(formatAddress(person));
    let dropped = false;
    for (const a of [...this.chains.keys()]) {
      if (this.sender(a)) continue;
      this.forget(a);
      dropped = true;
    }
    return dropped;
  }

  /** The pools a chain of this group counts in: the group's and the messenger's. */
  private pools(): SkipPool[] {
    return [this.skipped, this.ctx.skipped];
  }

  /** Everything a restart needs (copies; the caller seals them, then wipes them). */
  state(): GroupRecord {
    return {
      roster: this.roster,
      rosterBytes: (this.rosterBytes ??= encodeGroupEnvelope(this.roster)),
      active: this.active,
      ...(this.inviter ? { inviter: this.inviter } : {}),
      own: this.own.state(),
      chains: [...this.chains].map(([a, c]) => ({ member: this.keyOf.get(a) ?? parseAddress(a), chain: c.state() })),
      pending: this.pending.map((p) => ({ member: this.keyOf.get(p.from) ?? parseAddress(p.from), message: p.m })),
      ...(this.inbox ? { inbox: this.inbox.state() } : {}),
      ...(this.handovers.size
        ? {
            handovers: [...this.handovers].map(([a, h]) => ({
              member: parseAddress(a),
              roster: h.roster,
              epoch: Uint8Array.from(h.epoch),
              newcomer: h.newcomer,
            })),
          }
        : {}),
    };
  }

  /** 'inbox' for a version 2 group (§13.9), else 'pairwise'. */
  get delivery(): GroupDelivery {
    return this.inbox ? 'inbox' : 'pairwise';
  }

  /** The group epoch held (version 2; −1 before the first, and for a version 1 group). */
  get epoch(): number {
    return this.inbox?.epoch ?? -1;
  }

  /** Skipped keys held for this group's members together. */
  get skippedKeys(): number {
    return this.skipped.size;
  }

  /** Messages held while their sender key has not come. */
  get heldMessages(): number {
    return this.pending.length;
  }

  /** Drops the oldest held message (the messenger-wide bound makes room). */
  dropOldestHeld(): void {
    this.pending.shift();
  }

  /** @internal The messages whose state was saved, to emit now. */
  takeReady(): GroupIncoming[] {
    const r = this.ready;
    this.ready = [];
    return r;
  }

  get name(): string {
    return this.roster.name;
  }
  get revision(): number {
    return this.roster.r;
  }
  /** Members' addresses, ourselves included. */
  get members(): string[] {
    return this.roster.members.map((k) => formatAddress(k));
  }
  get admins(): string[] {
    return this.roster.admins.map((i) => formatAddress(this.roster.members[i]!));
  }
  get isAdmin(): boolean {
    return isAdminIn(this.roster, this.me());
  }
  /** False once we left or were removed. */
  get isActive(): boolean {
    return this.active;
  }
  /** Our sender key's generation. */
  get generation(): number {
    return this.own.e;
  }

  /**
   * Encrypts `data` once under our sender key and hands it to every other member (pairwise, live or mailbox; a
   * member without our current key gets it first). Resolves when every member was reached or failed: see the report.
   * Throws LimitError MAX_GROUP_MESSAGE_BYTES, ERR_GROUP_MEMBERSHIP (no longer a member), ERR_ABORTED.
   */
  send(data: Uint8Array, options: AbortOptions = {}): Promise<GroupSendReport> {
    return fanOut(options, (o) => this.sendAll(data, o));
  }

  private async sendAll(data: Uint8Array, options: AbortOptions): Promise<GroupSendReport> {
    this.requireSender();
    if (this.inbox) return this.deposit(data, options);
    const others = this.others();
    // Members that lack our current generation get it as of this message's index, before the message.
    const newHolders = others.filter((a) => !this.keyHolders.has(a));
    const dist = this.own.distribution(this.idBytes);
    const m = this.own.encrypt(this.idBytes, this.host.identity.publicKey, data);
    const bytes = encodeGroupEnvelope(m);
    const distBytes = encodeGroupEnvelope(dist);
    for (const a of newHolders) this.keyHolders.add(a);
    try {
      // The index is spent on storage before the message leaves: a restart never uses it again (§13.7).
      await this.ctx.save(this);
    } catch (e) {
      for (const a of newHolders) this.keyHolders.delete(a);
      throw e;
    }
    for (const a of newHolders) void this.enqueue(a, distBytes, options).catch(() => this.keyHolders.delete(a));
    const results = await Promise.allSettled(others.map((a) => this.enqueue(a, bytes, options)));
    const delivered: string[] = [];
    const storedOffline: string[] = [];
    const failed: Array<{ to: string; error: AlliumError }> = [];
    results.forEach((r, i) => {
      const to = others[i]!;
      if (r.status === 'rejected') failed.push({ to, error: asAlliumError(r.reason, 'group send failed') });
      else (r.value.status === 'delivered' ? delivered : storedOffline).push(to);
    });
    return { group: this.id, generation: m.e, index: m.n, delivered, storedOffline, failed };
  }

  /**
   * Adds a member (admins only): a new roster signed by us goes to every member, the new one included; each member
   * then hands the newcomer its sender key as of now, so the newcomer reads nothing sent before. Throws
   * ERR_GROUP_MEMBERSHIP (not an admin), ERR_CONFIG (already a member), LimitError MAX_GROUP_MEMBERS.
   */
  add(address: string, options: AbortOptions = {}): Promise<void> {
    return fanOut(options, (o) => this.addMember(address, o));
  }

  private async addMember(address: string, options: AbortOptions): Promise<void> {
    const key = parseAddress(address);
    this.requireAdmin();
    if (this.indexOf(key) >= 0) throw new ConfigError('already a member of the group');
    if (this.roster.members.length >= MAX_GROUP_MEMBERS) throw new LimitError('MAX_GROUP_MEMBERS', `a group has at most ${MAX_GROUP_MEMBERS} members`);
    const members = [...this.roster.members, key];
    await this.publish(members, this.roster.admins, [], options);
  }

  /**
   * Removes a member (admins only): the new roster goes to every member and to the removed one, and every remaining
   * member (we first) updates its sender key and hands the new one to the remaining members only. Throws
   * ERR_GROUP_MEMBERSHIP (not an admin), ERR_NOT_FOUND (not a member), ERR_CONFIG (ourselves: use leave()).
   */
  remove(address: string, options: AbortOptions = {}): Promise<void> {
    return fanOut(options, (o) => this.removeMember(address, o));
  }

  private async removeMember(address: string, options: AbortOptions): Promise<void> {
    const key = parseAddress(address);
    this.requireAdmin();
    if (same(key, this.host.identity.publicKey)) throw new ConfigError('to remove ourselves, leave()');
    const i = this.indexOf(key);
    if (i < 0) throw new AlliumError('ERR_NOT_FOUND', 'not a member of the group');
    const { members, admins } = without(this.roster, i);
    await this.publish(members, admins, [key], options);
  }

  /** Leaves the group: a roster without us, signed by us, to every member; they update their keys. */
  leave(options: AbortOptions = {}): Promise<void> {
    return fanOut(options, (o) => this.leaveGroup(o));
  }

  private async leaveGroup(options: AbortOptions): Promise<void> {
    this.requireChanger();
    const i = this.indexOf(this.host.identity.publicKey);
    const { members, admins } = without(this.roster, i);
    if (members.length === 0) {
      this.deactivate();
      await this.ctx.save(this);
      return;
    }
    const next = signRoster(
      { group: this.idBytes, r: this.roster.r + 1, name: this.roster.name, members, admins, by: this.host.identity.publicKey },
      this.host.identity.secretKey,
    );
    const others = this.others();
    this.setRoster(next);
    this.deactivate();
    await this.ctx.save(this);
    const bytes = encodeGroupEnvelope(next);
    await Promise.allSettled(others.map((a) => this.enqueue(a, bytes, options)));
  }

  /** Makes a member an admin, or not (admins only). Throws ERR_GROUP_MEMBERSHIP, ERR_NOT_FOUND. */
  setAdmin(address: string, admin: boolean, options: AbortOptions = {}): Promise<void> {
    return fanOut(options, (o) => this.changeAdmin(address, admin, o));
  }

  private async changeAdmin(address: string, admin: boolean, options: AbortOptions): Promise<void> {
    const key = parseAddress(address);
    this.requireAdmin();
    const i = this.indexOf(key);
    if (i < 0) throw new AlliumError('ERR_NOT_FOUND', 'not a member of the group');
    const admins = new Set(this.roster.admins);
    if (admin) admins.add(i);
    else admins.delete(i);
    await this.publish(
      this.roster.members,
      [...admins].sort((a, b) => a - b),
      [],
      options,
    );
  }

  /**
   * Starts a new generation of our sender key (fresh random chain and signing key) and hands it to every member: from
   * then on a leaked copy of our old chain reads none of our messages. Resolves once every member was reached or
   * failed (those that failed get it with our next message).
   */
  updateKey(options: AbortOptions = {}): Promise<void> {
    return fanOut(options, async (o) => {
      this.requireSender();
      this.rotate();
      await this.ctx.save(this);
      await this.distribute(this.others(), o);
    });
  }

  /**
   * On joining: our sender key to `via` (who sent us the roster: a session to it exists) and to every member we
   * open to (§13.4, one session per pair); the others get it in reply to theirs, or before our first message.
   */
  announce(via: string, options: AbortOptions = {}): Promise<void> {
    return this.distribute(
      this.others().filter((a) => !this.keyHolders.has(a) && (a === via || this.opensTo(a))),
      options,
    );
  }

  /** On creating the group: the roster to every other member, then our sender key (each member's queue keeps the order). */
  async introduce(options: AbortOptions = {}): Promise<void> {
    const bytes = encodeGroupEnvelope(this.roster);
    if (this.inbox) {
      // Version 2: the epoch, then the roster, to each member (the star of §13.9); keys travel by deposit.
      const epoch = this.startEpoch();
      for (const a of this.others()) this.planHandover(a, bytes, epoch, true);
      crypto().wipe(epoch);
      await this.ctx.save(this);
      await this.sendHandovers(this.others(), options);
      return;
    }
    const sent = Promise.allSettled(this.others().map((a) => this.enqueue(a, bytes, options)));
    await Promise.all([sent, this.distribute(this.others(), options)]);
  }

  /**
   * Of two members that would hand each other their keys at the same moment (both joining, or a newcomer and a
   * member), the one with the lower identity key sends first and the other replies over the session that carried
   * it: one rendezvous per pair, not one each way (§13.4).
   */
  private opensTo(address: string): boolean {
    const mine = this.host.identity.publicKey;
    const theirs = parseAddress(address);
    for (let i = 0; i < mine.length; i++) if (mine[i] !== theirs[i]) return mine[i]! < theirs[i]!;
    return false;
  }

  // ------------------------------------------------------------------ version 2: the group inbox (§13.9)

  /**
   * Deposits `data` once in the group inbox, our sender key before it when today's inbox lacks our generation. Waits
   * first, while the roster held has an admin, for the epoch of that roster (a removal's new epoch: nothing of ours
   * after the removal goes under the old one).
   */
  private async deposit(data: Uint8Array, options: AbortOptions): Promise<GroupSendReport> {
    const turn = this.sending.then(async () => {
      await this.epochOfRoster(options);
      this.requireSender();
      // A linked device: every member must hold our person's list naming us before our deposits open as its (§13.8).
      if (!same(this.me(), this.host.identity.publicKey)) await this.host.introduce?.(this.others(), options);
      const inbox = this.inbox!;
      const today = inbox.today()!;
      const tag = `${today.q}:${this.own.e}:${today.day}`;
      const envelopes: Array<GroupMessage | SenderKeyDistribution> = [];
      if (this.announced !== tag) envelopes.push(this.own.distribution(this.idBytes));
      const m = this.own.encrypt(this.idBytes, this.host.identity.publicKey, data);
      envelopes.push(m);
      // The index is spent on storage before the message leaves (§13.7).
      await this.ctx.save(this);
      const at = await inbox.deposit(this.host.identity, envelopes, options);
      this.announced = tag;
      return { group: this.id, generation: m.e, index: m.n, delivered: [], storedOffline: this.others(), failed: [], inbox: at };
    });
    this.sending = turn.catch(() => undefined);
    return turn;
  }

  /** True when we hold the epoch of the roster held, or the roster has no admin left to start one. */
  private epochCurrent(): boolean {
    const e = this.inbox?.currentEpoch;
    return e !== null && e !== undefined && (e.r === this.roster.r || this.roster.admins.length === 0);
  }

  /** Waits for the epoch of the roster held: ERR_ABORTED, or ERR_TIMEOUT after epochWaitMs (§13.9). */
  private async epochOfRoster(options: AbortOptions): Promise<void> {
    const deadline = Date.now() + this.ctx.epochWaitMs;
    while (!this.epochCurrent()) {
      this.requireActive();
      const signal = options.signal;
      if (signal?.aborted) throw new AbortedError('group send aborted while waiting for the group epoch');
      // Still without the epoch once the roster has been held a while: its handover was lost, ask an admin (§13.9).
      this.askForEpoch();
      const askIn = Math.max(0, this.rosterAt + this.ctx.epochAskMs - this.ctx.now(), this.askedAt + this.ctx.epochAskMs - this.ctx.now());
      await new Promise<void>((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        const onAbort = (): void => {
          done();
          reject(new AbortedError('group send aborted while waiting for the group epoch'));
        };
        const left = Math.max(0, deadline - Date.now());
        const timer = setTimeout(
          () => {
            done();
            if (Date.now() < deadline)
              resolve(); // time to ask (again)
            else reject(new TimeoutError(`no group epoch for roster ${this.roster.r} came from an admin in time`));
          },
          Math.min(left, askIn),
        );
        signal?.addEventListener('abort', onAbort, { once: true });
        this.epochWaiters.push(() => {
          done();
          resolve();
        });
      });
    }
  }

  private wakeEpochWaiters(): void {
    const w = this.epochWaiters;
    this.epochWaiters = [];
    for (const f of w) f();
  }

  /**
   * A member holding a roster without its epoch for epochAskMs asks an admin for it (§13.9, "Asking for a missed
   * epoch"): the roster's signer first when it is an admin of it, then the next admin each time; at most once per
   * epochAskMs. Nothing when the roster has no admin left (we send under the epoch held).
   */
  private askForEpoch(): void {
    const inbox = this.inbox;
    if (!inbox || !this.active || this.epochCurrent()) return;
    const now = this.ctx.now();
    if (now - this.rosterAt < this.ctx.epochAskMs || now - this.askedAt < this.ctx.epochAskMs) return;
    this.askedAt = now;
    this.askAdmin(inbox);
  }

  /**
   * A member holding the epoch of its roster asks an admin, once per epochCheckMs, whether it is behind (§13.9,
   * "Asking for a missed epoch"): one that missed both a later roster and its epoch holds an epoch that looks current
   * and would read and deposit where no one else does any more. The admin answers only a member below its own.
   */
  private checkEpoch(): void {
    const inbox = this.inbox;
    if (!inbox || !this.active || !this.epochCurrent()) return;
    const now = this.ctx.now();
    if (now - this.checkedAt < this.ctx.epochCheckMs && now >= this.checkedAt) return;
    this.checkedAt = now;
    this.askAdmin(inbox);
  }

  /** Sends the epoch request for the roster and epoch held to an admin: the roster's signer first, then each in turn. */
  private askAdmin(inbox: GroupInbox): void {
    const me = this.me();
    const admins = this.roster.admins.map((i) => this.roster.members[i]!).filter((k) => !same(k, me));
    const by = admins.find((k) => same(k, this.roster.by));
    const order = by ? [by, ...admins.filter((k) => k !== by)] : admins;
    if (order.length === 0) return;
    const to = formatAddress(order[this.asks++ % order.length]!);
    const bytes = encodeGroupEpochRequest({ kind: 'epoch-request', group: this.idBytes, r: this.roster.r, q: Math.max(0, inbox.epoch) });
    this.ctx.later(this.enqueue(to, bytes, {}).then(() => undefined));
  }

  /**
   * An epoch request from `from` (§13.9): an admin holding the epoch of its roster answers a member of that roster
   * (or a device its list names) whose (r, q) is below it, at most once per GROUP_EPOCH_ASK_MS, with the roster (when
   * the requester's is older) and the epoch from the oldest day held. Throws ERR_GROUP_MEMBERSHIP (not a member: a
   * removed one included), LimitError GROUP_EPOCH_ASK_MS; nothing is sent then.
   */
  receiveEpochRequest(from: string, req: GroupEpochRequest): void {
    const inbox = this.inbox;
    if (!inbox || !this.active || !this.changes || !this.isAdmin) return;
    const cur = inbox.currentEpoch;
    if (!cur || cur.r !== this.roster.r) return; // we wait for it ourselves
    if (!this.sender(from)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', "an epoch request from someone not in the group, nor a device of a member's");
    if (req.r > cur.r || (req.r === cur.r && req.q >= cur.q)) return; // it holds ours (or a later one)
    const now = this.ctx.now();
    for (const [a, t] of this.answered) if (now - t >= GROUP_EPOCH_ASK_MS || now < t) this.answered.delete(a);
    if (this.answered.has(from)) throw new LimitError('GROUP_EPOCH_ASK_MS', 'an epoch request answered less than a minute ago');
    this.answered.set(from, now);
    const roster = req.r < this.roster.r ? encodeGroupEnvelope(this.roster) : null;
    const epoch = inbox.reissue()!;
    this.ctx.later(
      (async () => {
        if (roster) await this.enqueue(from, roster, {});
        await this.enqueue(from, epoch, {});
      })(),
    );
  }

  /** Makes and takes the next epoch for the roster held (admins); returns its envelope, to hand to the members. */
  private startEpoch(): Uint8Array {
    const bytes = this.inbox!.makeEpoch(this.roster.r);
    this.takeEpoch(decodeGroupEpoch(bytes));
    return bytes;
  }

  /** Takes an epoch (checked): a new generation of our key after the first. */
  private takeEpoch(e: GroupEpoch): void {
    const inbox = this.inbox!;
    const first = inbox.epoch < 0;
    const took = inbox.take(e);
    crypto().wipe(e.es);
    if (!took) return;
    if (!first && this.sends) this.rotate();
    this.announced = '';
    this.wakeEpochWaiters();
  }

  /**
   * An epoch envelope from `from` over the pairwise path (§13.9): taken when `from` is an admin of the roster held
   * and it is for that roster's revision. Throws ERR_GROUP_MEMBERSHIP.
   */
  receiveEpoch(from: string, e: GroupEpoch): void {
    if (!this.active) return;
    if (!same(e.group, this.idBytes)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'an epoch of another group');
    if (!isAdminIn(this.roster, parseAddress(from))) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group epoch not from an admin');
    if (e.r !== this.roster.r) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group epoch for another roster revision');
    // A group is version 1 or 2 from its joining (§13.9): an epoch does not turn a version 1 group into version 2.
    if (!this.inbox) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group epoch for a version 1 group');
    this.takeEpoch(e);
  }

  /**
   * One pass over the group inbox (version 2): every message that opens is emitted once ('group:message'), after the
   * state that spent its key is saved. Resolves with the number emitted (0 for a version 1 group). Throws ERR_ABORTED.
   */
  collect(options: AbortOptions = {}): Promise<number> {
    if (!this.inbox || !this.active) return Promise.resolve(0);
    this.retryHandovers({});
    this.askForEpoch();
    this.checkEpoch();
    this.collecting ??= this.collectPass(options).finally(() => (this.collecting = null));
    return this.collecting;
  }

  private async collectPass(options: AbortOptions): Promise<number> {
    const inbox = this.inbox!;
    let n = 0;
    await inbox.collect(
      (d) => {
        // Our own; a sibling's (or our person's) are read as any member's (§13.8).
        if (!this.active || same(d.from, this.host.identity.publicKey)) return;
        const from = formatAddress(d.from);
        try {
          if (d.envelope.kind === 'sender-key') this.receiveSenderKey(from, d.envelope);
          else this.receiveMessage(from, d.envelope);
        } catch (e) {
          this.host.error(asAlliumError(e, 'a group deposit refused'));
        }
      },
      (e) => this.host.error(e),
      options,
    );
    n = this.ready.length;
    await this.ctx.save(this);
    return n;
  }

  /** Notes that `to` is to get `roster` and `epoch` (a copy, kept until delivered), replacing what it was to get. */
  private planHandover(to: string, roster: Uint8Array, epoch: Uint8Array, newcomer: boolean): void {
    const had = this.handovers.get(to);
    // A newcomer that has not got its first epoch yet is still one for the next.
    this.handovers.set(to, { roster, epoch: Uint8Array.from(epoch), newcomer: newcomer || (had?.newcomer ?? false) });
    if (had) crypto().wipe(had.epoch);
  }

  private dropHandover(to: string): void {
    const had = this.handovers.get(to);
    if (!had) return;
    this.handovers.delete(to);
    crypto().wipe(had.epoch);
  }

  /**
   * Hands each of `to` what it is to get (planHandover), and forgets (and saves) what was delivered. A failure leaves
   * it for the next try (retryHandovers); reported, never thrown.
   */
  private async sendHandovers(to: readonly string[], options: AbortOptions): Promise<void> {
    let done = 0;
    await Promise.all(
      to.map(async (a) => {
        const h = this.handovers.get(a);
        if (!h || h.sending) return; // being handed over already
        h.sending = true;
        try {
          await this.handOver(a, h.roster, h.epoch, h.newcomer, options);
        } catch (e) {
          this.host.error(asAlliumError(e, 'group epoch handover failed'));
          return;
        } finally {
          h.sending = false;
        }
        if (this.handovers.get(a) !== h) return; // a newer one replaced it meanwhile
        this.dropHandover(a);
        done++;
      }),
    );
    if (done > 0) await this.ctx.save(this);
  }

  /** Tries again the handovers that failed (on each pass over the inbox; an admin's). */
  private retryHandovers(options: AbortOptions): void {
    if (this.handovers.size === 0 || this.retrying || !this.active) return;
    this.retrying = this.sendHandovers([...this.handovers.keys()], options).finally(() => (this.retrying = null));
    this.ctx.later(this.retrying);
  }

  /** The epoch and roster envelopes to one member, in the order it can take them (§13.9). */
  private async handOver(to: string, roster: Uint8Array, epoch: Uint8Array, newcomer: boolean, options: AbortOptions): Promise<void> {
    // The transport gets its own copy (it may keep it); ours is wiped once delivered.
    epoch = Uint8Array.from(epoch);
    if (newcomer) {
      // A newcomer holds the epoch until the roster adding it comes (§13.2) and joins as a version 2 member: the
      // roster goes only once the epoch went, so it never joins without it.
      await this.enqueue(to, epoch, options);
      await this.enqueue(to, roster, options);
      return;
    }
    // A member takes the roster first, the epoch being for its revision.
    const first = this.enqueue(to, roster, options);
    const second = this.enqueue(to, epoch, options);
    await Promise.all([first, second]);
  }

  // ------------------------------------------------------------------ inside

  /** The key that stands for us in the roster (our person's, on a linked device). */
  private me(): Uint8Array {
    return this.host.member?.().key ?? this.host.identity.publicKey;
  }

  /** False on a linked device: it takes the group's envelopes and sends none (§13.8). */
  private get sends(): boolean {
    return this.host.member?.().sends ?? true;
  }

  /** False on a linked device: it sends for its person but does not change the group (§13.8). */
  private get changes(): boolean {
    const m = this.host.member?.();
    return m ? (m.changes ?? m.sends) : true;
  }

  private requireSender(): void {
    this.requireActive();
    if (!this.sends) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'this device does not send to groups');
    // A device unlinked from the person the roster names stands for no one in it.
    if (this.indexOf(this.me()) < 0) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'this device stands for no member of the group');
  }

  private requireChanger(): void {
    this.requireSender();
    if (!this.changes) throw new AlliumError('ERR_GROUP_MEMBERSHIP', "a linked device sends to its person's groups; the primary changes them");
  }

  /**
   * Where what we send goes (§13.8): every other member, and our own person (its devices other than us) when it has
   * other devices.
   */
  private others(): string[] {
    const me = this.me();
    const out = this.roster.members.filter((k) => !same(k, me)).map((k) => formatAddress(k));
    if (this.host.member?.().siblings && this.indexOf(me) >= 0) out.push(formatAddress(me));
    return out;
  }

  private indexOf(key: Uint8Array): number {
    return this.roster.members.findIndex((k) => same(k, key));
  }

  private requireActive(): void {
    if (!this.active) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'no longer a member of this group');
  }

  private requireAdmin(): void {
    this.requireChanger();
    if (!this.isAdmin) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'only an admin changes the members of a group');
  }

  /** Envelope `bytes` to `to`, after everything queued for `to` before it. */
  private enqueue(to: string, bytes: Uint8Array, options: AbortOptions): Promise<EnvelopeReceipt> {
    const prev = this.queues.get(to) ?? Promise.resolve();
    const p = prev.catch(() => undefined).then(() => this.host.sendEnvelope(to, bytes, options));
    this.queues.set(to, p);
    const clear = (): void => {
      if (this.queues.get(to) === p) this.queues.delete(to);
    };
    p.then(clear, clear);
    return p;
  }

  private rotate(): void {
    this.own.rotate();
    this.keyHolders.clear();
    this.host.emit('group:key-updated', { group: this.id, member: formatAddress(this.host.identity.publicKey), generation: this.own.e });
  }

  /** Hands our current generation to `to` (each in its queue). */
  private async distribute(to: readonly string[], options: AbortOptions): Promise<void> {
    if (!this.sends || this.inbox) return; // version 2: keys travel by deposit
    const bytes = encodeGroupEnvelope(this.own.distribution(this.idBytes));
    await Promise.allSettled(
      to.map(async (a) => {
        this.keyHolders.add(a);
        try {
          await this.enqueue(a, bytes, options);
        } catch (e) {
          this.keyHolders.delete(a);
          throw e;
        }
      }),
    );
  }

  /** Signs roster r + 1, applies it here as every member does and saves it, then sends it to its members. */
  private async publish(members: readonly Uint8Array[], admins: readonly number[], removed: Uint8Array[], options: AbortOptions): Promise<void> {
    const next = signRoster(
      { group: this.idBytes, r: this.roster.r + 1, name: this.roster.name, members, admins, by: this.host.identity.publicKey },
      this.host.identity.secretKey,
    );
    const bytes = encodeGroupEnvelope(next);
    const me = this.host.identity.publicKey;
    const to = [...members.filter((k) => !same(k, me)), ...removed].map((k) => formatAddress(k));
    if (this.host.member?.().siblings) to.push(formatAddress(me)); // our other devices (§13.8)
    const change = this.take(next);
    if (this.inbox) {
      // Version 2: every change starts a new epoch, handed to the members of the new roster only (§13.9).
      const epoch = this.active ? this.startEpoch() : null;
      const added = new Set(change.added.map(toHex));
      const gone = new Set(removed.map(toHex));
      const getEpoch = to.filter((a) => epoch && !gone.has(toHex(parseAddress(a))));
      for (const a of getEpoch) this.planHandover(a, bytes, epoch!, added.has(toHex(parseAddress(a))));
      if (epoch) crypto().wipe(epoch);
      await this.ctx.save(this);
      // A removed member gets the roster only.
      const rosterOnly = to.filter((a) => !getEpoch.includes(a));
      await Promise.allSettled([this.sendHandovers(getEpoch, options), ...rosterOnly.map((a) => this.enqueue(a, bytes, options))]);
      return;
    }
    await this.ctx.save(this);
    const sent = Promise.allSettled(to.map((a) => this.enqueue(a, bytes, options)));
    await Promise.all([sent, this.follow(change, options)]);
  }

  /**
   * A roster envelope from `from`. Resolves once the roster is taken and saved (the envelope may be acknowledged
   * then); the keys it calls for go out after, each in its member's queue (GroupContext.later).
   */
  async receiveRoster(next: Roster, options: AbortOptions = {}): Promise<void> {
    if (!this.active) return;
    if (next.r <= this.roster.r) return; // a copy, or older: the first roster of a revision wins (§13.4)
    if (!verifyRoster(next)) throw new AlliumError('ERR_SIGNATURE', 'group roster signature');
    if (!isAdminIn(this.roster, next.by) && !isLeave(this.roster, next)) {
      throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group roster signed by a member who may not make that change');
    }
    const left = !next.members.some((k) => same(k, next.by));
    const change = this.take(next);
    this.wakeEpochWaiters();
    // Version 2: a member left (no admin signed the change): the first admin of the new roster starts its epoch.
    const epoch =
      this.inbox && left && this.active && this.changes && next.admins.length > 0 && same(next.members[next.admins[0]!]!, this.me()) ? this.startEpoch() : null;
    if (epoch) {
      const bytes = encodeGroupEnvelope(next);
      for (const a of this.others()) this.planHandover(a, bytes, epoch, false);
      crypto().wipe(epoch);
    }
    await this.ctx.save(this);
    if (epoch) {
      this.ctx.later(this.sendHandovers(this.others(), options));
      return;
    }
    this.ctx.later(this.follow(change, options));
  }

  /** Takes roster `next` here: events, chains of removed members dropped, a new generation after a removal. */
  private take(next: Roster): { removed: Uint8Array[]; added: Uint8Array[] } {
    const prev = this.roster;
    this.setRoster(next);
    const by = formatAddress(next.by);
    const me = this.me();
    // By hex, not pairwise comparison: a roster of k members is compared in O(k), not O(k²) (1000 members: 10⁶).
    const before = new Set(prev.members.map(toHex));
    const after = new Set(next.members.map(toHex));
    const added = next.members.filter((k) => !before.has(toHex(k)));
    const removed = prev.members.filter((k) => !after.has(toHex(k)));
    for (const k of removed) {
      const a = formatAddress(k);
      this.chains.get(a)?.destroy();
      this.chains.delete(a);
      this.keyHolders.delete(a);
      this.pending = this.pending.filter((p) => p.from !== a);
      this.host.emit('group:member-removed', { group: this.id, member: a, by });
    }
    if (!next.members.some((k) => same(k, me))) {
      this.deactivate();
      return { removed, added: [] };
    }
    // Chains of linked devices whose person left, or that their person unlinked (§13.8).
    for (const a of [...this.chains.keys()]) if (!this.sender(a)) this.forget(a);
    for (const k of added) this.host.emit('group:member-added', { group: this.id, member: formatAddress(k), by });
    const adminsBefore = prev.admins.map((i) => formatAddress(prev.members[i]!)).sort();
    const adminsNow = this.admins.sort();
    if (adminsBefore.join() !== adminsNow.join()) this.host.emit('group:admins-changed', { group: this.id, admins: adminsNow, by });
    // Nothing we send from now on is readable with a key a removed member holds (§13.4).
    // Version 2 makes the new generation on taking the new epoch (§13.9).
    if (removed.length > 0 && this.sends && !this.inbox) this.rotate();
    return { removed, added };
  }

  /** After a roster was taken and saved: our (new) key to the remaining members, or to the newcomers. */
  private async follow(change: { removed: Uint8Array[]; added: Uint8Array[] }, options: AbortOptions): Promise<void> {
    if (!this.active || this.inbox) return;
    const me = this.me();
    if (change.removed.length > 0) await this.distribute(this.others(), options);
    else if (change.added.length > 0) {
      // To a newcomer we open to; the others hand us their keys first, and get ours in reply.
      await this.distribute(
        change.added
          .filter((k) => !same(k, me))
          .map((k) => formatAddress(k))
          .filter((a) => this.opensTo(a)),
        options,
      );
    }
  }

  /** A sender key from member `from`. */
  receiveSenderKey(from: string, d: SenderKeyDistribution): void {
    if (!this.active) return;
    const s = this.sender(from);
    if (!s) {
      this.forget(from);
      throw new AlliumError('ERR_GROUP_MEMBERSHIP', "a sender key from someone not in the group, nor a device of a member's");
    }
    const have = this.chains.get(from);
    let taken = true;
    if (!have) this.chains.set(from, SenderChain.from(d, this.ctx.limits.maxSkip, this.pools()));
    else if (have.update(d)) this.host.emit('group:key-updated', { group: this.id, member: from, generation: d.e });
    else taken = false;
    // A member that does not hold our current key yet gets it in reply (over the session its key came by); a
    // member's device gets it with its person's (§13.8).
    if (s.key === s.person && !this.keyHolders.has(from)) void this.distribute([from], {}).catch(() => undefined);
    if (!taken) return;
    const waiting = this.pending.filter((p) => p.from === from);
    this.pending = this.pending.filter((p) => p.from !== from);
    for (const p of waiting) {
      try {
        this.receiveMessage(p.from, p.m);
      } catch (e) {
        this.host.error(asAlliumError(e, 'a held group message refused'));
      }
    }
  }

  /**
   * A group message from member `from`: once it opens, it waits in `ready` until the table has saved the state
   * (then it is emitted, once); copies are dropped; held while its key has not come.
   */
  receiveMessage(from: string, m: GroupMessage): void {
    if (!this.active) return;
    const s = this.sender(from);
    if (!s) {
      this.forget(from);
      throw new AlliumError('ERR_GROUP_MEMBERSHIP', "a group message from someone not in the group, nor a device of a member's");
    }
    const sender = s.key;
    const chain = this.chains.get(from);
    let data: Uint8Array;
    try {
      if (!chain) throw new AlliumError('ERR_NOT_FOUND', 'no sender key yet');
      data = chain.decrypt(sender, m);
    } catch (e) {
      if (isAlliumError(e) && e.code === 'ERR_NOT_FOUND') {
        this.ctx.roomToHold();
        this.pending.push({ from, m });
        if (this.pending.length > this.ctx.limits.maxPending) {
          this.pending.shift();
          this.host.error(new LimitError('MAX_GROUP_PENDING', 'a held group message was dropped'));
        }
        return;
      }
      if (isAlliumError(e) && e.code === 'ERR_MESSAGE_REPLAY') return; // a copy (live and mailbox): delivered once
      throw e;
    }
    const device = s.key === s.person ? {} : { device: from };
    this.ready.push({ group: this.id, from: formatAddress(s.person), ...device, data, generation: m.e, index: m.n });
  }

  private deactivate(): void {
    this.active = false;
    this.inbox?.close();
    this.wakeEpochWaiters();
    for (const c of this.chains.values()) c.destroy();
    this.chains.clear();
    this.pending = [];
    this.keyHolders.clear();
  }
}

function isAdminIn(r: Roster, key: Uint8Array): boolean {
  return r.admins.some((i) => same(r.members[i]!, key));
}

/** `r` without member `i`: the members and the admin indices renumbered. */
function without(r: Roster, i: number): { members: Uint8Array[]; admins: number[] } {
  const members = r.members.filter((_, j) => j !== i);
  const admins = r.admins.filter((j) => j !== i).map((j) => (j > i ? j - 1 : j));
  return { members, admins };
}

/** True when `next` is `prev` less its signer and nothing else changed: a member leaving (§13.4). */
function isLeave(prev: Roster, next: Roster): boolean {
  const i = prev.members.findIndex((k) => same(k, next.by));
  if (i < 0) return false;
  const expect = without(prev, i);
  return (
    next.name === prev.name &&
    expect.members.length === next.members.length &&
    expect.members.every((k, j) => same(k, next.members[j]!)) &&
    expect.admins.join() === next.admins.join()
  );
}

/** What a Groups table takes besides its host: bounds, and where state is kept (default: nowhere, memory only). */
export interface GroupsOptions {
  limits?: Partial<GroupLimits>;
  storage?: GroupStorage;
  /**
   * The content store version 2 groups deposit in and collect from (§13.9), their clock and the life of a deposit
   * (default MAX_MAILBOX_TTL_MS). Without it a group of delivery 'inbox' cannot be created or joined (ERR_CONFIG).
   */
  inbox?: {
    content: ContentClient;
    now?: () => number;
    ttlMs?: number;
    /** How long a send waits for the epoch of the roster held before ERR_TIMEOUT (default 10 minutes, §13.9). */
    epochWaitMs?: number;
    /**
     * How long a member holds a roster without its epoch before it asks an admin for it, and then between asks
     * (default GROUP_EPOCH_ASK_MS, 60 s, §13.9). An admin answers one member at most once per GROUP_EPOCH_ASK_MS.
     */
    epochAskMs?: number;
    /**
     * How often a member holding the epoch of its roster asks an admin whether it missed a later roster and epoch, on
     * a pass over the inbox (default GROUP_EPOCH_CHECK_MS, 6 hours, §13.9).
     */
    epochCheckMs?: number;
  };
}

/** How long an epoch is held for a group not joined (§13.9): a day. */
export const MAX_GROUP_ORPHAN_EPOCH_MS = 24 * 60 * 60 * 1000;

/** How long a send of a version 2 group waits for the epoch of a new roster by default (§13.9). */
export const DEFAULT_GROUP_EPOCH_WAIT_MS = 10 * 60 * 1000;

/**
 * The messenger's groups: creates them, routes each incoming envelope to its group, keeps them within the bounds of
 * GroupLimits, and saves and loads them through a GroupStorage (§13.7).
 */
export class Groups {
  private readonly groups = new Map<string, Group>();
  /**
   * Sender keys and messages for a group we have not joined yet: a member may hand us its key before the roster
   * that adds us has come (they travel over different pairwise sessions). Replayed on joining; at most maxPending,
   * oldest dropped.
   */
  private orphans: Array<{ from: string; id: string; bytes: Uint8Array; at: number }> = [];
  private readonly limits: GroupLimits;
  private readonly storage: GroupStorage | undefined;
  /** The key records are sealed under (only with storage). */
  private readonly storeKey: Uint8Array | undefined;
  private loading: Promise<void> | null = null;
  /** Per record, the last save queued and the one not started yet (which later changes join). */
  private readonly saves = new Map<string, { tail: Promise<void>; next: Promise<void> | null }>();
  private readonly ctx: GroupContext;
  /** Sends started by received envelopes that have not finished (GroupContext.later). */
  private readonly followUps = new Set<Promise<void>>();

  constructor(
    private readonly host: GroupHost,
    options: GroupsOptions = {},
  ) {
    this.limits = groupLimits(options.limits);
    this.storage = options.storage;
    this.storeKey = options.storage ? groupStoreKey(host.identity) : undefined;
    this.ctx = {
      limits: this.limits,
      skipped: new SkipPool(this.limits.maxSkipped),
      roomToHold: () => this.roomToHold(),
      save: (g) => this.persist(g),
      later: (sends) => this.later(sends),
      inbox: (group, state) => {
        const o = options.inbox;
        if (!o) throw new ConfigError('group inbox: no content store given');
        return new GroupInbox(group, o.content, o.now ?? Date.now, o.ttlMs, state);
      },
      epochWaitMs: options.inbox?.epochWaitMs ?? DEFAULT_GROUP_EPOCH_WAIT_MS,
      epochAskMs: options.inbox?.epochAskMs ?? GROUP_EPOCH_ASK_MS,
      epochCheckMs: options.inbox?.epochCheckMs ?? GROUP_EPOCH_CHECK_MS,
      now: options.inbox?.now ?? Date.now,
    };
    this.now = options.inbox?.now ?? Date.now;
  }
  private readonly now: () => number;

  /**
   * One pass over the inbox of every active version 2 group (§13.9), one group after another. Resolves with the
   * number of messages emitted. Throws ERR_ABORTED; other failures are reported per group.
   */
  async collect(options: AbortOptions = {}): Promise<number> {
    await this.load(options);
    if (this.dropOldEpochs()) await this.saveOrphans();
    let n = 0;
    for (const g of this.groups.values()) {
      if (!g.isActive || g.delivery !== 'inbox') continue;
      try {
        n += await g.collect(options);
      } catch (e) {
        const err = asAlliumError(e, 'group inbox pass failed');
        if (err.code === 'ERR_ABORTED') throw err;
        this.host.error(err);
      }
    }
    return n;
  }

  /**
   * Drops (and wipes) the epochs held for a group not joined for more than MAX_GROUP_ORPHAN_EPOCH_MS (§13.9): the
   * roster they waited for was refused or never came (an admin whose handover failed sends both again). True when
   * some were dropped.
   */
  private dropOldEpochs(): boolean {
    const now = this.now();
    const old = this.orphans.filter((o) => isGroupEpochEnvelope(o.bytes) && now - o.at > MAX_GROUP_ORPHAN_EPOCH_MS);
    if (old.length === 0) return false;
    this.orphans = this.orphans.filter((o) => !old.includes(o));
    for (const o of old) crypto().wipe(o.bytes);
    return true;
  }

  private later(sends: Promise<void>): void {
    const p: Promise<void> = sends
      .catch((e: unknown) => this.host.error(asAlliumError(e, 'group follow-up send failed')))
      .finally(() => this.followUps.delete(p));
    this.followUps.add(p);
  }

  /**
   * Resolves once every send that received envelopes started (our key in reply to a roster or an invitation) has
   * finished, those it starts meanwhile included. receive() does not wait for them.
   */
  async settled(): Promise<void> {
    while (this.followUps.size > 0) await Promise.all([...this.followUps]);
  }

  /** Person `person`'s device list changed (§13.8): in each of its groups, its devices get our key again. */
  devicesChanged(person: Uint8Array): void {
    for (const g of this.groups.values()) {
      if (g.devicesChanged(person)) this.persist(g).catch((e: unknown) => this.host.error(asAlliumError(e, 'group state not saved')));
    }
  }

  get(id: string): Group | undefined {
    return this.groups.get(id.toLowerCase());
  }

  list(): Group[] {
    return [...this.groups.values()];
  }

  /** Skipped keys held in all groups together (at most MAX_GROUP_SKIPPED). */
  get skippedKeys(): number {
    return this.ctx.skipped.size;
  }

  /**
   * Reads the stored groups (once; create() and receive() do it first). Throws ERR_MESSAGE_AUTH (a record sealed
   * under another identity, or changed), ERR_CBOR_*, ERR_SCHEMA, ERR_KEY_FORMAT, and what the storage throws: a
   * store that does not read is refused, never replaced.
   */
  async load(options: AbortOptions = {}): Promise<Group[]> {
    this.loading ??= this.readStore(options);
    this.loading.catch(() => (this.loading = null));
    await this.loading;
    return this.list();
  }

  private async readStore(options: AbortOptions): Promise<void> {
    if (!this.storage || !this.storeKey) return;
    const records = await this.storage.load(options);
    for (const [name, bytes] of records) {
      if (name === ORPHANS_RECORD) {
        for (const o of openOrphans(this.storeKey, bytes)) {
          this.orphans.push({ from: formatAddress(o.from), id: envelopeGroupId(o.bytes), bytes: o.bytes, at: o.at ?? this.now() });
        }
        continue;
      }
      const record = openGroupRecord(this.storeKey, name, bytes);
      if (toHex(record.roster.group) !== name) throw new AlliumError('ERR_SCHEMA', 'group store: a record under another group id');
      if (this.groups.has(name)) continue; // joined or created before the store was read: ours is newer
      this.groups.set(name, new Group(this.host, record.roster, this.ctx, { record }));
      wipeGroupRecord(record);
    }
  }

  /**
   * Saves `g` (coalesced: a change made while a save is queued joins it), then emits the messages that waited on it.
   * Rejects with the storage's error (the messages are emitted all the same).
   */
  private persist(g: Group): Promise<void> {
    const storage = this.storage;
    const key = this.storeKey;
    if (!storage || !key) {
      for (const m of g.takeReady()) this.host.emit('group:message', m);
      return Promise.resolve();
    }
    let slot = this.saves.get(g.id);
    if (!slot) this.saves.set(g.id, (slot = { tail: Promise.resolve(), next: null }));
    if (slot.next) return slot.next;
    const s = slot;
    const p = s.tail.then(async () => {
      s.next = null;
      const ready = g.takeReady();
      const record = g.state();
      try {
        await storage.save(g.id, sealGroupRecord(key, g.id, record));
      } finally {
        wipeGroupRecord(record);
        for (const m of ready) this.host.emit('group:message', m);
      }
    });
    s.next = p;
    s.tail = p.catch(() => undefined);
    return p;
  }

  private saveOrphans(): Promise<void> {
    if (!this.storage || !this.storeKey) return Promise.resolve();
    const bytes = this.orphans.length
      ? sealOrphans(
          this.storeKey,
          this.orphans.map((o) => ({ from: parseAddress(o.from), bytes: o.bytes, at: o.at })),
        )
      : null;
    return this.storage.save(ORPHANS_RECORD, bytes);
  }

  /** Before a message is held: when all groups together hold maxPendingTotal, the group holding most drops its oldest. */
  private roomToHold(): void {
    let total = 0;
    let big: Group | undefined;
    for (const g of this.groups.values()) {
      total += g.heldMessages;
      if (!big || g.heldMessages > big.heldMessages) big = g;
    }
    if (total < this.limits.maxPendingTotal || !big) return;
    big.dropOldestHeld();
    this.host.error(new LimitError('MAX_GROUP_PENDING_TOTAL', 'a held group message was dropped'));
  }

  /** A new group with us as its only admin; `members` (addresses) get the roster and our sender key. */
  create(name: string, members: readonly string[], options: CreateGroupOptions = {}): Promise<Group> {
    return fanOut(options, (o) => this.createGroup(name, members, o, options.delivery ?? 'pairwise'));
  }

  private async createGroup(name: string, members: readonly string[], options: AbortOptions, delivery: GroupDelivery): Promise<Group> {
    await this.load(options);
    const m = this.host.member?.();
    if (m && !(m.changes ?? m.sends)) {
      throw new AlliumError('ERR_GROUP_MEMBERSHIP', "a linked device sends to its person's groups; the primary creates them");
    }
    const me = this.host.identity.publicKey;
    const keys: Uint8Array[] = [me];
    for (const a of members) {
      const k = parseAddress(a);
      if (!keys.some((x) => same(x, k))) keys.push(k);
    }
    if (keys.length > MAX_GROUP_MEMBERS) throw new LimitError('MAX_GROUP_MEMBERS', `a group has at most ${MAX_GROUP_MEMBERS} members`);
    this.makeRoom();
    const roster = signRoster({ group: crypto().random(GROUP_ID_LEN), r: 0, name, members: keys, admins: [0], by: me }, this.host.identity.secretKey);
    const group = new Group(this.host, roster, this.ctx, { delivery });
    this.groups.set(group.id, group);
    await this.persist(group);
    await group.introduce(options);
    return group;
  }

  private makeRoom(): void {
    if (this.groups.size < this.limits.maxGroups) return;
    for (const [id, g] of this.groups) {
      if (!g.isActive) {
        this.groups.delete(id);
        this.saves.delete(id);
        void this.storage?.save(id, null).catch((e: unknown) => this.host.error(asAlliumError(e, 'group state not deleted')));
        return;
      }
    }
    throw new LimitError('MAX_GROUPS', `a messenger is in at most ${this.limits.maxGroups} groups`);
  }

  /** Refuses an invitation from `by` when it already put us in maxGroupsPerInviter groups we are still in. */
  private checkInviter(by: Uint8Array): void {
    let n = 0;
    for (const g of this.groups.values()) if (g.isActive && g.inviter && same(g.inviter, by)) n++;
    if (n >= this.limits.maxGroupsPerInviter) {
      throw new LimitError('MAX_GROUPS_PER_INVITER', `one identity invites us to at most ${this.limits.maxGroupsPerInviter} groups`);
    }
  }

  /**
   * An envelope from `from` (authenticated by the pairwise session or the mailbox item's MAC). Errors are reported
   * through the host (never thrown back to the conversation): a bad envelope is dropped, the conversation goes on.
   * Resolves once what the envelope changed is saved (and its message, if any, emitted): the caller acknowledges it
   * then. Sends the envelope calls for (our sender key to a member we just learnt of) are started, not awaited: their
   * acknowledgements may come over the very conversation that waits for this one (settled() waits for them).
   */
  async receive(from: string, bytes: Uint8Array, options: AbortOptions = {}): Promise<void> {
    try {
      await this.load(options);
      if (isGroupEpochRequest(bytes)) {
        // A member asking for an epoch it missed (§13.9): answered by an admin, never held for a group not joined.
        const req = decodeGroupEpochRequest(bytes);
        this.groups.get(toHex(req.group))?.receiveEpochRequest(from, req);
        return;
      }
      if (isGroupEpochEnvelope(bytes)) {
        // Version 2 (§13.9): checked against our clock; held, as any envelope, until we join its group.
        const e = decodeGroupEpoch(bytes, mailboxEpochAt(this.now()));
        const g = this.groups.get(toHex(e.group));
        if (!g) return await this.hold(from, toHex(e.group), bytes);
        try {
          g.receiveEpoch(from, e);
        } finally {
          crypto().wipe(e.es);
          await this.persist(g);
        }
        return;
      }
      const env = decodeGroupEnvelope(bytes);
      const id = toHex(env.group);
      const group = this.groups.get(id);
      if (env.kind === 'roster') {
        if (group) return await group.receiveRoster(env, options);
        // An invitation: a roster naming us, signed by one of its admins.
        if (!verifyRoster(env)) throw new AlliumError('ERR_SIGNATURE', 'group roster signature');
        if (!isAdminIn(env, env.by)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group roster not signed by an admin');
        const me = this.host.member?.().key ?? this.host.identity.publicKey;
        if (!env.members.some((k) => same(k, me))) return; // not for us (we were removed earlier)
        this.checkInviter(env.by);
        this.makeRoom();
        // Version 2 exactly when an epoch came before the roster (§13.9, "Forming"): it is taken first, below.
        const early = this.orphans.filter((o) => o.id === id);
        const delivery: GroupDelivery = early.some((o) => isGroupEpochEnvelope(o.bytes)) ? 'inbox' : 'pairwise';
        const g = new Group(this.host, env, this.ctx, { inviter: env.by, delivery });
        this.groups.set(id, g);
        await this.persist(g);
        this.host.emit('group:member-added', { group: id, member: formatAddress(me), by: formatAddress(env.by) });
        if (early.length) {
          this.orphans = this.orphans.filter((o) => o.id !== id);
          for (const o of early) await this.receive(o.from, o.bytes, options);
          for (const o of early) if (isGroupEpochEnvelope(o.bytes)) crypto().wipe(o.bytes); // it held es
          await this.saveOrphans();
        }
        this.later(g.announce(from, options));
        return;
      }
      if (!group) return await this.hold(from, id, bytes);
      try {
        if (env.kind === 'sender-key') group.receiveSenderKey(from, env);
        else group.receiveMessage(from, env);
      } finally {
        await this.persist(group);
      }
    } catch (e) {
      this.host.error(asAlliumError(e, 'group envelope refused'));
    }
  }

  /** Holds an envelope of a group we have not joined (at most maxPending, the oldest dropped). */
  private async hold(from: string, id: string, bytes: Uint8Array): Promise<void> {
    this.orphans.push({ from, id, bytes: Uint8Array.from(bytes), at: this.now() });
    this.dropOldEpochs();
    let dropped = false;
    if (this.orphans.length > this.limits.maxPending) {
      const o = this.orphans.shift()!;
      if (isGroupEpochEnvelope(o.bytes)) crypto().wipe(o.bytes);
      dropped = true;
    }
    await this.saveOrphans();
    if (dropped) throw new LimitError('MAX_GROUP_PENDING', 'an envelope for a group we are not in was dropped');
  }
}

/** The options of Groups.create() and Messenger.createGroup(). */
export interface CreateGroupOptions extends AbortOptions {
  /** 'pairwise' (version 1, the default) or 'inbox' (version 2, §13.9: one deposit per message in a group inbox). */
  delivery?: GroupDelivery;
}

/** The group id of a held envelope: a version 1 envelope's or a version 2 epoch's. */
function envelopeGroupId(bytes: Uint8Array): string {
  return toHex(isGroupEpochEnvelope(bytes) ? decodeGroupEpoch(bytes).group : decodeGroupEnvelope(bytes).group);
}
