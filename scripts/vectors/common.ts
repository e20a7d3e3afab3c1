/**
 * Shared pieces of the vector generator (scripts/gen-vectors.ts): the file envelope, a random source that records
 * what it handed out, and a self-check that turns a generator/code disagreement into a loud failure.
 */
import { seededRandom, type RandomSource } from '../../crypto/drbg.js';
import { toHex } from '../../protocol/bytes.js';
import { AlliumError } from '../../protocol/errors.js';

/** Bump when the meaning of a field changes; tests refuse files of another version. */
export const VECTORS_VERSION = 1;

/** Every seed string starts with this, so vectors never share a DRBG stream with anything else. */
export const SEED_PREFIX = 'allium-vectors/v1/';

export interface VectorFile {
  readonly description: string;
  readonly version: number;
  readonly [field: string]: unknown;
}

/**
 * A seeded source that also keeps every byte it returned, in order, and the size of each call. (seededRandom
 * serves each call from fresh 64-byte blocks, so the bytes depend on how the requests were split.)
 */
export function recordingRandom(seed: string): { random: RandomSource; taken: () => string; calls: () => number[] } {
  const inner = seededRandom(SEED_PREFIX + seed);
  const parts: Uint8Array[] = [];
  return {
    random: (n) => {
      const b = inner(n);
      parts.push(Uint8Array.from(b));
      return b;
    },
    taken: () => parts.map(toHex).join(''),
    calls: () => parts.map((p) => p.length),
  };
}

export function seeded(seed: string): RandomSource {
  return seededRandom(SEED_PREFIX + seed);
}

/** Runs `f` and returns the AlliumError code it throws; fails if it throws something else or nothing. */
export function errorCodeOf(f: () => unknown, what: string): string {
  try {
    f();
  } catch (e) {
    if (e instanceof AlliumError) return e.code;
    throw new Error(`${what}: threw a non-Allium error: ${String(e)}`);
  }
  throw new Error(`${what}: was accepted but a vector expects an error`);
}

/** The generator states what it expects; a disagreement with the code stops generation. */
export function expectCode(actual: string, expected: string | readonly string[], what: string): string {
  const ok = typeof expected === 'string' ? actual === expected : expected.includes(actual);
  if (!ok) throw new Error(`${what}: code gives ${actual}, generator expects ${String(expected)}`);
  return actual;
}

export function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`vector self-check failed: ${what}`);
}
