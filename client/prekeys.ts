/**
 * Prekeys, the owner's and the sender's sides (specs/messaging.md §9.6; the record is protocol/prekeys.ts).
 *
 * The owner (PrekeyOwner) keeps a signed prekey, rotated every PREKEY_ROTATE_MS, the replaced ones for
 * PREKEY_GRACE_MS (until the last item sealed to them has expired), and up to MAX_ONE_TIME_PREKEYS one-time
 * prekeys, all of them published. It publishes a record for each epoch from the current one to
 * PREKEY_PUBLISH_EPOCHS − 1 ahead, so a sender finds one while the owner is offline. A collection pass looks
 * secrets up by id and notes the one-time prekeys that opened an item; at the end of the pass those secrets are
 * deleted, the state saved, and the record published again with fresh one-time prekeys in their place.
 *
 * State at rest, through a GroupStorage (one record, "prekeys"):
 *
 *   K_pre  = K(identity seed, "allium-v1:prekey-store")                                   K as §5.1
 *   record = u8(1) | nonce (24) | XAEAD(K_pre, nonce, CBOR(state), ad = "allium-v1 prekey-store")
 *   state  = { "v": 1, "ed": last edition, "s": [ { "sk", "c": created, ? "r": replaced } ], "o": [ sk … ] }
 *
 * Deleted secrets are wiped in memory and the record is rewritten without them; what a storage keeps of earlier
 * copies (a file system's old blocks) is the application's to erase. Without storage there is no owner: prekeys lost
 * in a restart would lose the mail sealed to them.
 *
 * The sender's side (fetchPrekeys) reads the current epoch's record from every holder and keeps the newest that opens.
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import type { Identity } from '../protocol/address.js';
import { concatBytes, toHex, utf8 } from '../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from '../protocol/cbor.js';
import { CryptoError, ProtocolError } from '../protocol/errors.js';
import { mailboxEpochAt, MAILBOX_CLOCK_SKEW_MS, MAX_MAILBOX_TTL_MS, type ItemPrekeys } from '../protocol/mailbox.js';
import { createPrekeyRecord, MAX_ONE_TIME_PREKEYS, openPrekeyRecord, prekeyId, prekeyRecordKeys } from '../protocol/prekeys.js';
import type { AbortOptions } from '../net/abort.js';
import type { ContentClient } from './content.js';
import type { GroupStorage } from './messaging/group-store.js';

/** Epochs, from the current one, for which the owner publishes a record (specs/limits.md). */
export const PREKEY_PUBLISH_EPOCHS = 8;
/** Age at which the signed prekey is replaced. */
export const PREKEY_ROTATE_MS = 7 * 86400_000;
/** How long a replaced signed prekey's secret is kept: the last item sealed to it has expired by then. */
export const PREKEY_GRACE_MS = MAX_MAILBOX_TTL_MS + MAILBOX_CLOCK_SKEW_MS;
/** Signed prekeys kept at most (the current one and those in their grace period). */
export const MAX_SIGNED_PREKEYS = 4;
/** The storage record's name. */
export const PREKEY_RECORD = 'prekeys';
const LABEL = utf8('allium-v1:prekey-store');
const AD = utf8('allium-v1 prekey-store');
const XNONCE = 24;

const stateSchema = z.strictObject({
  v: z.literal(1),
  ed: zUint(),
  s: z.array(z.strictObject({ sk: zBytes(32), c: zUint(), r: zUint().optional() })).max(MAX_SIGNED_PREKEYS),
  o: z.array(zBytes(32)).max(MAX_ONE_TIME_PREKEYS),
});

interface SignedPrekey {
  readonly sk: Uint8Array;
  readonly pk: Uint8Array;
  readonly created: number;
  replaced?: number;
}

interface OneTimePrekey {
  readonly sk: Uint8Array;
  readonly pk: Uint8Array;
}

/** An identity's prekey secrets, kept across restarts through `storage`. */
export class PrekeyOwner {
  private signed: SignedPrekey[] = [];
  private oneTime: OneTimePrekey[] = [];
  /** id (hex) → the key, for lookups while a pass opens items. */
  private byId = new Map<string, { kind: 'signed' | 'one-time'; sk: Uint8Array }>();
  /** One-time prekeys (hex ids) that opened an item in the current pass. */
  private readonly used = new Set<string>();
  private edition = 0;
  private loaded: Promise<void> | null = null;
  private readonly key: Uint8Array;

