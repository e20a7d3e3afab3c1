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
 * Not here: persistence (group state, like ratchet sessions, lives as long as the messenger); resolving two admins'
 * concurrent changes of one revision (the first a member sees wins; §13.4); one ciphertext in the content store for
 * large messages (§13.5).
 */
import { crypto } from '../../crypto/index.js';
import { formatAddress, parseAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { AlliumError, ConfigError, isAlliumError, LimitError } from '../../protocol/errors.js';
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
import { MAX_GROUP_SKIP, OwnSenderKey, SenderChain } from '../../protocol/sender-key.js';
import { anySignal, type AbortOptions } from '../../net/abort.js';

/** Groups one messenger is in (specs/limits.md). */
export const MAX_GROUPS = 1000;
/** Group messages held per group while their sender key has not come (specs/limits.md). */
export const MAX_GROUP_PENDING = 256;

/** A message of a group, decrypted and verified as its sender's. */
export interface GroupIncoming {
  /** The group id (hex). */
  readonly group: string;
  /** The sender's address. */
  readonly from: string;
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
}

/** What groups need of the messenger: pairwise delivery of an envelope, events and error reports. */
export interface GroupHost {
  readonly identity: Identity;
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
  readonly status: 'delivered' | 'stored-offline';
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
  private roster: Roster;
  private readonly own = OwnSenderKey.create();
  /** Members holding our current generation (from the index we handed them). */
  private readonly keyHolders = new Set<string>();
  private readonly chains = new Map<string, SenderChain>();
  private pending: Array<{ from: string; m: GroupMessage }> = [];
  /** Per member, the tail of its queue of envelopes. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private active = true;

  constructor(
    private readonly host: GroupHost,
    roster: Roster,
    private readonly maxPending: number,
    private readonly maxSkip: number,
  ) {
    this.roster = roster;
    this.idBytes = roster.group.slice();
    this.id = toHex(roster.group);
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
    return isAdminIn(this.roster, this.host.identity.publicKey);
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
    this.requireActive();
    const others = this.others();
    // Members that lack our current generation get it as of this message's index, before the message.
    const newHolders = others.filter((a) => !this.keyHolders.has(a));
    const dist = this.own.distribution(this.idBytes);
    const m = this.own.encrypt(this.idBytes, this.host.identity.publicKey, data);
    const bytes = encodeGroupEnvelope(m);
    const distBytes = encodeGroupEnvelope(dist);
    for (const a of newHolders) {
      this.keyHolders.add(a);
      void this.enqueue(a, distBytes, options).catch(() => this.keyHolders.delete(a));
    }
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
    this.requireActive();
    const i = this.indexOf(this.host.identity.publicKey);
    const { members, admins } = without(this.roster, i);
    if (members.length === 0) {
      this.deactivate();
      return;
    }
    const next = signRoster(
      { group: this.idBytes, r: this.roster.r + 1, name: this.roster.name, members, admins, by: this.host.identity.publicKey },
      this.host.identity.secretKey,
    );
    const others = this.others();
    this.roster = next;
    this.deactivate();
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
      this.requireActive();
      this.rotate();
      await this.distribute(this.others(), o);
    });
  }

  /** Hands our sender key to every other member (on joining the group). */
  announce(options: AbortOptions = {}): Promise<void> {
    return this.distribute(this.others(), options);
  }

  /** On creating the group: the roster to every other member, then our sender key (each member's queue keeps the order). */
  async introduce(options: AbortOptions = {}): Promise<void> {
    const bytes = encodeGroupEnvelope(this.roster);
    const sent = Promise.allSettled(this.others().map((a) => this.enqueue(a, bytes, options)));
    await Promise.all([sent, this.announce(options)]);
  }

  // ------------------------------------------------------------------ inside

  private others(): string[] {
    const me = this.host.identity.publicKey;
    return this.roster.members.filter((k) => !same(k, me)).map((k) => formatAddress(k));
  }

  private indexOf(key: Uint8Array): number {
    return this.roster.members.findIndex((k) => same(k, key));
  }

  private requireActive(): void {
    if (!this.active) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'no longer a member of this group');
  }

  private requireAdmin(): void {
    this.requireActive();
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

  /** Signs and sends roster r + 1, then applies it here as every member does. */
  private async publish(members: readonly Uint8Array[], admins: readonly number[], removed: Uint8Array[], options: AbortOptions): Promise<void> {
    const next = signRoster(
      { group: this.idBytes, r: this.roster.r + 1, name: this.roster.name, members, admins, by: this.host.identity.publicKey },
      this.host.identity.secretKey,
    );
    const bytes = encodeGroupEnvelope(next);
    const me = this.host.identity.publicKey;
    const to = [...members.filter((k) => !same(k, me)), ...removed].map((k) => formatAddress(k));
    const sent = Promise.allSettled(to.map((a) => this.enqueue(a, bytes, options)));
    const follow = this.apply(next, options);
    await Promise.all([sent, follow]);
  }

  /** A roster envelope from `from`. */
  async receiveRoster(next: Roster, options: AbortOptions = {}): Promise<void> {
    if (!this.active) return;
    if (next.r <= this.roster.r) return; // a copy, or older: the first roster of a revision wins (§13.4)
    if (!verifyRoster(next)) throw new AlliumError('ERR_SIGNATURE', 'group roster signature');
    if (!isAdminIn(this.roster, next.by) && !isLeave(this.roster, next)) {
      throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group roster signed by a member who may not make that change');
    }
    await this.apply(next, options);
  }

  /** Takes roster `next`: events, keys for newcomers, a new generation after a removal. */
  private async apply(next: Roster, options: AbortOptions): Promise<void> {
    const prev = this.roster;
    this.roster = next;
    const by = formatAddress(next.by);
    const me = this.host.identity.publicKey;
    const added = next.members.filter((k) => !prev.members.some((p) => same(p, k)));
    const removed = prev.members.filter((k) => !next.members.some((p) => same(p, k)));
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
      return;
    }
    for (const k of added) this.host.emit('group:member-added', { group: this.id, member: formatAddress(k), by });
    const adminsBefore = prev.admins.map((i) => formatAddress(prev.members[i]!)).sort();
    const adminsNow = this.admins.sort();
    if (adminsBefore.join() !== adminsNow.join()) this.host.emit('group:admins-changed', { group: this.id, admins: adminsNow, by });
    if (removed.length > 0) {
      // Nothing we send from now on is readable with a key a removed member holds (§13.4).
      this.rotate();
      await this.distribute(this.others(), options);
    } else if (added.length > 0) {
      await this.distribute(
        added.filter((k) => !same(k, me)).map((k) => formatAddress(k)),
        options,
      );
    }
  }

  /** A sender key from member `from`. */
  receiveSenderKey(from: string, d: SenderKeyDistribution): void {
    if (!this.active) return;
    if (this.indexOf(parseAddress(from)) < 0) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a sender key from someone not in the group');
    const have = this.chains.get(from);
    if (!have) this.chains.set(from, SenderChain.from(d, this.maxSkip));
    else if (have.update(d)) this.host.emit('group:key-updated', { group: this.id, member: from, generation: d.e });
    else return;
    const waiting = this.pending.filter((p) => p.from === from);
    this.pending = this.pending.filter((p) => p.from !== from);
    for (const p of waiting) this.receiveMessage(p.from, p.m);
  }

  /** A group message from member `from`: emitted once; copies are dropped; held while its key has not come. */
  receiveMessage(from: string, m: GroupMessage): void {
    if (!this.active) return;
    const sender = parseAddress(from);
    if (this.indexOf(sender) < 0) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group message from someone not in the group');
    const chain = this.chains.get(from);
    let data: Uint8Array;
    try {
      if (!chain) throw new AlliumError('ERR_NOT_FOUND', 'no sender key yet');
      data = chain.decrypt(sender, m);
    } catch (e) {
      if (isAlliumError(e) && e.code === 'ERR_NOT_FOUND') {
        this.pending.push({ from, m });
        if (this.pending.length > this.maxPending) {
          this.pending.shift();
          this.host.error(new LimitError('MAX_GROUP_PENDING', 'a held group message was dropped'));
        }
        return;
      }
      if (isAlliumError(e) && e.code === 'ERR_MESSAGE_REPLAY') return; // a copy (live and mailbox): delivered once
      throw e;
    }
    this.host.emit('group:message', { group: this.id, from, data, generation: m.e, index: m.n });
  }

  private deactivate(): void {
    this.active = false;
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

/** The messenger's groups: creates them, and routes each incoming envelope to its group. */
export class Groups {
  private readonly groups = new Map<string, Group>();
  /**
   * Sender keys and messages for a group we have not joined yet: a member may hand us its key before the roster
   * that adds us has come (they travel over different pairwise sessions). Replayed on joining; at most maxPending,
   * oldest dropped.
   */
  private orphans: Array<{ from: string; id: string; bytes: Uint8Array }> = [];

  constructor(
    private readonly host: GroupHost,
    private readonly limits: { maxGroups: number; maxPending: number; maxSkip: number } = {
      maxGroups: MAX_GROUPS,
      maxPending: MAX_GROUP_PENDING,
      maxSkip: MAX_GROUP_SKIP,
    },
  ) {}

  get(id: string): Group | undefined {
    return this.groups.get(id.toLowerCase());
  }

  list(): Group[] {
    return [...this.groups.values()];
  }

  /** A new group with us as its only admin; `members` (addresses) get the roster and our sender key. */
  create(name: string, members: readonly string[], options: AbortOptions = {}): Promise<Group> {
    return fanOut(options, (o) => this.createGroup(name, members, o));
  }

  private async createGroup(name: string, members: readonly string[], options: AbortOptions): Promise<Group> {
    const me = this.host.identity.publicKey;
    const keys: Uint8Array[] = [me];
    for (const a of members) {
      const k = parseAddress(a);
      if (!keys.some((x) => same(x, k))) keys.push(k);
    }
    if (keys.length > MAX_GROUP_MEMBERS) throw new LimitError('MAX_GROUP_MEMBERS', `a group has at most ${MAX_GROUP_MEMBERS} members`);
    this.makeRoom();
    const roster = signRoster({ group: crypto().random(GROUP_ID_LEN), r: 0, name, members: keys, admins: [0], by: me }, this.host.identity.secretKey);
    const group = new Group(this.host, roster, this.limits.maxPending, this.limits.maxSkip);
    this.groups.set(group.id, group);
    await group.introduce(options);
    return group;
  }

  private makeRoom(): void {
    if (this.groups.size < this.limits.maxGroups) return;
    for (const [id, g] of this.groups) {
      if (!g.isActive) {
        this.groups.delete(id);
        return;
      }
    }
    throw new LimitError('MAX_GROUPS', `a messenger is in at most ${this.limits.maxGroups} groups`);
  }

  /**
   * An envelope from `from` (authenticated by the pairwise session or the mailbox signature). Errors are reported
   * through the host (never thrown back to the conversation): a bad envelope is dropped, the conversation goes on.
   */
  async receive(from: string, bytes: Uint8Array, options: AbortOptions = {}): Promise<void> {
    try {
      const env = decodeGroupEnvelope(bytes);
      const id = toHex(env.group);
      const group = this.groups.get(id);
      if (env.kind === 'roster') {
        if (group) return await group.receiveRoster(env, options);
        // An invitation: a roster naming us, signed by one of its admins.
        if (!verifyRoster(env)) throw new AlliumError('ERR_SIGNATURE', 'group roster signature');
        if (!isAdminIn(env, env.by)) throw new AlliumError('ERR_GROUP_MEMBERSHIP', 'a group roster not signed by an admin');
        if (!env.members.some((k) => same(k, this.host.identity.publicKey))) return; // not for us (we were removed earlier)
        this.makeRoom();
        const g = new Group(this.host, env, this.limits.maxPending, this.limits.maxSkip);
        this.groups.set(id, g);
        this.host.emit('group:member-added', { group: id, member: formatAddress(this.host.identity.publicKey), by: formatAddress(env.by) });
        const early = this.orphans.filter((o) => o.id === id);
        this.orphans = this.orphans.filter((o) => o.id !== id);
        for (const o of early) await this.receive(o.from, o.bytes, options);
        return await g.announce(options);
      }
      if (!group) {
        this.orphans.push({ from, id, bytes });
        if (this.orphans.length > this.limits.maxPending) {
          this.orphans.shift();
          throw new LimitError('MAX_GROUP_PENDING', 'an envelope for a group we are not in was dropped');
        }
        return;
      }
      if (env.kind === 'sender-key') group.receiveSenderKey(from, env);
      else group.receiveMessage(from, env);
    } catch (e) {
      this.host.error(asAlliumError(e, 'group envelope refused'));
    }
  }
}
