/**
 * Prekeys, the owner's and the sender's sides (specs/messaging.md §9.6; the record is protocol/prekeys.ts).
 *
 * The owner (PrekeyOwner) keeps a signed prekey, rotated every PREKEY_ROTATE_MS, the replaced ones for
 * PREKEY_GRACE_MS (until the last item sealed to them, even from a stale record a holder replays, has expired), and
 * MAX_ONE_TIME_PREKEYS published one-time prekeys. It publishes a record for each epoch from the current one to
 * PREKEY_PUBLISH_EPOCHS − 1 ahead, so a sender finds one while the owner is offline; the records' editions say only
 * a 12-hour window (protocol/prekeys.ts), since anyone with the address reads them, and are for the next window,
 * which holders serve only from its start (at once only when no record covers the current epoch), so a reader that
 * polls them does not see when the owner ran. A
 * collection pass (beginPass … endPass) looks secrets up by id and marks the one-time prekeys that opened an item as
 * used. A used one-time prekey stays listed, and opens what is sealed to it, until the next record is published
 * without it (the rollover: at most once per PREKEY_REPUBLISH_MIN_MS, so draining the one-time prekeys cannot make
 * the owner republish its records over and over); it is then retired, and its secret is kept for ONE_TIME_GRACE_MS
 * more — senders seal to a one-time prekey only from a record at most PREKEY_FRESH_MS old — and wiped at the end of
 * the first pass that began after that. At most MAX_RETIRED_ONE_TIME_PREKEYS are retired at once: with no room, used
 * prekeys stay listed (they still open) until older ones go, so no secret is ever dropped before its grace ends.
 *
 * State at rest, through a GroupStorage (one record, "prekeys"):
 *
 *   K_pre  = K(identity seed, "allium-v1:prekey-store")                                   K as §5.1
 *   record = u8(1) | nonce (24) | XAEAD(K_pre, nonce, CBOR(state), ad = "allium-v1 prekey-store")
 *   state  = { "v": 2, "ed": last edition, ? "cv": last epoch accepted records reach, "rl": last rollover (ms, 0 never),
 *              "s": [ { "sk", "c": created, ? "r": replaced } ],
 *              "o": [ { "sk", ? "u": 1 (used) } ],  "x": [ { "sk", "t": unlisted (the edition that dropped it) } ] }
 *
 * A state of version 1 (`"o": [ sk … ]`, no "rl" nor "x") is still read. Deleted secrets are wiped in memory and the
 * record is rewritten without them; what a storage keeps of earlier copies (a file system's old blocks) is the
 * application's to erase. Without storage there is no owner: prekeys lost in a restart would lose the mail sealed to
 * them.
 *
 * The sender's side: fetchPrekeyRecord reads the current epoch's record from every holder and keeps the newest that
 * opens; choosePrekeys picks what to seal to (a one-time prekey only from a record it cannot tell is stale);
 * PrekeyPublishers remembers, per recipient, the newest edition seen (kept across restarts with a storage), so that
 * a recipient known to publish prekeys is never silently written a version 2 item.
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import type { Identity } from '../protocol/address.js';
import { concatBytes, fromHex, toHex, utf8 } from '../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from '../protocol/cbor.js';
import { AlliumError, CryptoError, ProtocolError } from '../protocol/errors.js';
import { mailboxEpochAt, MAILBOX_CLOCK_SKEW_MS, MAILBOX_EPOCH_SECONDS, MAX_MAILBOX_TTL_MS, type ItemPrekeys } from '../protocol/mailbox.js';
import {
  createPrekeyRecord,
  MAX_ONE_TIME_PREKEYS,
  openPrekeyRecord,
  PREKEY_EDITION_SPREAD,
  PREKEY_EDITIONS_PER_WINDOW,
  prekeyId,
  prekeyRecordKeys,
  prekeyWindowAt,
  PREKEY_WINDOW_MS,
  type PrekeyBundle,
} from '../protocol/prekeys.js';
import { RECORD_CLOCK_SKEW_MS } from '../protocol/ssk.js';
import type { AbortOptions } from '../net/abort.js';
import type { ContentClient } from './content.js';
import type { GroupStorage } from './messaging/group-store.js';

/** Epochs, from the current one, for which the owner publishes a record (specs/limits.md). */
export const PREKEY_PUBLISH_EPOCHS = 8;
/** Age at which the signed prekey is replaced. */
export const PREKEY_ROTATE_MS = 7 * 86400_000;
/**
 * How long a replaced signed prekey's secret is kept. A record listing it may be served (the newest, or a stale copy
 * a holder replays) until the last epoch its edition was published for ends, PREKEY_PUBLISH_EPOCHS epochs after the
 * edition — which is up to a window and PREKEY_LATE_MS after the publication (an edition for the next window, or
 * the one after it late in a window) — and an item sealed then lives MAX_MAILBOX_TTL_MS; the skew covers the
 * sender's and the relays' clocks.
 */
