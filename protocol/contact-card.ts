/**
 * Address cards (specs/messaging.md §11.1): an identity key and the name its owner suggests, with a 32-bit checksum,
 * as bytes (a QR code's byte payload) or as text (a link; upper-cased it fits a QR code's alphanumeric mode).
 *
 *   body     = u8(version = 1) | A (32) | u8(len(name)) | name          name: UTF-8, at most 64 bytes
 *   checksum = H(body, "allium-v1:contact-card:checksum")[0..4)
 *   card     = body | checksum                                          38 to 102 bytes
 *   text     = "allium:contact/" | base32(card)
 *
 * Decoding refuses, in this order: a length outside 5..102 (ERR_ADDRESS_FORMAT), another version
 * (ERR_ADDRESS_VERSION), a checksum mismatch (ERR_ADDRESS_CHECKSUM: a truncated or mistyped card ends here), a bad
 * structure or name (ERR_ADDRESS_FORMAT), a key that is not a valid point (ERR_ADDRESS_FORMAT).
 *
 * The checksum catches accidents, not forgeries: a card from an adversary checks out. Safety numbers
 * (safety-number.ts) are what tell a substituted key. Pure: no I/O.
 */
import { crypto } from '../crypto/index.js';
import { formatAddress, parseAddress } from './address.js';
import { concatBytes, utf8 } from './bytes.js';
import { base32Decode, base32Encode } from './content-link.js';
import { AlliumError, ProtocolError } from './errors.js';

export const CARD_VERSION = 1;
export const CARD_PREFIX = 'allium:contact/';
/** Longest name a card (or a contact record) carries, in UTF-8 bytes. */
export const MAX_CARD_NAME_BYTES = 64;
export const CARD_CHECKSUM_LEN = 4;
/** version, key, name length. */
const HEADER_LEN = 1 + 32 + 1;
export const MIN_CARD_BYTES = HEADER_LEN + CARD_CHECKSUM_LEN; // 38
export const MAX_CARD_BYTES = MIN_CARD_BYTES + MAX_CARD_NAME_BYTES; // 102
const CHECKSUM = utf8('allium-v1:contact-card:checksum');

/** What a card says: an identity key, its address, and the name its owner suggests ('' for none). */
export interface ContactCard {
  readonly key: Uint8Array;
  readonly address: string;
  readonly name: string;
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

/** The byte payload of a card. Throws ERR_KEY_FORMAT (not a valid point), ERR_ADDRESS_FORMAT (a refused name). */
export function encodeCard(key: Uint8Array, name = ''): Uint8Array {
  if (key.length !== 32 || !crypto().edIsValidPoint(key)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  const n = checkName(name);
  const body = concatBytes(Uint8Array.of(CARD_VERSION), key, Uint8Array.of(n.length), n);
  return concatBytes(body, checksum(body));
}

/** Decodes a card's byte payload (the order of refusals is in the header). */
export function decodeCard(card: Uint8Array): ContactCard {
  if (card.length < 1 + CARD_CHECKSUM_LEN || card.length > MAX_CARD_BYTES) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', `an address card is ${MIN_CARD_BYTES} to ${MAX_CARD_BYTES} bytes`);
  }
  if (card[0] !== CARD_VERSION) throw new ProtocolError('ERR_ADDRESS_VERSION', `address card version ${card[0]} is not supported`);
  const body = card.subarray(0, card.length - CARD_CHECKSUM_LEN);
  if (!crypto().equal(checksum(body), card.subarray(card.length - CARD_CHECKSUM_LEN))) {
    throw new ProtocolError('ERR_ADDRESS_CHECKSUM', 'address card checksum does not match: the card is mistyped or truncated');
  }
  const nl = body[HEADER_LEN - 1];
  if (nl === undefined || body.length !== HEADER_LEN + nl || nl > MAX_CARD_NAME_BYTES)
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card length does not match its name');
  let name: string;
  try {
    name = fatal.decode(body.subarray(HEADER_LEN));
  } catch (e) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card name is not UTF-8', { cause: e });
  }
  checkName(name);
  const key = body.slice(1, 33);
  if (!crypto().edIsValidPoint(key)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address card key is not a valid Ed25519 point');
  return { key, address: formatAddress(key), name };
}

/** The text form of a card: "allium:contact/…". */
export function formatCard(key: Uint8Array, name = ''): string {
  return CARD_PREFIX + base32Encode(encodeCard(key, name));
}

/**
 * Parses a card's text form, or a plain address (a card with no name). Case and surrounding space are ignored.
 * Throws ERR_ADDRESS_FORMAT, ERR_ADDRESS_VERSION, ERR_ADDRESS_CHECKSUM.
 */
export function parseCard(text: string): ContactCard {
  const t = text.trim().toLowerCase();
  if (!t.startsWith(CARD_PREFIX)) {
    const key = parseAddress(t);
    return { key, address: formatAddress(key), name: '' };
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
