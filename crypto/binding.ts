/**
 * The libsodium operations Allium uses, as one interface with two implementations: sodium-native (native libsodium,
 * Node only, several times faster) and libsodium-wrappers-sumo (libsodium compiled to WebAssembly; Node and browsers).
 * Both are the same libsodium, so every output is byte-identical; test/crypto/binding.test.ts runs every vector
 * through both.
 *
 * Output-parameter style (as sodium-native) so the hot path allocates nothing with the native binding. Only
 * crypto/ imports a binding; everything else uses the facade in crypto/index.ts.
 */
export interface SodiumBinding {
  readonly name: 'sodium-native' | 'libsodium-wrappers';
  randomFill(out: Uint8Array): void;
  /** BLAKE2b with out.length bytes of output (16..64) and an optional key (16..64 bytes). */
  blake2b(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
  x25519Base(out: Uint8Array, scalar: Uint8Array): void;
  /** Returns false (and leaves out unspecified) when the result is all zero, i.e. the peer sent a small-order point. */
  x25519(out: Uint8Array, scalar: Uint8Array, point: Uint8Array): boolean;
  ed25519SeedKeypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
  ed25519Sign(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** ChaCha20 (IETF, 96-bit nonce) XOR starting at block `ic`; out may be the same buffer as input. */
  chacha20Xor(out: Uint8Array, input: Uint8Array, nonce: Uint8Array, ic: number, key: Uint8Array): void;
  /** Poly1305 one-time authenticator. */
  poly1305(out: Uint8Array, message: Uint8Array, key: Uint8Array): void;
  /** ChaCha20-Poly1305-IETF; returns ciphertext||tag. */
  aeadEncrypt(message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  /** As aeadEncrypt, into `out` (exactly message.length + 16 bytes; it must not overlap `message`). */
  aeadEncryptInto(out: Uint8Array, message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): void;
  /**
   * Decrypts ciphertext||tag in place: on success the plaintext is the first length − 16 bytes of `buf` (returned as
   * a view of it). On failure returns null and what `buf` holds is unspecified (native libsodium clears it); the tag is
   * checked before any plaintext is written, so a forgery never yields plaintext.
   */
  aeadDecryptInPlace(buf: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null;
  /** Returns null when the tag does not verify. */
  aeadDecrypt(ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null;
  /** XChaCha20-Poly1305-IETF (24-byte nonce); for the benchmark's reference figures and sealed storage. */
  xaeadEncrypt(message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  xaeadDecrypt(ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null;
  /** Converts an Ed25519 public key to its X25519 form; false if the key is not a valid point. */
  ed25519PkToX25519(out: Uint8Array, publicKey: Uint8Array): boolean;
  ed25519SkToX25519(out: Uint8Array, secretKey: Uint8Array): void;
  sealedBoxSeal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  sealedBoxOpen(ciphertext: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null;
  /** SHA-512 (FIPS 180-4) into a 64-byte out; only for Ed25519 key expansion and expanded-key signing. */
  sha512(out: Uint8Array, input: Uint8Array): void;
  /** True for the canonical encoding of a point of the prime-order subgroup that is not of small order. */
  ed25519IsValidPoint(point: Uint8Array): boolean;
  /** out = n·P without clamping n; false for an invalid or small-order P, a zero n, or the identity as result. */
  ed25519ScalarMult(out: Uint8Array, n: Uint8Array, point: Uint8Array): boolean;
  /** out = n·B without clamping n; false when n is zero mod L. */
  ed25519ScalarMultBase(out: Uint8Array, n: Uint8Array): boolean;
  /** out (32 bytes) = wide (64 bytes, little-endian) mod L. */
  ed25519ScalarReduce(out: Uint8Array, wide: Uint8Array): void;
  /** out = (x + y) mod L for little-endian x, y below 2^255 (libsodium adds only 256 bits before reducing). */
  ed25519ScalarAdd(out: Uint8Array, x: Uint8Array, y: Uint8Array): void;
  /** out = (x · y) mod L for any 32-byte little-endian x, y. */
  ed25519ScalarMul(out: Uint8Array, x: Uint8Array, y: Uint8Array): void;
  /** Constant-time comparison of equal-length buffers. */
  equal(a: Uint8Array, b: Uint8Array): boolean;
  wipe(buf: Uint8Array): void;
}
