/**
 * Where content lives (specs/content.md §6): relays and routing keys share one 256-bit keyspace, distance is XOR
 * (as in Kademlia), and a key's holders are the k eligible relays nearest to it, no two in one network or family.
 *
 * A relay's position depends on the placement period's shared random value (specs/directory.md §7.6):
 *
 *   with a consensus:     position = H(identity | srv | u64(pn), "allium-v1:placement-srv")
 *   without authorities:  position = H(identity, "allium-v1:placement")
 *
 * With a consensus nobody can compute a period's positions before its shared random value is out, so keys cannot
 * be generated in advance to land next to a chosen routing key; and only relays with the Holder flag are eligible,
 * which takes days of uptime to earn. Without authorities positions are a public function of the identity and can
 * be ground (SECURITY.md says what that costs).
 *
 * With the whole directory (or consensus) known, every party computes the same holders. holdersOf below is the
 * definition; protocol/placement-index.ts computes the same from a sorted index.
 */
import { crypto } from '../crypto/index.js';
import { ByteWriter, concatBytes, toHex, utf8 } from './bytes.js';
import type { Descriptor } from './descriptor.js';
import { networkOf, sameFamily } from './relay-network.js';

const LABEL = utf8('allium-v1:placement');
const LABEL_SRV = utf8('allium-v1:placement-srv');

/** What salts positions: a period's shared random value, or null for unsalted positions (no authorities). */
export interface PlacementContext {
  readonly srv: Uint8Array;
  readonly pn: number;
}

const caches = new Map<string, Map<string, Uint8Array>>();
/** The context of the last call and its cache: a directory's worth of calls names its context once, not N times. */
let last: { ctx: PlacementContext | null; cache: Map<string, Uint8Array> } | null = null;

function cacheFor(ctx: PlacementContext | null): Map<string, Uint8Array> {
  if (last && last.ctx === ctx) return last.cache;
  const key = ctx ? `${ctx.pn}:${toHex(ctx.srv)}` : '';
  let c = caches.get(key);
  if (!c) {
    if (caches.size >= 4) caches.clear();
    caches.set(key, (c = new Map()));
  }
  last = { ctx, cache: c };
  return c;
}

export function positionOf(identity: Uint8Array, fingerprint?: string, ctx: PlacementContext | null = null): Uint8Array {
  const cache = cacheFor(ctx);
  const key = fingerprint ?? String.fromCharCode(...identity);
  let p = cache.get(key);
  if (!p) {
    p = ctx ? crypto().hash(32, concatBytes(identity, ctx.srv, new ByteWriter(8).u64(BigInt(ctx.pn)).done()), LABEL_SRV) : crypto().hash(32, identity, LABEL);
    if (cache.size > 200_000) cache.clear();
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

export interface HoldersOptions {
  /** The placement context (null or absent: unsalted positions). */
  ctx?: PlacementContext | null;
  /** Which relays may hold (default: store relays). With a consensus: store relays with the Holder flag. */
  eligible?: (d: Descriptor) => boolean;
  /** Keep holders in distinct networks and families (default true). */
  diverse?: boolean;
}

/**
 * The `k` eligible relays nearest to `key`, nearest first, no two in one network (/16, /32, host name) or declared
 * family while enough distinct ones exist; when they do not (a test network on one address), the nearest of the
 * rest fill the list.
 *
 * The reference definition: it sorts the whole directory for every key (O(N log N)). Clients and relays ask a
 * PlacementIndex (protocol/placement-index.ts), which returns the same relays in the same order in O(log N + k);
 * test/protocol/placement-index.test.ts holds the two to each other.
 */
export function holdersOf(key: Uint8Array, relays: readonly Descriptor[], k: number, o: HoldersOptions = {}): Descriptor[] {
  const ctx = o.ctx ?? null;
  const eligible = o.eligible ?? isStoreRelay;
  const sorted = relays
    .filter(eligible)
    .map((d) => ({ d, p: positionOf(d.id, d.fingerprint, ctx) }))
    .sort((x, y) => compareDistance(key, x.p, y.p))
    .map((x) => x.d);
  if (o.diverse === false) return sorted.slice(0, k);
  const out: Descriptor[] = [];
  const nets = new Set<string>();
  for (const d of sorted) {
    if (out.length >= k) break;
    if (nets.has(networkOf(d)) || out.some((h) => sameFamily(h, d))) continue;
    out.push(d);
    nets.add(networkOf(d));
  }
  for (const d of sorted) {
    if (out.length >= k) break;
    if (!out.includes(d)) out.push(d);
  }
  return out;
}
