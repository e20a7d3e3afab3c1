/**
 * Where content lives (specs/content.md §6): relays and routing keys share one 256-bit keyspace; a relay's
 * position is H(identity, "allium-v1:placement"), distance is XOR (as in Kademlia), and a key's holders are the k
 * store-capable relays nearest to it. With the whole directory known, every party computes the same holders.
 */
import { crypto } from '../crypto/index.js';
import { utf8 } from './bytes.js';
import type { Descriptor } from './descriptor.js';

const LABEL = utf8('allium-v1:placement');
const cache = new Map<string, Uint8Array>();

export function positionOf(identity: Uint8Array, fingerprint?: string): Uint8Array {
  const key = fingerprint ?? String.fromCharCode(...identity);
  let p = cache.get(key);
  if (!p) {
    p = crypto().hash(32, identity, LABEL);
    if (cache.size > 100_000) cache.clear();
    cache.set(key, p);
  }
  return p;
}

/** Compares XOR distances of a and b to key: negative if a is nearer. */
export function compareDistance(key: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const da = a[i]! ^ key[i]!;
    const db = b[i]! ^ key[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

export function isStoreRelay(d: Descriptor): boolean {
  return d.caps.includes('store');
}

/** The `k` store-capable relays nearest to `key`, nearest first. */
export function holdersOf(key: Uint8Array, relays: readonly Descriptor[], k: number): Descriptor[] {
  return relays
    .filter(isStoreRelay)
    .map((d) => ({ d, p: positionOf(d.id, d.fingerprint) }))
    .sort((x, y) => compareDistance(key, x.p, y.p))
    .slice(0, k)
    .map((x) => x.d);
}
