/**
 * Proof of work for introductions (specs/rendezvous.md §4.3), after Tor's proposal 327 with BLAKE2b in place of
 * Equi-X: an endpoint under a flood of introductions asks initiators to pay for theirs, and answers the ones that paid
 * most first.
 *
 *   binding  = H(32, p)                                    p: the sealed introduction (rendezvous.md §4.1)
 *   h        = H(32, "allium-v1 intro-pow" | seed (32) | nonce (16) | effort u32 | binding)
 *   valid    ⇔ 1 ≤ effort ≤ MAX_POW_EFFORT  and  u32(h[0..4)) ≤ ⌊(2³² − 1) / effort⌋
 *
 * A try succeeds with probability about 1 / effort, so solving costs an initiator `effort` hashes on average and
 * checking costs the endpoint one hash per seed it holds (two at most). The effort is inside the hash, so a solution
 * found for a low effort cannot be presented as a high one; the binding ties it to one sealed introduction, so it
 * cannot be moved to another; the seed, which the endpoint rotates and publishes in its descriptor, keeps solutions
 * from being computed before the seed is known. Replays of one (seed, nonce) are the endpoint's to refuse.
 *
 * Pure: the solver takes its starting nonce and a budget of tries; the caller brings randomness and yields to its
 * event loop between budgets (client/messaging/pow-solver.ts). Not a memory-hard puzzle: a GPU solves it faster than
 * the CPU an honest initiator has (the price of using only the crypto facade's hash; Tor uses Equi-X for this).
 */
import { crypto } from '../crypto/index.js';
import { utf8 } from './bytes.js';
import { ProtocolError } from './errors.js';

export const POW_SEED_LEN = 32;
export const POW_NONCE_LEN = 16;
/** The highest effort a solution may claim (about 2²⁰ hashes on average). */
export const MAX_POW_EFFORT = 1 << 20;
const CONTEXT = utf8('allium-v1 intro-pow');
const INPUT_LEN = CONTEXT.length + POW_SEED_LEN + POW_NONCE_LEN + 4 + 32;

/** A solution as carried in INTRODUCE1 and INTRODUCE2 (rendezvous.md §3.1, field "w"). */
export interface PowSolution {
  /** The nonce (16 bytes). */
  readonly n: Uint8Array;
  /** The effort it was solved for. */
  readonly e: number;
}

/** The binding of a sealed introduction `p`: what a solution is tied to. */
export function powBinding(p: Uint8Array): Uint8Array {
  return crypto().hash(32, p);
}

/** The largest u32 prefix a hash may have at `effort` (non-increasing in effort). */
export function powThreshold(effort: number): number {
  return Math.floor(0xffffffff / effort);
}

function powInput(seed: Uint8Array, effort: number, binding: Uint8Array): Uint8Array {
  if (seed.length !== POW_SEED_LEN || binding.length !== 32) throw new ProtocolError('ERR_INTRO_POW', 'proof-of-work seed or binding has the wrong length');
  const input = new Uint8Array(INPUT_LEN);
  input.set(CONTEXT, 0);
  input.set(seed, CONTEXT.length);
  const at = CONTEXT.length + POW_SEED_LEN + POW_NONCE_LEN;
  new DataView(input.buffer).setUint32(at, effort);
  input.set(binding, at + 4);
  return input;
}

function meets(input: Uint8Array, nonce: Uint8Array, threshold: number, out: Uint8Array): boolean {
  input.set(nonce, CONTEXT.length + POW_SEED_LEN);
  crypto().hashInto(out, input);
  return ((out[0]! << 24) | (out[1]! << 16) | (out[2]! << 8) | out[3]!) >>> 0 <= threshold;
}

function checkEffort(effort: number): void {
  if (!Number.isInteger(effort) || effort < 1 || effort > MAX_POW_EFFORT)
    throw new ProtocolError('ERR_INTRO_POW', `proof-of-work effort must be 1..${MAX_POW_EFFORT}`);
}

/**
 * Tries up to `tries` nonces from `start` (counting upwards, big-endian, modulo 2¹²⁸) and returns the first solution
 * for (seed, effort, binding), or null. `start` is not modified. ERR_INTRO_POW for an effort out of range.
 */
export function solvePow(seed: Uint8Array, effort: number, binding: Uint8Array, start: Uint8Array, tries: number): PowSolution | null {
  checkEffort(effort);
  if (start.length !== POW_NONCE_LEN) throw new ProtocolError('ERR_INTRO_POW', 'proof-of-work nonce has the wrong length');
  const input = powInput(seed, effort, binding);
  const threshold = powThreshold(effort);
  const nonce = Uint8Array.from(start);
  const out = new Uint8Array(32);
  for (let i = 0; i < tries; i++) {
    if (meets(input, nonce, threshold, out)) return { n: Uint8Array.from(nonce), e: effort };
    for (let j = POW_NONCE_LEN - 1; j >= 0 && ++nonce[j]! === 256; j--) nonce[j] = 0;
  }
  return null;
}

/**
 * Checks `w` against the endpoint's current seeds (newest first) and the introduction's binding, and returns the index
 * of the seed it was solved under. One hash per seed tried. Throws ERR_INTRO_POW when it meets none of them.
 */
export function verifyPow(seeds: readonly Uint8Array[], w: PowSolution, binding: Uint8Array): number {
  checkEffort(w.e);
  if (w.n.length !== POW_NONCE_LEN) throw new ProtocolError('ERR_INTRO_POW', 'proof-of-work nonce has the wrong length');
  const out = new Uint8Array(32);
  for (let i = 0; i < seeds.length; i++) if (meets(powInput(seeds[i]!, w.e, binding), w.n, powThreshold(w.e), out)) return i;
  throw new ProtocolError('ERR_INTRO_POW', 'proof of work does not meet its effort under any current seed');
}
