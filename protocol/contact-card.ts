/**
 * Address cards (specs/messaging.md §11.1): an identity key and the name its owner suggests, with a 32-bit checksum,
 * as bytes (a QR code's byte payload) or as text (a link; upper-cased it fits a QR code's alphanumeric mode).
 *
 *   body     = u8(1) | A (32) | u8(len(name)) | name                    version 1: name UTF-8, at most 64 bytes
 *            | u8(2) | A (32) | u8(flags) | u8(len(name)) | name       version 2: flags bit 0 = publishes prekeys
 *            | u8(3) | A (32) | u8(flags) | u8(len(name)) | name | mix (96)   version 3: a mix address (mix.md §8)
 *   checksum = H(body, "allium-v1:contact-card:checksum")[0..4)
 *   card     = body | checksum                                          38 to 199 bytes
 *   text     = "allium:contact/" | base32(card)
 *
 * A card without flags is written as version 1, which every reader reads; version 2 carries the flags (only bit 0,
 * PREKEYS: the identity publishes prekey records, specs/messaging.md §9.6, so a sender never writes it an offline
 * item of version 2). Version 3 adds a mix address (gateway, inbox, key: 96 bytes after the name) and allows flags 0;
 * a writer makes it only when it has a mix address. Decoding refuses, in this order: a length outside 5..199 (ERR_ADDRESS_FORMAT), another version
 * (ERR_ADDRESS_VERSION), a checksum mismatch (ERR_ADDRESS_CHECKSUM: a truncated or mistyped card ends here), a bad
 * structure, unknown flags or a bad name (ERR_ADDRESS_FORMAT), a key that is not a valid point (ERR_ADDRESS_FORMAT).
 *
 * The checksum catches accidents, not forgeries: a card from an adversary checks out. Safety numbers
 * (safety-number.ts) are what tell a substituted key. Pure: no I/O.
 */
import { crypto } from '../crypto/index.js';
import { formatAddress, parseAddress } from './address.js';
import { concatBytes, utf8 } from './bytes.js';
import { base32Decode, base32Encode } from './content-link.js';
import { AlliumError, ProtocolError } from './errors.js';

/** The version of a card without flags (every reader reads it). */
export const CARD_VERSION = 1;
/** The version of a card with flags (specs/messaging.md §11.1). */
export const CARD_VERSION_FLAGS = 2;
/** The version of a card with a mix address (specs/messaging.md §11.1, mix.md §8). */
export const CARD_VERSION_MIX = 3;
/** Flag bit 0 of a version 2 card: the identity publishes prekey records (§9.6). The only flag defined. */
export const CARD_FLAG_PREKEYS = 0x01;
export const CARD_PREFIX = 'allium:contact/';
/** Longest name a card (or a contact record) carries, in UTF-8 bytes. */
export const MAX_CARD_NAME_BYTES = 64;
export const CARD_CHECKSUM_LEN = 4;
/** version, key, name length (version 1); version 2 has a flags byte before the name length. */
const HEADER_LEN = 1 + 32 + 1;
export const MIN_CARD_BYTES = HEADER_LEN + CARD_CHECKSUM_LEN; // 38
/** A mix address in a version 3 card: gateway | inbox | key. */
export const CARD_MIX_LEN = 96;
export const MAX_CARD_BYTES = MIN_CARD_BYTES + 1 + MAX_CARD_NAME_BYTES + CARD_MIX_LEN; // 199 (version 3)
const CHECKSUM = utf8('allium-v1:contact-card:checksum');

/** What a card says: an identity key, its address, and the name its owner suggests ('' for none). */
export interface ContactCard {
  readonly key: Uint8Array;
  readonly address: string;
  readonly name: string;
  /** The card says the identity publishes prekey records (a version 2 card with CARD_FLAG_PREKEYS; §9.6). */
  readonly prekeys: boolean;
  /** The identity's mix address (a version 3 card; specs/mix.md §8), where message mode reaches it. */
  readonly mix?: CardMixAddress;
}

/** A mix address as a card carries it (specs/mix.md §1). */
export interface CardMixAddress {
  readonly gateway: Uint8Array;
  readonly inbox: Uint8Array;
  readonly key: Uint8Array;
}

/** What a card may say besides the key and the name. */
export interface CardFlags {
  /** The identity publishes prekey records (specs/messaging.md §9.6): senders must never write it version 2 items. */
  readonly prekeys?: boolean;
  /** A mix address (makes the card version 3). */
  readonly mix?: CardMixAddress;
}

const fatal = new TextDecoder('utf-8', { fatal: true });

/**
 * Characters a name may not hold (§11.1 step 4): C0 controls, DEL, C1 controls, and the bidirectional formatting
 * characters that can make a name display as another.
 */
const REFUSED = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/**
 * The UTF-8 bytes of a card or contact name, or ERR_ADDRESS_FORMAT for one longer than MAX_CARD_NAME_BYTES or
 * holding a refused character. `allowEmpty`: a card may have no name; a contact record may not.
 */
export function checkName(name: string, allowEmpty = true): Uint8Array {
  const bytes = utf8(name);
  if (bytes.length > MAX_CARD_NAME_BYTES) throw new ProtocolError('ERR_ADDRESS_FORMAT', `a contact name is at most ${MAX_CARD_NAME_BYTES} bytes of UTF-8`);
  if (!allowEmpty && bytes.length === 0) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'a contact name is not empty');
  if (REFUSED.test(name)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'a contact name holds a control or bidirectional formatting character');
  return bytes;
}

