/**
 * libsodium-wrappers-sumo binding (libsodium in WebAssembly). Runs in Node and in browsers. The sumo build is the
 * same libsodium.js with the full API: Allium's relay-cell layer needs the raw ChaCha20 stream and Poly1305, and
 * endpoint key blinding needs Ed25519 point arithmetic, which the standard build leaves out.
 */
import sodium from 'libsodium-wrappers-sumo';
import type { SodiumBinding } from './binding.js';

export async function loadWasmBinding(): Promise<SodiumBinding> {
  await sodium.ready;
  const s = sodium;
  return {
    name: 'libsodium-wrappers',
    randomFill: (out) => out.set(s.randombytes_buf(out.length)),
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
    equal: (a, b) => a.length === b.length && s.memcmp(a, b),
    wipe: (b) => s.memzero(b),
  };
}
