/**
 * Devices of one person (specs/messaging.md §14): the link code a new device shows, the device list its person's
 * primary signs, and the device envelopes devices and contacts send each other over their pairwise sessions (a
 * conversation frame of kind 5, §8.1, or a mailbox item with "k": 3, §9.2).
 *
 *   code     = u8(1) | D (32) | secret (16) | H(…, "allium-v1:device-link:checksum")[0..4)      text "allium:link/…"
 *   proof    = H(secret | P | D, "allium-v1:device-link:proof")
 *   list     = CBOR { "v": 1, "t": 1, "p": P, "r": revision, "d": [ { "k": D, "s": member sig } … ], "sig" }
 *   offer    = CBOR { "v": 1, "t": 2, "p": P, "proof" }           primary → new device
 *   accept   = CBOR { "v": 1, "t": 3, "p": P, "s": member sig }   new device → primary
 *   sent     = CBOR { "v": 1, "t": 4, "to", "id", "ts", "d", ? "a" }   a device → its siblings: what it sent
 *   request  = CBOR { "v": 1, "t": 5, "q", "after", "max" }          history wanted
 *   history  = CBOR { "v": 1, "t": 6, "q", "i", "last", "e": [ entry … ] }
 *
 * Pure and strict: decodeDeviceEnvelope refuses anything but these shapes within their bounds (ERR_CBOR_*,
 * ERR_SCHEMA); verifyDeviceList checks every signature (ERR_SIGNATURE). Who may send which envelope, and which
 * revision is current, need state: client/messaging/devices.ts.
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { base32Decode, base32Encode } from './content-link.js';
import { AlliumError, CryptoError, ProtocolError } from './errors.js';

/** Devices of one person, the primary included (specs/limits.md). */
export const MAX_DEVICES = 6;
/** Largest device envelope: it fits a mailbox item (MAX_MAILBOX_MESSAGE_BYTES). */
export const MAX_DEVICE_ENVELOPE_BYTES = 28000;
/** Largest message data synced to siblings or kept for history: a `sent` envelope then fits a mailbox item. */
export const MAX_SYNC_DATA_BYTES = 27648;
/** What an entry costs in a history chunk beyond its data (its other fields and CBOR heads, rounded up). */
export const HISTORY_ENTRY_OVERHEAD = 96;
/** The budget of one history chunk: sum of (data + HISTORY_ENTRY_OVERHEAD) over its entries; one largest entry fits. */
export const HISTORY_CHUNK_BYTES = MAX_SYNC_DATA_BYTES + HISTORY_ENTRY_OVERHEAD; // 27744
/** Most message data one history request may ask for (the default limit of an answer, too). */
export const MAX_HISTORY_SYNC_BYTES = 4 * 1024 * 1024;
/** Entries in one history chunk. */
export const MAX_HISTORY_CHUNK_ENTRIES = 1000;
export const LINK_CODE_VERSION = 1;
export const LINK_CODE_PREFIX = 'allium:link/';
export const LINK_SECRET_LEN = 16;
export const LINK_CODE_LEN = 1 + 32 + LINK_SECRET_LEN + 4; // 53
/** The ids of messages and history requests (as message frames, §8.1). */
export const DEVICE_ID_LEN = 16;

const MAX_U32 = 0xffffffff;
const L = {
  checksum: utf8('allium-v1:device-link:checksum'),
  proof: utf8('allium-v1:device-link:proof'),
};
/** What a list's signature covers: LIST_CONTEXT | CBOR(list without "sig"). */
export const LIST_CONTEXT = utf8('allium-v1 device-list');
/** What a member's signature covers: MEMBER_CONTEXT | P. */
export const MEMBER_CONTEXT = utf8('allium-v1 device-member');

// ------------------------------------------------------------------ link codes (§14.3)

/** What a link code says: the new device's identity key and the secret that proves the code was seen. */
export interface LinkCode {
  readonly device: Uint8Array;
  readonly secret: Uint8Array;
}

function codeChecksum(body: Uint8Array): Uint8Array {
  return crypto().hash(32, body, L.checksum).subarray(0, 4);
}