export const PREKEY_LATE_MS = RECORD_CLOCK_SKEW_MS + MAILBOX_CLOCK_SKEW_MS;
export const PREKEY_GRACE_MS =
  PREKEY_PUBLISH_EPOCHS * MAILBOX_EPOCH_SECONDS * 1000 + PREKEY_WINDOW_MS + PREKEY_LATE_MS + MAX_MAILBOX_TTL_MS + 2 * MAILBOX_CLOCK_SKEW_MS;
/** Signed prekeys kept at most (the current one and those in their grace: replacements are ≥ PREKEY_ROTATE_MS apart). */
export const MAX_SIGNED_PREKEYS = 4;
/**
 * A sender seals to a one-time prekey only from a record whose edition (its publication window's start, at most the
 * publication time + 4.1 s) is at most this old.
 */
export const PREKEY_FRESH_MS = 86400_000;
/** How long a one-time prekey's secret is kept after the first record without it was published (its edition). */
export const ONE_TIME_GRACE_MS = PREKEY_FRESH_MS + 2 * MAILBOX_CLOCK_SKEW_MS;
/** Used one-time prekeys are replaced, and the records published again for that, at most this often. */
export const PREKEY_REPUBLISH_MIN_MS = 3600_000;
/**
 * A listening owner publishes its records once per window of this length: when it has no edition for the next window
 * yet (fresh, and covering the epochs ahead).
 */
export const PREKEY_REFRESH_MS = PREKEY_WINDOW_MS;
/**
 * Retired one-time prekeys kept at most: rollovers are PREKEY_REPUBLISH_MIN_MS apart and retire at most
 * MAX_ONE_TIME_PREKEYS each, so ONE_TIME_GRACE_MS (24 h 20 min) holds at most 26 × 16 = 416 of them.
 */
export const MAX_RETIRED_ONE_TIME_PREKEYS = 512;
/** Recipients whose newest prekey edition a sender remembers (the oldest seen goes first). */
export const MAX_PREKEY_PUBLISHERS = 4096;
/** The storage record's name. */
export const PREKEY_RECORD = 'prekeys';
/** Largest state record read back: 4 signed, 16 listed and 512 retired prekeys with their fields (about 30 KiB). */
const MAX_STATE_BYTES = 64 * 1024;
const LABEL = utf8('allium-v1:prekey-store');
const AD = utf8('allium-v1 prekey-store');
const XNONCE = 24;

const signedSchema = z.array(z.strictObject({ sk: zBytes(32), c: zUint(), r: zUint().optional() })).max(MAX_SIGNED_PREKEYS);
const stateV1Schema = z.strictObject({
  v: z.literal(1),
  ed: zUint(),
  s: signedSchema,
  o: z.array(zBytes(32)).max(MAX_ONE_TIME_PREKEYS),
});
const stateV2Schema = z.strictObject({
  v: z.literal(2),
  ed: zUint(),
  cv: zUint().optional(),
  rl: zUint(),
  s: signedSchema,
  o: z.array(z.strictObject({ sk: zBytes(32), u: z.literal(1).optional() })).max(MAX_ONE_TIME_PREKEYS),
  x: z.array(z.strictObject({ sk: zBytes(32), t: zUint() })).max(MAX_RETIRED_ONE_TIME_PREKEYS),
});
const stateSchema = z.discriminatedUnion('v', [stateV1Schema, stateV2Schema]);

