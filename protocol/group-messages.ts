/**
 * Group envelopes (specs/messaging.md §13.2): what members of a group send each other, one by one, over their
 * pairwise sessions (a conversation frame of kind 4, §8.1, or a mailbox item with "k": 2, §9.2).
 *
 *   message    = CBOR { "v": 1, "t": 1, "g": group id (32), "e": generation, "n": index, "ct": bytes, "sig": (64) }
 *   sender key = CBOR { "v": 1, "t": 2, "g", "e", "n", "pn", "ck": chain key (32), "sp": signing key (32) }
 *   roster     = CBOR { "v": 1, "t": 3, "g", "r": revision, "name", "m": [ identity key (32) … ], "a": [ index … ],
 *                       "by": identity key (32), "sig": (64) }
 *
 * Pure and strict: decodeGroupEnvelope refuses anything but these three shapes within their bounds (ERR_CBOR_*,
 * ERR_SCHEMA). What the fields mean, and the checks that need state (who may sign a roster, which generation is
 * current), are sender-key.ts and client/messaging/groups.ts.
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { ProtocolError } from './errors.js';

export const GROUP_ID_LEN = 32;
/** Members of one group, the creator included (specs/limits.md). */
export const MAX_GROUP_MEMBERS = 1000;
export const MAX_GROUP_NAME_BYTES = 64;
/** Largest application message a group carries: one envelope then fits a mailbox item (§9, 28000 bytes). */
export const MAX_GROUP_MESSAGE_BYTES = 27648;
/** Largest envelope (a roster of MAX_GROUP_MEMBERS members with every one an admin). */
export const MAX_GROUP_ENVELOPE_BYTES = 40960;
const MAX_U32 = 0xffffffff;
/** The context prefixed to what a roster's signature covers. */
export const ROSTER_CONTEXT = utf8('allium-v1 group-roster');

const zName = z.string().refine((s) => utf8(s).length <= MAX_GROUP_NAME_BYTES && !/[\u0000-\u001f\u007f-\u009f]/u.test(s), 'a group name');

const messageSchema = z.strictObject({
  v: z.literal(1),
  t: z.literal(1),
  g: zBytes(GROUP_ID_LEN),
  e: zUint(MAX_U32),
  n: zUint(MAX_U32),
  ct: zBytes(undefined, MAX_GROUP_MESSAGE_BYTES + 16),
  sig: zBytes(64),
});
const senderKeySchema = z.strictObject({
  v: z.literal(1),
  t: z.literal(2),
  g: zBytes(GROUP_ID_LEN),
  e: zUint(MAX_U32),
  n: zUint(MAX_U32),
  pn: zUint(MAX_U32),
  ck: zBytes(32),
  sp: zBytes(32),
});
const rosterSchema = z.strictObject({
  v: z.literal(1),
  t: z.literal(3),
  g: zBytes(GROUP_ID_LEN),
  r: zUint(MAX_U32),
  name: zName,
  m: z.array(zBytes(32)).min(1).max(MAX_GROUP_MEMBERS),
  a: z.array(zUint(MAX_GROUP_MEMBERS - 1)).max(MAX_GROUP_MEMBERS),
  by: zBytes(32),
  sig: zBytes(64),
});
const envelopeSchema = z.discriminatedUnion('t', [messageSchema, senderKeySchema, rosterSchema]);

/** A group message: the sender's chain position and the ciphertext under that message key (§13.3). */
export interface GroupMessage {
  readonly kind: 'message';
  readonly group: Uint8Array;
  /** The sender's key generation. */
  readonly e: number;
  /** The message's index in that generation's chain. */
  readonly n: number;
  readonly ct: Uint8Array;
  readonly sig: Uint8Array;
}

/** A member's sender key as of index `n` of generation `e` (§13.3); `pn`: messages sent under generation e − 1. */
export interface SenderKeyDistribution {
  readonly kind: 'sender-key';
  readonly group: Uint8Array;
  readonly e: number;
  readonly n: number;
  readonly pn: number;
  readonly ck: Uint8Array;
  /** The generation's signing public key. */
  readonly sp: Uint8Array;
}

