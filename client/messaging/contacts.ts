/**
 * The contact book (specs/messaging.md §11.3): per contact, the identity key it has now, whether the user verified
 * it (compared safety numbers), whether it changed since, and the keys it had before. Adding a card under a name the
 * book knows with another key is an identity change: reported ('contact:identity-changed'), never silently taken.
 *
 * The book is strict CBOR kept through a ContactStorage the application gives (file-storage in Node:
 * contact-file.ts; anything with load/save in a browser); without one it lives in memory. A stored book that does
 * not decode is refused rather than replaced by an empty one, which would hide every later change.
 */
import { z } from 'zod';
import { crypto } from '../../crypto/index.js';
import { formatAddress } from '../../protocol/address.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from '../../protocol/cbor.js';
import { MIX_SEQ_AHEAD_MS } from '../../protocol/mix-message.js';
import { CARD_MIX_LEN, checkName, decodeCard, parseCard, type CardMixAddress, type ContactCard } from '../../protocol/contact-card.js';
import { LimitError, NotFoundError, ProtocolError, throwIfAborted } from '../../protocol/errors.js';
import type { AbortOptions } from '../../net/abort.js';
import { Emitter } from '../../net/emitter.js';

/** Contacts a book holds (default; ContactBookOptions.maxContacts). */
export const MAX_CONTACTS = 10_000;
/** Earlier identity keys kept per contact, newest first. */
export const MAX_PREVIOUS_KEYS = 8;
/** Largest stored book read back. */
export const MAX_CONTACT_BOOK_BYTES = 4 * 1024 * 1024;

/** Where a book is kept: the whole book's bytes, read once and written after every change. */
export interface ContactStorage {
  /** The stored bytes, or null when nothing was stored yet. */
  load(options?: AbortOptions): Promise<Uint8Array | null>;
  save(bytes: Uint8Array, options?: AbortOptions): Promise<void>;
}

/** A book that lives as long as the process (or page). */
export function memoryContactStorage(): ContactStorage {
  let held: Uint8Array | null = null;
  return {
    load: () => Promise.resolve(held && Uint8Array.from(held)),
    save: (b) => {
      held = Uint8Array.from(b);
      return Promise.resolve();
    },
  };
}

export interface Contact {
  /** The application's name for the contact, unique in the book. */
  readonly name: string;
  /** The identity key the contact has now, and its address. */
  readonly key: Uint8Array;
  readonly address: string;
  /** The user compared safety numbers for this key and said they match. */
  readonly verified: boolean;
  /** The key was replaced and the user has not yet verified or accepted the new one: show a warning. */
  readonly changed: boolean;
  /** The keys it had before, newest first. */
  readonly previous: readonly Uint8Array[];
  readonly added: number;
  readonly keyChangedAt?: number;
  /**
   * A card of this key said the contact publishes prekeys (specs/messaging.md §9.6, §11.1), or a prekey record of
   * this key was found when sending to it: offline messages to it are always sealed to its prekeys, never written as
   * version 2 items.
   */
  readonly prekeys: boolean;
  /** The mix address of the latest version 3 card of this key (specs/mix.md §8): where message mode reaches it. */
  readonly mix?: CardMixAddress;
  /**
   * The highest address sequence of an address box of this key applied to `mix` (specs/mix.md §8.6): an address box
   * whose sequence is not over it changes nothing.
   */
  readonly mixSeq?: number;
}

/** What 'contact:identity-changed' reports. */
export interface IdentityChange {
  readonly contact: Contact;
  /** The key (and address) the contact had until now. */
  readonly previousKey: Uint8Array;
  readonly previousAddress: string;
  /** True when the replaced key had been verified: the warning deserves the most attention. */
  readonly wasVerified: boolean;
}

export type ContactEvents = {
  'contact:added': [Contact];
  'contact:identity-changed': [IdentityChange];
  'contact:verified': [Contact];
  'contact:removed': [string];
};

export interface ContactBookOptions {
  /** MAX_CONTACTS (10 000). */
  maxContacts?: number;
  /** The clock (default Date.now). */
  now?: () => number;
}