interface SignedPrekey {
  readonly sk: Uint8Array;
  readonly pk: Uint8Array;
  readonly created: number;
  replaced?: number;
}

interface OneTimePrekey {
  readonly sk: Uint8Array;
  readonly pk: Uint8Array;
  /** An item sealed to it opened: it goes at the next rollover. */
  used: boolean;
}

interface RetiredPrekey {
  readonly sk: Uint8Array;
  readonly pk: Uint8Array;
  /** The edition of the first record published without it. */
  readonly unlisted: number;
}

/** An identity's prekey secrets, kept across restarts through `storage`. */
export class PrekeyOwner {
  private signed: SignedPrekey[] = [];
  private oneTime: OneTimePrekey[] = [];
  private retired: RetiredPrekey[] = [];
  /** id (hex) → the key, for lookups while a pass opens items (retired one-time prekeys included). */
  private byId = new Map<string, { kind: 'signed' | 'one-time'; sk: Uint8Array }>();
  /** Listed one-time prekeys (hex ids) that opened an item in the current pass. */
  private readonly used = new Set<string>();
  private edition = 0;
  /**
   * The last epoch up to which records holders accepted reach (0: none known): the last E such that, for one
   * publication, its records from its first epoch through E were each accepted by some holder. The current epoch is
   * covered only up to it: an edition accepted nowhere (a publication that failed) covers nothing, so the next is for
   * the current window, not held back to the next (a new owner would else be unreachable offline for up to a
   * window); and one whose later records alone were refused still covers the epochs before them, so the owner does
   * not republish at once at every pass. Saved with the state ("cv"); a state without it reads the saved edition's
   * epochs as covered.
   */
  private coveredThrough = 0;
  /** When used one-time prekeys were last retired (0: never). */
  private rolled = 0;
  /** When the earliest pass not yet ended began (null: none began). */
  private passStart: number | null = null;
  /** The signed prekey was replaced since the last publication. */
  private rotated = false;
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
   * Notes that an item sealed to the one-time prekey `id` opened: it is marked used at the end of the pass and
   * retired at the next rollover. Only items that opened count, so junk naming our ids retires nothing.
   */
  opened(id: Uint8Array): void {
    if (this.oneTime.some((k) => crypto().equal(prekeyId(k.pk), id))) this.used.add(toHex(id));
  }

  /** True when the public halves of this owner's listed one-time prekeys include `publicKey` (tests). */
  holdsOneTime(publicKey: Uint8Array): boolean {
    return this.oneTime.some((k) => crypto().equal(k.pk, publicKey));
  }

  /** The edition of the last records made (0: none yet; tests and the audit). */
  lastEdition(): number {
    return this.edition;
  }

  /** Retired one-time prekeys whose secrets are still kept (tests). */
  retiredCount(): number {
    return this.retired.length;
  }

  /**
   * A collection pass begins (before its first read): retired secrets whose grace ended before this moment may go at
   * its end, since every item sealed to them is in a slot this pass reads. Of overlapping passes the earliest counts.
   */
  beginPass(): void {
    this.passStart ??= this.clock();
  }

