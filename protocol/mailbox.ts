/**
 * Offline mailboxes (specs/messaging.md §9): a message to an identity that is not listening is sealed to it and
 * left in the overlay's content store, one item per message, in *slots* whose routing keys only holders of the
 * recipient's address can compute.
 *
 *   epoch   = floor(unix seconds / MAILBOX_EPOCH_SECONDS)
 *   inbox   = H(A | u64(epoch), "allium-v1:mailbox:inbox")                  needs the address
 *   slot_i  = H(inbox | u32(i), "allium-v1:mailbox:slot")                     the routing key of slot i, i < 1024
 *
 * That is the *first-contact* inbox, the only one anyone with the address can compute. Two identities that know each
 * other use *per-contact* inboxes instead, one per direction, whose slots need a secret only the two share:
 *
 *   pair    = H(X25519(a, B) | lo | hi, "allium-v1:mailbox:pair")            lo, hi: the two identity keys, sorted
 *   pinbox  = H(pair | from | u64(epoch), "allium-v1:mailbox:pair-inbox")      slots as above
 *
 * Senders fill an epoch's slots from 0 upwards (a holder keeps the first item of a slot and answers `occupied` to
 * any other), so the recipient, who does not know who wrote, reads slots 0, 1, 2, … until a few in a row are empty.
 * A relay sees each slot's routing key alone: without the address (or the pair secret), slots of one inbox, and
 * inboxes of different epochs, cannot be told from any other content key. Anyone who knows the address can compute
 * the first-contact inbox and count what strangers leave there; mail between pairs it cannot see.
 *
 * An item is sealed to the recipient's X25519 form IKB with a fresh ephemeral key, and the message inside is
 * authenticated by a MAC under a key both parties can compute (so either could have written it: deniable):
 *
 *   ss    = X25519(e, IKB);  x = ss | E | IKB;  sd = X25519(ika, IKB)            sd: static-static, the pair's
 *   k     = H(x, "allium-v1:mailbox:key");   token = H(x, "allium-v1:mailbox:delete")
 *   dt    = H(token, "allium-v1:mailbox:delete-check")
 *   mk    = H(ss | sd | E | IKA | IKB, "allium-v1:mailbox:mac")
 *   body  = CBOR { "v": 2, "from": IK_A, "t": sent ms, "n": counter, "id": random(16), "d": data, ? "k": 1, 2 or 3 }
 *   mac   = BLAKE2b-256 keyed with mk over "allium-v1 mailbox" | slot | u64(exp) | IK_B | body
 *   inner = CBOR { "v", "from", "t", "n", "id", "d", "mac" }
 *   ct    = ChaCha20-Poly1305(k, 0^12, pad(inner, 16), AD = "allium-v1 mailbox" | slot | u64(exp) | E)
 *   item  = CBOR { "v": 2, "exp": expiry ms, "x": inbox, "i": index, "w": { "n", "e" }, "e": E, "ct": ct }
 *
 * Version 2 items carry their inbox and slot index and a solution of the introduction puzzle (protocol/intro-pow.ts)
 * whose seed is the slot's routing key and whose effort grows with the index (specs/messaging.md §9.3):
 *
 *   effort(i) = min(MAX_POW_EFFORT, 256 · 2^floor(i / 32))
 *   binding   = H(u64(exp) | x | u32(i) | E | ct)
 *   relay:      slot == H(x | u32(i), "…:slot"),  w.e ≥ effort(i),  verifyPow([slot], w, binding)
 *
 * so filling the first n slots of an inbox costs Σ effort(i) hashes, and a sender behind a flood of n pays effort(n).
 * Version 1 items (`{ "v": 1, "exp", "e", "dt", "ct" }`, AD with `dt`, no work) are still opened, and relays store
 * them until MAILBOX_V1_UNTIL_MS (one MAX_MAILBOX_TTL_MS after this version shipped).
 *
 * The AD binds the item to its slot and expiry, so a relay can neither move it to another slot nor extend its life.
 * Nothing deletes an item: relays drop it at `exp` (at most MAX_MAILBOX_TTL_MS ahead) and refuse the deletion
 * `CBOR { "v": 1, "del": token }` of earlier versions, so reading one's mail writes nothing an observer could time
 * (specs/messaging.md §9.4).
 *
 * Version 3 (specs/messaging.md §9.2, §9.6) adds forward secrecy, X3DH-style: an item, first-contact or per-contact,
 * is sealed to the identity key, the recipient's signed prekey and, if one is left, a one-time prekey, which it names
 * by id (a per-contact item is bound to the pair by its inbox's slot in the AD and MAC, and by the reader's rule that
 * its sender is the pair's other member; the pair secret is no input, being a function of either identity secret):
 *
 *   ss    = X25519(e, IKB) | X25519(e, SPK) [| X25519(e, OPK)]
 *   k     = H(ss | E | IKB | SPK [| OPK], "allium-v1:mailbox:prekey-key");   mk as above with this ss
 *   AD    = "allium-v1 mailbox" | slot | u64(exp) | E | s [| o];   binding adds s [| o] before ct
 *   item  = CBOR { "v": 3, "exp", "x", "i", "w", "e", "s": pid(SPK), ? "o": pid(OPK), "ct" }
 *
 * Once the recipient deletes those prekeys' secrets, the item no longer opens, even with the identity key.
 *
 * What this does not give: forward secrecy for version 2 items (the recipient's identity key opens every one still
 * held), and protection against key-compromise impersonation (whoever holds the recipient's identity key can write it
 * items from anyone, as in X3DH). Anyone with the address can still fill first-contact slots, at the price above.
 */
