/**
 * Device state at rest (specs/messaging.md §14.9): who our person is, whose link offer we accepted, and every device
 * list we hold (ours and other people's), kept through a GroupStorage the application gives (a directory in Node:
 * fileGroupStorage(dir); anything with load/save in a browser). Without one, it lives as long as the messenger.
 *
 *   K_dev   = K(identity seed, "allium-v1:device-store")                                        K as §5.1
 *   record  = u8(1) | nonce (24) | XAEAD(K_dev, nonce, CBOR(state), ad = "allium-v1 device-store" | name)
 *   "self"            CBOR { "v": 1, ? "p": person (32), ? "a": accepted (32) }     no "p": unlinked, no one's device
 *   "list-" | hex(P)  CBOR { "v": 1, "l": the list envelope of person P (§14.2) }
 *   "hist-" | hex(h)  CBOR { "v": 1, "o", "p", "id", "ts", "d", ? "a" }   one history entry (§14.7), h = H(p | id, K_name)[0..16)
 *   "told"            CBOR { "v": 1, "t": [ [ device (32), u32 r ] … ], "p": [ device (32) … ] }   whom our list went to
 *
 * Sealed as group state is (group-store.ts), under a key of its own: a copy of the storage alone reads nothing, and a
 * record moved under another name, or changed, does not open (ERR_MESSAGE_AUTH). A record that does not open or
 * decode is refused with the whole store, never replaced: dropping our own list would make a linked device a primary
 * again. Lists are verified again on reading (their signatures, §14.2).
 */
import { z } from 'zod';
import { crypto } from '../../crypto/index.js';
import type { Identity } from '../../protocol/address.js';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from '../../protocol/cbor.js';
import { DEVICE_ID_LEN, MAX_DEVICE_ENVELOPE_BYTES, MAX_SYNC_DATA_BYTES, type HistoryEntry } from '../../protocol/device-link.js';
import { CryptoError, ProtocolError } from '../../protocol/errors.js';

/** The record of our own standing. */
export const SELF_RECORD = 'self';
/** The prefix of a held list's record name (then the person's key in hex). */
export const LIST_RECORD_PREFIX = 'list-';
/** The prefix of a history entry's record name (then 32 hex digits, historyRecordName). */
export const HISTORY_RECORD_PREFIX = 'hist-';
/** The record of the devices our list was sent to (§14.9). */
export const TOLD_RECORD = 'told';
/** Devices a `told` record names at most: MAX_DEVICE_LISTS (devices.ts), the bound of the table it keeps. */
export const MAX_TOLD_DEVICES = 10_000;
/** Largest history record state read back: an entry of MAX_SYNC_DATA_BYTES of data and its other fields. */
export const MAX_HISTORY_RECORD_BYTES = MAX_SYNC_DATA_BYTES + 256;
const VERSION = 1;
const LABEL = utf8('allium-v1:device-store');
const NAME_LABEL = utf8('allium-v1:device-store:history-name');
const AD = utf8('allium-v1 device-store');
const XNONCE = 24;

export interface DeviceSelf {
  /** Our person's key (absent: we are unlinked and no one's device). */
  readonly person?: Uint8Array;
  /** The person whose link offer we accepted, until its list names us. */
  readonly accepted?: Uint8Array;
}

const selfSchema = z.strictObject({ v: z.literal(VERSION), p: zBytes(32).optional(), a: zBytes(32).optional() });
const listSchema = z.strictObject({ v: z.literal(VERSION), l: zBytes(undefined, MAX_DEVICE_ENVELOPE_BYTES) });
const historySchema = z.strictObject({
  v: z.literal(VERSION),
  o: z.boolean(),
  p: zBytes(32),
  id: zBytes(DEVICE_ID_LEN),
  ts: zUint(),
  d: zBytes(undefined, MAX_SYNC_DATA_BYTES),
  a: z.literal(true).optional(),
});

const toldSchema = z.strictObject({
  v: z.literal(VERSION),
  t: z.array(z.tuple([zBytes(32), zUint(0xffffffff)])).max(MAX_TOLD_DEVICES),
  p: z.array(zBytes(32)).max(MAX_TOLD_DEVICES),
});

/**
 * Whom our person's list went to (§14.9): `told`, each device with the revision it acknowledged; `pending`, devices a
 * list was being sent to when the record was saved (they may hold one of ours: a new list goes to them too).
 */
export interface DeviceTold {
  readonly told: ReadonlyArray<readonly [Uint8Array, number]>;
  readonly pending: readonly Uint8Array[];
}

/** The key device records are sealed under (derived from the identity's secret seed). */
export function deviceStoreKey(identity: Identity): Uint8Array {
  return crypto().hash(32, LABEL, identity.secretKey.subarray(0, 32));
}

/** The key history record names are made under (K_name, §14.9): names show nothing of peers or message ids. */
export function historyNameKey(identity: Identity): Uint8Array {
  return crypto().hash(32, NAME_LABEL, identity.secretKey.subarray(0, 32));
}

