/**
 * A directory source's signed statement of what it serves (specs/directory.md §6.5): the digest of the descriptors
 * its `dir` pages return (DirectoryDigest, §4, over those descriptors), how many, and the digest of the newest
 * consensus it holds. A source that shows two clients two views signs two statements for the same time; whoever
 * holds both holds the proof. A client checks each statement against what the source actually returned.
 *
 *   s = Ed25519(relay, "allium-v1 directory view" | d | u64(at) | u32(n) | (c or 0^32))
 */
import { crypto } from '../crypto/index.js';
import { fingerprintOf } from '../crypto/keys.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { CryptoError } from './errors.js';

const CTX = utf8('allium-v1 directory view');

export interface ViewFields {
  readonly at: number;
  /** DirectoryDigest of the descriptors served. */
  readonly d: Uint8Array;
  readonly n: number;
  /** Digest of the newest consensus held, or null. */
  readonly c: Uint8Array | null;
}

export interface ViewStatement extends ViewFields {
  /** The source (fingerprint). */
  readonly relay: string;
  readonly s: Uint8Array;
}

function message(v: ViewFields): Uint8Array {
  const w = new ByteWriter(12);
  w.u64(BigInt(v.at));
  w.u32(v.n);
  return concatBytes(CTX, v.d, w.done(), v.c ?? new Uint8Array(32));
}

export function signViewStatement(v: ViewFields, secretKey: Uint8Array): Uint8Array {
  return crypto().sign(message(v), secretKey);
}

/** Checks a statement's signature under the source's identity. Throws ERR_SIGNATURE. */
export function verifyViewStatement(identity: Uint8Array, m: ViewFields & { readonly s: Uint8Array }): ViewStatement {
  if (m.n > 0xffffffff || !crypto().verify(m.s, message(m), identity)) throw new CryptoError('ERR_SIGNATURE', 'directory view statement does not verify');
  return { relay: fingerprintOf(identity), at: m.at, d: m.d, n: m.n, c: m.c, s: m.s };
}