import { z } from 'zod';
import type { RandomSource } from '../crypto/drbg.js';
import { crypto } from '../crypto/index.js';
import { parseAddress, type Identity } from './address.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { DESCRIPTOR_CLOCK_SKEW_MS } from './descriptor.js';
import { AlliumError, CryptoError, isAlliumError, LimitError, ProtocolError } from './errors.js';
import { MAX_POW_EFFORT, POW_NONCE_LEN, solvePow, verifyPow, type PowSolution } from './intro-pow.js';
import { PAD_BUCKETS, pad, paddedLength, unpad } from './padding.js';
import { PREKEY_ID_LEN, prekeyId } from './prekeys.js';

/** Length of a mailbox epoch: one day, like key-blinding periods. Part of the format (hashed into the inbox). */
export const MAILBOX_EPOCH_SECONDS = 86400;
/** Slots per inbox and epoch; a sender finding all of them occupied gets LimitError MAX_MAILBOX_SLOTS. */
export const MAX_MAILBOX_SLOTS = 1024;
/** Longest life a relay gives an item: `exp` at most this far ahead of the relay's clock (plus clock skew). */
export const MAX_MAILBOX_TTL_MS = 7 * 86400_000;
/** How long a relay keeps a slot occupied (item, deletion or expired marker) after storing it. */
export const MAILBOX_HOLD_MS = MAX_MAILBOX_TTL_MS + 2 * MAILBOX_EPOCH_SECONDS * 1000;
/** Clock skew a relay allows on `exp`, and a recipient on `t`. */
export const MAILBOX_CLOCK_SKEW_MS = DESCRIPTOR_CLOCK_SKEW_MS;
/** The ciphertext sizes an item may have: the padding buckets up to 28352 bytes. */
export const MAILBOX_CT_LENS: readonly number[] = PAD_BUCKETS.filter((b) => b <= PAD_BUCKETS[5]!);
export const MAX_MAILBOX_CT_BYTES = MAILBOX_CT_LENS[MAILBOX_CT_LENS.length - 1]!; // 28352
/** Largest stored mailbox item (or deletion) a relay accepts. */
export const MAX_MAILBOX_ITEM_BYTES = 28672;
/** Largest message that fits a mailbox item (the inner structure's fields take the rest of the largest bucket). */
export const MAX_MAILBOX_MESSAGE_BYTES = 28000;
export const MAILBOX_ID_LEN = 16;
/** The effort of the first slots of an inbox (slots 0–31); it doubles every MAILBOX_EFFORT_STEP slots. */
export const MAILBOX_BASE_EFFORT = 256;
export const MAILBOX_EFFORT_STEP = 32;
/**
 * Relays store version 1 items (no proof of work) until this time (Unix ms, 2026-12-14T00:00Z): one
 * MAX_MAILBOX_TTL_MS after this version, the first to accept version 2, shipped (specs/proposals/001, Compatibility).
 */
export const MAILBOX_V1_UNTIL_MS = Date.UTC(2026, 11, 14);
export const MAILBOX_TOKEN_LEN = 32;

const TAG = 16;
const NONCE0 = new Uint8Array(12);
const CONTEXT = utf8('allium-v1 mailbox');
const L = {
  inbox: utf8('allium-v1:mailbox:inbox'),
  pair: utf8('allium-v1:mailbox:pair'),
  pairInbox: utf8('allium-v1:mailbox:pair-inbox'),
  slot: utf8('allium-v1:mailbox:slot'),
  key: utf8('allium-v1:mailbox:key'),
  del: utf8('allium-v1:mailbox:delete'),
  check: utf8('allium-v1:mailbox:delete-check'),
  mac: utf8('allium-v1:mailbox:mac'),
  prekeyKey: utf8('allium-v1:mailbox:prekey-key'),
};
const MAC_LEN = 32;

