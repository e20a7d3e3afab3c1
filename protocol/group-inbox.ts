/**
 * The group inbox, version 2 of the group transport (specs/messaging.md §13.9): an admin hands each member, over its
 * pairwise path, an epoch secret; from it every member derives, per day, an inbox of mailbox slots (§9.1) no one
 * else can compute and a key for what is deposited there. A member deposits its sender key (signed by its identity)
 * and each message once; members collect from the inbox.
 *
 *   epoch    = CBOR { "v": 2, "t": 4, "g", "q": u32, "r": u32, "d": u32 first day, "es": (32) }   pairwise only
 *   es_d     = es;  es_(i+1) = H(es_i, "allium-v1:group:day")                  one-way: a wiped day stays closed
 *   ctx      = g | u32(q) | u64(day)
 *   inbox    = H(es_day | ctx, "allium-v1:group:inbox");  dk = H(es_day | ctx, "allium-v1:group:deposit")
 *   k        = H(dk | E, "allium-v1:group:deposit-key")                       E = random(32), a salt
 *   inner    = CBOR { "v": 2, "q", "a": depositor, "env": message or sender-key envelope, ? "sig" }
 *   sig      = Ed25519(sk_a, "allium-v1 group-announce" | slot | env)          exactly for a sender key
 *   ct       = AEAD(k, 0^12, pad(inner, 16), "allium-v1 group-inbox" | slot | u64(exp) | E)
 *   item     = a version 2 mailbox item (protocol/mailbox.ts) with x = inbox: relays check it as any other
 *   request  = CBOR { "v": 2, "t": 5, "g", "r": u32 roster held, "q": u32 epoch held }   a member to an admin, pairwise
 *
 * Pure: the caller gives the randomness (for the salt), the clock's day and the work. What it does not do: decide
 * who may send an epoch (the roster's admins: client/messaging/group-inbox.ts), or hold chains (protocol/sender-key.ts).
 */
import { z } from 'zod';
import type { RandomSource } from '../crypto/drbg.js';
import { crypto } from '../crypto/index.js';
import type { Identity } from './address.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import { decodeGroupEnvelope, encodeGroupEnvelope, GROUP_ID_LEN, type GroupMessage, type SenderKeyDistribution } from './group-messages.js';
import {
  decodeMailboxItem,
  mailboxEffort,
  MAX_MAILBOX_CT_BYTES,
  MAX_MAILBOX_MESSAGE_BYTES,
  MAX_MAILBOX_SLOTS,
  slotLocator,
  type UnsolvedMailboxItem,
} from './mailbox.js';
import { pad, paddedLength, unpad } from './padding.js';

/** Days one group epoch lasts; an admin starts a new epoch before (specs/limits.md MAX_GROUP_EPOCH_DAYS). */
export const MAX_GROUP_EPOCH_DAYS = 400;
/** How far above the epoch held a member takes the next one (specs/limits.md MAX_GROUP_EPOCH_STEP). */
export const MAX_GROUP_EPOCH_STEP = 16;
/** Epochs a member holds per group: the current, the one before, two read one last time (MAX_GROUP_HELD_EPOCHS). */
export const MAX_GROUP_HELD_EPOCHS = 4;
/** An envelope with its deposit framing: the mailbox message bound (specs/limits.md MAX_GROUP_DEPOSIT_BYTES). */
export const MAX_GROUP_DEPOSIT_BYTES = MAX_MAILBOX_MESSAGE_BYTES;
export const EPOCH_SECRET_LEN = 32;
/** How often a member asks an admin for a missed epoch, and an admin answers one member, per group (GROUP_EPOCH_ASK_MS). */
export const GROUP_EPOCH_ASK_MS = 60_000;
/**
 * How often a member holding the epoch of its roster still asks an admin whether it is behind (GROUP_EPOCH_CHECK_MS):
 * a member that missed both a roster and its epoch cannot tell otherwise, and an admin answers only a member below.
 */
export const GROUP_EPOCH_CHECK_MS = 6 * 60 * 60 * 1000;