const contactV1Schema = z.strictObject({
  n: z.string(),
  k: zBytes(32),
  vf: z.boolean(),
  ch: z.boolean(),
  t: zUint(),
  tc: zUint().optional(),
  p: z.array(zBytes(32)).max(MAX_PREVIOUS_KEYS),
});
/** Version 2 adds "pk": 1, the contact's card said it publishes prekeys (§11.1), or its record was found (§9.6). */
const contactV2Schema = contactV1Schema.extend({ pk: z.literal(1).optional() });
/** Version 3 adds "mx": the contact's mix address (gateway | inbox | key), from its version 3 card (mix.md §8). */
const contactV3Schema = contactV2Schema.extend({ mx: zBytes(CARD_MIX_LEN).optional() });
/** Version 4 adds "ms": the highest address sequence applied to "mx" (mix.md §8.6). */
const contactSchema = contactV3Schema.extend({ ms: zUint().optional() });
const bookSchema = z.discriminatedUnion('v', [
  z.strictObject({ v: z.literal(1), contacts: z.array(contactV1Schema) }),
  z.strictObject({ v: z.literal(2), contacts: z.array(contactV2Schema) }),
  z.strictObject({ v: z.literal(3), contacts: z.array(contactV3Schema) }),
  z.strictObject({ v: z.literal(4), contacts: z.array(contactSchema) }),
]);

type Row = z.infer<typeof contactSchema>;

function toContact(r: Row): Contact {
  return {
    name: r.n,
    key: Uint8Array.from(r.k),
    address: formatAddress(r.k),
    verified: r.vf,
    changed: r.ch,
    previous: r.p.map((k) => Uint8Array.from(k)),
    added: r.t,
    ...(r.tc !== undefined ? { keyChangedAt: r.tc } : {}),
    prekeys: r.pk === 1,
    ...(r.mx ? { mix: { gateway: r.mx.slice(0, 32), inbox: r.mx.slice(32, 64), key: r.mx.slice(64, 96) } } : {}),
    ...(r.ms !== undefined ? { mixSeq: r.ms } : {}),
  };
}

function mixBytes(m: CardMixAddress | undefined): { mx: Uint8Array } | Record<string, never> {
  if (!m) return {};
  const mx = new Uint8Array(CARD_MIX_LEN);
  mx.set(m.gateway, 0);
  mx.set(m.inbox, 32);
  mx.set(m.key, 64);
  return { mx };
}

/** A card as given: text (a card or a plain address), a card's bytes, or one already parsed. */
export type CardInput = string | Uint8Array | (Omit<ContactCard, 'prekeys'> & { readonly prekeys?: boolean });

function cardOf(input: CardInput): ContactCard {
  if (typeof input === 'string') return parseCard(input);
  if (input instanceof Uint8Array) return decodeCard(input);
  return { ...input, prekeys: input.prekeys === true };
}

/**
 * What an address box does to a contact record (specs/mix.md §8.6) holding the mix address `held` (its 96 bytes, if
 * any) applied at sequence `heldSeq` (if any), given the box's address `mx` (96 bytes) and sequence `seq` and the
 * recipient's clock `now` (Unix ms): 'ahead' — `seq` more than MIX_SEQ_AHEAD past `now`: refused (neither applied
 * nor acknowledged); 'applied' — newer, another address; 'unchanged' — newer, the address held (only the sequence
 * rises); 'copy' — not newer, the address held (acknowledged: its sender stops retransmitting); 'older' — not newer,
 * another address (neither applied nor acknowledged: its sender retransmits with a newer sequence, or gives up and
 * counts it).
 */
export type MixAddressVerdict = 'applied' | 'unchanged' | 'copy' | 'older' | 'ahead';
export function mixAddressVerdict(held: Uint8Array | undefined, heldSeq: number | undefined, mx: Uint8Array, seq: number, now: number): MixAddressVerdict {
  if (seq > now + MIX_SEQ_AHEAD_MS) return 'ahead';
  const same = held !== undefined && crypto().equal(held, mx);
  if (heldSeq !== undefined && seq <= heldSeq) return same ? 'copy' : 'older';
  return same ? 'unchanged' : 'applied';
}

export class ContactBook extends Emitter<ContactEvents> {
  private rows: Map<string, Row> | null = null;
  private loading: Promise<Map<string, Row>> | null = null;
  /** Saves run one after another, each with the book as it was when it was asked for. */
  private saving: Promise<void> = Promise.resolve();
  private readonly max: number;
  private readonly now: () => number;

