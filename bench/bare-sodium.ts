/**
 * The libsodium primitives under Allium's crypto, called directly: the ceiling the facade and the layer code are
 * measured against. This is the one module outside crypto/ that imports a libsodium binding, and only to time it.
 *
 * sodium-native writes into caller buffers, so these cases allocate nothing. libsodium-wrappers copies every input
 * into WebAssembly memory and every output into a fresh Uint8Array; that copy is part of the primitive's cost there,
 * so the cases use its ordinary API.
 */
import { createRequire } from 'node:module';
import sodium from 'libsodium-wrappers-sumo';
import type { BenchCase } from './harness.js';

/** Sizes of the relay-cell layer (protocol/constants.ts): a 1019-byte body, of which one layer MACs 1003 bytes. */
export const BODY = 1019;
export const MACED = 1003;
/** block0 and the body's keystream come out of one ChaCha20 call over 64 + 1019 bytes (protocol/relay-crypto.ts). */
export const FUSED = 64 + BODY;
export const XAEAD_REF = 512;
export const SEAL_MSG = 512;

export const PRIM = {
  aead1003: 'prim.aead1003',
  xaead512: 'prim.xaead512',
  chacha1019: 'prim.chacha1019',
  poly1003: 'prim.poly1003',
  block64: 'prim.block64',
  layerTrio: 'prim.layerTrio',
  layerDuo: 'prim.layerDuo',
  x25519: 'prim.x25519',
  x25519Base: 'prim.x25519Base',
  seal512: 'prim.seal512',
} as const;

interface SodiumNative {
  randombytes_buf(b: Uint8Array): void;
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_stream_chacha20_ietf_xor_ic(c: Uint8Array, m: Uint8Array, n: Uint8Array, ic: number, k: Uint8Array): void;
  crypto_onetimeauth(out: Uint8Array, input: Uint8Array, k: Uint8Array): void;
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_box_keypair(pk: Uint8Array, sk: Uint8Array): void;
  crypto_box_seal(c: Uint8Array, m: Uint8Array, pk: Uint8Array): void;
}

function nativeCases(): BenchCase[] {
  const s = createRequire(import.meta.url)('sodium-native') as SodiumNative;
  const rnd = (n: number): Uint8Array => {
    const b = new Uint8Array(n);
    s.randombytes_buf(b);
    return b;
  };
  const key = rnd(32);
  const nonce = rnd(12);
  const xnonce = rnd(24);
  const m1003 = rnd(MACED);
  const c1019 = new Uint8Array(MACED + 16);
  const m512 = rnd(XAEAD_REF);
  const c528 = new Uint8Array(XAEAD_REF + 16);
  const body = rnd(BODY);
  const zero64 = new Uint8Array(64);
  const block0 = new Uint8Array(64);
  const fused = rnd(FUSED);
  const fusedOtk = fused.subarray(0, 32);
  const otk = rnd(32);
  const tag = new Uint8Array(16);
  const scalar = rnd(32);
  const point = new Uint8Array(32);
  s.crypto_scalarmult_base(point, rnd(32));
  const q = new Uint8Array(32);
  const pk = new Uint8Array(32);
  s.crypto_box_keypair(pk, new Uint8Array(32));
  const sealed = new Uint8Array(SEAL_MSG + 48);
  return [
    {
      id: PRIM.aead1003,
      label: `ChaCha20-Poly1305-IETF encrypt ${MACED} B`,
      bytes: MACED,
      op: () => void s.crypto_aead_chacha20poly1305_ietf_encrypt(c1019, m1003, null, null, nonce, key),
    },
    {
      id: PRIM.xaead512,
      label: `XChaCha20-Poly1305 encrypt ${XAEAD_REF} B`,
      bytes: XAEAD_REF,
      op: () => void s.crypto_aead_xchacha20poly1305_ietf_encrypt(c528, m512, null, null, xnonce, key),
    },
    {
      id: PRIM.chacha1019,
      label: `chacha20 xor ${BODY} B (from block 1)`,
      bytes: BODY,
      op: () => s.crypto_stream_chacha20_ietf_xor_ic(body, body, nonce, 1, key),
    },
    { id: PRIM.poly1003, label: `poly1305 ${MACED} B`, bytes: MACED, op: () => s.crypto_onetimeauth(tag, m1003, otk) },
    { id: PRIM.block64, label: 'chacha20 block 0 (64 B)', bytes: 64, op: () => s.crypto_stream_chacha20_ietf_xor_ic(block0, zero64, nonce, 0, key) },
    {
      id: PRIM.layerTrio,
      label: '  the three as separate calls',
      bytes: MACED,
      op: () => {
        s.crypto_stream_chacha20_ietf_xor_ic(block0, zero64, nonce, 0, key);
        s.crypto_onetimeauth(tag, m1003, block0.subarray(0, 32));
        s.crypto_stream_chacha20_ietf_xor_ic(body, body, nonce, 1, key);
      },
    },
    {
      id: PRIM.layerDuo,
      label: `chacha20 xor ${FUSED} B + poly1305 ${MACED} B (a layer's 2 calls)`,
      bytes: MACED,
      op: () => {
        s.crypto_stream_chacha20_ietf_xor_ic(fused, fused, nonce, 0, key);
        s.crypto_onetimeauth(tag, m1003, fusedOtk);
      },
    },
    { id: PRIM.x25519, label: 'X25519 scalarmult', op: () => s.crypto_scalarmult(q, scalar, point) },
    { id: PRIM.x25519Base, label: 'X25519 scalarmult_base', op: () => s.crypto_scalarmult_base(q, scalar) },
    { id: PRIM.seal512, label: `sealed box seal ${SEAL_MSG} B`, bytes: SEAL_MSG, op: () => s.crypto_box_seal(sealed, m512, pk) },
  ];
}