const MAX_U32 = 0xffffffff;
const TAG = 16;
const NONCE0 = new Uint8Array(12);
const AD_CONTEXT = utf8('allium-v1 group-inbox');
const ANNOUNCE_CONTEXT = utf8('allium-v1 group-announce');
const L = {
  day: utf8('allium-v1:group:day'),
  inbox: utf8('allium-v1:group:inbox'),
  deposit: utf8('allium-v1:group:deposit'),
  key: utf8('allium-v1:group:deposit-key'),
};

const epochSchema = z.strictObject({
  v: z.literal(2),
  t: z.literal(4),
  g: zBytes(GROUP_ID_LEN),
  q: zUint(MAX_U32),
  r: zUint(MAX_U32),
  d: zUint(MAX_U32),
  es: zBytes(EPOCH_SECRET_LEN),
});
const requestSchema = z.strictObject({
  v: z.literal(2),
  t: z.literal(5),
  g: zBytes(GROUP_ID_LEN),
  r: zUint(MAX_U32),
  q: zUint(MAX_U32),
});
const innerSchema = z.strictObject({
  v: z.literal(2),
  q: zUint(MAX_U32),
  a: zBytes(32),
  env: zBytes(undefined, MAX_GROUP_DEPOSIT_BYTES),
  sig: zBytes(64).optional(),
});

/** An admin's epoch of a group (§13.9): the secret every member of roster `r` derives the inbox from. */
export interface GroupEpoch {
  readonly kind: 'epoch';
  readonly group: Uint8Array;
  /** The group epoch: every membership change starts the next. */
  readonly q: number;
  /** The roster revision this epoch goes with. */
  readonly r: number;
  /** The first mailbox day (§9.1) of the epoch. */
  readonly d: number;
  readonly es: Uint8Array;
}

export function encodeGroupEpoch(x: GroupEpoch): Uint8Array {
  const u32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= MAX_U32;
  if (x.group.length !== GROUP_ID_LEN || x.es.length !== EPOCH_SECRET_LEN || !u32(x.q) || !u32(x.r) || !u32(x.d)) {
    throw new AlliumError('ERR_INTERNAL', 'a malformed group epoch');
  }
  return encodeCbor({ v: 2, t: 4, g: x.group, q: x.q, r: x.r, d: x.d, es: x.es });
}

/**
 * Decodes an epoch envelope. With `today` (the mailbox epoch of the receiver's clock, §9.1) it also checks the epoch's
 * days (§13.9): its first day `d` is at most one day ahead (ERR_SCHEMA) and at most MAX_GROUP_EPOCH_DAYS behind
 * (LimitError MAX_GROUP_EPOCH_DAYS), so that every day a member derives from it is within the bound. Throws
 * ERR_CBOR_* / ERR_SCHEMA, ERR_LIMIT.
 */
export function decodeGroupEpoch(bytes: Uint8Array, today?: number): GroupEpoch {
  const d = decodeMessage(epochSchema, bytes, 256, 'group epoch');
  if (today !== undefined) checkEpochDays(d.d, today);
  return { kind: 'epoch', group: d.g, q: d.q, r: d.r, d: d.d, es: d.es };
}

/** The days an epoch starting on `first` may still be used on `today`: throws as decodeGroupEpoch does. */
export function checkEpochDays(first: number, today: number): void {
  if (first > today + 1) throw new ProtocolError('ERR_SCHEMA', 'a group epoch starting after tomorrow');
  if (today - first > MAX_GROUP_EPOCH_DAYS) {
    throw new LimitError('MAX_GROUP_EPOCH_DAYS', `a group epoch that started ${today - first} days ago: an admin starts a new one`);
  }
}

/** The last day an epoch starting on `first` derives a secret for. */
export function lastEpochDay(first: number): number {
  return first + MAX_GROUP_EPOCH_DAYS;
}

