/**
 * Content-hash keys (specs/content.md §2), in the spirit of Hyphanet's CHKs.
 *
 *   plaintext block (32752 bytes) = type u8 | reserved u8 (0) | length u32 | payload | zero padding
 *   stored block    (32768 bytes) = ChaCha20-Poly1305(K, nonce 0, plaintext)
 *   routing key     = H(stored block, "allium-v1:chk:routing")
 *
 * Every stored block has one size, so the store leaks no sizes. The routing key is all a relay ever sees: it
 * checks that a block hashes to it before storing or serving, and cannot decrypt without K, which only the link
 * carries. K is either convergent, H(plaintext [| convergence secret]) — the same file gives the same link and is
 * stored once — or random, so nobody can test whether a relay holds a known file (no confirmation attack).
 * Each K encrypts exactly one plaintext, so the fixed nonce never repeats under a key.
 */
import { crypto } from '../crypto/index.js';
import { ByteReader, ByteWriter, concatBytes, utf8 } from './bytes.js';
import { AlliumError, CryptoError, ProtocolError } from './errors.js';

export const BLOCK_LEN = 32 * 1024;
export const BLOCK_PLAIN_LEN = BLOCK_LEN - 16;
export const BLOCK_HEADER_LEN = 6;
export const BLOCK_PAYLOAD_MAX = BLOCK_PLAIN_LEN - BLOCK_HEADER_LEN; // 32746

export const BlockType = {
  /** A piece of file data. */
  DATA: 0,
  /** A manifest (CBOR) describing the blocks of a file. */
  MANIFEST: 1,
  /** A whole small file inside the root block. */
  INLINE: 2,
  /** A piece of a manifest too large for one block. */
  MANIFEST_PART: 3,
  /** Reed-Solomon parity: the whole plaintext area is parity bytes, no header. */
  CHECK: 4,
} as const;
export type BlockType = (typeof BlockType)[keyof typeof BlockType];

const ROUTING = utf8('allium-v1:chk:routing');
const CONVERGENT = utf8('allium-v1:chk:convergent');
const NONCE0 = new Uint8Array(12);

export interface BlockRef {
  /** Routing key: the hash of the stored block. */
  readonly rk: Uint8Array;
  /** Decryption key. */
  readonly dk: Uint8Array;
}

export function routingKeyOf(stored: Uint8Array): Uint8Array {
  return crypto().hash(32, stored, ROUTING);
}

/** True when a stored block has the right size and hashes to `rk`. */
export function verifyStoredBlock(rk: Uint8Array, stored: Uint8Array): boolean {
  return stored.length === BLOCK_LEN && crypto().equal(routingKeyOf(stored), rk);
}

/** Lays out a typed block plaintext. */
export function blockPlaintext(type: BlockType, payload: Uint8Array): Uint8Array {
  if (payload.length > BLOCK_PAYLOAD_MAX) throw new AlliumError('ERR_INTERNAL', 'block payload too long');
  return new ByteWriter(BLOCK_PLAIN_LEN).u8(type).u8(0).u32(payload.length).bytes(payload).done();
}

export function parseBlockPlaintext(plain: Uint8Array): { type: BlockType; payload: Uint8Array } {
  const r = new ByteReader(plain, 'block');
  const type = r.u8();
  if (type > 3) throw new ProtocolError('ERR_CONTENT', `unknown block type ${type}`);
  if (r.u8() !== 0) throw new ProtocolError('ERR_CONTENT', 'reserved byte not zero');
  const len = r.u32();
  if (len > BLOCK_PAYLOAD_MAX) throw new ProtocolError('ERR_CONTENT', 'block length out of range');
  const payload = r.bytes(len);
  r.zeros();
  return { type: type as BlockType, payload };
}

export type KeyMode = 'convergent' | 'random';

/** Encrypts a 32752-byte plaintext into a stored block and its reference. */
export function encryptBlock(plain: Uint8Array, mode: KeyMode, convergenceSecret?: Uint8Array): { stored: Uint8Array; ref: BlockRef } {
  if (plain.length !== BLOCK_PLAIN_LEN) throw new AlliumError('ERR_INTERNAL', 'block plaintext size');
  const dk = mode === 'convergent' ? crypto().hash(32, convergenceSecret ? concatBytes(plain, convergenceSecret) : plain, CONVERGENT) : crypto().random(32);
  const stored = crypto().aeadEncrypt(plain, null, NONCE0, dk);
  return { stored, ref: { rk: routingKeyOf(stored), dk } };
}

/**
 * Verifies and decrypts a stored block. Throws ERR_CONTENT_TAMPERED when it does not match its key. `checked`: the
 * caller has just verified it (verifyStoredBlock), so it is not hashed again; the decryption is still authenticated.
 */
export function decryptBlock(ref: BlockRef, stored: Uint8Array, checked = false): Uint8Array {
  if (!checked && !verifyStoredBlock(ref.rk, stored)) throw new CryptoError('ERR_CONTENT_TAMPERED', 'block does not hash to its routing key');
  const plain = crypto().aeadDecrypt(stored, null, NONCE0, ref.dk);
  if (!plain) throw new CryptoError('ERR_CONTENT_TAMPERED', 'block does not decrypt under the link key');
  return plain;
}