async function wasmCases(): Promise<BenchCase[]> {
  await sodium.ready;
  const s = sodium;
  const key = s.randombytes_buf(32);
  const nonce = s.randombytes_buf(12);
  const xnonce = s.randombytes_buf(24);
  const m1003 = s.randombytes_buf(MACED);
  const m512 = s.randombytes_buf(XAEAD_REF);
  const body = s.randombytes_buf(BODY);
  const zero64 = new Uint8Array(64);
  const fused = s.randombytes_buf(FUSED);
  const otk = s.randombytes_buf(32);
  const scalar = s.randombytes_buf(32);
  const point = s.crypto_scalarmult_base(s.randombytes_buf(32));
  const { publicKey: pk } = s.crypto_box_keypair();
  return [
    {
      id: PRIM.aead1003,
      label: `ChaCha20-Poly1305-IETF encrypt ${MACED} B`,
      bytes: MACED,
      op: () => void s.crypto_aead_chacha20poly1305_ietf_encrypt(m1003, null, null, nonce, key),
    },
    {
      id: PRIM.xaead512,
      label: `XChaCha20-Poly1305 encrypt ${XAEAD_REF} B`,
      bytes: XAEAD_REF,
      op: () => void s.crypto_aead_xchacha20poly1305_ietf_encrypt(m512, null, null, xnonce, key),
    },
    {
      id: PRIM.chacha1019,
      label: `chacha20 xor ${BODY} B (from block 1)`,
      bytes: BODY,
      op: () => void s.crypto_stream_chacha20_ietf_xor_ic(body, nonce, 1, key),
    },
    { id: PRIM.poly1003, label: `poly1305 ${MACED} B`, bytes: MACED, op: () => void s.crypto_onetimeauth(m1003, otk) },
    { id: PRIM.block64, label: 'chacha20 block 0 (64 B)', bytes: 64, op: () => void s.crypto_stream_chacha20_ietf_xor_ic(zero64, nonce, 0, key) },
    {
      id: PRIM.layerTrio,
      label: '  the three as separate calls',
      bytes: MACED,
      op: () => {
        const block0 = s.crypto_stream_chacha20_ietf_xor_ic(zero64, nonce, 0, key);
        s.crypto_onetimeauth(m1003, block0.subarray(0, 32));
        s.crypto_stream_chacha20_ietf_xor_ic(body, nonce, 1, key);
      },
    },
    {
      id: PRIM.layerDuo,
      label: `chacha20 xor ${FUSED} B + poly1305 ${MACED} B (a layer's 2 calls)`,
      bytes: MACED,
      op: () => {
        const out = s.crypto_stream_chacha20_ietf_xor_ic(fused, nonce, 0, key);
        s.crypto_onetimeauth(m1003, out.subarray(0, 32));
      },
    },
    { id: PRIM.x25519, label: 'X25519 scalarmult', op: () => void s.crypto_scalarmult(scalar, point) },
    { id: PRIM.x25519Base, label: 'X25519 scalarmult_base', op: () => void s.crypto_scalarmult_base(scalar) },
    { id: PRIM.seal512, label: `sealed box seal ${SEAL_MSG} B`, bytes: SEAL_MSG, op: () => void s.crypto_box_seal(m512, pk) },
  ];
}

/** The bare-primitive cases of one binding, in display order. */
export async function bareCases(binding: 'native' | 'wasm'): Promise<BenchCase[]> {
  return binding === 'native' ? nativeCases() : wasmCases();
}
