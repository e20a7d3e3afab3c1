/**
 * An independent, unoptimised reading of specs/relay-crypto.md from the raw primitives, one hop at a time. Tests
 * compare protocol/relay-crypto.ts and the committed vectors with it.
 */
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';

/** ChaCha20 block 0 (otk | mask) and the keystream from block 1, nonce = 0^4 | counter u64 big-endian. */
function cellStreams(key: Uint8Array, counter: number): { otk: Uint8Array; mask: Uint8Array; ks: Uint8Array } {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(counter));
  const block0 = new Uint8Array(64);
  crypto().chacha20Xor(block0, block0, nonce, 0, key);
  const ks = new Uint8Array(1019);
  crypto().chacha20Xor(ks, ks, nonce, 1, key);
  return { otk: block0.slice(0, 32), mask: block0.slice(32, 48), ks };
}

/** Reference forward unwrap of one hop: returns the result and the next body. */
export function refUnwrapForward(key: Uint8Array, counter: number, body: Uint8Array): { result: string; body: Uint8Array } {
  const { otk, mask, ks } = cellStreams(key, counter);
  const m = new Uint8Array(16);
  crypto().poly1305(m, body.subarray(16), otk);
  const tag = toHex(body.subarray(0, 16));
  const masked = m.map((b, i) => b ^ mask[i]!);
  const result = tag === toHex(m) ? 'forward' : tag === toHex(masked) ? 'mine' : 'bad-mac';
  const next = new Uint8Array(1019);
  next.set(body.subarray(16, 128), 0);
  next.set(body.subarray(128), 128);
  return { result, body: next.map((b, i) => b ^ ks[i]!) };
}

/** Reference backward wrap of one hop (origin: the hop that made the cell). */
export function refWrapBackward(key: Uint8Array, counter: number, body: Uint8Array, origin: boolean): Uint8Array {
  const { otk, mask, ks } = cellStreams(key, counter);
  const x = body.map((b, i) => b ^ ks[i]!);
  const out = new Uint8Array(1019);
  out.set(x.subarray(0, 112), 16);
  out.set(x.subarray(128), 128);
  const t = new Uint8Array(16);
  crypto().poly1305(t, out.subarray(128), otk);
  out.set(origin ? t.map((b, i) => b ^ mask[i]!) : t, 0);
  return out;
}
