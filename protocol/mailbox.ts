/**
 * Offline mailboxes (specs/messaging.md §9): a message to an identity that is not listening is sealed to it and
 * left in the overlay's content store, one item per message, in *slots* whose routing keys only holders of the
 * recipient's address can compute.
 *
 *   epoch   = floor(unix seconds / MAILBOX_EPOCH_SECONDS)
 *   inbox   = H(A | u64(epoch), "allium-v1:mailbox:inbox")                  needs the address
 *   slot_i  = H(inbox | u32(i), "allium-v1:mailbox:slot")                     the routing key of slot i, i < 1024
 *
 * Senders fill an epoch's slots from 0 upwards (a holder keeps the first item of a slot and answers `occupied` to
 * any other), so the recipient, who does not know who wrote, reads slots 0, 1, 2, … until a few in a row are empty.
 * A relay sees each slot's routing key alone: without the address, slots of one inbox, and inboxes of different
 * epochs, cannot be told from any other content key. Anyone who knows the address can compute them too, and so
 * count an identity's mail and see when it is collected: the trade-off of an inbox that strangers can write to.
 *
 * An item is sealed to the recipient's X25519 form IKB with a fresh ephemeral key, and the message inside is
 * signed by the sender's identity key:
 *
 *   ss    = X25519(e, IKB);  x = ss | E | IKB
 *   k     = H(x, "allium-v1:mailbox:key");   token = H(x, "allium-v1:mailbox:delete")
 *   dt    = H(token, "allium-v1:mailbox:delete-check")
 *   body  = CBOR { "v": 1, "from": IK_A, "t": sent ms, "n": counter, "id": random(16), "d": data, ? "k": 1 or 2 }
 *   sig   = Ed25519(IK_A, "allium-v1 mailbox" | slot | u64(exp) | IK_B | body)
 *   inner = CBOR { "v", "from", "t", "n", "id", "d", "sig" }
 *   ct    = ChaCha20-Poly1305(k, 0^12, pad(inner, 16), AD = "allium-v1 mailbox" | slot | u64(exp) | E | dt)
 *   item  = CBOR { "v": 1, "exp": expiry ms, "e": E, "dt": dt, "ct": ct }          ct: a padding bucket ≤ 28352
 *
 * The AD binds the item to its slot and expiry, so a relay can neither move it to another slot nor extend its life.
 * The token is known only to the two parties; a relay replaces the item by `deletion = CBOR { "v": 1, "del": token }`
 * when H(token) matches `dt`, which is how the recipient removes what it has collected (a deletion keeps the slot
 * occupied, so the slots stay a contiguous run). Relays drop an item at `exp` (at most MAX_MAILBOX_TTL_MS ahead).
 *
 * What this does not give: forward secrecy for stored items (the recipient's identity key opens every item still
 * held), deniability (the sender's signature proves authorship to anyone the recipient shows the message to), and
 * protection from anyone with the address filling slots with junk.
 */
import { z } from 'zod';
import type { RandomSource } from '../crypto/drbg.js';
import { crypto } from '../crypto/index.js';
import { parseAddress, type Identity } from './address.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { DESCRIPTOR_CLOCK_SKEW_MS } from './descriptor.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import { PAD_BUCKETS, pad, paddedLength, unpad } from './padding.js';

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
export const MAILBOX_TOKEN_LEN = 32;

const TAG = 16;
const NONCE0 = new Uint8Array(12);
const CONTEXT = utf8('allium-v1 mailbox');
const L = {
  inbox: utf8('allium-v1:mailbox:inbox'),
  slot: utf8('allium-v1:mailbox:slot'),
  key: utf8('allium-v1:mailbox:key'),
  del: utf8('allium-v1:mailbox:delete'),
  check: utf8('allium-v1:mailbox:delete-check'),
};

const itemSchema = z.strictObject({
  v: z.literal(1),
  exp: zUint(),
  e: zBytes(32),
  dt: zBytes(32),
  ct: zBytes(undefined, MAX_MAILBOX_CT_BYTES),
});
const deletionSchema = z.strictObject({ v: z.literal(1), del: zBytes(MAILBOX_TOKEN_LEN) });
const storedSchema = z.union([itemSchema, deletionSchema]);
const innerSchema = z.strictObject({
  v: z.literal(1),
  from: zBytes(32),
  t: zUint(),
  n: zUint(),
  id: zBytes(MAILBOX_ID_LEN),
  d: zBytes(undefined, MAX_MAILBOX_MESSAGE_BYTES),
  k: z.union([z.literal(1), z.literal(2)]).optional(),
  sig: zBytes(64),
});

