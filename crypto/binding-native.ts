/** sodium-native binding (native libsodium). Loaded only in Node, only when the package installed. */
import { createRequire } from 'node:module';
import type { SodiumBinding } from './binding.js';

interface SodiumNative {
  randombytes_buf(b: Uint8Array): void;
  crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean;
  crypto_stream_chacha20_ietf_xor_ic(c: Uint8Array, m: Uint8Array, n: Uint8Array, ic: number, k: Uint8Array): void;
  crypto_onetimeauth(out: Uint8Array, input: Uint8Array, k: Uint8Array): void;
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
  crypto_sign_ed25519_pk_to_curve25519(x: Uint8Array, ed: Uint8Array): void;
  crypto_sign_ed25519_sk_to_curve25519(x: Uint8Array, ed: Uint8Array): void;
  crypto_box_seal(c: Uint8Array, m: Uint8Array, pk: Uint8Array): void;
  crypto_box_seal_open(m: Uint8Array, c: Uint8Array, pk: Uint8Array, sk: Uint8Array): boolean;
  crypto_hash_sha512(out: Uint8Array, input: Uint8Array): void;
  crypto_core_ed25519_is_valid_point(p: Uint8Array): boolean;
  crypto_scalarmult_ed25519_noclamp(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_ed25519_base_noclamp(q: Uint8Array, n: Uint8Array): void;
  crypto_core_ed25519_scalar_reduce(r: Uint8Array, s: Uint8Array): void;
  crypto_core_ed25519_scalar_add(z: Uint8Array, x: Uint8Array, y: Uint8Array): void;
  sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean;
  sodium_memzero(b: Uint8Array): void;
}

const TAG = 16;

/** A buffer that the caller overwrites in full (Node only: this binding never runs in browsers). */
function unfilled(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}
const SEAL = 48;

/**
 * (x · y) mod L. sodium-native does not bind crypto_core_ed25519_scalar_mul, so this is double-and-add over the 256
 * bits of y with libsodium's constant-time scalar addition. Both candidates are computed at every step and one is
 * kept by a masked copy, so the sequence of operations depends on neither operand (no branch on secret bits). Its
 * output equals libsodium's scalar_mul, which the WebAssembly binding calls; the blinding tests compare the two.
 */
function scalarMul(s: SodiumNative, out: Uint8Array, x: Uint8Array, y: Uint8Array): void {
  // libsodium's scalar_add adds only 256 bits before reducing, so both of its operands must stay below 2^255:
  // acc is always reduced, and x is reduced here.
  const wide = new Uint8Array(64);
  wide.set(x);
  const xr = new Uint8Array(32);
  s.crypto_core_ed25519_scalar_reduce(xr, wide);
  const acc = new Uint8Array(32);
  const sum = new Uint8Array(32);
  for (let i = 255; i >= 0; i--) {
    s.crypto_core_ed25519_scalar_add(acc, acc, acc);
    s.crypto_core_ed25519_scalar_add(sum, acc, xr);
    const mask = -((y[i >>> 3]! >>> (i & 7)) & 1) & 0xff;
    for (let j = 0; j < 32; j++) acc[j] = acc[j]! ^ (mask & (acc[j]! ^ sum[j]!));
  }
  out.set(acc);
  for (const b of [wide, xr, acc, sum]) s.sodium_memzero(b);
}

export function loadNativeBinding(): SodiumBinding | null {
  let s: SodiumNative;
  try {
    const require = createRequire(import.meta.url);
    s = require('sodium-native') as SodiumNative;
  } catch {
    return null;
  }
  return {
    name: 'sodium-native',
    randomFill: (out) => s.randombytes_buf(out),
    blake2b: (out, input, key) => (key ? s.crypto_generichash(out, input, key) : s.crypto_generichash(out, input)),
    x25519Base: (out, scalar) => s.crypto_scalarmult_base(out, scalar),
    x25519: (out, scalar, point) => {
      try {
        s.crypto_scalarmult(out, scalar, point);
        return true;
      } catch {
        return false;
      }
    },
    ed25519SeedKeypair: (pk, sk, seed) => s.crypto_sign_seed_keypair(pk, sk, seed),
    ed25519Sign: (sig, m, sk) => s.crypto_sign_detached(sig, m, sk),
    ed25519Verify: (sig, m, pk) => s.crypto_sign_verify_detached(sig, m, pk),
    chacha20Xor: (out, input, nonce, ic, key) => s.crypto_stream_chacha20_ietf_xor_ic(out, input, nonce, ic, key),
    poly1305: (out, m, key) => s.crypto_onetimeauth(out, m, key),
    aeadEncrypt: (m, ad, nonce, key) => {
      // Every byte is written by the encryption, so the zero fill of new Uint8Array would be wasted work.
      const c = unfilled(m.length + TAG);
      s.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad, null, nonce, key);
      return c;
    },
    aeadEncryptInto: (out, m, ad, nonce, key) => void s.crypto_aead_chacha20poly1305_ietf_encrypt(out, m, ad, null, nonce, key),
    aeadDecryptInPlace: (buf, ad, nonce, key) => {
      if (buf.length < TAG) return null;
      // libsodium verifies the tag over the ciphertext before it writes any plaintext, so m may start at c (on a
      // forgery it zeroes m instead).
      const m = buf.subarray(0, buf.length - TAG);
      try {
        s.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, buf, ad, nonce, key);
        return m;
      } catch {
        return null;
      }
    },
    aeadDecrypt: (c, ad, nonce, key) => {
      if (c.length < TAG) return null;
      const m = unfilled(c.length - TAG);
      try {
        s.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, c, ad, nonce, key);
        return m;
      } catch {
        return null;
      }
    },
    xaeadEncrypt: (m, ad, nonce, key) => {
      const c = new Uint8Array(m.length + TAG);
      s.crypto_aead_xchacha20poly1305_ietf_encrypt(c, m, ad, null, nonce, key);
      return c;
    },
    xaeadDecrypt: (c, ad, nonce, key) => {
      if (c.length < TAG) return null;
      const m = new Uint8Array(c.length - TAG);
      try {
        s.crypto_aead_xchacha20poly1305_ietf_decrypt(m, null, c, ad, nonce, key);
        return m;
      } catch {
        return null;
      }
    },
    ed25519PkToX25519: (out, pk) => {
      try {
        s.crypto_sign_ed25519_pk_to_curve25519(out, pk);
        return true;
      } catch {
        return false;
      }
    },
    ed25519SkToX25519: (out, sk) => s.crypto_sign_ed25519_sk_to_curve25519(out, sk),
    sealedBoxSeal: (m, pk) => {
      const c = new Uint8Array(m.length + SEAL);
      s.crypto_box_seal(c, m, pk);
      return c;
    },
    sealedBoxOpen: (c, pk, sk) => {
      if (c.length < SEAL) return null;
      const m = new Uint8Array(c.length - SEAL);
      return s.crypto_box_seal_open(m, c, pk, sk) ? m : null;
    },
    sha512: (out, input) => s.crypto_hash_sha512(out, input),
    ed25519IsValidPoint: (p) => s.crypto_core_ed25519_is_valid_point(p),
    ed25519ScalarMult: (out, n, p) => {
      try {
        s.crypto_scalarmult_ed25519_noclamp(out, n, p);
        return true;
      } catch {
        return false;
      }
    },
    ed25519ScalarMultBase: (out, n) => {
      try {
        s.crypto_scalarmult_ed25519_base_noclamp(out, n);
        return true;
      } catch {
        return false;
      }
    },
    ed25519ScalarReduce: (out, wide) => s.crypto_core_ed25519_scalar_reduce(out, wide),
    ed25519ScalarAdd: (out, x, y) => s.crypto_core_ed25519_scalar_add(out, x, y),
    ed25519ScalarMul: (out, x, y) => scalarMul(s, out, x, y),
    equal: (a, b) => a.length === b.length && s.sodium_memcmp(a, b),
    wipe: (b) => s.sodium_memzero(b),
  };
}