  /**
   * Ends a collection pass: marks the one-time prekeys that opened items as used, wipes the retired ones whose grace
   * ended before the pass began, rotates and expires signed prekeys as due, and saves. Returns true when the records
   * must be published again: the signed prekey was replaced, no edition was made for the next window yet, or a used
   * one-time prekey can be rolled over (PREKEY_REPUBLISH_MIN_MS after the last rollover, with room to retire it) —
   * and an edition is left in the current window (protocol/prekeys.ts; none left: nothing is due until the next).
   */
  async endPass(options: AbortOptions = {}): Promise<boolean> {
    await this.load(options);
    const started = this.passStart;
    this.passStart = null;
    let changed = false;
    for (const k of this.oneTime) {
      if (!k.used && this.used.has(toHex(prekeyId(k.pk)))) {
        k.used = true;
        changed = true;
      }
    }
    this.used.clear();
    if (started !== null) {
      const gone = this.retired.filter((k) => k.unlisted + ONE_TIME_GRACE_MS <= started);
      if (gone.length > 0) {
        this.retired = this.retired.filter((k) => !gone.includes(k));
        crypto().wipe(...gone.map((k) => k.sk));
        changed = true;
      }
    }
    if (this.refresh()) changed = true;
    if (changed) await this.save(options);
    const now = this.clock();
    return this.editionLeft(now) && (this.rotated || this.edition < prekeyWindowAt(now) + PREKEY_REFRESH_MS || this.canRoll(now));
  }

  /**
   * The records to publish (one per epoch from the edition's, PREKEY_PUBLISH_EPOCHS of them), with a new edition
   * for the next publication window (specs/messaging.md §9.6 "Editions"), which holders serve from that window's
   * start (content.md §4), so a reader that polls them does not see when the owner ran — or for the current window
   * when no record of the owner covers the current epoch (senders need one now). The first edition of a window is
   * its start + a random offset below PREKEY_EDITION_SPREAD, later ones the last + 1. None (and nothing changes) when
   * no edition is left for the window. Used one-time prekeys are rolled over first when allowed: retired (their
   * secrets kept for ONE_TIME_GRACE_MS from this edition, the time it is served) and replaced by fresh ones.
   */
  records(): Array<{ rk: Uint8Array; bytes: Uint8Array }> {
    const now = this.clock();
    if (!this.editionLeft(now)) return [];
    const window = this.targetWindow(now);
    this.edition = this.edition < window ? window + (new DataView(crypto().random(4).buffer).getUint32(0) % PREKEY_EDITION_SPREAD) : this.edition + 1;
    if (this.canRoll(now)) {
      const used = this.oneTime.filter((k) => k.used);
      this.retired.push(...used.map((k) => ({ sk: k.sk, pk: k.pk, unlisted: this.edition })));
      this.oneTime = this.oneTime.filter((k) => !k.used);
      this.rolled = now;
      this.refresh();
    }
    this.rotated = false;
    const spk = this.signed[this.signed.length - 1]!;
    // The signed prekey's creation to its window too: it is the moment the owner ran, as an edition is.
    const bundle: PrekeyBundle = { spk: spk.pk, created: prekeyWindowAt(spk.created), otks: this.oneTime.map((k) => k.pk), version: 2 };
    const first = mailboxEpochAt(this.edition);
    return Array.from({ length: PREKEY_PUBLISH_EPOCHS }, (_, i) => createPrekeyRecord(this.identity, first + i, this.edition, bundle));
  }

  /**
   * Publishes the records at every holder (saving the state first, so a restart never goes back). Resolves with
   * how many records at least one holder accepted.
   */
  async publish(content: ContentClient, options: AbortOptions = {}): Promise<number> {
    await this.load(options);
    const records = this.records();
    await this.save(options);
    const first = mailboxEpochAt(this.edition);
    const results = await Promise.all(records.map((r) => content.storeAll('record', r.rk, r.bytes, options).catch(() => [])));
    const accepted = results.map((s) => s.some((x) => x === 'ok' || x === 'exists'));
    const run = accepted.indexOf(false) < 0 ? accepted.length : accepted.indexOf(false);
    if (run > 0 && first + run - 1 > this.coveredThrough) {
      this.coveredThrough = first + run - 1;
      await this.save(options);
    }
    return accepted.filter(Boolean).length;
  }

