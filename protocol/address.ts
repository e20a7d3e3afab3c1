/**
 * Identity addresses (specs/messaging.md §1), in the manner of Tor's v3 onion addresses (rend-spec-v3 §6).
 *
 * An identity is an Ed25519 key pair; its address is the public key A in text, with a checksum against typos:
 *
 *   checksum = H(A | version, "allium-v1:address:checksum")[0..2)
 *   address  = base32(A (32) | checksum (2) | version u8) ".allium"          (35 bytes = exactly 56 characters)
 *
 * base32 is RFC 4648's alphabet in lower case without padding (protocol/content-link.ts). Parsing is
 * case-insensitive, as for host names, and refuses, in this order: text of the wrong shape (ERR_ADDRESS_FORMAT), an
 * unknown version (ERR_ADDRESS_VERSION), a checksum mismatch (ERR_ADDRESS_CHECKSUM), and a key that is not the
 * canonical encoding of a point of Ed25519's prime-order subgroup (ERR_ADDRESS_FORMAT).
 *
 * The checksum is two bytes, so it catches typos, not attacks: a one-character change to the key part goes
 * unnoticed with probability about 2^-16 (times the half chance that the new key is a valid point). Such an address
 * names a key nobody holds, so the mistake fails closed. Nobody can make an address that a typo of yours reaches:
 * that needs the secret key of a given public key.
 *
 * The address is never sent to relays: they see only blinded keys (protocol/key-blinding.ts).
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { base32Decode, base32Encode } from './content-link.js';
import { AlliumError, ProtocolError } from './errors.js';

export const ADDRESS_VERSION = 1;
export const ADDRESS_SUFFIX = '.allium';
/** Characters before the suffix: base32 of 35 bytes. */
export const ADDRESS_BASE32_LEN = 56;
const CHECKSUM_LEN = 2;
const CHECKSUM = utf8('allium-v1:address:checksum');

/** An identity: an Ed25519 key pair (libsodium form; the seed is the secretKey's first 32 bytes). */
export type Identity = KeyPair;

/** A new identity, or the one derived from a 32-byte seed. */
export function createIdentity(seed?: Uint8Array): Identity {
  const kp = crypto().ed25519Keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.secretKey };
}

function checksum(publicKey: Uint8Array, version: number): Uint8Array {
  return crypto()
    .hash(32, concatBytes(publicKey, Uint8Array.of(version)), CHECKSUM)
    .subarray(0, CHECKSUM_LEN);
}

/** The address of an identity's public key. Throws ERR_KEY_FORMAT for a key that is not a valid point. */
export function formatAddress(publicKey: Uint8Array): string {
  if (!crypto().edIsValidPoint(publicKey)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  const raw = concatBytes(publicKey, checksum(publicKey, ADDRESS_VERSION), Uint8Array.of(ADDRESS_VERSION));
  return base32Encode(raw) + ADDRESS_SUFFIX;
}

/**
 * The identity key an address names. Throws ERR_ADDRESS_FORMAT, ERR_ADDRESS_VERSION or ERR_ADDRESS_CHECKSUM (see the
 * header); never accepts an address with a changed character as some other address.
 */
export function parseAddress(text: string): Uint8Array {
  const t = text.trim().toLowerCase();
  if (!t.endsWith(ADDRESS_SUFFIX)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'an address ends in .allium');
  const b32 = t.slice(0, -ADDRESS_SUFFIX.length);
  if (b32.length !== ADDRESS_BASE32_LEN || !/^[a-z2-7]+$/.test(b32)) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', `an address has ${ADDRESS_BASE32_LEN} base32 characters before .allium`);
  }
  let raw: Uint8Array;
  try {
    raw = base32Decode(b32);
  } catch (e) {
    throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address is not canonical base32', { cause: e });
  }
  const publicKey = raw.slice(0, 32);
  const version = raw[34]!;
  if (version !== ADDRESS_VERSION) throw new ProtocolError('ERR_ADDRESS_VERSION', `address version ${version} is not supported`);
  if (!crypto().equal(checksum(publicKey, version), raw.subarray(32, 34))) {
    throw new ProtocolError('ERR_ADDRESS_CHECKSUM', 'address checksum does not match: the address is mistyped or truncated');
  }
  if (!crypto().edIsValidPoint(publicKey)) throw new ProtocolError('ERR_ADDRESS_FORMAT', 'address key is not a valid Ed25519 point');
  return publicKey;
}

/** True when two address texts name the same identity (the text may differ in case and surrounding space). */
export function sameAddress(a: string, b: string): boolean {
  return crypto().equal(parseAddress(a), parseAddress(b));
}