export type MailboxItemEnvelope = z.infer<typeof itemSchema>;

/** What a relay learns from a STORE of kind "mailbox": an item (with its expiry and deletion check) or a deletion. */
export type MailboxStore = { readonly kind: 'item'; readonly exp: number; readonly dt: Uint8Array } | { readonly kind: 'deletion'; readonly token: Uint8Array };

/** An opened item: the authenticated sender and message. */
export interface OpenedMailboxItem {
  /** The sender's identity key (its signature verified). */
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
  readonly exp: number;
  /** The deletion token: the recipient sends deletion(token) to the slot's holders once it has the message. */
  readonly token: Uint8Array;
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

function itemAd(slot: Uint8Array, exp: number, e: Uint8Array, dt: Uint8Array): Uint8Array {
  return concatBytes(CONTEXT, slot, u64(exp), e, dt);
}

function signedBytes(slot: Uint8Array, exp: number, recipient: Uint8Array, body: Uint8Array): Uint8Array {
  return concatBytes(CONTEXT, slot, u64(exp), recipient, body);
}

export interface SealOptions {
  readonly sender: Identity;
  /** The recipient's address or identity key. */
  readonly recipient: string | Uint8Array;
  /** The slot's routing key (slotLocator). */
  readonly slot: Uint8Array;
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
  /** The message id (16 bytes): the same for copies of one message in several slots. Default: random. */
  readonly id?: Uint8Array;
  /** Random bytes for the ephemeral key and the id (test vectors only; default: crypto().random). */
  readonly random?: RandomSource;
}

/**
 * Seals a message into a mailbox item for one slot. Returns the item, its id and the deletion token. Throws
 * LimitError MAX_MAILBOX_MESSAGE_BYTES (ERR_LIMIT) for a message that does not fit an item.
 */
export function sealMailboxItem(o: SealOptions): { bytes: Uint8Array; id: Uint8Array; token: Uint8Array } {
  const c = crypto();
  if (o.data.length > MAX_MAILBOX_MESSAGE_BYTES) {
    throw new LimitError('MAX_MAILBOX_MESSAGE_BYTES', `a message of ${o.data.length} bytes does not fit a mailbox item`);
  }
  if (o.slot.length !== 32) throw new AlliumError('ERR_INTERNAL', 'a slot is 32 bytes');
  const random = o.random ?? ((n: number) => c.random(n));
  const recipient = identityKeyOf(o.recipient);
  const ikb = c.edPublicToX25519(recipient);
  const seed = random(32);
  const eph = c.x25519Keypair(seed);
  c.wipe(seed);
  const id = o.id ?? random(MAILBOX_ID_LEN);
  if (id.length !== MAILBOX_ID_LEN) throw new AlliumError('ERR_INTERNAL', 'a mailbox message id is 16 bytes');
  const body = {
    v: 1 as const,
    from: o.sender.publicKey,
    t: o.t,
    n: o.n,
    id,
    d: o.data,
    ...(o.group ? { k: 2 as const } : o.attachment ? { k: 1 as const } : {}),
  };
  const sig = c.sign(signedBytes(o.slot, o.exp, recipient, encodeCbor(body)), o.sender.secretKey);
  const inner = encodeCbor({ ...body, sig });
  const len = paddedLength(inner.length, TAG) + TAG;
  if (len > MAX_MAILBOX_CT_BYTES) throw new LimitError('MAX_MAILBOX_MESSAGE_BYTES', 'message does not fit a mailbox item');
  const { key, token } = itemKeys(c.x25519(eph.secretKey, ikb), eph.publicKey, ikb);
  c.wipe(eph.secretKey);
  const dt = deletionCheck(token);
  const ct = c.aeadEncrypt(pad(inner, TAG), itemAd(o.slot, o.exp, eph.publicKey, dt), NONCE0, key);
  c.wipe(key);
  const bytes = encodeCbor({ v: 1, exp: o.exp, e: eph.publicKey, dt, ct });
  return { bytes, id, token };
}

/** The deletion a recipient stores over a collected item. */
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

/** True for bytes that decode as a deletion (what a holder serves for a collected slot). */
export function decodeMailboxDeletion(bytes: Uint8Array): Uint8Array {
  return decodeMessage(deletionSchema, bytes, MAX_MAILBOX_ITEM_BYTES, 'mailbox deletion').del;
}

/**
 * What a relay checks before storing under a slot: an item (well formed, a bucket-sized ciphertext, expiring
 * after `now` and at most MAX_MAILBOX_TTL_MS + skew after it) or a deletion. Throws ERR_CBOR_* / ERR_SCHEMA,
 * ERR_BAD_LENGTH, LimitError MAILBOX_TTL (ERR_LIMIT).
 */
export function verifyMailboxStore(bytes: Uint8Array, now: number): MailboxStore {
  const d = decodeMessage(storedSchema, bytes, MAX_MAILBOX_ITEM_BYTES, 'mailbox store');
  if ('del' in d) return { kind: 'deletion', token: d.del };
  const item = decodeMailboxItem(bytes);
  if (item.exp <= now) throw new LimitError('MAILBOX_TTL', 'mailbox item already expired');
  if (item.exp > now + MAX_MAILBOX_TTL_MS + MAILBOX_CLOCK_SKEW_MS) throw new LimitError('MAILBOX_TTL', 'mailbox item expires beyond the longest lifetime');
  return { kind: 'item', exp: item.exp, dt: item.dt };
}

/**
 * Opens an item fetched from slot `slot` of our inbox. Throws ERR_CBOR_* / ERR_SCHEMA / ERR_BAD_LENGTH
 * (malformed), ERR_MESSAGE_AUTH (not sealed to us, tampered, or moved from another slot), ERR_PADDING,
 * ERR_SIGNATURE (the sender's signature fails), ERR_KEY_FORMAT (the sender key is not a valid point),
 * ERR_DESCRIPTOR_FUTURE (sent further in the future than the clock skew allows; only given `now`).
 */
export function openMailboxItem(recipient: Identity, slot: Uint8Array, bytes: Uint8Array, options: { now?: number } = {}): OpenedMailboxItem {
  const c = crypto();
  const item = decodeMailboxItem(bytes);
  const ikbSecret = c.edSecretToX25519(recipient.secretKey);
  const ikb = c.edPublicToX25519(recipient.publicKey);
  let ss: Uint8Array;
  try {
    ss = c.x25519(ikbSecret, item.e);
  } catch (e) {
    throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox item does not open', { cause: e });
  } finally {
    c.wipe(ikbSecret);
  }
  const { key, token } = itemKeys(ss, item.e, ikb);
  const padded = c.aeadDecrypt(item.ct, itemAd(slot, item.exp, item.e, item.dt), NONCE0, key);
  c.wipe(key);
  // The ciphertext authenticates dt; a dt that is not H(token) would make the item undeletable, so it is refused.
  if (!padded || !c.equal(deletionCheck(token), item.dt)) throw new CryptoError('ERR_MESSAGE_AUTH', 'mailbox item does not open');
  const inner = decodeMessage(innerSchema, unpad(padded, TAG), MAX_MAILBOX_CT_BYTES, 'mailbox message');
  if (!c.edIsValidPoint(inner.from)) throw new ProtocolError('ERR_KEY_FORMAT', 'mailbox sender key is not a valid point');
  const { sig, ...body } = inner;
  if (!c.verify(sig, signedBytes(slot, item.exp, recipient.publicKey, encodeCbor(body)), inner.from)) {
    throw new CryptoError('ERR_SIGNATURE', 'mailbox message signature does not verify');
  }
  if (options.now !== undefined && inner.t > options.now + MAILBOX_CLOCK_SKEW_MS) {
    throw new ProtocolError('ERR_DESCRIPTOR_FUTURE', 'mailbox message sent in the future');
  }
  return { from: inner.from, t: inner.t, n: inner.n, id: inner.id, data: inner.d, attachment: inner.k === 1, group: inner.k === 2, exp: item.exp, token };
}
