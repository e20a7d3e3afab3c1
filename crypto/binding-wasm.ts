/**
 * libsodium-wrappers-sumo binding (libsodium in WebAssembly). Runs in Node and in browsers. The sumo build is the
 * same libsodium.js with the full API: Allium's relay-cell layer needs the raw ChaCha20 stream and Poly1305, and
 * endpoint key blinding needs Ed25519 point arithmetic, which the standard build leaves out.
 */
import sodium from 'libsodium-wrappers-sumo';
import type { SodiumBinding } from './binding.js';

/** The most bytes WebCrypto's getRandomValues fills in one call. */
const RANDOM_CHUNK = 65536;

export async function loadWasmBinding(): Promise<SodiumBinding> {
  await sodium.ready;
  const s = sodium;
  return {
    name: 'libsodium-wrappers',
    // libsodium.js's randombytes_buf calls out to the host once per byte (crypto.randomBytes(4) in Node,
    // getRandomValues(Uint32Array(1)) in browsers), about 7 µs a byte here. WebCrypto's getRandomValues is the same
    // OS-seeded CSPRNG, asked once per 64 KiB (its limit per call).
    randomFill: (out) => {
      for (let i = 0; i < out.length; i += RANDOM_CHUNK) globalThis.crypto.getRandomValues(out.subarray(i, i + RANDOM_CHUNK));
    },
    blake2b: (out, input, key) => out.set(s.crypto_generichash(out.length, input, key ?? null)),
    x25519Base: (out, scalar) => out.set(s.crypto_scalarmult_base(scalar)),
    x25519: (out, scalar, point) => {
      try {
        out.set(s.crypto_scalarmult(scalar, point));
        return true;
      } catch {
        return false;
      }
    },
    ed25519SeedKeypair: (pk, sk, seed) => {
      const kp = s.crypto_sign_seed_keypair(seed);
      pk.set(kp.publicKey);
      sk.set(kp.privateKey);
    },
    ed25519Sign: (sig, m, sk) => sig.set(s.crypto_sign_detached(m, sk)),
    ed25519Verify: (sig, m, pk) => {
      try {
        return s.crypto_sign_verify_detached(sig, m, pk);
      } catch {
        return false;
      }
    },
    chacha20Xor: (out, input, nonce, ic, key) => out.set(s.crypto_stream_chacha20_ietf_xor_ic(input, nonce, ic, key)),
    poly1305: (out, m, key) => out.set(s.crypto_onetimeauth(m, key)),
    aeadEncrypt: (m, ad, nonce, key) => s.crypto_aead_chacha20poly1305_ietf_encrypt(m, ad, null, nonce, key),
    aeadEncryptInto: (out, m, ad, nonce, key) => out.set(s.crypto_aead_chacha20poly1305_ietf_encrypt(m, ad, null, nonce, key)),
    aeadDecryptInPlace: (buf, ad, nonce, key) => {
      if (buf.length < 16) return null;
      let m: Uint8Array;
      try {
        m = s.crypto_aead_chacha20poly1305_ietf_decrypt(null, buf, ad, nonce, key);
      } catch {
        return null;
      }
      const out = buf.subarray(0, m.length);
      out.set(m);
      return out;
    },
    aeadDecrypt: (c, ad, nonce, key) => {
      try {
        return s.crypto_aead_chacha20poly1305_ietf_decrypt(null, c, ad, nonce, key);
      } catch {
        return null;
      }
    },
    xaeadEncrypt: (m, ad, nonce, key) => s.crypto_aead_xchacha20poly1305_ietf_encrypt(m, ad, null, nonce, key),
    xaeadDecrypt: (c, ad, nonce, key) => {
      try {
        return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, c, ad, nonce, key);
      } catch {
        return null;
      }
    },
    ed25519PkToX25519: (out, pk) => {
      try {
        out.set(s.crypto_sign_ed25519_pk_to_curve25519(pk));
        return true;
      } catch {
        return false;
      }
    },
    ed25519SkToX25519: (out, sk) => out.set(s.crypto_sign_ed25519_sk_to_curve25519(sk)),
    sealedBoxSeal: (m, pk) => s.crypto_box_seal(m, pk),
    sealedBoxOpen: (c, pk, sk) => {
      try {
        return s.crypto_box_seal_open(c, pk, sk);
      } catch {
        return null;
      }
    },
    sha512: (out, input) => out.set(s.crypto_hash_sha512(input)),
    ed25519IsValidPoint: (p) => s.crypto_core_ed25519_is_valid_point(p),
    ed25519ScalarMult: (out, n, p) => {
      try {
        out.set(s.crypto_scalarmult_ed25519_noclamp(n, p));
        return true;
      } catch {
        return false;
      }
    },
    ed25519ScalarMultBase: (out, n) => {
      try {
        out.set(s.crypto_scalarmult_ed25519_base_noclamp(n));
        return true;
      } catch {
        return false;
      }
    },
    ed25519ScalarReduce: (out, wide) => out.set(s.crypto_core_ed25519_scalar_reduce(wide)),
    ed25519ScalarAdd: (out, x, y) => out.set(s.crypto_core_ed25519_scalar_add(x, y)),
    ed25519ScalarMul: (out, x, y) => out.set(s.crypto_core_ed25519_scalar_mul(x, y)),
    equal: (a, b) => a.length === b.length && s.memcmp(a, b),
    wipe: (b) => s.memzero(b),
  };
}
