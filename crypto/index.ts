/**
 * Allium's crypto facade: fixed algorithms over libsodium, length checks, typed errors. Callers never know which
 * libsodium binding they got (sodium-native in Node when it installed, else libsodium-wrappers-sumo).
 *
 *   hash            BLAKE2b (keyed when a key is given)
 *   x25519          key agreement; the all-zero result of a small-order point is refused (ERR_BAD_POINT)
 *   ed25519         signatures
 *   chacha20/poly1305  the raw primitives under the relay-cell layer (specs/relay-crypto.md)
 *   aead            ChaCha20-Poly1305-IETF (link frames), XChaCha20-Poly1305 (stored and sealed data)
 *   seal/open       sealed boxes (X25519 + XSalsa20-Poly1305)
 *   ed25519 scalars and points, SHA-512, expanded-key signing: only for endpoint key blinding (specs/messaging.md §2)
 *
 * Call `await initCrypto()` once; afterwards every function is synchronous.
 */
import type { SodiumBinding } from './binding.js';
import { AlliumError, CryptoError } from '../errors/index.js';
import { pooledRandomFill } from './random-pool.js';

/** A fixed scalar for x25519IsUsable (any scalar serves: clamping makes it a multiple of the cofactor). */
const USABLE_PROBE_SCALAR = new Uint8Array(32).fill(0x55);

export type BindingName = SodiumBinding['name'];
export type BindingChoice = 'auto' | 'native' | 'wasm';

export const KEY_LEN = 32;
export const X25519_LEN = 32;
export const ED25519_PUBLIC_LEN = 32;
export const ED25519_SECRET_LEN = 64;
export const SIGNATURE_LEN = 64;
export const NONCE_LEN = 12;
export const XNONCE_LEN = 24;
export const TAG_LEN = 16;
export const SEAL_OVERHEAD = 48;
export const ED25519_SCALAR_LEN = 32;
export const SHA512_LEN = 64;

/**
 * An Ed25519 signing key in RFC 8032's expanded form: the secret scalar s (with A = s·B) and the 32-byte prefix
 * that derives nonces. An ordinary key expands from its seed; a blinded key (specs/messaging.md §2) exists only in
 * this form.
 */
export interface ExpandedSigningKey {
  readonly scalar: Uint8Array;
  readonly prefix: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function checkLen(name: string, b: Uint8Array, len: number): void {
  if (!(b instanceof Uint8Array) || b.length !== len) {
    throw new AlliumError('ERR_KEY_FORMAT', `${name} must be ${len} bytes`);
  }
}

export class Crypto {
  constructor(private readonly b: SodiumBinding) {}

  get bindingName(): BindingName {
    return this.b.name;
  }

  random(n: number): Uint8Array {
    const out = new Uint8Array(n);
    if (n > 0) this.b.randomFill(out);
    return out;
  }

  randomFill(out: Uint8Array): void {
    if (out.length > 0) this.b.randomFill(out);
  }

  /**
   * A number in [0, 1) from 53 random bits: `(u64(random(8)) >> 11) / 2^53` (specs/README.md §Notation). Every
   * security-relevant random choice uses this, randomInt or shuffle, never Math.random.
   */
  uniform(): number {
    const b = this.random(8);
    const v = new DataView(b.buffer, b.byteOffset, 8);
    return (v.getUint32(0) * 2 ** 21 + (v.getUint32(4) >>> 11)) / 2 ** 53;
  }