/** The 53-byte payload of a link code. Throws ERR_KEY_FORMAT (not a valid point), ERR_INTERNAL (a secret not 16 bytes). */
export function encodeLinkCode(c: LinkCode): Uint8Array {
  if (c.device.length !== 32 || !crypto().edIsValidPoint(c.device)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  if (c.secret.length !== LINK_SECRET_LEN) throw new AlliumError('ERR_INTERNAL', `a link secret is ${LINK_SECRET_LEN} bytes`);
  const body = concatBytes(Uint8Array.of(LINK_CODE_VERSION), c.device, c.secret);
  return concatBytes(body, codeChecksum(body));
}

/** Decodes a link code's payload; refuses, in order: length, version, checksum, key (§14.3). */
export function decodeLinkCode(code: Uint8Array): LinkCode {
  if (code.length !== LINK_CODE_LEN) throw new ProtocolError('ERR_ADDRESS_FORMAT', `a link code is ${LINK_CODE_LEN} bytes`);
  if (code[0] !== LINK_CODE_VERSION) throw new ProtocolError('ERR_ADDRESS_VERSION', `link code version ${code[0]} is not supported`);
  const body = code.subarray(0, LINK_CODE_LEN - 4);
  if (!crypto().equal(codeChecksum(body), code.subarray(LINK_CODE_LEN - 4))) {
    throw new ProtocolError('ERR_ADDRESS_CHECKSUM', 'link code checksum does not match: the code is mistyped or truncated');
  }
  const device = body.slice(1, 33);
  if (!crypto().edIsValidPoint(device)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'link code key is not a valid Ed25519 point');
  return { device, secret: body.slice(33, 33 + LINK_SECRET_LEN) };
}

/** The text form: "allium:link/" and base32 (97 characters). */
export function formatLinkCode(c: LinkCode): string {
  return LINK_CODE_PREFIX + base32Encode(encodeLinkCode(c));
}

/** Parses the text form (case and surrounding space ignored). Throws ERR_ADDRESS_FORMAT, _VERSION, _CHECKSUM. */
export function parseLinkCode(text: string): LinkCode {
  const t = text.trim().toLowerCase();
  const b32 = t.startsWith(LINK_CODE_PREFIX) ? t.slice(LINK_CODE_PREFIX.length) : '';
  if (!/^[a-z2-7]{85}$/.test(b32)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'a link code is allium:link/ and 85 characters of base32');
  let raw: Uint8Array;
  try {
    raw = base32Decode(b32);
  } catch (e) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'link code is not canonical base32', { cause: e });
  }
  return decodeLinkCode(raw);
}

/** proof = H(secret | P | D, "allium-v1:device-link:proof"): the primary saw the code. */
export function linkProof(secret: Uint8Array, person: Uint8Array, device: Uint8Array): Uint8Array {
  return crypto().hash(32, concatBytes(secret, person, device), L.proof);
}

// ------------------------------------------------------------------ device lists (§14.2)

export interface DeviceMember {
  /** The device's identity key. */
  readonly key: Uint8Array;
  /** Ed25519 by the device over MEMBER_CONTEXT | P: it consents to be P's. */
  readonly sig: Uint8Array;
}

/** A person's devices at revision `r`, signed by the person's primary key `person` (the first member). */
export interface DeviceList {
  readonly kind: 'list';
  readonly person: Uint8Array;
  readonly r: number;
  readonly members: readonly DeviceMember[];
  readonly sig: Uint8Array;
}

/** The member signature a device gives person `person`. */
export function signMembership(person: Uint8Array, deviceSecretKey: Uint8Array): Uint8Array {
  return crypto().sign(concatBytes(MEMBER_CONTEXT, person), deviceSecretKey);
}

function listBody(l: Omit<DeviceList, 'kind' | 'sig'>): Record<string, unknown> {
  return { v: 1, t: 1, p: l.person, r: l.r, d: l.members.map((m) => ({ k: m.key, s: m.sig })) };
}

/** The bytes a list's signature covers. */
export function listSigned(l: Omit<DeviceList, 'kind' | 'sig'>): Uint8Array {
  return concatBytes(LIST_CONTEXT, encodeCbor(listBody(l)));
}