/** The record name of the history entry of (`peer`, `id`): "hist-" | hex(H(peer | id, K_name)[0..16)). */
export function historyRecordName(nameKey: Uint8Array, peer: Uint8Array, id: Uint8Array): string {
  return HISTORY_RECORD_PREFIX + toHex(crypto().hash(16, concatBytes(peer, id), nameKey));
}

function seal(key: Uint8Array, name: string, plain: Uint8Array): Uint8Array {
  const nonce = crypto().random(XNONCE);
  return concatBytes(Uint8Array.of(VERSION), nonce, crypto().xaeadEncrypt(plain, concatBytes(AD, utf8(name)), nonce, key));
}

/** Throws ERR_MESSAGE_AUTH for a record that does not open under `key` and `name`, ERR_SCHEMA for another version. */
function open(key: Uint8Array, name: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length < 1 + XNONCE || bytes[0] !== VERSION) throw new ProtocolError('ERR_SCHEMA', `device store ${name}: not a record of version ${VERSION}`);
  const plain = crypto().xaeadDecrypt(bytes.subarray(1 + XNONCE), concatBytes(AD, utf8(name)), bytes.subarray(1, 1 + XNONCE), key);
  if (!plain) throw new CryptoError('ERR_MESSAGE_AUTH', `device store ${name}: the record does not open under this identity`);
  return plain;
}

export function sealDeviceSelf(key: Uint8Array, s: DeviceSelf): Uint8Array {
  return seal(key, SELF_RECORD, encodeCbor({ v: VERSION, ...(s.person ? { p: s.person } : {}), ...(s.accepted ? { a: s.accepted } : {}) }));
}

export function openDeviceSelf(key: Uint8Array, bytes: Uint8Array): DeviceSelf {
  const d = decodeMessage(selfSchema, open(key, SELF_RECORD, bytes), 256, 'device self record');
  return { ...(d.p ? { person: d.p } : {}), ...(d.a ? { accepted: d.a } : {}) };
}

/** `name` is LIST_RECORD_PREFIX | hex(person); `list` the list's envelope bytes. */
export function sealDeviceList(key: Uint8Array, name: string, list: Uint8Array): Uint8Array {
  return seal(key, name, encodeCbor({ v: VERSION, l: list }));
}

/** The list envelope bytes of a list record (the caller decodes and verifies them). */
export function openDeviceList(key: Uint8Array, name: string, bytes: Uint8Array): Uint8Array {
  return decodeMessage(listSchema, open(key, name, bytes), MAX_DEVICE_ENVELOPE_BYTES + 64, 'device list record').l;
}

/** `name` is historyRecordName of the entry's peer and id. */
export function sealHistoryEntry(key: Uint8Array, name: string, e: HistoryEntry): Uint8Array {
  return seal(key, name, encodeCbor({ v: VERSION, o: e.outgoing, p: e.peer, id: e.id, ts: e.ts, d: e.data, ...(e.attachment ? { a: true } : {}) }));
}

/**
 * The history entry of a record. Throws ERR_MESSAGE_AUTH (does not open under `key` and `name`), ERR_CBOR_* (not
 * strict CBOR, or above MAX_HISTORY_RECORD_BYTES), ERR_SCHEMA (another shape, or a name not made of its peer and id).
 */
export function openHistoryEntry(key: Uint8Array, nameKey: Uint8Array, name: string, bytes: Uint8Array): HistoryEntry {
  const d = decodeMessage(historySchema, open(key, name, bytes), MAX_HISTORY_RECORD_BYTES, 'device history record');
  if (historyRecordName(nameKey, d.p, d.id) !== name) throw new ProtocolError('ERR_SCHEMA', `device store ${name}: not that entry's record`);
  return { outgoing: d.o, peer: d.p, id: d.id, ts: d.ts, data: d.d, attachment: d.a === true };
}

/** Seals the `told` record; at most MAX_TOLD_DEVICES devices in all (the caller keeps the newest). */
export function sealDeviceTold(key: Uint8Array, t: DeviceTold): Uint8Array {
  return seal(key, TOLD_RECORD, encodeCbor({ v: VERSION, t: t.told.map(([d, r]) => [d, r]), p: t.pending }));
}

/**
 * The `told` record. Throws ERR_MESSAGE_AUTH (does not open), ERR_CBOR_* (not strict CBOR, or too long), ERR_SCHEMA
 * (another shape, more than MAX_TOLD_DEVICES devices in all, a device twice).
 */
export function openDeviceTold(key: Uint8Array, bytes: Uint8Array): DeviceTold {
  const d = decodeMessage(toldSchema, open(key, TOLD_RECORD, bytes), MAX_TOLD_DEVICES * 48 + 64, 'device told record');
  const devices = [...d.t.map(([k]) => k), ...d.p];
  if (devices.length > MAX_TOLD_DEVICES) throw new ProtocolError('ERR_SCHEMA', `device store ${TOLD_RECORD}: more than ${MAX_TOLD_DEVICES} devices`);
  if (new Set(devices.map(toHex)).size !== devices.length) throw new ProtocolError('ERR_SCHEMA', `device store ${TOLD_RECORD}: a device named twice`);
  return { told: d.t.map(([k, r]) => [k, r] as const), pending: d.p };
}
