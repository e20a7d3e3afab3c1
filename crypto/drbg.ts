/**
 * A deterministic random source for test vectors and the simulator: BLAKE2b keyed by a seed, in counter mode.
 * Never used for production keys (relays and clients use crypto().random()).
 */
import { crypto } from './index.js';

export type RandomSource = (n: number) => Uint8Array;

export function seededRandom(seed: Uint8Array | string): RandomSource {
  const key = crypto().hash(32, typeof seed === 'string' ? new TextEncoder().encode(seed) : seed);
  let counter = 0;
  return (n: number) => {
    const out = new Uint8Array(n);
    let off = 0;
    const block = new Uint8Array(8);
    while (off < n) {
      new DataView(block.buffer).setBigUint64(0, BigInt(counter++));
      const chunk = crypto().hash(64, block, key);
      const take = Math.min(64, n - off);
      out.set(chunk.subarray(0, take), off);
      off += take;
    }
    return out;
  };
}

export function systemRandom(): RandomSource {
  return (n) => crypto().random(n);
}