/** The rules of §14.2 a list has on its own: 1 to MAX_DEVICES members, the person first, no key twice (ERR_SCHEMA). */
function checkList(l: Omit<DeviceList, 'kind' | 'sig'>): void {
  if (l.members.length < 1 || l.members.length > MAX_DEVICES) throw new ProtocolError('ERR_SCHEMA', `a device list has 1 to ${MAX_DEVICES} members`);
  if (!crypto().equal(l.members[0]!.key, l.person)) throw new ProtocolError('ERR_SCHEMA', 'a device list names its person first');
  const seen = new Set<string>();
  for (const m of l.members) {
    const k = String.fromCharCode(...m.key);
    if (seen.has(k)) throw new ProtocolError('ERR_SCHEMA', 'a device list names a device twice');
    seen.add(k);
  }
}

/** A signed list (by the primary's secret key, whose public half is `person`). Throws ERR_SCHEMA. */
export function signDeviceList(l: Omit<DeviceList, 'kind' | 'sig'>, personSecretKey: Uint8Array): DeviceList {
  checkList(l);
  return { kind: 'list', ...l, sig: crypto().sign(listSigned(l), personSecretKey) };
}

/** Checks every member signature and the list's (§14.2). Throws ERR_SIGNATURE (or ERR_KEY_FORMAT for a key that is no point). */
export function verifyDeviceList(l: DeviceList): void {
  const c = crypto();
  const memberMessage = concatBytes(MEMBER_CONTEXT, l.person);
  for (const m of l.members) {
    if (!c.edIsValidPoint(m.key)) throw new ProtocolError('ERR_KEY_FORMAT', 'a device key is not a valid Ed25519 point');
    if (!c.verify(m.sig, memberMessage, m.key)) throw new CryptoError('ERR_SIGNATURE', 'a device of the list did not sign its membership');
  }
  if (!c.verify(l.sig, listSigned(l), l.person)) throw new CryptoError('ERR_SIGNATURE', 'the device list is not signed by its person');
}

// ------------------------------------------------------------------ envelopes (§14.2)

export interface DeviceOffer {
  readonly kind: 'offer';
  readonly person: Uint8Array;
  readonly proof: Uint8Array;
}
export interface DeviceAccept {
  readonly kind: 'accept';
  readonly person: Uint8Array;
  readonly sig: Uint8Array;
}
/** A message one device sent, told to its siblings. */
export interface SentTranscript {
  readonly kind: 'sent';
  /** The recipient's (person's) identity key. */
  readonly to: Uint8Array;
  readonly id: Uint8Array;
  /** When it was sent (Unix ms). */
  readonly ts: number;
  readonly data: Uint8Array;
  /** `data` is an attachment descriptor (§12.1). */
  readonly attachment: boolean;
}
export interface HistoryRequest {
  readonly kind: 'history-request';
  readonly q: Uint8Array;
  /** Entries with ts ≥ after (Unix ms). */
  readonly after: number;
  /** Most message data to send. */
  readonly max: number;
}
export interface HistoryEntry {
  /** True for a message this person sent, false for one it received. */
  readonly outgoing: boolean;
  /** The other person's identity key (the recipient of an outgoing message, the sender of an incoming one). */
  readonly peer: Uint8Array;
  readonly id: Uint8Array;
  readonly ts: number;
  readonly data: Uint8Array;
  readonly attachment: boolean;
}
export interface HistoryChunk {
  readonly kind: 'history';
  readonly q: Uint8Array;
  readonly i: number;
  readonly last: boolean;
  readonly entries: readonly HistoryEntry[];
}

export type DeviceEnvelope = DeviceList | DeviceOffer | DeviceAccept | SentTranscript | HistoryRequest | HistoryChunk;

const zKey = zBytes(32);
const zId = zBytes(DEVICE_ID_LEN);
const zData = zBytes(undefined, MAX_SYNC_DATA_BYTES);
const listSchema = z.strictObject({
  v: z.literal(1),
  t: z.literal(1),
  p: zKey,
  r: zUint(MAX_U32),
  d: z
    .array(z.strictObject({ k: zKey, s: zBytes(64) }))
    .min(1)
    .max(MAX_DEVICES),
  sig: zBytes(64),
});
const offerSchema = z.strictObject({ v: z.literal(1), t: z.literal(2), p: zKey, proof: zBytes(32) });
const acceptSchema = z.strictObject({ v: z.literal(1), t: z.literal(3), p: zKey, s: zBytes(64) });
const sentSchema = z.strictObject({ v: z.literal(1), t: z.literal(4), to: zKey, id: zId, ts: zUint(), d: zData, a: z.literal(true).optional() });
const requestSchema = z.strictObject({ v: z.literal(1), t: z.literal(5), q: zId, after: zUint(), max: zUint(MAX_HISTORY_SYNC_BYTES) });
const entrySchema = z.strictObject({ o: z.boolean(), p: zKey, id: zId, ts: zUint(), d: zData, a: z.literal(true).optional() });
const historySchema = z.strictObject({
  v: z.literal(1),
  t: z.literal(6),
  q: zId,
  i: zUint(MAX_U32),
  last: z.boolean(),
  e: z.array(entrySchema).max(MAX_HISTORY_CHUNK_ENTRIES),
});
const envelopeSchema = z.discriminatedUnion('t', [listSchema, offerSchema, acceptSchema, sentSchema, requestSchema, historySchema]);

