/**
 * Several devices per person (specs/messaging.md §14; docs/developer-guide.md §Devices).
 *
 *   const code = laptop.devices.linkCode();            // on the new device: show code.text (or a QR of code.bytes)
 *   await phone.devices.link(code.text);               // on the primary: offer → accept → a new signed list
 *   laptop.on('device:linked', …);                     // the laptop is now a device of the phone's person
 *   await alice.send(phone.address, bytes);            // reaches the phone and the laptop (alice holds the list)
 *   const old = await laptop.devices.requestHistory(); // what the phone holds, in bounded chunks
 *   await phone.devices.unlink(laptop.address);        // contacts stop encrypting to the laptop
 *
 * Every device has its own identity, address, endpoint and mailbox; a person is its primary's identity with a
 * device list the primary signs and each device countersigns (protocol/device-link.ts). A sender that holds a
 * person's list delivers each message to every device over that device's own pairwise session (per-device sessions,
 * not a sender key: nothing is shared, so unlinking is a new list and nothing to rotate), and tells its own siblings
 * what it sent. Envelopes travel through the messenger's pairwise delivery as frames of kind 5 or mailbox items with
 * "k": 3; the messenger hands incoming ones to `receive`.
 *
 * Receiving never waits on a send: an envelope's answer (an accept, a history chunk) goes out in the background, so
 * the conversation it came on keeps reading (its acknowledgements come back on it).
 *
 * Groups (§13.8): toMember() hands a group envelope to every device of a member's person; groupMember() tells the
 * group table that a linked device stands for its person (it sends, and does not change groups); personOfDevice()
 * lets members take a linked device's envelopes as its person's; announceMissing() sends our list ahead of a linked
 * device's first group deposit; an unlinking list goes to every member of our groups too.
 *
 * State at rest (§14.9): with a storage, our standing (person, accepted offer), every held list and every entry of
 * the history log are saved after each change, sealed (device-store.ts); load() reads them before anything else is
 * done, so a restarted device still answers a sibling's history request with what it held. Which devices were sent
 * our list is kept too (the `told` record): a restarted device neither sends its list again to a device that has it,
 * nor leaves out of a new list's sending a device told an older one (a device is saved as told before the list goes).
 *
 * Not here: a short typed code (a PAKE),
 * forwarding contacts' lists to a new device, unlinking by the device itself.
 */
import { crypto } from '../../crypto/index.js';
import { formatAddress, parseAddress, type Identity } from '../../protocol/address.js';
import { concatBytes, fromHex, toHex } from '../../protocol/bytes.js';
import {
  decodeDeviceEnvelope,
  decodeLinkCode,
  DEVICE_ID_LEN,
  encodeDeviceEnvelope,
  encodeLinkCode,
  formatLinkCode,
  LINK_SECRET_LEN,
  linkProof,
  MAX_DEVICES,
  MAX_HISTORY_SYNC_BYTES,
  MAX_SYNC_DATA_BYTES,
  MEMBER_CONTEXT,
  parseLinkCode,
  signDeviceList,
  signMembership,
  verifyDeviceList,
  type DeviceEnvelope,
  type DeviceList,
  type HistoryEntry,
} from '../../protocol/device-link.js';
import { AbortedError, AlliumError, ConfigError, CryptoError, isAlliumError, LimitError, NotFoundError, ProtocolError } from '../../protocol/errors.js';
import type { FrameContent } from '../../protocol/message-frames.js';
import { settleWithin, type AbortOptions } from '../../net/abort.js';
import { HistoryLog, MAX_HISTORY_ENTRIES, MAX_HISTORY_LOG_BYTES } from './device-history.js';
import {
  deviceStoreKey,
  HISTORY_RECORD_PREFIX,
  historyNameKey,
  historyRecordName,
  LIST_RECORD_PREFIX,
  openDeviceList,
  openDeviceSelf,
  openDeviceTold,
  openHistoryEntry,
  MAX_TOLD_DEVICES,
  sealDeviceList,
  sealDeviceSelf,
  sealDeviceTold,
  sealHistoryEntry,
  SELF_RECORD,
  TOLD_RECORD,
} from './device-store.js';
import type { GroupStorage } from './group-store.js';
import type { DeviceEvents, DeviceLimits, DeviceListInfo, DeviceReceipt, HistoryMessage, LinkCodeInfo } from './device-types.js';
import type { IncomingMessage, SendOptions, SendReceipt } from './types.js';

export type {
  DeviceChange,
  DeviceEvents,
  DeviceLimits,
  DeviceListInfo,
  DeviceReceipt,
  HistoryMessage,
  HistoryProgress,
  LinkCodeInfo,
  SyncedMessage,
} from './device-types.js';

/** Device lists of other people a messenger holds (specs/limits.md). */
export const MAX_DEVICE_LISTS = 10_000;
/** How long a link code can be used (specs/limits.md). */
export const LINK_CODE_TTL_MS = 10 * 60_000;
/** How long link() waits for the new device's accept once its offer was delivered. */
export const LINK_ACCEPT_TIMEOUT_MS = 60_000;
/** How long requestHistory() waits for the whole answer by default. */
export const HISTORY_TIMEOUT_MS = 5 * 60_000;