const itemV1Schema = () =>
  z.strictObject({
    v: z.literal(1),
    exp: zUint(),
    e: zBytes(32),
    dt: zBytes(32),
    ct: zBytes(undefined, MAX_MAILBOX_CT_BYTES),
  });
const itemV2Schema = () =>
  z.strictObject({
    v: z.literal(2),
    exp: zUint(),
    x: zBytes(32),
    i: zUint(MAX_MAILBOX_SLOTS - 1),
    w: z.strictObject({ n: zBytes(POW_NONCE_LEN), e: z.number().int().min(1).max(MAX_POW_EFFORT) }),
    e: zBytes(32),
    ct: zBytes(undefined, MAX_MAILBOX_CT_BYTES),
  });
const itemV3Schema = () =>
  z.strictObject({
    v: z.literal(3),
    exp: zUint(),
    x: zBytes(32),
    i: zUint(MAX_MAILBOX_SLOTS - 1),
    w: z.strictObject({ n: zBytes(POW_NONCE_LEN), e: z.number().int().min(1).max(MAX_POW_EFFORT) }),
    e: zBytes(32),
    s: zBytes(PREKEY_ID_LEN),
    o: zBytes(PREKEY_ID_LEN).optional(),
    ct: zBytes(undefined, MAX_MAILBOX_CT_BYTES),
  });
// Built at first use (z.lazy), as are the others here: a relay without a store never parses a mailbox item.
const itemSchema = z.lazy(() => z.discriminatedUnion('v', [itemV1Schema(), itemV2Schema(), itemV3Schema()]));
const deletionSchema = z.lazy(() => z.strictObject({ v: z.literal(1), del: zBytes(MAILBOX_TOKEN_LEN) }));
const innerSchema = z.lazy(() =>
  z.strictObject({
    v: z.literal(2),
    from: zBytes(32),
    t: zUint(),
    n: zUint(),
    id: zBytes(MAILBOX_ID_LEN),
    d: zBytes(undefined, MAX_MAILBOX_MESSAGE_BYTES),
    k: z.union([z.literal(1), z.literal(2), z.literal(3)]).optional(),
    mac: zBytes(MAC_LEN),
  }),
);

export type MailboxItemEnvelope = z.infer<typeof itemSchema>;
export type MailboxItemV2 = z.infer<ReturnType<typeof itemV2Schema>>;
export type MailboxItemV3 = z.infer<ReturnType<typeof itemV3Schema>>;
/** A version 2 or 3 item before its proof of work: everything the work binds. */
export type UnsolvedMailboxItem = Omit<MailboxItemV2, 'w'> | Omit<MailboxItemV3, 'w'>;

/** The recipient's prekeys a version 3 item is sealed to (public halves, from its prekey record, §9.6). */
export interface ItemPrekeys {
  /** The signed prekey (X25519). */
  readonly spk: Uint8Array;
  /** A one-time prekey (X25519), when the record listed one. */
  readonly opk?: Uint8Array;
}

/** The recipient's side: the secret of the prekey whose id is `id`, or null when it holds none (deleted, unknown). */
export type PrekeySecretLookup = (id: Uint8Array, kind: 'signed' | 'one-time') => Uint8Array | null;

/** What a relay learns from a STORE of kind "mailbox": an item and its expiry. */
export interface MailboxStore {
  readonly exp: number;
}

/** An opened item: the authenticated sender and message. */
export interface OpenedMailboxItem {
  /** The sender's identity key (its MAC verified: only the sender, or we, could have made it). */
  readonly from: Uint8Array;
  /** The sender's clock when it sent (Unix ms): orders one sender's messages. */
  readonly t: number;
  /** The sender's counter for this recipient: orders messages sent in the same millisecond. */
  readonly n: number;
  readonly id: Uint8Array;
  readonly data: Uint8Array;
  /** True when `data` is an attachment descriptor (specs/messaging.md §12.1; the item's "k": 1). */
  readonly attachment: boolean;
  /** True when `data` is a group envelope (specs/messaging.md §13.2; the item's "k": 2). */
  readonly group: boolean;
  /** True when `data` is a device envelope (specs/messaging.md §14.2; the item's "k": 3). */
  readonly device: boolean;
  readonly exp: number;
  /** The item's format version (1: no proof of work; 2: specs/messaging.md §9.2; 3: sealed to prekeys too). */
  readonly version: 1 | 2 | 3;
  /** Version 3: the ids of the signed and, if one was used, one-time prekey it was sealed to; null otherwise. */
  readonly prekeys: { readonly spk: Uint8Array; readonly opk: Uint8Array | null } | null;
  /** The deletion token of a version 1 item (unused since deletions are refused); null for version 2. */
  readonly token: Uint8Array | null;
}