const flag = (a: boolean): { a?: true } => (a ? { a: true } : {});

function envelopeValue(x: DeviceEnvelope): Record<string, unknown> {
  switch (x.kind) {
    case 'list':
      checkList(x);
      return { ...listBody(x), sig: x.sig };
    case 'offer':
      return { v: 1, t: 2, p: x.person, proof: x.proof };
    case 'accept':
      return { v: 1, t: 3, p: x.person, s: x.sig };
    case 'sent':
      return { v: 1, t: 4, to: x.to, id: x.id, ts: x.ts, d: x.data, ...flag(x.attachment) };
    case 'history-request':
      return { v: 1, t: 5, q: x.q, after: x.after, max: x.max };
    case 'history':
      return {
        v: 1,
        t: 6,
        q: x.q,
        i: x.i,
        last: x.last,
        e: x.entries.map((e) => ({ o: e.outgoing, p: e.peer, id: e.id, ts: e.ts, d: e.data, ...flag(e.attachment) })),
      };
  }
}

/** Encodes an envelope. Throws ERR_SCHEMA (a shape §14.2 refuses), LimitError-free: the caller sizes history chunks. */
export function encodeDeviceEnvelope(x: DeviceEnvelope): Uint8Array {
  const value = envelopeValue(x);
  const r = envelopeSchema.safeParse(value);
  if (!r.success) throw new ProtocolError('ERR_SCHEMA', `device envelope: ${r.error.issues[0]?.path.join('.') ?? 'invalid'}`);
  const bytes = encodeCbor(value);
  if (bytes.length > MAX_DEVICE_ENVELOPE_BYTES) throw new ProtocolError('ERR_SCHEMA', `a device envelope is at most ${MAX_DEVICE_ENVELOPE_BYTES} bytes`);
  return bytes;
}

/**
 * Decodes an envelope from a peer. Throws ERR_CBOR_* (not strict CBOR, or longer than MAX_DEVICE_ENVELOPE_BYTES),
 * ERR_SCHEMA (another shape; a list not naming its person first, or naming a device twice). Signatures are not
 * checked here: verifyDeviceList.
 */
export function decodeDeviceEnvelope(bytes: Uint8Array): DeviceEnvelope {
  const d = decodeMessage(envelopeSchema, bytes, MAX_DEVICE_ENVELOPE_BYTES, 'device envelope');
  switch (d.t) {
    case 1: {
      const list: DeviceList = { kind: 'list', person: d.p, r: d.r, members: d.d.map((m) => ({ key: m.k, sig: m.s })), sig: d.sig };
      checkList(list);
      return list;
    }
    case 2:
      return { kind: 'offer', person: d.p, proof: d.proof };
    case 3:
      return { kind: 'accept', person: d.p, sig: d.s };
    case 4:
      return { kind: 'sent', to: d.to, id: d.id, ts: d.ts, data: d.d, attachment: d.a === true };
    case 5:
      return { kind: 'history-request', q: d.q, after: d.after, max: d.max };
    case 6:
      return {
        kind: 'history',
        q: d.q,
        i: d.i,
        last: d.last,
        entries: d.e.map((e) => ({ outgoing: e.o, peer: e.p, id: e.id, ts: e.ts, data: e.d, attachment: e.a === true })),
      };
  }
}

/** What an entry costs of a history chunk's budget (§14.7). */
export function entryCost(e: Pick<HistoryEntry, 'data'>): number {
  return e.data.length + HISTORY_ENTRY_OVERHEAD;
}