  constructor(
    private readonly identity: Identity,
    private readonly storage: GroupStorage,
    private readonly clock: () => number = Date.now,
  ) {
    this.key = crypto().hash(32, LABEL, identity.secretKey.subarray(0, 32));
  }

  /**
   * Loads the state (once), and makes or rotates keys as due; saves when anything changed. Throws ERR_MESSAGE_AUTH
   * or ERR_SCHEMA for a stored record that does not open or decode (never replaced: it may hold the only secrets for
   * mail still waiting), and the storage's errors.
   */
  load(options: AbortOptions = {}): Promise<void> {
    this.loaded ??= (async () => {
      const rec = (await this.storage.load(options)).find(([name]) => name === PREKEY_RECORD);
      if (rec) this.decode(rec[1]);
      if (this.refresh()) await this.save(options);
    })();
    this.loaded.catch(() => (this.loaded = null));
    return this.loaded;
  }

  /** The secret of the prekey `id` of `kind`, or null (a lookup for openMailboxItem). */
  lookup(id: Uint8Array, kind: 'signed' | 'one-time'): Uint8Array | null {
    const k = this.byId.get(toHex(id));
    return k && k.kind === kind ? k.sk : null;
  }

  /**
   * Notes that an item sealed to the one-time prekey `id` opened: its secret goes at the end of the pass (endPass),
   * so other items of the same pass sealed to it still open. Only items that opened count, so junk naming our ids
   * deletes nothing.
   */
  opened(id: Uint8Array): void {
    if (this.byId.get(toHex(id))?.kind === 'one-time') this.used.add(toHex(id));
  }

  /** True when the public halves of this owner's one-time prekeys include `publicKey` (tests). */
  holdsOneTime(publicKey: Uint8Array): boolean {
    return this.oneTime.some((k) => crypto().equal(k.pk, publicKey));
  }

  /**
   * Ends a collection pass: deletes the one-time prekeys that opened items, rotates and expires signed prekeys as
   * due, tops the one-time prekeys up, and saves. Returns true when the record must be published again.
   */
  async endPass(options: AbortOptions = {}): Promise<boolean> {
    await this.load(options);
    let changed = false;
    if (this.used.size > 0) {
      const gone = this.oneTime.filter((k) => this.used.has(toHex(prekeyId(k.pk))));
      this.oneTime = this.oneTime.filter((k) => !this.used.has(toHex(prekeyId(k.pk))));
      crypto().wipe(...gone.map((k) => k.sk));
      this.used.clear();
      changed = true;
    }
    if (this.refresh()) changed = true;
    if (changed) await this.save(options);
    return changed;
  }

  /** The records to publish (one per epoch from the current one, PREKEY_PUBLISH_EPOCHS of them), with a new edition. */
  records(): Array<{ rk: Uint8Array; bytes: Uint8Array }> {
    const now = this.clock();
    this.edition = Math.max(this.edition + 1, now);
    const spk = this.signed[this.signed.length - 1]!;
    const bundle = { spk: spk.pk, created: spk.created, otks: this.oneTime.map((k) => k.pk) };
    const first = mailboxEpochAt(now);
    return Array.from({ length: PREKEY_PUBLISH_EPOCHS }, (_, i) => createPrekeyRecord(this.identity, first + i, this.edition, bundle));
  }

  /**
   * Publishes the records at every holder (saving the edition first, so a restart never goes back). Resolves with
   * how many records at least one holder accepted.
   */
  async publish(content: ContentClient, options: AbortOptions = {}): Promise<number> {
    await this.load(options);
    const records = this.records();
    await this.save(options);
    const results = await Promise.all(records.map((r) => content.storeAll('record', r.rk, r.bytes, options).catch(() => [])));
    return results.filter((s) => s.some((x) => x === 'ok' || x === 'exists')).length;
  }