  constructor(
    private readonly storage: ContactStorage = memoryContactStorage(),
    options: ContactBookOptions = {},
  ) {
    super();
    this.max = options.maxContacts ?? MAX_CONTACTS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Reads the stored book (once; every call does it first). Throws ERR_CBOR_*, ERR_SCHEMA, ERR_KEY_FORMAT for a
   * stored book that does not decode, and what the storage throws.
   */
  async load(options: AbortOptions = {}): Promise<void> {
    await this.table(options);
  }

  private table(options: AbortOptions): Promise<Map<string, Row>> {
    if (this.rows) return Promise.resolve(this.rows);
    this.loading ??= (async () => {
      const bytes = await this.storage.load(options);
      const rows = new Map<string, Row>();
      if (bytes) {
        const book = decodeMessage(bookSchema, bytes, MAX_CONTACT_BOOK_BYTES, 'contact book');
        for (const r of book.contacts) {
          checkName(r.n, false);
          for (const k of [r.k, ...r.p]) if (!crypto().edIsValidPoint(k)) throw new ProtocolError('ERR_KEY_FORMAT', 'contact book: a key is not a valid point');
          if (rows.has(r.n)) throw new ProtocolError('ERR_SCHEMA', 'contact book: a name twice');
          rows.set(r.n, r);
        }
      }
      this.rows = rows;
      return rows;
    })();
    this.loading.catch(() => (this.loading = null));
    return this.loading;
  }

  private persist(rows: Map<string, Row>, options: AbortOptions): Promise<void> {
    // Version 4 only when a record holds an address sequence, 3 when one holds a mix address: a book without them
    // stays readable by older readers.
    const all = [...rows.values()];
    const bytes = encodeCbor({ v: all.some((r) => r.ms !== undefined) ? 4 : all.some((r) => r.mx) ? 3 : 2, contacts: all });
    const p = this.saving.then(() => this.storage.save(bytes, options));
    this.saving = p.catch(() => undefined);
    return p;
  }

  /** Every contact, in the order they were added. */
  async list(options: AbortOptions = {}): Promise<Contact[]> {
    return [...(await this.table(options)).values()].map(toContact);
  }

  async get(name: string, options: AbortOptions = {}): Promise<Contact | undefined> {
    const r = (await this.table(options)).get(name);
    return r && toContact(r);
  }

  /** The contact whose current key the address names (undefined for none). */
  async byAddress(address: string, options: AbortOptions = {}): Promise<Contact | undefined> {
    const key = parseCard(address).key;
    for (const r of (await this.table(options)).values()) if (crypto().equal(r.k, key)) return toContact(r);
    return undefined;
  }

  /**
   * Adds a contact from a card (its text or bytes) or an address, under `name` (default: the card's name; one or
   * the other is needed, ERR_ADDRESS_FORMAT otherwise). A name the book knows with the same key changes nothing; with
   * another key it is an identity change (§11.3): the new key replaces the old, `verified` becomes false, `changed`
   * true, and 'contact:identity-changed' is emitted. Throws the card's errors (ERR_ADDRESS_*), LimitError
   * MAX_CONTACTS, ERR_ABORTED, and what the storage throws.
   */
  async add(
    card: CardInput,
    options: { name?: string } & AbortOptions = {},
  ): Promise<{ contact: Contact; change: 'added' | 'unchanged' | 'identity-changed' }> {
    const c = cardOf(card);
    const name = options.name ?? c.name;
    checkName(name, false);
    const rows = await this.table(options);
    throwIfAborted(options.signal);
    const have = rows.get(name);
    const pk = c.prekeys ? { pk: 1 as const } : {};
    const mx = mixBytes(c.mix);
    if (have && crypto().equal(have.k, c.key)) {
      // A card that says the key publishes prekeys sets the mark; one that does not (an older card, a plain address)
      // never clears it: only a new key does, so no card can bring back version 2 items (§11.3). A card with a mix
      // address replaces the one held; one without leaves it.
      const newMix = mx.mx !== undefined && !(have.mx && crypto().equal(have.mx, mx.mx));
      if ((!c.prekeys || have.pk === 1) && !newMix) return { contact: toContact(have), change: 'unchanged' };
      const row: Row = { ...have, ...(c.prekeys ? { pk: 1 as const } : {}), ...mx };
      rows.set(name, row);
      await this.persist(rows, options);
      return { contact: toContact(row), change: 'unchanged' };
    }
    if (!have) {
      if (rows.size >= this.max) throw new LimitError('MAX_CONTACTS', `the contact book holds at most ${this.max} contacts`);
      const row: Row = { n: name, k: Uint8Array.from(c.key), vf: false, ch: false, t: this.now(), p: [], ...pk, ...mx };
      rows.set(name, row);
      await this.persist(rows, options);
      const contact = toContact(row);
      this.emit('contact:added', contact);
      return { contact, change: 'added' };
    }
    const previousKey = have.k;
    const wasVerified = have.vf;
    const { pk: _old, mx: _oldMix, ms: _oldSeq, ...rest } = have;
    const row: Row = {
      ...rest,
      ...pk,
      ...mx,
      k: Uint8Array.from(c.key),
      vf: false,
      ch: true,
      tc: this.now(),
      p: [previousKey, ...have.p.filter((k) => !crypto().equal(k, c.key))].slice(0, MAX_PREVIOUS_KEYS),
    };
    rows.set(name, row);
    await this.persist(rows, options);
    const contact = toContact(row);
    this.emit('contact:identity-changed', { contact, previousKey: Uint8Array.from(previousKey), previousAddress: formatAddress(previousKey), wasVerified });
    return { contact, change: 'identity-changed' };
  }

  /**
   * Marks the contact whose current key is `key` as publishing prekeys (§9.6, §11.3): a prekey record of that key
   * was found, its owner's own word as much as a card saying so. Resolves true when the mark was set now, false when
   * it was already set or no contact has that key (a key replaced meanwhile is not marked). Throws what the storage
   * throws (the mark is in memory already).
   */
  async markPrekeys(key: Uint8Array, options: AbortOptions = {}): Promise<boolean> {
    const rows = await this.table(options);
    for (const [name, r] of rows) {
      if (!crypto().equal(r.k, key)) continue;
      if (r.pk === 1) return false;
      rows.set(name, { ...r, pk: 1 });
      await this.persist(rows, options);
      return true;
    }
    return false;
  }

  /**
   * Applies an address box of sequence `seq` from the contact whose current key is `key` (specs/mix.md §8.6; the rule
   * is mixAddressVerdict()): 'applied' sets the record's mix address, as a version 3 card of that key would (§11.3:
   * key, name, verified unchanged), and its `mixSeq`, and saves the book; 'unchanged' (the address the record holds,
   * a newer `seq`) raises `mixSeq` in memory only — saved with the book's next change — so that a contact repeating
   * its address cannot make us rewrite the book; 'copy', 'older' and 'ahead' change nothing; false: no contact has
   * that key. Throws what the storage throws.
   */
  async setMix(key: Uint8Array, mix: CardMixAddress, seq: number, options: AbortOptions = {}): Promise<MixAddressVerdict | false> {
    const rows = await this.table(options);
    const mx = mixBytes(mix).mx!;
    for (const [name, r] of rows) {
      if (!crypto().equal(r.k, key)) continue;
      const v = mixAddressVerdict(r.mx, r.ms, mx, seq, this.now());
      if (v === 'unchanged') rows.set(name, { ...r, ms: seq });
      if (v !== 'applied') return v;
      rows.set(name, { ...r, mx, ms: seq });
      await this.persist(rows, options);
      return 'applied';
    }
    return false;
  }

  /**
   * Marks a contact's current key verified (the user compared safety numbers and they match) or not; verifying also
   * clears `changed`. Throws ERR_NOT_FOUND for an unknown name.
   */
  async markVerified(name: string, verified = true, options: AbortOptions = {}): Promise<Contact> {
    return this.update(name, options, (r) => ({ ...r, vf: verified, ch: verified ? false : r.ch }), verified);
  }

  /** Accepts a changed key without verifying it: clears `changed`, leaves `verified` false. */
  async acceptChange(name: string, options: AbortOptions = {}): Promise<Contact> {
    return this.update(name, options, (r) => ({ ...r, ch: false }), false);
  }

  /** Forgets a contact (true if it was there). */
  async remove(name: string, options: AbortOptions = {}): Promise<boolean> {
    const rows = await this.table(options);
    if (!rows.delete(name)) return false;
    await this.persist(rows, options);
    this.emit('contact:removed', name);
    return true;
  }

  private async update(name: string, options: AbortOptions, f: (r: Row) => Row, verifiedEvent: boolean): Promise<Contact> {
    const rows = await this.table(options);
    const have = rows.get(name);
    if (!have) throw new NotFoundError('no contact of that name');
    const row = f(have);
    rows.set(name, row);
    await this.persist(rows, options);
    const contact = toContact(row);
    if (verifiedEvent) this.emit('contact:verified', contact);
    return contact;
  }
}