  /**
   * A new edition can be made at `now`: one for a window later than the last edition's, or the last edition + 1
   * still below the window's start + PREKEY_EDITIONS_PER_WINDOW (a clock set back waits for a window).
   */
  private editionLeft(now: number): boolean {
    const window = this.targetWindow(now);
    return this.edition < window || this.edition + 1 - window < PREKEY_EDITIONS_PER_WINDOW;
  }

  /**
   * The window an edition made at `now` is for: the next one, or the current one when no record holders accepted
   * covers the current epoch (none yet, the last covered only epochs that have ended, or the last publication was
   * accepted nowhere): senders then need one at once. In the last PREKEY_LATE_MS of a window, the one after the
   * next when the accepted records cover the next window's epoch: holders serve an edition less than
   * RECORD_CLOCK_SKEW_MS ahead of their clock at once, so one for the next window would show a poller that the owner
   * ran in those minutes (specs/messaging.md §9.6 "Late in a window").
   */
  private targetWindow(now: number): number {
    const covers = (t: number): boolean => this.coveredThrough > 0 && this.coveredThrough >= mailboxEpochAt(t);
    const current = prekeyWindowAt(now);
    if (!covers(now)) return current;
    const next = current + PREKEY_WINDOW_MS;
    return next - now <= PREKEY_LATE_MS && covers(next) ? next + PREKEY_WINDOW_MS : next;
  }

  /** Used one-time prekeys may be retired now: the rate allows it and the retired table has room for them all. */
  private canRoll(now: number): boolean {
    const used = this.oneTime.filter((k) => k.used).length;
    return used > 0 && (this.rolled === 0 || now - this.rolled >= PREKEY_REPUBLISH_MIN_MS) && this.retired.length + used <= MAX_RETIRED_ONE_TIME_PREKEYS;
  }

  /** Makes a signed prekey when none is current or the current one is due, drops expired ones, tops up one-time keys. */
  private refresh(): boolean {
    const now = this.clock();
    let changed = false;
    const current = this.signed[this.signed.length - 1];
    if (!current || now - current.created >= PREKEY_ROTATE_MS) {
      if (current) {
        current.replaced = now;
        this.rotated = true;
      }
      const kp = crypto().x25519Keypair();
      this.signed.push({ sk: kp.secretKey, pk: kp.publicKey, created: now });
      changed = true;
    }
    const keep = this.signed.filter((k, i) => i === this.signed.length - 1 || (k.replaced !== undefined && now - k.replaced < PREKEY_GRACE_MS));
    const dropped = this.signed.filter((k) => !keep.includes(k));
    // At most MAX_SIGNED_PREKEYS: the oldest in their grace go first (replacements are a week apart: never reached).
    while (keep.length > MAX_SIGNED_PREKEYS) dropped.push(keep.shift()!);
    if (dropped.length > 0) {
      crypto().wipe(...dropped.map((k) => k.sk));
      changed = true;
    }
    this.signed = keep;
    while (this.oneTime.length < MAX_ONE_TIME_PREKEYS) {
      const kp = crypto().x25519Keypair();
      this.oneTime.push({ sk: kp.secretKey, pk: kp.publicKey, used: false });
      changed = true;
    }
    this.index();
    return changed;
  }

  private index(): void {
    this.byId = new Map();
    for (const k of this.signed) this.byId.set(toHex(prekeyId(k.pk)), { kind: 'signed', sk: k.sk });
    for (const k of [...this.retired, ...this.oneTime]) this.byId.set(toHex(prekeyId(k.pk)), { kind: 'one-time', sk: k.sk });
  }

