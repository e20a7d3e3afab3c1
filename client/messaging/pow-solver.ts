/**
 * The initiator's side of the introduction puzzle (specs/rendezvous.md §4.3, protocol/intro-pow.ts): solves in slices
 * of POW_SOLVE_SLICE hashes and yields to the event loop between them, so a solve of a second does not stall the
 * client's circuits, and stops at once (ERR_ABORTED) when its signal aborts. The nonce starts at a random point.
 */
import { crypto } from '../../crypto/index.js';
import { throwIfAborted } from '../../protocol/errors.js';
import { POW_NONCE_LEN, solvePow, type PowSolution } from '../../protocol/intro-pow.js';
import type { AbortOptions } from '../../net/abort.js';
import { POW_SOLVE_SLICE } from './limits.js';

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A solution for (seed, effort, binding); ERR_INTRO_POW for an effort out of range, ERR_ABORTED. */
export async function solveIntroPow(seed: Uint8Array, effort: number, binding: Uint8Array, options: AbortOptions = {}): Promise<PowSolution> {
  const nonce = crypto().random(POW_NONCE_LEN);
  for (;;) {
    throwIfAborted(options.signal);
    const w = solvePow(seed, effort, binding, nonce, POW_SOLVE_SLICE);
    if (w) return w;
    // The next slice starts where this one stopped (the low 4 bytes advanced by the slice, carrying upwards).
    let carry = POW_SOLVE_SLICE;
    for (let j = POW_NONCE_LEN - 1; j >= 0 && carry > 0; j--) {
      const v = nonce[j]! + (carry & 255);
      nonce[j] = v & 255;
      carry = (carry >>> 8) + (v >> 8);
    }
    await yieldToLoop();
  }
}