  /** Makes a signed prekey when none is current or the current one is due, drops expired ones, tops up one-time keys. */
  private refresh(): boolean {
    const now = this.clock();
    let changed = false;
    const current = this.signed[this.signed.length - 1];
    if (!current || now - current.created >= PREKEY_ROTATE_MS) {
      if (current) current.replaced = now;
      const kp = crypto().x25519Keypair();
      this.signed.push({ sk: kp.secretKey, pk: kp.publicKey, created: now });
      changed = true;
    }
    const keep = this.signed.filter((k, i) => i === this.signed.length - 1 || (k.replaced !== undefined && now - k.replaced < PREKEY_GRACE_MS));
    const dropped = this.signed.filter((k) => !keep.includes(k));
    // At most MAX_SIGNED_PREKEYS: the oldest in their grace go first.
    while (keep.length > MAX_SIGNED_PREKEYS) dropped.push(keep.shift()!);
    if (dropped.length > 0) {
      crypto().wipe(...dropped.map((k) => k.sk));
      changed = true;
    }
    this.signed = keep;
    while (this.oneTime.length < MAX_ONE_TIME_PREKEYS) {
      const kp = crypto().x25519Keypair();
      this.oneTime.push({ sk: kp.secretKey, pk: kp.publicKey });
      changed = true;
    }
    this.index();
    return changed;
  }

  private index(): void {
    this.byId = new Map();
    for (const k of this.signed) this.byId.set(toHex(prekeyId(k.pk)), { kind: 'signed', sk: k.sk });
    for (const k of this.oneTime) this.byId.set(toHex(prekeyId(k.pk)), { kind: 'one-time', sk: k.sk });
  }

  private async save(options: AbortOptions): Promise<void> {
    const state = encodeCbor({
      v: 1,
      ed: this.edition,
      s: this.signed.map((k) => ({ sk: k.sk, c: k.created, ...(k.replaced !== undefined ? { r: k.replaced } : {}) })),
      o: this.oneTime.map((k) => k.sk),
    });
    const nonce = crypto().random(XNONCE);
    const bytes = concatBytes(Uint8Array.of(1), nonce, crypto().xaeadEncrypt(state, AD, nonce, this.key));
    crypto().wipe(state);
    await this.storage.save(PREKEY_RECORD, bytes, options);
  }

  private decode(bytes: Uint8Array): void {
    if (bytes.length < 1 + XNONCE || bytes[0] !== 1) throw new ProtocolError('ERR_SCHEMA', 'prekey store: not a record of version 1');
    const plain = crypto().xaeadDecrypt(bytes.subarray(1 + XNONCE), AD, bytes.subarray(1, 1 + XNONCE), this.key);
    if (!plain) throw new CryptoError('ERR_MESSAGE_AUTH', 'prekey store: the record does not open under this identity');
    const s = decodeMessage(stateSchema, plain, 16 * 1024, 'prekey store');
    crypto().wipe(plain);
    this.edition = s.ed;
    this.signed = s.s.map((k) => ({ sk: k.sk, pk: crypto().x25519Public(k.sk), created: k.c, ...(k.r !== undefined ? { replaced: k.r } : {}) }));
    this.oneTime = s.o.map((sk) => ({ sk, pk: crypto().x25519Public(sk) }));
    this.index();
  }
}

/**
 * The prekeys a sender seals a first-contact item to (specs/messaging.md §9.6): the current epoch's record of
 * `recipient`, the newest edition that opens among the holders' copies, and one of its one-time prekeys chosen at
 * random. Null when no holder has a record that opens (the sender then writes version 2).
 */
export async function fetchPrekeys(content: ContentClient, recipient: Uint8Array, now: number, options: AbortOptions = {}): Promise<ItemPrekeys | null> {
  const epoch = mailboxEpochAt(now);
  const { rk } = prekeyRecordKeys(recipient, epoch);
  const copies = await content.fetchFromAll('record', rk, options);
  let best: { edition: number; spk: Uint8Array; otks: readonly Uint8Array[] } | null = null;
  for (const bytes of copies) {
    try {
      const r = openPrekeyRecord(recipient, epoch, bytes);
      if (!best || r.edition > best.edition) best = { edition: r.edition, spk: r.bundle.spk, otks: r.bundle.otks };
    } catch {
      // A copy that does not verify or open is a holder's fault: the others decide.
    }
  }
  if (!best) return null;
  if (best.otks.length === 0) return { spk: best.spk };
  const pick = new DataView(crypto().random(4).buffer).getUint32(0) % best.otks.length;
  return { spk: best.spk, opk: best.otks[pick]! };
}