  private async save(options: AbortOptions): Promise<void> {
    const state = encodeCbor({
      v: 2,
      ed: this.edition,
      cv: this.coveredThrough,
      rl: this.rolled,
      s: this.signed.map((k) => ({ sk: k.sk, c: k.created, ...(k.replaced !== undefined ? { r: k.replaced } : {}) })),
      o: this.oneTime.map((k) => ({ sk: k.sk, ...(k.used ? { u: 1 } : {}) })),
      x: this.retired.map((k) => ({ sk: k.sk, t: k.unlisted })),
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
    const s = decodeMessage(stateSchema, plain, MAX_STATE_BYTES, 'prekey store');
    crypto().wipe(plain);
    const pub = (sk: Uint8Array): Uint8Array => crypto().x25519Public(sk);
    this.edition = s.ed;
    this.coveredThrough = s.v === 2 && s.cv !== undefined ? s.cv : s.ed > 0 ? mailboxEpochAt(s.ed) + PREKEY_PUBLISH_EPOCHS - 1 : 0;
    this.signed = s.s.map((k) => ({ sk: k.sk, pk: pub(k.sk), created: k.c, ...(k.r !== undefined ? { replaced: k.r } : {}) }));
    if (s.v === 1) {
      this.oneTime = s.o.map((sk) => ({ sk, pk: pub(sk), used: false }));
      this.retired = [];
      this.rolled = 0;
    } else {
      this.oneTime = s.o.map((k) => ({ sk: k.sk, pk: pub(k.sk), used: k.u === 1 }));
      this.retired = s.x.map((k) => ({ sk: k.sk, pk: pub(k.sk), unlisted: k.t }));
      this.rolled = s.rl;
    }
    this.index();
  }
}

/** The newest record of a recipient's prekeys for one epoch, as a sender found it. */
export interface FoundPrekeys {
  /** Its edition: the start of the owner's publication window + a small offset (ms; the time itself in version 1). */
  readonly edition: number;
  readonly bundle: PrekeyBundle;
}

/**
 * The current epoch's prekey record of `recipient` (specs/messaging.md §9.6): the newest edition that opens among
 * the holders' copies, or null when no holder has one that opens.
 */
export async function fetchPrekeyRecord(content: ContentClient, recipient: Uint8Array, now: number, options: AbortOptions = {}): Promise<FoundPrekeys | null> {
  const epoch = mailboxEpochAt(now);
  const { rk } = prekeyRecordKeys(recipient, epoch);
  const { copies, answered, asked } = await content.fetchAnswers('record', rk, options);
  // "No record" is read only from every holder: one that did not answer (every forward refused, every circuit
  // failed) may hold it, and a sender that took its silence for "none" would write version 2 (§9.6).
  if (copies.length === 0 && answered < asked)
    throw new AlliumError(
      'ERR_UNREACHABLE',
      `${asked - answered} of ${asked} holders of the prekey record did not answer: whether the recipient publishes prekeys is not known`,
    );
  let best: FoundPrekeys | null = null;
  for (const bytes of copies) {
    try {
      const r = openPrekeyRecord(recipient, epoch, bytes);
      if (!best || r.edition > best.edition) best = r;
    } catch {
      // A copy that does not verify or open is a holder's fault: the others decide.
    }
  }
  return best;
}

/**
 * What a sender seals to (specs/messaging.md §9.6): the signed prekey always, and a one-time prekey chosen at random
 * only when nothing shows the record to be stale — its edition is at most PREKEY_FRESH_MS old and not older than
 * `newestSeen`, the newest edition this sender has seen from the recipient. A stale record's one-time prekeys may
 * have been used and deleted; its signed prekey is kept for PREKEY_GRACE_MS after replacement, which covers it.
 */
export function choosePrekeys(found: FoundPrekeys, now: number, newestSeen = 0): ItemPrekeys {
  const { spk, otks } = found.bundle;
  const fresh = found.edition + PREKEY_FRESH_MS > now && found.edition >= newestSeen;
  if (!fresh || otks.length === 0) return { spk };
  const pick = new DataView(crypto().random(4).buffer).getUint32(0) % otks.length;
  return { spk, opk: otks[pick]! };
}

/** The storage record of a sender's memory of recipients that publish prekeys. */
export const PREKEY_PUBLISHERS_RECORD = 'prekey-publishers';
/** Largest such record read back: MAX_PREKEY_PUBLISHERS entries of a key and an edition (about 190 KiB). */
const MAX_PUBLISHERS_BYTES = 256 * 1024;
const PUBLISHERS_LABEL = utf8('allium-v1:prekey-publishers');
const PUBLISHERS_AD = utf8('allium-v1 prekey-publishers');
const publishersSchema = z.strictObject({
  v: z.literal(1),
  r: z.array(z.union([z.tuple([zBytes(32), zUint()]), z.tuple([zBytes(32), zUint(), z.literal(1)])])).max(MAX_PREKEY_PUBLISHERS),
});

/** What a sender remembers of one recipient: the newest edition seen (0: none), and whether it said it publishes. */
interface Publisher {
  readonly ed: number;
  readonly said: boolean;
}

/**
 * What a sender remembers of recipients that publish prekeys: the newest edition seen from each (at most
 * MAX_PREKEY_PUBLISHERS, the least recently seen go first). A record of edition `ed` was published for the epochs
 * epoch(ed) … epoch(ed) + PREKEY_PUBLISH_EPOCHS − 1, so in those epochs a missing record has been withheld (or lost),
 * and the sender refuses to write version 2 (specs/messaging.md §9.6). A recipient that said it publishes (a hello
 * with PREKEYS in a conversation with it, §8.1) is remembered as such for every epoch, as a card's flag is.
 *
 * With a storage (the messenger's prekey storage) the memory is kept across restarts, sealed under a key derived from
 * the identity, so a restarted sender does not forget whom it must not downgrade:
 *
 *   K_pub  = K(identity seed, "allium-v1:prekey-publishers")                               K as §5.1
 *   record = u8(1) | nonce (24) | XAEAD(K_pub, nonce, CBOR { "v": 1, "r": [ [ key (32), edition (, 1) ] … ] },
 *                                        ad = "allium-v1 prekey-publishers")              least recently seen first
 *   (the 1: the recipient said it publishes; edition 0: no record seen)
 *
 * A stored record that does not open or decode is refused, never replaced by an empty memory (that would bring the
 * downgrade back).
 */
export class PrekeyPublishers {
  private readonly newest = new Map<string, Publisher>();
  private loaded: Promise<void> | null = null;
  /** Saves run one after another, each with the memory as it was when it was asked for. */
  private saving: Promise<void> = Promise.resolve();
  private readonly key: Uint8Array | null;

  /** `max`: recipients remembered (MAX_PREKEY_PUBLISHERS; smaller in tests). */
  constructor(
    identity?: Identity,
    private readonly storage?: GroupStorage,
    private readonly max = MAX_PREKEY_PUBLISHERS,
  ) {
    this.key = identity && storage ? crypto().hash(32, PUBLISHERS_LABEL, identity.secretKey.subarray(0, 32)) : null;
  }

  /**
   * Reads the stored memory (once; without storage, nothing). Throws ERR_MESSAGE_AUTH or ERR_SCHEMA / ERR_CBOR_* for
   * a stored record that does not open or decode, and the storage's errors.
   */
  load(options: AbortOptions = {}): Promise<void> {
    if (!this.storage || !this.key) return Promise.resolve();
    const storage = this.storage;
    const key = this.key;
    this.loaded ??= (async () => {
      const rec = (await storage.load(options)).find(([name]) => name === PREKEY_PUBLISHERS_RECORD);
      if (!rec) return;
      const bytes = rec[1];
      if (bytes.length < 1 + XNONCE || bytes[0] !== 1) throw new ProtocolError('ERR_SCHEMA', 'prekey publishers: not a record of version 1');
      const plain = crypto().xaeadDecrypt(bytes.subarray(1 + XNONCE), PUBLISHERS_AD, bytes.subarray(1, 1 + XNONCE), key);
      if (!plain) throw new CryptoError('ERR_MESSAGE_AUTH', 'prekey publishers: the record does not open under this identity');
      const d = decodeMessage(publishersSchema, plain, MAX_PUBLISHERS_BYTES, 'prekey publishers');
      // Entries noted before the load finished are newer: they stay, and the stored ones go before them.
      const noted = [...this.newest];
      this.newest.clear();
      for (const [k, ed, said] of d.r) this.put(toHex(k), { ed, said: said === 1 });
      for (const [k, p] of noted) this.put(k, merge(p, this.newest.get(k)));
    })();
    this.loaded.catch(() => (this.loaded = null));
    return this.loaded;
  }

  /** Notes a record of edition `edition` from `recipient`; saves when the memory changed. */
  async seen(recipient: Uint8Array, edition: number, options: AbortOptions = {}): Promise<void> {
    const k = toHex(recipient);
    const before = this.newest.get(k);
    this.put(k, merge({ ed: edition, said: false }, before)); // at once: the memory holds it even if the storage fails
    await this.load(options);
    if (before === undefined || edition > before.ed) await this.save(options);
  }

  /**
   * Notes that `recipient` said it publishes prekeys (a hello with PREKEYS, specs/messaging.md §8.1): known to publish
   * for every epoch from now on. Noted at once, saved when it is new.
   */
  async said(recipient: Uint8Array, options: AbortOptions = {}): Promise<void> {
    const k = toHex(recipient);
    const before = this.newest.get(k);
    this.put(k, merge({ ed: 0, said: true }, before));
    await this.load(options);
    if (before?.said !== true) await this.save(options);
  }

  private put(k: string, p: Publisher): void {
    this.newest.delete(k);
    this.newest.set(k, { ed: Math.max(p.ed, 0), said: p.said });
    while (this.newest.size > this.max) this.newest.delete(this.newest.keys().next().value!);
  }

  private save(options: AbortOptions): Promise<void> {
    if (!this.storage || !this.key) return Promise.resolve();
    const storage = this.storage;
    const plain = encodeCbor({ v: 1, r: [...this.newest].map(([k, p]) => (p.said ? [fromHex(k), p.ed, 1] : [fromHex(k), p.ed])) });
    const nonce = crypto().random(XNONCE);
    const bytes = concatBytes(Uint8Array.of(1), nonce, crypto().xaeadEncrypt(plain, PUBLISHERS_AD, nonce, this.key));
    const p = this.saving.then(() => storage.save(PREKEY_PUBLISHERS_RECORD, bytes, options));
    this.saving = p.catch(() => undefined);
    return p;
  }

  /** The newest edition seen from `recipient` (0: none). */
  newestEdition(recipient: Uint8Array): number {
    return this.newest.get(toHex(recipient))?.ed ?? 0;
  }

  /** True when `recipient` said it publishes prekeys (a hello, §8.1): for every epoch. */
  saidPublishes(recipient: Uint8Array): boolean {
    return this.newest.get(toHex(recipient))?.said === true;
  }

  /** True when `recipient` has published a record for the epoch of `now`, as far as this sender knows. */
  publishedFor(recipient: Uint8Array, now: number): boolean {
    const ed = this.newest.get(toHex(recipient))?.ed;
    if (ed === undefined || ed === 0) return false;
    const epoch = mailboxEpochAt(now);
    // From the epoch of the window before the edition's: an edition for the next window is published only while a
    // record covers the current epoch (specs/messaging.md §9.6), and a relay without the hold serves it early.
    return epoch >= mailboxEpochAt(Math.max(0, ed - PREKEY_WINDOW_MS)) && epoch <= mailboxEpochAt(ed) + PREKEY_PUBLISH_EPOCHS - 1;
  }
}

/** What two notes of one recipient say together: the newer edition, and said if either says it. */
function merge(a: Publisher, b: Publisher | undefined): Publisher {
  return b ? { ed: Math.max(a.ed, b.ed), said: a.said || b.said } : a;
}