function checksum(body: Uint8Array): Uint8Array {
  return crypto().hash(32, body, CHECKSUM).subarray(0, CARD_CHECKSUM_LEN);
}

/**
 * The byte payload of a card: version 1 without flags, version 2 with them. Throws ERR_KEY_FORMAT (not a valid
 * point), ERR_ADDRESS_FORMAT (a refused name).
 */
export function encodeCard(key: Uint8Array, name = '', flags: CardFlags = {}): Uint8Array {
  if (key.length !== 32 || !crypto().edIsValidPoint(key)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  const n = checkName(name);
  const f = flags.prekeys ? CARD_FLAG_PREKEYS : 0;
  const mix = flags.mix;
  if (mix) {
    if (mix.gateway.length !== 32 || mix.inbox.length !== 32 || !crypto().x25519IsUsable(mix.key) || !crypto().edIsValidPoint(mix.gateway))
      throw new AlliumError('ERR_KEY_FORMAT', 'a mix address is a gateway identity, an inbox and a usable X25519 key of 32 bytes each');
    const body = concatBytes(Uint8Array.of(CARD_VERSION_MIX), key, Uint8Array.of(f), Uint8Array.of(n.length), n, mix.gateway, mix.inbox, mix.key);
    return concatBytes(body, checksum(body));
  }
  const head = f === 0 ? Uint8Array.of(CARD_VERSION) : Uint8Array.of(CARD_VERSION_FLAGS);
  const body = concatBytes(head, key, ...(f === 0 ? [] : [Uint8Array.of(f)]), Uint8Array.of(n.length), n);
  return concatBytes(body, checksum(body));
}

/** Decodes a card's byte payload (the order of refusals is in the header). */
export function decodeCard(card: Uint8Array): ContactCard {
  if (card.length < 1 + CARD_CHECKSUM_LEN || card.length > MAX_CARD_BYTES) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', `an address card is ${MIN_CARD_BYTES} to ${MAX_CARD_BYTES} bytes`);
  }
  const version = card[0];
  if (version !== CARD_VERSION && version !== CARD_VERSION_FLAGS && version !== CARD_VERSION_MIX)
    throw new ProtocolError('ERR_ADDRESS_VERSION', `address card version ${version} is not supported`);
  const body = card.subarray(0, card.length - CARD_CHECKSUM_LEN);
  if (!crypto().equal(checksum(body), card.subarray(card.length - CARD_CHECKSUM_LEN))) {
    throw new ProtocolError('ERR_ADDRESS_CHECKSUM', 'address card checksum does not match: the card is mistyped or truncated');
  }
  const header = version === CARD_VERSION ? HEADER_LEN : HEADER_LEN + 1;
  const flags = version === CARD_VERSION ? 0 : body[HEADER_LEN - 1];
  const nl = body[header - 1];
  const tail = version === CARD_VERSION_MIX ? CARD_MIX_LEN : 0;
  if (nl === undefined || flags === undefined || body.length !== header + nl + tail || nl > MAX_CARD_NAME_BYTES)
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card length does not match its name');
  // Version 2 exists for its flags: none set, or one not defined, is not a card a writer makes.
  if ((version === CARD_VERSION_FLAGS && flags === 0) || (flags & ~CARD_FLAG_PREKEYS) !== 0)
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card flags are not defined');
  let name: string;
  try {
    name = fatal.decode(body.subarray(header, header + nl));
  } catch (e) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card name is not UTF-8', { cause: e });
  }
  checkName(name);
  const key = body.slice(1, 33);
  if (!crypto().edIsValidPoint(key)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card key is not a valid Ed25519 point');
  const fields = { key, address: formatAddress(key), name, prekeys: (flags & CARD_FLAG_PREKEYS) !== 0 };
  if (tail === 0) return fields;
  const m = header + nl;
  const mix = { gateway: body.slice(m, m + 32), inbox: body.slice(m + 32, m + 64), key: body.slice(m + 64, m + 96) };
  if (!crypto().edIsValidPoint(mix.gateway)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card mix gateway is not a valid Ed25519 point');
  if (!crypto().x25519IsUsable(mix.key)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card mix key is an X25519 point of small order');
  return { ...fields, mix };
}

/** The text form of a card: "allium:contact/…". */
export function formatCard(key: Uint8Array, name = '', flags: CardFlags = {}): string {
  return CARD_PREFIX + base32Encode(encodeCard(key, name, flags));
}

/**
 * Parses a card's text form, or a plain address (a card with no name). Case and surrounding space are ignored.
 * Throws ERR_ADDRESS_FORMAT, ERR_ADDRESS_VERSION, ERR_ADDRESS_CHECKSUM.
 */
export function parseCard(text: string): ContactCard {
  const t = text.trim().toLowerCase();
  if (!t.startsWith(CARD_PREFIX)) {
    const key = parseAddress(t);
    return { key, address: formatAddress(key), name: '', prekeys: false };
  }
  const b32 = t.slice(CARD_PREFIX.length);
  if (b32.length < 8 || b32.length > Math.ceil((MAX_CARD_BYTES * 8) / 5) || !/^[a-z2-7]+$/.test(b32)) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'an address card is allium:contact/ and base32');
  }
  let raw: Uint8Array;
  try {
    raw = base32Decode(b32);
  } catch (e) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card is not canonical base32', { cause: e });
  }
  return decodeCard(raw);
}