/** True when `bytes` is an envelope of version 2 (an epoch), which decodeGroupEnvelope (version 1) refuses. */
export function isGroupEpochEnvelope(bytes: Uint8Array): boolean {
  try {
    decodeGroupEpoch(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * A member's request for the epoch of the roster it holds (§13.9, "Asking for a missed epoch"): it holds roster `r` and
 * took epoch `q` last. An admin answers it with its current epoch only for a member of its roster, at most once per
 * GROUP_EPOCH_ASK_MS (client/messaging/groups.ts).
 */
export interface GroupEpochRequest {
  readonly kind: 'epoch-request';
  readonly group: Uint8Array;
  readonly r: number;
  readonly q: number;
}

export function encodeGroupEpochRequest(x: GroupEpochRequest): Uint8Array {
  const u32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= MAX_U32;
  if (x.group.length !== GROUP_ID_LEN || !u32(x.q) || !u32(x.r)) throw new AlliumError('ERR_INTERNAL', 'a malformed group epoch request');
  return encodeCbor({ v: 2, t: 5, g: x.group, r: x.r, q: x.q });
}

/** Decodes an epoch request. Throws ERR_CBOR_* / ERR_SCHEMA. */
export function decodeGroupEpochRequest(bytes: Uint8Array): GroupEpochRequest {
  const d = decodeMessage(requestSchema, bytes, 128, 'group epoch request');
  return { kind: 'epoch-request', group: d.g, r: d.r, q: d.q };
}

/** True when `bytes` is an epoch request (version 2), which decodeGroupEnvelope (version 1) refuses. */
export function isGroupEpochRequest(bytes: Uint8Array): boolean {
  try {
    decodeGroupEpochRequest(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Everything that names one day's inbox of one epoch: its day secret, derived forward from the epoch's. */
export interface GroupDay {
  readonly group: Uint8Array;
  readonly q: number;
  readonly day: number;
  /** es_day: wipe it once the day is read. */
  readonly secret: Uint8Array;
}

/**
 * The day secret of `day` from the epoch's (es, first day `d`), by hashing forward. Throws LimitError
 * MAX_GROUP_EPOCH_DAYS (ERR_LIMIT) for a day more than MAX_GROUP_EPOCH_DAYS after `d`, ERR_MESSAGE_AUTH for a day
 * before it (no secret of it exists).
 */
export function groupDay(epoch: GroupEpoch, day: number): GroupDay {
  return nextGroupDay({ group: epoch.group, q: epoch.q, day: epoch.d, secret: epoch.es }, day, epoch.d);
}

/** The day secret of a later `day` from one held for `from.day` (first: the epoch's first day, for the bound). */
export function nextGroupDay(from: GroupDay, day: number, first: number): GroupDay {
  if (!Number.isInteger(day) || day < from.day) throw new CryptoError('ERR_MESSAGE_AUTH', 'no day secret before the one held');
  if (day - first > MAX_GROUP_EPOCH_DAYS) throw new LimitError('MAX_GROUP_EPOCH_DAYS', 'the group epoch is too old: an admin starts a new one');
  let s: Uint8Array = Uint8Array.from(from.secret);
  for (let i = from.day; i < day; i++) {
    const next = crypto().hash(32, s, L.day);
    crypto().wipe(s);
    s = next;
  }
  return { group: from.group, q: from.q, day, secret: s };
}

function ctx(d: GroupDay): Uint8Array {
  return concatBytes(d.secret, d.group, new ByteWriter(4).u32(d.q).done(), new ByteWriter(8).u64(BigInt(d.day)).done());
}

/** The day's inbox key (the mailbox item's `x`). */
export function groupInboxKey(d: GroupDay): Uint8Array {
  return crypto().hash(32, ctx(d), L.inbox);
}

function depositKey(d: GroupDay, e: Uint8Array): Uint8Array {
  const dk = crypto().hash(32, ctx(d), L.deposit);
  const k = crypto().hash(32, concatBytes(dk, e), L.key);
  crypto().wipe(dk);
  return k;
}

function ad(slot: Uint8Array, exp: number, e: Uint8Array): Uint8Array {
  return concatBytes(AD_CONTEXT, slot, new ByteWriter(8).u64(BigInt(exp)).done(), e);
}

function announceInput(slot: Uint8Array, env: Uint8Array): Uint8Array {
  return concatBytes(ANNOUNCE_CONTEXT, slot, env);
}

export interface DepositOptions {
  readonly day: GroupDay;
  /** The depositor. */
  readonly from: Identity;
  readonly envelope: GroupMessage | SenderKeyDistribution;
  /** The slot's index in the day's inbox. */
  readonly index: number;
  /** When relays drop the deposit (Unix ms). */
  readonly exp: number;
  /** Random bytes for the salt (vectors only; default crypto().random). */
  readonly random?: RandomSource;
}

/**
 * Seals an envelope into a version 2 mailbox item for slot `index` of the day's inbox, without its work (solve it as
 * for any item: protocol/mailbox.ts). Throws LimitError MAX_GROUP_DEPOSIT_BYTES (ERR_LIMIT) when it does not fit.
 */
export function sealGroupDeposit(o: DepositOptions): { item: UnsolvedMailboxItem; slot: Uint8Array; effort: number } {
  const c = crypto();
  if (!Number.isInteger(o.index) || o.index < 0 || o.index >= MAX_MAILBOX_SLOTS) throw new AlliumError('ERR_INTERNAL', 'a slot index is 0..1023');
  if (!c.equal(o.envelope.group, o.day.group)) throw new AlliumError('ERR_INTERNAL', 'an envelope of another group');
  const x = groupInboxKey(o.day);
  const slot = slotLocator(x, o.index);
  const env = encodeGroupEnvelope(o.envelope);
  const inner = encodeCbor({
    v: 2,
    q: o.day.q,
    a: o.from.publicKey,
    env,
    ...(o.envelope.kind === 'sender-key' ? { sig: c.sign(announceInput(slot, env), o.from.secretKey) } : {}),
  });
  if (env.length > MAX_GROUP_DEPOSIT_BYTES || paddedLength(inner.length, TAG) + TAG > MAX_MAILBOX_CT_BYTES) {
    throw new LimitError('MAX_GROUP_DEPOSIT_BYTES', `a deposit of ${inner.length} bytes does not fit a mailbox item`);
  }
  const e = (o.random ?? ((n: number) => c.random(n)))(32);
  const k = depositKey(o.day, e);
  const ct = c.aeadEncrypt(pad(inner, TAG), ad(slot, o.exp, e), NONCE0, k);
  c.wipe(k);
  return { item: { v: 2, exp: o.exp, x, i: o.index, e, ct }, slot, effort: mailboxEffort(o.index) };
}

/** An opened deposit: who deposited it and the envelope (a sender key's identity signature verified). */
export interface OpenedDeposit {
  readonly from: Uint8Array;
  readonly envelope: GroupMessage | SenderKeyDistribution;
}

/**
 * Opens an item fetched from `slot` of the day's inbox. Throws ERR_CBOR_* / ERR_SCHEMA / ERR_BAD_LENGTH (malformed),
 * ERR_MESSAGE_AUTH (not of this inbox, does not open, of another group or epoch), ERR_PADDING, ERR_KEY_FORMAT,
 * ERR_SIGNATURE (a sender key not signed by its depositor). Membership and the chains are the caller's (§13.9).
 */
export function openGroupDeposit(day: GroupDay, slot: Uint8Array, bytes: Uint8Array): OpenedDeposit {
  const c = crypto();
  const item = decodeMailboxItem(bytes);
  if (item.v !== 2 || !c.equal(item.x, groupInboxKey(day)) || !c.equal(slotLocator(item.x, item.i), slot)) {
    throw new CryptoError('ERR_MESSAGE_AUTH', 'the item is not of this group inbox');
  }
  const k = depositKey(day, item.e);
  const padded = c.aeadDecrypt(item.ct, ad(slot, item.exp, item.e), NONCE0, k);
  c.wipe(k);
  if (!padded) throw new CryptoError('ERR_MESSAGE_AUTH', 'group deposit does not open');
  const inner = decodeMessage(innerSchema, unpad(padded, TAG), MAX_MAILBOX_CT_BYTES, 'group deposit');
  const envelope = decodeGroupEnvelope(inner.env);
  if (envelope.kind === 'roster') throw new ProtocolError('ERR_SCHEMA', 'a roster is never deposited');
  if (inner.q !== day.q || !c.equal(envelope.group, day.group)) throw new CryptoError('ERR_MESSAGE_AUTH', 'a deposit of another group or epoch');
  if (!c.edIsValidPoint(inner.a)) throw new ProtocolError('ERR_KEY_FORMAT', 'depositor key is not a valid point');
  if ((envelope.kind === 'sender-key') !== (inner.sig !== undefined)) throw new ProtocolError('ERR_SCHEMA', 'a sender key deposit and only it is signed');
  if (inner.sig !== undefined) c.verifyOrThrow(inner.sig, announceInput(slot, inner.env), inner.a, 'group sender key deposit');
  return { from: inner.a, envelope };
}