/** What devices need of the messenger. */
export interface DeviceHost {
  readonly identity: Identity;
  /** Pairwise delivery to one identity (the messenger's, with its live then mailbox path), under message id `id`. */
  deliver(to: string, data: Uint8Array, options: SendOptions, content: FrameContent, id: Uint8Array): Promise<SendReceipt>;
  /** Addresses of the contact book, told of every change to our list. */
  contacts(options: AbortOptions): Promise<readonly string[]>;
  /** Members of the groups we are active in: told of a list that unlinks a device (§13.8). */
  groupMembers?(): readonly string[];
  emit<K extends keyof DeviceEvents>(event: K, ...args: DeviceEvents[K]): void;
  error(e: AlliumError): void;
}

interface Held {
  readonly list: DeviceList;
  readonly bytes: Uint8Array;
}

interface Outstanding {
  readonly from: string;
  readonly max: number;
  next: number;
  bytes: number;
  readonly entries: HistoryEntry[];
  readonly seen: Set<string>;
  readonly settle: (err: AlliumError | null, value?: HistoryEntry[]) => void;
}

const hex = toHex;
const addr = (key: Uint8Array): string => formatAddress(key);
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && crypto().equal(a, b);
const asError = (e: unknown, what: string): AlliumError => (isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', what, { cause: e }));

export class Devices {
  private readonly me: Uint8Array;
  private readonly limits: DeviceLimits;
  /** person (hex) → its newest list; least recently taken first. Ours too, once we have one. */
  private readonly lists = new Map<string, Held>();
  /** device (hex) → person (hex), for every device of a held list other than the person itself. */
  private readonly personOf = new Map<string, string>();
  /** Our person's key: our own for a primary, the primary's for a linked device, null while unlinked. */
  private person: Uint8Array | null;
  /** On a new device: the code it shows. */
  private code: { secret: Uint8Array; expires: number } | null = null;
  /** On a new device: the person whose offer it accepted, until that person's list names it. */
  private accepted: Uint8Array | null = null;
  /** On the primary: device (hex) → the settle of a link waiting for its accept. */
  private readonly offers = new Map<string, (err: AlliumError | null, sig?: Uint8Array) => void>();
  /**
   * device address → revision of our list it acknowledged, or −1 while one is on its way (it may hold one of ours):
   * at most maxLists, oldest dropped; kept at rest in the `told` record (§14.9).
   */
  private readonly announced = new Map<string, number>();
  /** The save of the `told` record queued and not started yet, which later changes join. */
  private toldSave: Promise<void> | null = null;
  private readonly log: HistoryLog;
  /** Requesters (hex) whose history answer is being sent, and whether a newer request replaced it. */
  private readonly serving = new Map<string, { cancelled: boolean }>();
  /** Our history requests (q hex) waiting for chunks. */
  private readonly requests = new Map<string, Outstanding>();
  /** The key records are sealed under (only with storage). */
  private readonly storeKey: Uint8Array | undefined;
  /** The key history record names are made under (only with storage). */
  private readonly nameKey: Uint8Array | undefined;
  private loading: Promise<void> | null = null;
  /** The last save queued: saves run one after another, in the order of the changes. */
  private saved: Promise<void> = Promise.resolve();

  /** `storage`: where our standing and the lists we hold are kept (§14.9); default nowhere. */
  constructor(
    private readonly host: DeviceHost,
    limits: Partial<DeviceLimits> = {},
    private readonly storage?: GroupStorage,
  ) {
    this.storeKey = storage ? deviceStoreKey(host.identity) : undefined;
    this.nameKey = storage ? historyNameKey(host.identity) : undefined;
    this.me = host.identity.publicKey;
    this.person = this.me;
    this.limits = {
      maxLists: limits.maxLists ?? MAX_DEVICE_LISTS,
      maxHistoryEntries: limits.maxHistoryEntries ?? MAX_HISTORY_ENTRIES,
      maxHistoryLogBytes: limits.maxHistoryLogBytes ?? MAX_HISTORY_LOG_BYTES,
      maxHistorySyncBytes: limits.maxHistorySyncBytes ?? MAX_HISTORY_SYNC_BYTES,
    };
    this.log = new HistoryLog(this.limits.maxHistoryEntries, this.limits.maxHistoryLogBytes);
  }

  /** Ends every link() and requestHistory() waiting for an answer (ERR_ABORTED), and every history answer in progress. */
  close(): void {
    for (const settle of [...this.offers.values()]) settle(new AbortedError('messenger closed'));
    for (const r of [...this.requests.values()]) r.settle(new AbortedError('messenger closed'));
    for (const a of this.serving.values()) a.cancelled = true;
    this.code = null;
  }

  // ------------------------------------------------------------------ state at rest (§14.9)

  /**
   * Reads the stored standing and lists (once; every call that needs them does it first). Throws ERR_MESSAGE_AUTH
   * (sealed under another identity, or changed), ERR_CBOR_*, ERR_SCHEMA, ERR_SIGNATURE (a list that does not verify),
   * and what the storage throws: a store that does not read is refused, never replaced.
   */
  load(options: AbortOptions = {}): Promise<void> {
    this.loading ??= this.readStore(options);
    this.loading.catch(() => (this.loading = null));
    return this.loading;
  }

  private async readStore(options: AbortOptions): Promise<void> {
    const key = this.storeKey;
    if (!this.storage || !key) return;
    const records = await this.storage.load(options);
    const history: HistoryEntry[] = [];
    for (const [name, bytes] of records) {
      if (name === TOLD_RECORD) {
        // Entries made before the store was read are newer: they stay (and go last).
        const t = openDeviceTold(key, bytes);
        const before = [...this.announced];
        this.announced.clear();
        for (const d of t.pending) this.announced.set(addr(d), -1);
        for (const [d, r] of t.told) this.announced.set(addr(d), r);
        for (const [a, r] of before) {
          this.announced.delete(a);
          this.announced.set(a, r);
        }
        while (this.announced.size > this.limits.maxLists) this.announced.delete(this.announced.keys().next().value!);
        continue;
      }
      if (name.startsWith(HISTORY_RECORD_PREFIX)) {
        history.push(openHistoryEntry(key, this.nameKey!, name, bytes));
        continue;
      }
      if (name === SELF_RECORD) {
        const s = openDeviceSelf(key, bytes);
        this.person = s.person ?? null;
        this.accepted = s.accepted ?? null;
        continue;
      }
      if (!name.startsWith(LIST_RECORD_PREFIX)) continue; // not ours (the storage may be shared with groups)
      const listBytes = openDeviceList(key, name, bytes);
      const list = decodeDeviceEnvelope(listBytes);
      if (list.kind !== 'list' || LIST_RECORD_PREFIX + hex(list.person) !== name)
        throw new ProtocolError('ERR_SCHEMA', `device store ${name}: not that person's list`);
      verifyDeviceList(list);
      const k = hex(list.person);
      const have = this.lists.get(k);
      if (have && have.list.r >= list.r) continue; // taken before the store was read: ours is newer
      this.lists.set(k, { list, bytes: listBytes });
      for (const m of list.members) if (!same(m.key, list.person)) this.personOf.set(hex(m.key), k);
    }
    // Oldest first, so that the log's bounds drop (and delete the records of) the oldest if there are more than it keeps.
    history.sort((a, b) => a.ts - b.ts);
    for (const e of history) {
      // A copy of an entry taken before the store was read is not kept twice (its record is the one held).
      for (const d of this.log.add(e).dropped) this.saveEntry(d, false);
    }
  }

  /** Queues a save of `name` (sealed `bytes`, or deleted); a failure is reported. */
  private save(name: string, bytes: () => Uint8Array | null): void {
    const storage = this.storage;
    if (!storage) return;
    this.saved = this.saved.then(() => storage.save(name, bytes()).catch((e: unknown) => this.host.error(asError(e, 'device state not saved'))));
  }

  private saveSelf(): void {
    const key = this.storeKey!;
    const person = this.person;
    const accepted = this.accepted;
    this.save(SELF_RECORD, () => sealDeviceSelf(key, { ...(person ? { person } : {}), ...(accepted ? { accepted } : {}) }));
  }

  private saveList(held: Held | null, person: string): void {
    const key = this.storeKey!;
    const name = LIST_RECORD_PREFIX + person;
    this.save(name, () => (held ? sealDeviceList(key, name, held.bytes) : null));
  }

  /**
   * Saves the `told` record (coalesced: a change made while a save is queued joins it). Resolves once saved; a failure
   * is reported (the list is sent all the same).
   */
  private saveTold(): Promise<void> {
    const key = this.storeKey;
    if (!this.storage || !key) return Promise.resolve();
    if (this.toldSave) return this.toldSave;
    this.save(TOLD_RECORD, () => {
      this.toldSave = null;
      const all = [...this.announced].slice(-MAX_TOLD_DEVICES);
      return sealDeviceTold(key, {
        told: all.filter(([, r]) => r >= 0).map(([a, r]) => [parseAddress(a), r] as const),
        pending: all.filter(([, r]) => r < 0).map(([a]) => parseAddress(a)),
      });
    });
    this.toldSave = this.saved;
    return this.toldSave;
  }

  /** Saves (`held`) or deletes a history entry's record. */
  private saveEntry(e: HistoryEntry, held: boolean): void {
    const key = this.storeKey;
    if (!key) return;
    const name = historyRecordName(this.nameKey!, e.peer, e.id);
    this.save(name, () => (held ? sealHistoryEntry(key, name, e) : null));
  }

  /** Keeps an entry in the history log (and at rest), deleting what the log drops for it. */
  private keep(e: HistoryEntry): void {
    const { kept, dropped } = this.log.add(e);
    for (const d of dropped) if (d !== e) this.saveEntry(d, false);
    if (kept) this.saveEntry(e, true);
  }

  /** Resolves once every change made so far is saved (tests; an application about to exit). */
  flushed(): Promise<void> {
    return this.saved;
  }

  // ------------------------------------------------------------------ what we know

  /** True while this device is its person's primary (it is until it accepts another's link offer). */
  get isPrimary(): boolean {
    return this.person !== null && same(this.person, this.me);
  }

  /** Our person's devices (just us while we have linked none), or undefined while unlinked. */
  list(): DeviceListInfo | undefined {
    if (!this.person) return undefined;
    return this.info(this.person) ?? { person: addr(this.me), revision: 0, devices: [addr(this.me)] };
  }

  /** The devices of the person at `address` (an address of the person or of one of its devices), if we hold them. */
  of(address: string): DeviceListInfo | undefined {
    const key = hex(parseAddress(address));
    return this.info(this.lists.has(key) ? key : this.personOf.get(key));
  }

  private info(person: Uint8Array | string | undefined): DeviceListInfo | undefined {
    if (person === undefined) return undefined;
    const held = this.lists.get(typeof person === 'string' ? person : hex(person));
    if (!held) return undefined;
    return { person: addr(held.list.person), revision: held.list.r, devices: held.list.members.map((m) => addr(m.key)) };
  }

  /** Our siblings' keys: the devices of our person other than us. */
  private siblings(): Uint8Array[] {
    if (!this.person) return [];
    const held = this.lists.get(hex(this.person));
    return held ? held.list.members.map((m) => m.key).filter((k) => !same(k, this.me)) : [];
  }

  private isSibling(key: Uint8Array): boolean {
    return this.siblings().some((k) => same(k, key));
  }

  // ------------------------------------------------------------------ linking (§14.3)

  /**
   * On a new device: a fresh link code for the primary to scan or type (any earlier code stops working). The device
   * must be listening. 'device:linked' follows once the primary has linked it.
   */
  linkCode(options: { ttlMs?: number } = {}): LinkCodeInfo {
    if (this.person && (!this.isPrimary || this.siblings().length > 0)) {
      throw new ConfigError('a device of a person with other devices cannot be linked to another; unlink it first');
    }
    const secret = crypto().random(LINK_SECRET_LEN);
    const expires = Date.now() + (options.ttlMs ?? LINK_CODE_TTL_MS);
    this.code = { secret, expires };
    const c = { device: this.me, secret };
    return { text: formatLinkCode(c), bytes: encodeLinkCode(c), expires };
  }

  /** Our own list, signed at revision 0 on first need (the primary alone). */
  private own(): Held {
    const k = hex(this.me);
    let held = this.lists.get(k);
    if (!held) {
      const list = signDeviceList(
        { person: this.me, r: 0, members: [{ key: this.me, sig: signMembership(this.me, this.host.identity.secretKey) }] },
        this.host.identity.secretKey,
      );
      held = { list, bytes: encodeDeviceEnvelope(list) };
      this.lists.set(k, held);
      this.saveList(held, k);
    }
    return held;
  }

  /**
   * On the primary: links the device whose code (text or bytes) the user scanned or typed. Sends it an offer over a
   * live session, waits for its accept, then signs the new list and sends it to every device and contact. Throws
   * ERR_ADDRESS_* (a bad code), ERR_DEVICE_LIST (we are not a primary), LimitError MAX_DEVICES, ERR_UNREACHABLE (the
   * new device is not listening), ERR_TIMEOUT (no accept within `timeoutMs`, default 60 s), ERR_ABORTED.
   */
  async link(code: string | Uint8Array, options: AbortOptions & { timeoutMs?: number } = {}): Promise<DeviceListInfo> {
    await this.load(options);
    if (!this.isPrimary) throw new ProtocolError('ERR_DEVICE_LIST', 'only a primary links devices');
    const c = typeof code === 'string' ? parseLinkCode(code) : decodeLinkCode(code);
    if (same(c.device, this.me)) throw new ConfigError('a device cannot link itself');
    const held = this.own();
    if (held.list.members.some((m) => same(m.key, c.device))) return this.list()!;
    if (held.list.members.length >= MAX_DEVICES) throw new LimitError('MAX_DEVICES', `a person has at most ${MAX_DEVICES} devices`);
    const device = addr(c.device);
    const signal = options.signal;
    const offer = encodeDeviceEnvelope({ kind: 'offer', person: this.me, proof: linkProof(c.secret, this.me, c.device) });
    const sig = await settleWithin<Uint8Array>(
      (settle) => {
        this.offers.get(hex(c.device))?.(new AbortedError('another link to this device started'));
        this.offers.set(hex(c.device), settle);
        this.host
          .deliver(device, offer, { offline: 'never', ...(signal ? { signal } : {}) }, 'device', newId())
          .catch((e: unknown) => settle(asError(e, 'link offer failed')));
        return () => void this.offers.delete(hex(c.device));
      },
      { ...(signal ? { signal } : {}), timeoutMs: options.timeoutMs ?? LINK_ACCEPT_TIMEOUT_MS, timeoutMessage: 'the new device did not accept the link' },
    );
    const now = this.own().list;
    if (now.members.some((m) => same(m.key, c.device))) return this.list()!; // a concurrent link() got there first
    if (now.members.length >= MAX_DEVICES) throw new LimitError('MAX_DEVICES', `a person has at most ${MAX_DEVICES} devices`);
    const next = signDeviceList({ person: this.me, r: now.r + 1, members: [...now.members, { key: c.device, sig }] }, this.host.identity.secretKey);
    await this.publish(now, next, options);
    return this.list()!;
  }

  /**
   * On the primary: unlinks a device (its address). The new list goes to every device (the unlinked one included)
   * and every contact; once a contact takes it, it encrypts nothing more to that device. Throws ERR_DEVICE_LIST (we
   * are not a primary), ERR_CONFIG (our own address), ERR_NOT_FOUND (not one of our devices), ERR_ABORTED.
   */
  async unlink(device: string, options: AbortOptions = {}): Promise<DeviceListInfo> {
    await this.load(options);
    if (!this.isPrimary) throw new ProtocolError('ERR_DEVICE_LIST', 'only a primary unlinks devices');
    const key = parseAddress(device);
    if (same(key, this.me)) throw new ConfigError('the primary cannot unlink itself');
    const now = this.own().list;
    if (!now.members.some((m) => same(m.key, key))) throw new NotFoundError('not a device of this person');
    const next = signDeviceList({ person: this.me, r: now.r + 1, members: now.members.filter((m) => !same(m.key, key)) }, this.host.identity.secretKey);
    await this.publish(now, next, options);
    return this.list()!;
  }

  /**
   * Takes our own new list and sends it to every device of the old and the new, every contact, every peer told
   * before, and, when it unlinks a device, every member of our groups (§13.8: they must refuse that device).
   */
  private async publish(old: DeviceList, next: DeviceList, options: AbortOptions): Promise<void> {
    const bytes = encodeDeviceEnvelope(next);
    this.install({ list: next, bytes }, old);
    const targets = new Set<string>();
    for (const m of [...old.members, ...next.members]) if (!same(m.key, this.me)) targets.add(addr(m.key));
    for (const t of this.announced.keys()) targets.add(t);
    for (const c of await this.host.contacts(options)) for (const t of this.devicesOf(c)) targets.add(t);
    const unlinks = old.members.some((m) => !next.members.some((n) => same(n.key, m.key)));
    if (unlinks) for (const g of this.host.groupMembers?.() ?? []) for (const t of this.devicesOf(g)) targets.add(t);
    targets.delete(addr(this.me));
    await Promise.all([...targets].map((t) => this.announce(t, { list: next, bytes }, options)));
  }

  /** Sends `held` to one device address, remembering it was sent; failures are reported, not thrown. */
  private async announce(to: string, held: Held, options: AbortOptions): Promise<void> {
    try {
      // The stored record is read first: a save of it before would replace it with what this run knows alone.
      await this.load(options.signal ? { signal: options.signal } : {});
      // Saved as one that may hold our list before it goes: a restart between sending and saving would otherwise leave
      // it out of the next list's sending (publish), and it would keep a list naming a device since unlinked.
      if (!this.announced.has(to)) {
        this.remember(to, -1);
        await this.saveTold();
      }
      await this.host.deliver(to, held.bytes, options.signal ? { signal: options.signal } : {}, 'device', newId());
      this.remember(to, held.list.r);
      void this.saveTold();
    } catch (e) {
      this.host.error(asError(e, 'device list not delivered'));
    }
  }

  private remember(to: string, r: number): void {
    this.announced.delete(to);
    if (this.announced.size >= this.limits.maxLists) this.announced.delete(this.announced.keys().next().value!);
    this.announced.set(to, r);
  }

  /**
   * Sends our person's list to every device of each of `addresses` not yet sent its current revision (§13.8: before a
   * linked device's first group deposit). Failures are reported, not thrown.
   */
  async announceMissing(addresses: readonly string[], options: AbortOptions = {}): Promise<void> {
    const held = this.person ? this.lists.get(hex(this.person)) : undefined;
    if (!held || held.list.members.length < 2) return;
    const targets = new Set<string>();
    for (const a of addresses) for (const t of this.devicesOf(a)) if (this.announced.get(t) !== held.list.r) targets.add(t);
    await Promise.all([...targets].map((t) => this.announce(t, held, options)));
  }

  /** Sends our person's list to `address` (every device of it we know) now. Nothing to send while we have no siblings. */
  async announceTo(address: string, options: AbortOptions = {}): Promise<void> {
    const held = this.person ? this.lists.get(hex(this.person)) : undefined;
    if (!held) return;
    await Promise.all(this.devicesOf(address).map((t) => this.announce(t, held, options)));
  }

  // ------------------------------------------------------------------ sending (§14.5)

  /** The device addresses a message to `address` goes to: every device of its person's list, or the address alone. */
  private devicesOf(address: string): string[] {
    const key = parseAddress(address);
    const held = this.lists.get(hex(key));
    const all = held ? held.list.members.map((m) => addr(m.key)) : [addr(key)];
    return all.filter((a) => a !== addr(this.me));
  }

  /**
   * send() for the messenger: to every device of the recipient (when we hold its list), our list first to any of
   * them not yet told it, and a copy to each of our siblings. Without a list and without siblings, exactly the
   * messenger's pairwise delivery.
   */
  async send(address: string, data: Uint8Array, options: SendOptions, content: 'data' | 'attachment', id: Uint8Array): Promise<SendReceipt> {
    await this.load(options.signal ? { signal: options.signal } : {});
    let toKey: Uint8Array;
    try {
      toKey = parseAddress(address);
    } catch {
      return this.host.deliver(address, data, options, content, id); // which reports and throws the address's error
    }
    const to = addr(toKey);
    const held = this.lists.get(hex(toKey));
    const siblings = this.siblings();
    if (!held && siblings.length === 0) {
      const r = await this.host.deliver(to, data, options, content, id);
      this.logOwn(toKey, id, data, content);
      return r;
    }
    const targets = this.devicesOf(to);
    const toDevice = (t: string): Promise<SendReceipt> => this.toDevice(t, data, options, content, id);
    const ts = Date.now();
    const sync =
      data.length <= MAX_SYNC_DATA_BYTES ? encodeDeviceEnvelope({ kind: 'sent', to: toKey, id, ts, data, attachment: content === 'attachment' }) : null;
    const syncs = sync
      ? siblings.map((b) =>
          this.host.deliver(addr(b), sync, options.signal ? { signal: options.signal } : {}, 'device', newId()).catch((e: unknown) => {
            this.host.error(asError(e, 'sync to a sibling failed'));
          }),
        )
      : [];
    const results = await Promise.allSettled(targets.map(toDevice));
    await Promise.all(syncs);
    const receipt = best(to, targets, results);
    this.logOwn(toKey, id, data, content, ts);
    return receipt;
  }

  /** One device's copy: our list first when the device has not been told our current revision (§14.5). */
  private async toDevice(t: string, data: Uint8Array, options: SendOptions, content: FrameContent, id: Uint8Array): Promise<SendReceipt> {
    const ours = this.person ? this.lists.get(hex(this.person)) : undefined;
    if (ours && ours.list.members.length > 1 && this.announced.get(t) !== ours.list.r) await this.announce(t, ours, options);
    return this.host.deliver(t, data, options, content, id);
  }

  /**
   * A group envelope to member `address` (specs/messaging.md §13.8): to every device of its person's list when we
   * hold one, each as its own pairwise message under the same id; no copy to our siblings (they get the group's
   * envelopes from its members themselves) and nothing kept for history. Resolves with the best device's receipt.
   */
  async toMember(address: string, envelope: Uint8Array, options: SendOptions, id: Uint8Array): Promise<SendReceipt> {
    await this.load(options.signal ? { signal: options.signal } : {});
    const key = parseAddress(address);
    const to = addr(key);
    if (!this.lists.has(hex(key)) && this.siblings().length === 0) return this.host.deliver(to, envelope, options, 'group', id);
    const targets = this.devicesOf(to);
    const results = await Promise.allSettled(targets.map((t) => this.toDevice(t, envelope, options, 'group', id)));
    return best(to, targets, results);
  }

  /**
   * Who we are in group rosters (§13.8): a linked device stands for its person, sends for it and does not change
   * groups; a primary, or a device with no person, is itself. `siblings`: our person has other devices.
   */
  groupMember(): { key: Uint8Array; sends: boolean; changes: boolean; siblings: boolean } {
    const siblings = this.siblings().length > 0;
    if (this.person && !same(this.person, this.me)) return { key: this.person, sends: true, changes: false, siblings };
    return { key: this.me, sends: true, changes: true, siblings };
  }

  /** The person whose held list names `device` as one of its devices other than the first (§13.8), if any. */
  personOfDevice(device: Uint8Array): Uint8Array | undefined {
    const k = this.personOf.get(hex(device));
    return k === undefined ? undefined : this.lists.get(k)?.list.person;
  }

  private logOwn(to: Uint8Array, id: Uint8Array, data: Uint8Array, content: FrameContent, ts = Date.now()): void {
    this.keep({ outgoing: true, peer: to, id, ts, data, attachment: content === 'attachment' });
  }

  // ------------------------------------------------------------------ receiving

  /**
   * An incoming application message, as the application sees it: from a device of a person we hold the list of,
   * `from` becomes the person's address and `device` the device's. Kept for history.
   */
  incoming(m: IncomingMessage): IncomingMessage {
    const key = parseAddress(m.from);
    const person = this.personOf.get(hex(key));
    const out = person && person !== hex(key) ? { ...m, from: addr(this.lists.get(person)!.list.person), device: m.from } : m;
    if (m.id && !m.group && !m.deviceEnvelope) {
      const peer = person ? this.lists.get(person)!.list.person : key;
      this.keep({ outgoing: false, peer, id: fromHex(m.id), ts: m.sentAt ?? Date.now(), data: m.data, attachment: m.attachment !== undefined });
    }
    return out;
  }

  /**
   * A device envelope from `from` (authenticated by its session or its mailbox signature). Throws what it refuses:
   * ERR_CBOR_*, ERR_SCHEMA, ERR_SIGNATURE (a forged list or accept), ERR_MESSAGE_REPLAY (an older list),
   * ERR_DEVICE_LIST (a sender the list does not allow), ERR_MESSAGE_AUTH (an offer without our code's proof).
   */
  async receive(from: string, bytes: Uint8Array): Promise<void> {
    await this.load();
    const sender = parseAddress(from);
    const e = decodeDeviceEnvelope(bytes);
    switch (e.kind) {
      case 'list':
        return this.takeList(sender, e, bytes);
      case 'offer':
        return this.takeOffer(sender, e);
      case 'accept': {
        const settle = this.offers.get(hex(sender));
        if (!settle || !same(e.person, this.me)) throw new ProtocolError('ERR_DEVICE_LIST', 'an accept for no link offer of ours');
        if (!crypto().verify(e.sig, concatBytes(MEMBER_CONTEXT, this.me), sender))
          throw new CryptoError('ERR_SIGNATURE', 'the accept is not signed by the device');
        settle(null, e.sig);
        return;
      }
      case 'sent':
        return this.takeSent(sender, e);
      case 'history-request':
        return this.takeRequest(sender, e);
      case 'history':
        return this.takeChunk(sender, e);
    }
  }

  private takeOffer(sender: Uint8Array, e: Extract<DeviceEnvelope, { kind: 'offer' }>): void {
    const code = this.code;
    if (this.person && (!this.isPrimary || this.siblings().length > 0)) throw new ProtocolError('ERR_DEVICE_LIST', 'a link offer to a device of a person');
    if (!code || code.expires <= Date.now()) throw new CryptoError('ERR_MESSAGE_AUTH', 'a link offer while no link code is shown');
    if (!same(sender, e.person) || !same(linkProof(code.secret, e.person, this.me), e.proof)) {
      throw new CryptoError('ERR_MESSAGE_AUTH', 'a link offer that does not prove our link code');
    }
    this.code = null; // spent: the first offer that proves the code wins
    this.accepted = e.person;
    this.saveSelf();
    const accept = encodeDeviceEnvelope({ kind: 'accept', person: e.person, sig: signMembership(e.person, this.host.identity.secretKey) });
    void this.host.deliver(addr(e.person), accept, {}, 'device', newId()).catch((err: unknown) => this.host.error(asError(err, 'link accept not delivered')));
  }

  /** §14.4. Nothing changes on a refusal. */
  private takeList(sender: Uint8Array, list: DeviceList, bytes: Uint8Array): void {
    verifyDeviceList(list);
    const k = hex(list.person);
    const held = this.lists.get(k);
    const names = (l: DeviceList | undefined, key: Uint8Array): boolean => l?.members.some((m) => same(m.key, key)) ?? false;
    if (!same(sender, list.person) && !names(held?.list, sender) && !names(list, sender)) {
      throw new ProtocolError('ERR_DEVICE_LIST', "a device list sent by neither its person nor one of that person's devices");
    }
    if (held) {
      if (list.r < held.list.r || (list.r === held.list.r && !same(bytes, held.bytes))) {
        throw new ProtocolError('ERR_MESSAGE_REPLAY', `a device list of revision ${list.r} where ${held.list.r} is held`);
      }
      if (list.r === held.list.r) return; // a copy
    }
    if (same(list.person, this.me)) throw new ProtocolError('ERR_DEVICE_LIST', 'a device list for our own key that we did not sign');
    this.install({ list, bytes }, held?.list);
  }

  /** Keeps a list (ours or another person's), maps its devices, and reports what changed. */
  private install(next: Held, old: DeviceList | undefined): void {
    const k = hex(next.list.person);
    if (old) for (const m of old.members) if (this.personOf.get(hex(m.key)) === k) this.personOf.delete(hex(m.key));
    this.lists.delete(k);
    while (this.lists.size >= this.limits.maxLists && this.evictOne());
    this.lists.set(k, next);
    for (const m of next.list.members) if (!same(m.key, next.list.person)) this.personOf.set(hex(m.key), k);
    this.saveList(next, k);
    const info = this.info(k)!;
    this.host.emit('devices:changed', info);

    const has = (l: DeviceList | undefined, key: Uint8Array): boolean => l?.members.some((m) => same(m.key, key)) ?? false;
    const person = info.person;
    if (this.person && same(this.person, next.list.person)) {
      if (!has(next.list, this.me)) {
        this.person = null;
        this.saveSelf();
        this.host.emit('device:unlinked', { person, device: addr(this.me) });
        return;
      }
      for (const m of next.list.members) if (!has(old, m.key) && old) this.host.emit('device:linked', { person, device: addr(m.key) });
      for (const m of old?.members ?? []) if (!has(next.list, m.key)) this.host.emit('device:unlinked', { person, device: addr(m.key) });
    } else if (this.accepted && same(this.accepted, next.list.person) && has(next.list, this.me)) {
      // The person whose offer we accepted lists us: we are its device now (and no longer a primary of our own).
      this.accepted = null;
      this.lists.delete(hex(this.me));
      this.saveList(null, hex(this.me));
      this.person = next.list.person;
      this.saveSelf();
      this.host.emit('device:linked', { person, device: addr(this.me) });
    }
  }

  /** Drops the least recently taken list that is not our own person's; false when there is none. */
  private evictOne(): boolean {
    for (const [k, held] of this.lists) {
      if (this.person && k === hex(this.person)) continue;
      this.lists.delete(k);
      for (const m of held.list.members) if (this.personOf.get(hex(m.key)) === k) this.personOf.delete(hex(m.key));
      this.saveList(null, k);
      return true;
    }
    return false;
  }

  private takeSent(sender: Uint8Array, e: Extract<DeviceEnvelope, { kind: 'sent' }>): void {
    if (!this.isSibling(sender)) throw new ProtocolError('ERR_DEVICE_LIST', 'a sync from a device that is not our sibling');
    this.keep({ outgoing: true, peer: e.to, id: e.id, ts: e.ts, data: e.data, attachment: e.attachment });
    this.host.emit('message:synced', { to: addr(e.to), data: e.data, id: hex(e.id), sentAt: e.ts, device: addr(sender), attachment: e.attachment });
  }

  // ------------------------------------------------------------------ history (§14.7)

  /**
   * Asks a sibling (default: our primary, or our first sibling on the primary) for the messages it holds with
   * ts ≥ `after` (default 0), at most `maxBytes` of data (default and most MAX_HISTORY_SYNC_BYTES). Resolves with
   * them, oldest first, once the last chunk came ('history:progress' for each); each is kept in our own history too.
   * Resume an interrupted request with `after` = the newest `sentAt` received. Throws ERR_DEVICE_LIST (no sibling),
   * ERR_TIMEOUT (`timeoutMs`, default 5 minutes), ERR_ABORTED, and the send's errors.
   */
  async requestHistory(options: AbortOptions & { from?: string; after?: number; maxBytes?: number; timeoutMs?: number } = {}): Promise<HistoryMessage[]> {
    await this.load(options.signal ? { signal: options.signal } : {});
    const siblings = this.siblings();
    const primary = this.person && !this.isPrimary ? this.person : undefined;
    const fromKey = options.from !== undefined ? parseAddress(options.from) : (primary ?? siblings[0]);
    if (!fromKey || !this.isSibling(fromKey)) throw new ProtocolError('ERR_DEVICE_LIST', 'history comes only from a sibling device');
    const max = Math.min(options.maxBytes ?? this.limits.maxHistorySyncBytes, MAX_HISTORY_SYNC_BYTES);
    const q = crypto().random(DEVICE_ID_LEN);
    const request = encodeDeviceEnvelope({ kind: 'history-request', q, after: options.after ?? 0, max });
    const from = addr(fromKey);
    const signal = options.signal;
    const entries = await settleWithin<HistoryEntry[]>(
      (settle) => {
        this.requests.set(hex(q), { from: hex(fromKey), max, next: 0, bytes: 0, entries: [], seen: new Set(), settle });
        this.host.deliver(from, request, signal ? { signal } : {}, 'device', newId()).catch((e: unknown) => settle(asError(e, 'history request failed')));
        return () => void this.requests.delete(hex(q));
      },
      { ...(signal ? { signal } : {}), timeoutMs: options.timeoutMs ?? HISTORY_TIMEOUT_MS, timeoutMessage: 'no complete history answer' },
    );
    return entries.map((e) => ({ outgoing: e.outgoing, peer: addr(e.peer), id: hex(e.id), sentAt: e.ts, data: e.data, attachment: e.attachment }));
  }

  private takeRequest(sender: Uint8Array, e: Extract<DeviceEnvelope, { kind: 'history-request' }>): void {
    if (!this.isSibling(sender)) throw new ProtocolError('ERR_DEVICE_LIST', 'a history request from a device that is not our sibling');
    const who = hex(sender);
    // One answer per requester: a new request replaces the one in progress (it sends no further chunk).
    const answer = { cancelled: false };
    const previous = this.serving.get(who);
    if (previous) previous.cancelled = true;
    this.serving.set(who, answer);
    const chunks = this.log.chunks(e.after, Math.min(e.max, this.limits.maxHistorySyncBytes));
    void (async () => {
      try {
        for (let i = 0; i < chunks.length; i++) {
          // A sibling unlinked meanwhile gets nothing more, nor does a request replaced by a newer one.
          if (answer.cancelled || !this.isSibling(sender)) return;
          const chunk = encodeDeviceEnvelope({ kind: 'history', q: e.q, i, last: i === chunks.length - 1, entries: chunks[i]! });
          await this.host.deliver(addr(sender), chunk, {}, 'device', newId());
        }
      } catch (err) {
        this.host.error(asError(err, 'history answer failed'));
      } finally {
        if (this.serving.get(who) === answer) this.serving.delete(who);
      }
    })();
  }

  private takeChunk(sender: Uint8Array, e: Extract<DeviceEnvelope, { kind: 'history' }>): void {
    const r = this.requests.get(hex(e.q));
    if (!r || r.from !== hex(sender)) throw new ProtocolError('ERR_DEVICE_LIST', 'a history chunk for no request of ours to that device');
    if (e.i !== r.next) throw new ProtocolError('ERR_SCHEMA', `history chunk ${e.i} where ${r.next} was expected`);
    const bytes = e.entries.reduce((n, x) => n + x.data.length, 0);
    if (r.bytes + bytes > r.max) {
      r.settle(new LimitError('MAX_HISTORY_SYNC_BYTES', 'the history answer is larger than asked for'));
      return;
    }
    r.next++;
    r.bytes += bytes;
    for (const x of e.entries) {
      this.keep(x);
      const key = `${hex(x.peer)}:${hex(x.id)}`;
      if (r.seen.has(key)) continue; // an entry of the millisecond a resumed request starts at, or a copy
      r.seen.add(key);
      r.entries.push(x);
    }
    this.host.emit('history:progress', { from: addr(sender), entries: r.entries.length, bytes: r.bytes, done: e.last });
    if (e.last) r.settle(null, r.entries);
  }
}

/** The receipt of a message sent to several devices: the first delivered, else the first stored; else the first error. */
function best(to: string, targets: readonly string[], results: ReadonlyArray<PromiseSettledResult<SendReceipt>>): SendReceipt {
  const devices: DeviceReceipt[] = results.map((r, i) =>
    r.status === 'fulfilled'
      ? { device: targets[i]!, status: r.value.status }
      : { device: targets[i]!, status: 'failed', error: asError(r.reason, 'send failed') },
  );
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const base = ok.find((r) => r.status === 'delivered') ?? ok[0];
  if (!base) {
    const first = results.find((r) => r.status === 'rejected');
    throw first ? asError(first.reason, 'send failed') : new NotFoundError('no device to send to');
  }
  return { ...base, to, devices };
}

function newId(): Uint8Array {
  return crypto().random(DEVICE_ID_LEN);
}
