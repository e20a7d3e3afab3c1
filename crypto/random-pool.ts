/**
 * Small random draws served from a pool that the binding's CSPRNG (the kernel's, through libsodium) fills
 * RANDOM_POOL_LEN bytes at a time. Each getrandom(2) costs about 10 µs on a loaded machine whatever its length, and
 * a circuit build draws a dozen small values (ephemeral keys, circuit ids, path choices, padding): one fill serves
 * hundreds of them. The bytes are the kernel's, unchanged; each is handed out once, and its place in the pool is
 * zeroed as it is handed out, so the pool holds only bytes nobody has used yet (SECURITY.md, "Random numbers").
 * Draws longer than RANDOM_POOL_MAX_DRAW go to the binding directly.
 */

/** Bytes fetched per refill. */
export const RANDOM_POOL_LEN = 16 * 1024;
/** The longest draw the pool serves. */
export const RANDOM_POOL_MAX_DRAW = 1024;

/** A randomFill over `fill` that serves short draws from a pool (one per facade; JS has no fork to duplicate it). */
export function pooledRandomFill(fill: (out: Uint8Array) => void): (out: Uint8Array) => void {
  const pool = new Uint8Array(RANDOM_POOL_LEN);
  let pos = RANDOM_POOL_LEN;
  return (out) => {
    const n = out.length;
    if (n > RANDOM_POOL_MAX_DRAW) return fill(out);
    if (pos + n > RANDOM_POOL_LEN) {
      fill(pool);
      pos = 0;
    }
    out.set(pool.subarray(pos, pos + n));
    pool.fill(0, pos, pos + n);
    pos += n;
  };
}