  /** An integer in [0, n) for an integer 1 ≤ n ≤ 2^32, without modulo bias (rejection sampling on 32 bits). */
  randomInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new AlliumError('ERR_INTERNAL', 'randomInt needs an integer bound in [1, 2^32]');
    const limit = 2 ** 32 - (2 ** 32 % n); // the largest multiple of n that fits: draws at or above it are redrawn
    for (;;) {
      const b = this.random(4);
      const x = new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `list` in place, every order equally likely (Fisher–Yates with randomInt), and returns it. */
  shuffle<T>(list: T[]): T[] {
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.randomInt(i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
    return list;
  }

  /** BLAKE2b-`outLen` of `input`, keyed with `key` when given. */
  hash(outLen: number, input: Uint8Array, key?: Uint8Array): Uint8Array {
    if (outLen < 16 || outLen > 64) throw new AlliumError('ERR_INTERNAL', 'hash length out of range');
    if (key !== undefined && (key.length < 16 || key.length > 64)) throw new AlliumError('ERR_INTERNAL', 'hash key length out of range');
    const out = new Uint8Array(outLen);
    this.b.blake2b(out, input, key);
    return out;
  }

  hashInto(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void {
    this.b.blake2b(out, input, key);
  }

  /** X25519 key pair; with a seed, the seed is the secret scalar (libsodium clamps it). */
  x25519Keypair(seed?: Uint8Array): KeyPair {
    const secretKey = seed ? Uint8Array.from(seed) : this.random(X25519_LEN);
    checkLen('x25519 secret key', secretKey, X25519_LEN);
    const publicKey = new Uint8Array(X25519_LEN);
    this.b.x25519Base(publicKey, secretKey);
    return { publicKey, secretKey };
  }

  x25519Public(secretKey: Uint8Array): Uint8Array {
    checkLen('x25519 secret key', secretKey, X25519_LEN);
    const out = new Uint8Array(X25519_LEN);
    this.b.x25519Base(out, secretKey);
    return out;
  }

  /** X25519(secret, point). Throws ERR_BAD_POINT for small-order points (all-zero shared secret). */
  x25519(secretKey: Uint8Array, point: Uint8Array): Uint8Array {
    checkLen('x25519 secret key', secretKey, X25519_LEN);
    checkLen('x25519 public key', point, X25519_LEN);
    const out = new Uint8Array(X25519_LEN);
    if (!this.b.x25519(out, secretKey, point)) throw new CryptoError('ERR_BAD_POINT', 'x25519 produced the all-zero output');
    return out;
  }

  ed25519Keypair(seed?: Uint8Array): KeyPair & { readonly seed: Uint8Array } {
    const s = seed ? Uint8Array.from(seed) : this.random(32);
    checkLen('ed25519 seed', s, 32);
    const publicKey = new Uint8Array(ED25519_PUBLIC_LEN);
    const secretKey = new Uint8Array(ED25519_SECRET_LEN);
    this.b.ed25519SeedKeypair(publicKey, secretKey, s);
    return { publicKey, secretKey, seed: s };
  }

  sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
    checkLen('ed25519 secret key', secretKey, ED25519_SECRET_LEN);
    const sig = new Uint8Array(SIGNATURE_LEN);
    this.b.ed25519Sign(sig, message, secretKey);
    return sig;
  }

  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== SIGNATURE_LEN || publicKey.length !== ED25519_PUBLIC_LEN) return false;
    return this.b.ed25519Verify(signature, message, publicKey);
  }

  /** Throws ERR_SIGNATURE unless the signature verifies. */
  verifyOrThrow(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array, what: string): void {
    if (!this.verify(signature, message, publicKey)) throw new CryptoError('ERR_SIGNATURE', `${what}: signature does not verify`);
  }