/** The membership of a group at revision `r`, signed by `by` (§13.4). */
export interface Roster {
  readonly kind: 'roster';
  readonly group: Uint8Array;
  readonly r: number;
  readonly name: string;
  /** Identity keys, no key twice. */
  readonly members: readonly Uint8Array[];
  /** Indices into `members`, increasing. */
  readonly admins: readonly number[];
  readonly by: Uint8Array;
  readonly sig: Uint8Array;
}

export type GroupEnvelope = GroupMessage | SenderKeyDistribution | Roster;

function rosterBody(r: Omit<Roster, 'kind' | 'sig'>): Record<string, unknown> {
  return { v: 1, t: 3, g: r.group, r: r.r, name: r.name, m: r.members, a: r.admins, by: r.by };
}

/** The bytes a roster's signature covers: ROSTER_CONTEXT | CBOR(the roster without "sig"). */
export function rosterSigned(r: Omit<Roster, 'kind' | 'sig'>): Uint8Array {
  return concatBytes(ROSTER_CONTEXT, encodeCbor(rosterBody(r)));
}

/**
 * Checks the rules §13.4 gives a roster on its own: distinct members, increasing admin indices. Whether `by` may sign
 * it (an admin, or a member leaving) needs the roster it replaces: the caller checks.
 */
function checkRoster(r: Omit<Roster, 'kind' | 'sig'>): void {
  const seen = new Set<string>();
  for (const m of r.members) {
    const k = String.fromCharCode(...m);
    if (seen.has(k)) throw new ProtocolError('ERR_SCHEMA', 'group roster: a member listed twice');
    seen.add(k);
  }
  for (let i = 0; i < r.admins.length; i++) {
    if (r.admins[i]! >= r.members.length || (i > 0 && r.admins[i]! <= r.admins[i - 1]!)) {
      throw new ProtocolError('ERR_SCHEMA', 'group roster: admin indices must increase and name members');
    }
  }
}

/** A signed roster (Ed25519 by `secretKey`, whose public half is `by`). Throws ERR_SCHEMA for a roster §13.4 refuses. */
export function signRoster(r: Omit<Roster, 'kind' | 'sig'>, secretKey: Uint8Array): Roster {
  checkRoster(r);
  validateEnvelope({ ...rosterBody(r), sig: new Uint8Array(64) });
  return { kind: 'roster', ...r, sig: crypto().sign(rosterSigned(r), secretKey) };
}

/** True when the roster's signature verifies under its `by`. */
export function verifyRoster(r: Roster): boolean {
  return crypto().edIsValidPoint(r.by) && crypto().verify(r.sig, rosterSigned(r), r.by);
}

function validateEnvelope(value: Record<string, unknown>): void {
  const r = envelopeSchema.safeParse(value);
  if (!r.success) throw new ProtocolError('ERR_SCHEMA', `group envelope: ${r.error.issues[0]?.path.join('.') ?? 'invalid'}`);
}

export function encodeGroupEnvelope(x: GroupEnvelope): Uint8Array {
  let value: Record<string, unknown>;
  if (x.kind === 'message') value = { v: 1, t: 1, g: x.group, e: x.e, n: x.n, ct: x.ct, sig: x.sig };
  else if (x.kind === 'sender-key') value = { v: 1, t: 2, g: x.group, e: x.e, n: x.n, pn: x.pn, ck: x.ck, sp: x.sp };
  else value = { ...rosterBody(x), sig: x.sig };
  validateEnvelope(value);
  return encodeCbor(value);
}

/**
 * Decodes an envelope from a peer. Throws ERR_CBOR_* (not strict CBOR, or longer than MAX_GROUP_ENVELOPE_BYTES),
 * ERR_SCHEMA (another shape, a member twice, bad admin indices).
 */
export function decodeGroupEnvelope(bytes: Uint8Array): GroupEnvelope {
  const d = decodeMessage(envelopeSchema, bytes, MAX_GROUP_ENVELOPE_BYTES, 'group envelope');
  if (d.t === 1) return { kind: 'message', group: d.g, e: d.e, n: d.n, ct: d.ct, sig: d.sig };
  if (d.t === 2) return { kind: 'sender-key', group: d.g, e: d.e, n: d.n, pn: d.pn, ck: d.ck, sp: d.sp };
  const roster: Roster = { kind: 'roster', group: d.g, r: d.r, name: d.name, members: d.m, admins: d.a, by: d.by, sig: d.sig };
  checkRoster(roster);
  return roster;
}