function u64(n: number): Uint8Array {
  return new ByteWriter(8).u64(BigInt(n)).done();
}

function identityKeyOf(address: string | Uint8Array): Uint8Array {
  return typeof address === 'string' ? parseAddress(address) : address;
}

/** The epoch containing a Unix time in milliseconds. */
export function mailboxEpochAt(unixMs: number): number {
  if (!Number.isFinite(unixMs) || unixMs < 0) throw new AlliumError('ERR_INTERNAL', 'time before the epoch');
  return Math.floor(unixMs / 1000 / MAILBOX_EPOCH_SECONDS);
}

/** The inbox key of an address for an epoch: what both a sender and the recipient derive slots from. */
export function inboxKey(address: string | Uint8Array, epoch: number): Uint8Array {
  const a = identityKeyOf(address);
  if (!crypto().edIsValidPoint(a)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new AlliumError('ERR_INTERNAL', 'an epoch is a non-negative integer');
  return crypto().hash(32, concatBytes(a, u64(epoch)), L.inbox);
}

/**
 * The secret two identities share for their per-contact inboxes (specs/messaging.md §9.1): either side computes it
 * from its own identity and the other's key. Throws ERR_KEY_FORMAT for a key that is not a valid point, or a
 * Diffie-Hellman output of zero (a small-order key).
 */
export function pairSecret(self: Identity, peer: string | Uint8Array): Uint8Array {
  const c = crypto();
  const other = identityKeyOf(peer);
  if (!c.edIsValidPoint(other)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  const sk = c.edSecretToX25519(self.secretKey);
  let dh: Uint8Array;
  try {
    dh = c.x25519(sk, c.edPublicToX25519(other));
  } catch (e) {
    throw new AlliumError('ERR_KEY_FORMAT', 'the pair key agreement failed', { cause: e });
  } finally {
    c.wipe(sk);
  }
  const [lo, hi] = compareBytes(self.publicKey, other) <= 0 ? [self.publicKey, other] : [other, self.publicKey];
  const out = c.hash(32, concatBytes(dh, lo, hi), L.pair);
  c.wipe(dh);
  return out;
}

/** The per-contact inbox of a pair for mail from `from` (one of the two identity keys) in an epoch. */
export function pairInboxKey(pair: Uint8Array, from: Uint8Array, epoch: number): Uint8Array {
  if (pair.length !== 32 || from.length !== 32) throw new AlliumError('ERR_INTERNAL', 'a pair secret and an identity key are 32 bytes');
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new AlliumError('ERR_INTERNAL', 'an epoch is a non-negative integer');
  return crypto().hash(32, concatBytes(pair, from, u64(epoch)), L.pairInbox);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The routing key of slot `slot` of an inbox. */
export function slotLocator(inbox: Uint8Array, slot: number): Uint8Array {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_MAILBOX_SLOTS) throw new AlliumError('ERR_INTERNAL', `a slot is 0..${MAX_MAILBOX_SLOTS - 1}`);
  return crypto().hash(32, concatBytes(inbox, new ByteWriter(4).u32(slot).done()), L.slot);
}

/** The check a relay compares a deletion token against. */
export function deletionCheck(token: Uint8Array): Uint8Array {
  return crypto().hash(32, token, L.check);
}

function itemKeys(ss: Uint8Array, e: Uint8Array, ikb: Uint8Array): { key: Uint8Array; token: Uint8Array } {
  const x = concatBytes(ss, e, ikb);
  const out = { key: crypto().hash(32, x, L.key), token: crypto().hash(32, x, L.del) };
  crypto().wipe(x, ss);
  return out;
}

/** The AD of an item's ciphertext: version 1 binds its deletion check too, version 3 its prekey ids. */
function itemAd(slot: Uint8Array, exp: number, e: Uint8Array, dt: Uint8Array | null, ids: readonly Uint8Array[] = []): Uint8Array {
  return dt ? concatBytes(CONTEXT, slot, u64(exp), e, dt) : concatBytes(CONTEXT, slot, u64(exp), e, ...ids);
}

/** Version 3's key (specs/messaging.md §9.2): H(ss | E | IKB | SPK [| OPK], "allium-v1:mailbox:prekey-key"). */
function prekeyItemKey(ss: Uint8Array, e: Uint8Array, ikb: Uint8Array, publics: readonly Uint8Array[]): Uint8Array {
  const x = concatBytes(ss, e, ikb, ...publics);
  const out = crypto().hash(32, x, L.prekeyKey);
  crypto().wipe(x);
  return out;
}

function macInput(slot: Uint8Array, exp: number, recipient: Uint8Array, body: Uint8Array): Uint8Array {
  return concatBytes(CONTEXT, slot, u64(exp), recipient, body);
}

/** The MAC key: the ephemeral and the static-static secrets, which the sender and the recipient alone can compute. */
function macKey(ss: Uint8Array, sd: Uint8Array, e: Uint8Array, ika: Uint8Array, ikb: Uint8Array): Uint8Array {
  const x = concatBytes(ss, sd, e, ika, ikb);
  const out = crypto().hash(32, x, L.mac);
  crypto().wipe(x);
  return out;
}

export interface SealOptions {
  readonly sender: Identity;
  /** The recipient's address or identity key. */
  readonly recipient: string | Uint8Array;
  /** When relays drop the item (Unix ms). */
  readonly exp: number;
  /** The sender's clock (Unix ms). */
  readonly t: number;
  /** The sender's counter for this recipient. */
  readonly n: number;
  readonly data: Uint8Array;
  /** `data` is an attachment descriptor (messaging.md §12.1): the body carries "k": 1. */
  readonly attachment?: boolean;
  /** `data` is a group envelope (messaging.md §13.2): the body carries "k": 2. */
  readonly group?: boolean;
  /** `data` is a device envelope (messaging.md §14.2): the body carries "k": 3. */
  readonly device?: boolean;
  /** The message id (16 bytes): the same for copies of one message in several slots. Default: random. */
  readonly id?: Uint8Array;
  /** Random bytes for the ephemeral key and the id (test vectors only; default: crypto().random). */
  readonly random?: RandomSource;
  /** Seal to these prekeys of the recipient too: a version 3 item (specs/messaging.md §9.2, §9.6). */
  readonly prekeys?: ItemPrekeys;
}

/** Where a version 2 item goes: the inbox and the slot's index in it. */
export interface SealV2Options extends SealOptions {
  /** The inbox key (inboxKey or pairInboxKey): the item carries it, and the relay derives the slot from it. */
  readonly inbox: Uint8Array;
  /** The slot's index in the inbox, 0 ≤ index < MAX_MAILBOX_SLOTS. */
  readonly index: number;
}

/** The least effort a version 2 item in slot `index` must carry (specs/messaging.md §9.3). */
export function mailboxEffort(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_MAILBOX_SLOTS) throw new AlliumError('ERR_INTERNAL', `a slot is 0..${MAX_MAILBOX_SLOTS - 1}`);
  return Math.min(MAX_POW_EFFORT, MAILBOX_BASE_EFFORT * 2 ** Math.floor(index / MAILBOX_EFFORT_STEP));
}

/** What a version 2 item's proof of work is bound to: H(u64(exp) | x | u32(i) | E | ct); version 3 adds s [| o]. */
export function mailboxPowBinding(item: UnsolvedMailboxItem): Uint8Array {
  const ids = item.v === 3 ? [item.s, ...(item.o ? [item.o] : [])] : [];
  return crypto().hash(32, concatBytes(u64(item.exp), item.x, new ByteWriter(4).u32(item.i).done(), item.e, ...ids, item.ct));
}

/**
 * Seals the message for the slot `rk`: the ephemeral key E, the ciphertext, the id, version 1's token, and version
 * 3's prekey ids (when `o.prekeys` is given).
 */
function seal(
  o: SealOptions,
  rk: Uint8Array,
  v1: boolean,
): { e: Uint8Array; ct: Uint8Array; id: Uint8Array; token: Uint8Array | null; dt: Uint8Array | null; ids: Uint8Array[] } {
  const c = crypto();
  if (o.data.length > MAX_MAILBOX_MESSAGE_BYTES) {
    throw new LimitError('MAX_MAILBOX_MESSAGE_BYTES', `a message of ${o.data.length} bytes does not fit a mailbox item`);
  }
  if (rk.length !== 32) throw new AlliumError('ERR_INTERNAL', 'a slot is 32 bytes');
  const random = o.random ?? ((n: number) => c.random(n));
  const recipient = identityKeyOf(o.recipient);
  const ikb = c.edPublicToX25519(recipient);
  const seed = random(32);
  const eph = c.x25519Keypair(seed);
  c.wipe(seed);
  const id = o.id ?? random(MAILBOX_ID_LEN);
  if (id.length !== MAILBOX_ID_LEN) throw new AlliumError('ERR_INTERNAL', 'a mailbox message id is 16 bytes');
  const body = {
    v: 2 as const,
    from: o.sender.publicKey,
    t: o.t,
    n: o.n,
    id,
    d: o.data,
    ...(o.device ? { k: 3 as const } : o.group ? { k: 2 as const } : o.attachment ? { k: 1 as const } : {}),
  };
  const pre = v1 ? undefined : o.prekeys;
  const publics = pre ? [pre.spk, ...(pre.opk ? [pre.opk] : [])] : [];
  if (publics.some((k) => k.length !== 32)) throw new AlliumError('ERR_KEY_FORMAT', 'a prekey is 32 bytes');
  const parts: Uint8Array[] = [];
  try {
    for (const k of [ikb, ...publics]) parts.push(c.x25519(eph.secretKey, k));
  } catch (e) {
    c.wipe(eph.secretKey, ...parts);
    throw new AlliumError('ERR_KEY_FORMAT', 'a recipient key gives no shared secret', { cause: e });
  }
  c.wipe(eph.secretKey);
  const ss = concatBytes(...parts);
  c.wipe(...parts);
  const ids = publics.map((k) => prekeyId(k));
  const ika = c.edSecretToX25519(o.sender.secretKey);
  let sd: Uint8Array;
  try {
    sd = c.x25519(ika, ikb);
  } catch (e) {
    throw new AlliumError('ERR_KEY_FORMAT', 'the recipient key gives no shared secret', { cause: e });
  } finally {
    c.wipe(ika);
  }
  const mk = macKey(ss, sd, eph.publicKey, c.edPublicToX25519(o.sender.publicKey), ikb);
  c.wipe(sd);
  const mac = c.hash(MAC_LEN, macInput(rk, o.exp, recipient, encodeCbor(body)), mk);
  c.wipe(mk);
  const inner = encodeCbor({ ...body, mac });
  const len = paddedLength(inner.length, TAG) + TAG;
  if (len > MAX_MAILBOX_CT_BYTES) throw new LimitError('MAX_MAILBOX_MESSAGE_BYTES', 'message does not fit a mailbox item');
  let key: Uint8Array;
  let token: Uint8Array | null = null;
  if (pre) {
    key = prekeyItemKey(ss, eph.publicKey, ikb, publics);
    c.wipe(ss);
  } else {
    ({ key, token } = itemKeys(ss, eph.publicKey, ikb));
  }
  const dt = v1 ? deletionCheck(token!) : null;
  const ct = c.aeadEncrypt(pad(inner, TAG), itemAd(rk, o.exp, eph.publicKey, dt, ids), NONCE0, key);
  c.wipe(key);
  if (!v1 && token) c.wipe(token);
  return { e: eph.publicKey, ct, id, token: v1 ? token : null, dt, ids };
}

/**
 * Seals a message into a version 2 item for slot `index` of `inbox`, without its proof of work: the caller solves
 * the puzzle (seed: `slot`, effort: at least `effort`, binding: mailboxPowBinding(item)) and encodes the item with
 * encodeMailboxItem. Throws LimitError MAX_MAILBOX_MESSAGE_BYTES (ERR_LIMIT) for a message that does not fit an item.
 */
export function sealMailboxItem(o: SealV2Options): { item: UnsolvedMailboxItem; slot: Uint8Array; effort: number; id: Uint8Array } {
  if (o.inbox.length !== 32) throw new AlliumError('ERR_INTERNAL', 'an inbox key is 32 bytes');
  const slot = slotLocator(o.inbox, o.index);
  const s = seal(o, slot, false);
  const x = Uint8Array.from(o.inbox);
  const item: UnsolvedMailboxItem =
    s.ids.length > 0
      ? { v: 3, exp: o.exp, x, i: o.index, e: s.e, s: s.ids[0]!, ...(s.ids[1] ? { o: s.ids[1] } : {}), ct: s.ct }
      : { v: 2, exp: o.exp, x, i: o.index, e: s.e, ct: s.ct };
  return { item, slot, effort: mailboxEffort(o.index), id: s.id };
}

/** The bytes of a version 2 or 3 item with its proof of work `w` (the fields in the spec's order). */
export function encodeMailboxItem(item: UnsolvedMailboxItem, w: PowSolution): Uint8Array {
  const head = { v: item.v, exp: item.exp, x: item.x, i: item.i, w: { n: w.n, e: w.e }, e: item.e };
  if (item.v === 2) return encodeCbor({ ...head, ct: item.ct });
  return encodeCbor({ ...head, s: item.s, ...(item.o ? { o: item.o } : {}), ct: item.ct });
}

/**
 * Solves a version 2 item's puzzle at effort(i) synchronously, trying up to `tries` nonces from `start`, and returns
 * the item's bytes, or null when none of them met it (tests and vectors; the client yields between slices).
 */
export function solveMailboxItem(item: UnsolvedMailboxItem, start: Uint8Array, tries = Number.MAX_SAFE_INTEGER): Uint8Array | null {
  const w = solvePow(slotLocator(item.x, item.i), mailboxEffort(item.i), mailboxPowBinding(item), start, tries);
  return w ? encodeMailboxItem(item, w) : null;
}

/**
 * Seals a message into a version 1 item for one slot (no proof of work: relays store these only until
 * MAILBOX_V1_UNTIL_MS). Kept for the compatibility tests and vectors. Returns the item, its id and deletion token.
 */
export function sealMailboxItemV1(o: Omit<SealOptions, 'prekeys'> & { readonly slot: Uint8Array }): { bytes: Uint8Array; id: Uint8Array; token: Uint8Array } {
  const s = seal(o, o.slot, true);
  return { bytes: encodeCbor({ v: 1, exp: o.exp, e: s.e, dt: s.dt!, ct: s.ct }), id: s.id, token: s.token! };
}

/** The deletion of earlier versions (a recipient stored it over a collected item); relays now refuse it. */
export function encodeMailboxDeletion(token: Uint8Array): Uint8Array {
  if (token.length !== MAILBOX_TOKEN_LEN) throw new AlliumError('ERR_INTERNAL', 'a deletion token is 32 bytes');
  return encodeCbor({ v: 1, del: token });
}

/** Decodes an item's outer layer (what relays see). Throws ERR_CBOR_* / ERR_SCHEMA, ERR_BAD_LENGTH. */
export function decodeMailboxItem(bytes: Uint8Array): MailboxItemEnvelope {
  const d = decodeMessage(itemSchema, bytes, MAX_MAILBOX_ITEM_BYTES, 'mailbox item');
  if (!MAILBOX_CT_LENS.includes(d.ct.length)) throw new ProtocolError('ERR_BAD_LENGTH', 'mailbox item ciphertext is not a padding bucket');
  return d;
}

/** Decodes a deletion of earlier versions (what a relay not yet upgraded may serve for a collected slot). */
export function decodeMailboxDeletion(bytes: Uint8Array): Uint8Array {
  return decodeMessage(deletionSchema, bytes, MAX_MAILBOX_ITEM_BYTES, 'mailbox deletion').del;
}

/**
 * What a relay checks before storing under the slot `rk` (specs/messaging.md §9.3): an item, well formed, with a
 * bucket-sized ciphertext, expiring after `now` and at most MAX_MAILBOX_TTL_MS + skew after it; a version 2 item must
 * name the inbox and index whose slot is `rk` and carry a proof of work of at least effort(i) bound to it; a version 1
 * item (no work) is stored only while `acceptV1` (default: `now` < MAILBOX_V1_UNTIL_MS). Anything else — a deletion
 * of earlier versions too — is refused: nothing but an item ever occupies a slot, and a collection writes nothing.
 * Throws ERR_CBOR_* / ERR_SCHEMA, ERR_BAD_LENGTH, LimitError MAILBOX_TTL (ERR_LIMIT), ERR_MAILBOX_POW.
 */
export function verifyMailboxStore(bytes: Uint8Array, now: number, rk: Uint8Array, options: { acceptV1?: boolean } = {}): MailboxStore {
  const item = decodeMailboxItem(bytes);
  if (item.exp <= now) throw new LimitError('MAILBOX_TTL', 'mailbox item already expired');
  if (item.exp > now + MAX_MAILBOX_TTL_MS + MAILBOX_CLOCK_SKEW_MS) throw new LimitError('MAILBOX_TTL', 'mailbox item expires beyond the longest lifetime');
  if (item.v === 1) {
    if (!(options.acceptV1 ?? now < MAILBOX_V1_UNTIL_MS))
      throw new ProtocolError('ERR_MAILBOX_POW', 'mailbox items of version 1 carry no proof of work and are no longer stored');
    return { exp: item.exp };
  }
  const c = crypto();
  if (rk.length !== 32 || !c.equal(slotLocator(item.x, item.i), rk))
    throw new ProtocolError('ERR_MAILBOX_POW', 'mailbox item names another slot than the one it is stored in');
  if (item.w.e < mailboxEffort(item.i)) throw new ProtocolError('ERR_MAILBOX_POW', 'mailbox item carries less work than its slot needs');
  try {
    verifyPow([rk], item.w, mailboxPowBinding(item));
  } catch (e) {
    if (isAlliumError(e)) throw new ProtocolError('ERR_MAILBOX_POW', 'mailbox item proof of work does not meet its effort', { cause: e });
    throw e;
  }
  return { exp: item.exp };
}

/**
 * Opens an item fetched from slot `slot` of our inbox. A version 3 item also needs the secrets of the prekeys it
 * names, which `options.prekeys` looks up by id; one we no longer hold (deleted after use, or never ours) means the
 * item does not open, whatever else we hold (forward secrecy, specs/messaging.md §9.2, §9.6). Throws ERR_CBOR_* /
 * ERR_SCHEMA / ERR_BAD_LENGTH (malformed), ERR_MESSAGE_AUTH (not sealed to us, sealed to a prekey we do not hold,
 * tampered, moved from another slot, or its MAC does not verify under the named sender), ERR_PADDING, ERR_KEY_FORMAT
 * (the sender key is not a valid point), ERR_DESCRIPTOR_FUTURE (sent further in the future than the clock skew
 * allows; only given `now`).
 */
export function openMailboxItem(
  recipient: Identity,
  slot: Uint8Array,
  bytes: Uint8Array,
  options: { now?: number; prekeys?: PrekeySecretLookup } = {},
): OpenedMailboxItem {
  const c = crypto();
  const item = decodeMailboxItem(bytes);
  // Version 3: the prekey secrets first, so an item whose prekeys are gone costs no Diffie-Hellman.
  const preSecrets: Uint8Array[] = [];
  if (item.v === 3) {
    const spk = options.prekeys?.(item.s, 'signed') ?? null;
    const opk = item.o ? (options.prekeys?.(item.o, 'one-time') ?? null) : null;
    if (!spk || (item.o && !opk)) throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox item is sealed to a prekey we do not hold');
    preSecrets.push(spk, ...(opk ? [opk] : []));
  }
  const ids = item.v === 3 ? [item.s, ...(item.o ? [item.o] : [])] : [];
  const ikbSecret = c.edSecretToX25519(recipient.secretKey);
  const ikb = c.edPublicToX25519(recipient.publicKey);
  try {
    const parts: Uint8Array[] = [];
    try {
      for (const k of [ikbSecret, ...preSecrets]) parts.push(c.x25519(k, item.e));
    } catch (e) {
      c.wipe(...parts);
      throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox item does not open', { cause: e });
    }
    const ss = concatBytes(...parts);
    c.wipe(...parts);
    const ssCopy = Uint8Array.from(ss);
    let key: Uint8Array;
    let token: Uint8Array | null = null;
    if (item.v === 3) {
      key = prekeyItemKey(
        ss,
        item.e,
        ikb,
        preSecrets.map((k) => c.x25519Public(k)),
      );
      c.wipe(ss);
    } else {
      ({ key, token } = itemKeys(ss, item.e, ikb));
    }
    const dt = item.v === 1 ? item.dt : null;
    const padded = c.aeadDecrypt(item.ct, itemAd(slot, item.exp, item.e, dt, ids), NONCE0, key);
    c.wipe(key);
    // Version 1: the ciphertext authenticates dt; a dt that is not H(token) is refused (the format's rule).
    if (!padded || (dt !== null && !c.equal(deletionCheck(token!), dt))) throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox item does not open');
    if (dt === null && token) c.wipe(token);
    const inner = decodeMessage(innerSchema, unpad(padded, TAG), MAX_MAILBOX_CT_BYTES, 'mailbox message');
    if (!c.edIsValidPoint(inner.from)) throw new ProtocolError('ERR_KEY_FORMAT', 'mailbox sender key is not a valid point');
    const { mac, ...body } = inner;
    const ika = c.edPublicToX25519(inner.from);
    let sd: Uint8Array;
    try {
      sd = c.x25519(ikbSecret, ika);
    } catch (e) {
      throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox sender key gives no shared secret', { cause: e });
    }
    const mk = macKey(ssCopy, sd, item.e, ika, ikb);
    c.wipe(sd, ssCopy);
    const want = c.hash(MAC_LEN, macInput(slot, item.exp, recipient.publicKey, encodeCbor(body)), mk);
    c.wipe(mk);
    if (!c.equal(want, mac)) throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox message is not authenticated by its sender');
    if (options.now !== undefined && inner.t > options.now + MAILBOX_CLOCK_SKEW_MS) {
      throw new ProtocolError('ERR_DESCRIPTOR_FUTURE', 'mailbox message sent in the future');
    }
    return {
      from: inner.from,
      t: inner.t,
      n: inner.n,
      id: inner.id,
      data: inner.d,
      attachment: inner.k === 1,
      group: inner.k === 2,
      device: inner.k === 3,
      exp: item.exp,
      version: item.v,
      token: dt === null ? null : token,
      prekeys: item.v === 3 ? { spk: item.s, opk: item.o ?? null } : null,
    };
  } finally {
    c.wipe(ikbSecret);
  }
}