  /** The X25519 form of an Ed25519 public key (RFC 7748 birational map). Throws ERR_KEY_FORMAT for invalid points. */
  edPublicToX25519(publicKey: Uint8Array): Uint8Array {
    checkLen('ed25519 public key', publicKey, ED25519_PUBLIC_LEN);
    const out = new Uint8Array(X25519_LEN);
    if (!this.b.ed25519PkToX25519(out, publicKey)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 public key');
    return out;
  }

  /** The X25519 secret scalar matching edPublicToX25519 of the same key pair. */
  edSecretToX25519(secretKey: Uint8Array): Uint8Array {
    checkLen('ed25519 secret key', secretKey, ED25519_SECRET_LEN);
    const out = new Uint8Array(X25519_LEN);
    this.b.ed25519SkToX25519(out, secretKey);
    return out;
  }

  /** SHA-512. Allium hashes with BLAKE2b; this exists for Ed25519's own key expansion and nonces (RFC 8032). */
  sha512(input: Uint8Array): Uint8Array {
    const out = new Uint8Array(SHA512_LEN);
    this.b.sha512(out, input);
    return out;
  }

  /**
   * True when `point` is an X25519 public key one can agree a key with: 32 bytes, not of small order (an X25519 with
   * any clamped scalar gives the all-zero output exactly for those; sealed boxes refuse them).
   */
  x25519IsUsable(point: Uint8Array): boolean {
    if (!(point instanceof Uint8Array) || point.length !== X25519_LEN) return false;
    const out = new Uint8Array(X25519_LEN);
    return this.b.x25519(out, USABLE_PROBE_SCALAR, point);
  }

  /** True for the canonical encoding of a prime-order-subgroup point that is not of small order. */
  edIsValidPoint(point: Uint8Array): boolean {
    return point instanceof Uint8Array && point.length === ED25519_PUBLIC_LEN && this.b.ed25519IsValidPoint(point);
  }

  /** n·P without clamping n. Throws ERR_BAD_POINT for an invalid or small-order P, or an identity result. */
  edScalarMult(n: Uint8Array, point: Uint8Array): Uint8Array {
    checkLen('ed25519 scalar', n, ED25519_SCALAR_LEN);
    checkLen('ed25519 point', point, ED25519_PUBLIC_LEN);
    const out = new Uint8Array(ED25519_PUBLIC_LEN);
    if (!this.b.ed25519ScalarMult(out, n, point)) throw new CryptoError('ERR_BAD_POINT', 'ed25519 scalar multiplication refused its input');
    return out;
  }

  /** n·B without clamping n. Throws ERR_BAD_POINT when n is zero mod L. */
  edScalarMultBase(n: Uint8Array): Uint8Array {
    checkLen('ed25519 scalar', n, ED25519_SCALAR_LEN);
    const out = new Uint8Array(ED25519_PUBLIC_LEN);
    if (!this.b.ed25519ScalarMultBase(out, n)) throw new CryptoError('ERR_BAD_POINT', 'ed25519 base multiplication by zero');
    return out;
  }

  /** A 64-byte little-endian integer (or a 32-byte one) reduced mod L. */
  edScalarReduce(x: Uint8Array): Uint8Array {
    if (x.length !== ED25519_SCALAR_LEN && x.length !== SHA512_LEN) throw new AlliumError('ERR_KEY_FORMAT', 'a scalar to reduce is 32 or 64 bytes');
    const wide = new Uint8Array(SHA512_LEN);
    wide.set(x);
    const out = new Uint8Array(ED25519_SCALAR_LEN);
    this.b.ed25519ScalarReduce(out, wide);
    this.b.wipe(wide);
    return out;
  }

  /** (x + y) mod L, for any 32-byte x, y (both are reduced first: libsodium's addition keeps only 256 bits). */
  edScalarAdd(x: Uint8Array, y: Uint8Array): Uint8Array {
    checkLen('ed25519 scalar', x, ED25519_SCALAR_LEN);
    checkLen('ed25519 scalar', y, ED25519_SCALAR_LEN);
    const xr = this.edScalarReduce(x);
    const yr = this.edScalarReduce(y);
    const out = new Uint8Array(ED25519_SCALAR_LEN);
    this.b.ed25519ScalarAdd(out, xr, yr);
    this.wipe(xr, yr);
    return out;
  }

  /** (x · y) mod L. */
  edScalarMul(x: Uint8Array, y: Uint8Array): Uint8Array {
    checkLen('ed25519 scalar', x, ED25519_SCALAR_LEN);
    checkLen('ed25519 scalar', y, ED25519_SCALAR_LEN);
    const out = new Uint8Array(ED25519_SCALAR_LEN);
    this.b.ed25519ScalarMul(out, x, y);
    return out;
  }

  /**
   * The expanded form of an ordinary Ed25519 secret key (libsodium form, seed | public key): SHA-512 of the seed,
   * the first half clamped (RFC 8032 §5.1.5) and reduced mod L, the second half the prefix. The public key is
   * recomputed from the scalar, not taken from the secret key's second half.
   */
  edExpandSecret(secretKey: Uint8Array): ExpandedSigningKey {
    checkLen('ed25519 secret key', secretKey, ED25519_SECRET_LEN);
    const h = this.sha512(secretKey.subarray(0, 32));
    h[0]! &= 248;
    h[31]! &= 127;
    h[31]! |= 64;
    const scalar = this.edScalarReduce(h.subarray(0, 32));
    const prefix = h.slice(32);
    this.b.wipe(h);
    return { scalar, prefix, publicKey: this.edScalarMultBase(scalar) };
  }

  /**
   * Ed25519 signing (RFC 8032 §5.1.6) with an expanded key; the signature verifies with `verify` under
   * key.publicKey, and is byte-identical to `sign` for a key from edExpandSecret. The caller guarantees that
   * publicKey = scalar·B (a wrong one makes signatures that do not verify and can leak the scalar).
   *   r = SHA-512(prefix | M) mod L;  R = r·B;  k = SHA-512(R | A | M) mod L;  S = (r + k·s) mod L;  sig = R | S
   */
  signExpanded(message: Uint8Array, key: ExpandedSigningKey): Uint8Array {
    checkLen('ed25519 scalar', key.scalar, ED25519_SCALAR_LEN);
    checkLen('ed25519 prefix', key.prefix, 32);
    checkLen('ed25519 public key', key.publicKey, ED25519_PUBLIC_LEN);
    const rInput = concat(key.prefix, message);
    const rWide = this.sha512(rInput);
    const r = this.edScalarReduce(rWide);
    const R = this.edScalarMultBase(r);
    const kWide = this.sha512(concat(R, key.publicKey, message));
    const k = this.edScalarReduce(kWide);
    const ks = this.edScalarMul(k, key.scalar);
    const S = this.edScalarAdd(r, ks);
    const sig = concat(R, S);
    this.wipe(rInput, rWide, r, ks);
    return sig;
  }

  chacha20Xor(out: Uint8Array, input: Uint8Array, nonce: Uint8Array, ic: number, key: Uint8Array): void {
    this.b.chacha20Xor(out, input, nonce, ic, key);
  }

  poly1305(out: Uint8Array, message: Uint8Array, key: Uint8Array): void {
    this.b.poly1305(out, message, key);
  }

  aeadEncrypt(message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array {
    checkLen('aead nonce', nonce, NONCE_LEN);
    checkLen('aead key', key, KEY_LEN);
    return this.b.aeadEncrypt(message, ad, nonce, key);
  }

  /**
   * As aeadEncrypt, into `out`, which must be exactly message.length + 16 bytes and not overlap `message`: a caller
   * sealing many messages at once gives them one buffer instead of one allocation each.
   */
  aeadEncryptInto(out: Uint8Array, message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): void {
    checkLen('aead nonce', nonce, NONCE_LEN);
    checkLen('aead key', key, KEY_LEN);
    checkLen('aead output', out, message.length + 16);
    if (out.buffer === message.buffer && out.byteOffset < message.byteOffset + message.length && message.byteOffset < out.byteOffset + out.length)
      throw new AlliumError('ERR_INTERNAL', 'aead output overlaps its input');
    this.b.aeadEncryptInto(out, message, ad, nonce, key);
  }

  aeadDecrypt(ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null {
    checkLen('aead nonce', nonce, NONCE_LEN);
    checkLen('aead key', key, KEY_LEN);
    return this.b.aeadDecrypt(ciphertext, ad, nonce, key);
  }

  /** As aeadDecrypt, but the plaintext overwrites the ciphertext: the result is a view of `buf` (null if forged). */
  aeadDecryptInPlace(buf: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null {
    checkLen('aead nonce', nonce, NONCE_LEN);
    checkLen('aead key', key, KEY_LEN);
    return this.b.aeadDecryptInPlace(buf, ad, nonce, key);
  }

  xaeadEncrypt(message: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array {
    checkLen('xaead nonce', nonce, XNONCE_LEN);
    checkLen('xaead key', key, KEY_LEN);
    return this.b.xaeadEncrypt(message, ad, nonce, key);
  }

  xaeadDecrypt(ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null {
    checkLen('xaead nonce', nonce, XNONCE_LEN);
    checkLen('xaead key', key, KEY_LEN);
    return this.b.xaeadDecrypt(ciphertext, ad, nonce, key);
  }

  seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array {
    checkLen('x25519 public key', publicKey, X25519_LEN);
    return this.b.sealedBoxSeal(message, publicKey);
  }

  open(ciphertext: Uint8Array, keys: KeyPair): Uint8Array | null {
    return this.b.sealedBoxOpen(ciphertext, keys.publicKey, keys.secretKey);
  }

  /** Constant-time equality; false for different lengths. */
  equal(a: Uint8Array, b: Uint8Array): boolean {
    return this.b.equal(a, b);
  }

  wipe(...bufs: Uint8Array[]): void {
    for (const buf of bufs) this.b.wipe(buf);
  }
}

/**
 * The facade's state lives on globalThis, so that a program which ends up with two copies of this module (a
 * bundler's split chunks, or CommonJS and ESM loaders side by side) still shares one initialised binding.
 */
interface FacadeState {
  current: Crypto | null;
  loaded: Map<BindingName, Crypto>;
}
const STATE_KEY = Symbol.for('allium.crypto.facade');
const state: FacadeState = ((globalThis as Record<symbol, unknown>)[STATE_KEY] as FacadeState | undefined) ?? {
  current: null,
  loaded: new Map<BindingName, Crypto>(),
};
(globalThis as Record<symbol, unknown>)[STATE_KEY] = state;
const loaded = state.loaded;

/** Loads one binding by name (both are cached); `native` returns null where sodium-native is not installed. */
export async function loadCrypto(which: 'native' | 'wasm'): Promise<Crypto | null> {
  const name: BindingName = which === 'native' ? 'sodium-native' : 'libsodium-wrappers';
  const have = loaded.get(name);
  if (have) return have;
  let binding: SodiumBinding | null;
  if (which === 'native') {
    // Loaded on demand: a relay with sodium-native never pays for the WebAssembly build's memory, and a browser
    // bundle never sees node:module.
    binding = typeof process !== 'undefined' && process.versions?.node ? (await import('./binding-native.js')).loadNativeBinding() : null;
  } else {
    binding = await (await import('./binding-wasm.js')).loadWasmBinding();
  }
  if (!binding) return null;
  // Short draws come from a pool the binding fills 16 KiB at a time (crypto/random-pool.ts).
  const c = new Crypto({ ...binding, randomFill: pooledRandomFill(binding.randomFill) });
  loaded.set(name, c);
  return c;
}

/**
 * Initialises the facade. `auto` (the default) prefers sodium-native and falls back to WebAssembly.
 * `ALLIUM_CRYPTO=wasm|native` in the environment overrides `auto`.
 */
export async function initCrypto(choice: BindingChoice = 'auto'): Promise<Crypto> {
  const env = typeof process !== 'undefined' ? process.env?.['ALLIUM_CRYPTO'] : undefined;
  const want = choice === 'auto' && (env === 'wasm' || env === 'native') ? env : choice;
  let c: Crypto | null = null;
  if (want === 'native' || want === 'auto') c = await loadCrypto('native');
  if (!c && want === 'native') throw new AlliumError('ERR_CRYPTO_UNAVAILABLE', 'sodium-native is not installed');
  if (!c) c = await loadCrypto('wasm');
  if (!c) throw new AlliumError('ERR_CRYPTO_UNAVAILABLE', 'no libsodium binding could be loaded');
  state.current = c;
  return c;
}

/** Makes `c` the facade's current binding (tests run vectors through both). */
export function useCrypto(c: Crypto): void {
  state.current = c;
}

/** The current binding; throws if initCrypto() has not completed. */
export function crypto(): Crypto {
  if (!state.current) throw new AlliumError('ERR_CRYPTO_UNAVAILABLE', 'initCrypto() must complete before crypto is used');
  return state.current;
}
