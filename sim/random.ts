/**
 * Seeded randomness for the simulator. One seed fixes every random choice of a run:
 *
 * - `Rng`: a fast seeded generator (xoroshiro128+ from pure-rand) for the simulator's own draws (also installed as
 *   `Math.random`, which the real code never uses: test/architecture/no-math-random.test.ts).
 * - `seededCrypto`: the crypto facade with its random source replaced by the deterministic generator of
 *   crypto/drbg.ts (BLAKE2b in counter mode), so keys, circuit ids, handshake ephemerals and paddings repeat too, as
 *   do the real code's random choices (path selection, guard sampling, gossip partners and jitter), which draw from
 *   the facade's uniform(), randomInt() and shuffle().
 *   Every other operation (hashes, signatures, X25519, AEAD) is the real libsodium call.
 * - Distributions for latency, bandwidth, loss and lifetimes, described by small JSON-friendly objects so an
 *   experiment's configuration can be printed and changed from the command line.
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import type { SodiumBinding } from '../crypto/binding.js';
import { Crypto } from '../crypto/index.js';
import { seededRandom } from '../crypto/drbg.js';

export class Rng {
  private readonly g: RandomGenerator;

  constructor(seed: number) {
    this.g = xoroshiro128plus(seed | 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return uniformFloat64(this.g);
  }

  /** A function with Math.random's signature drawing from this generator. */
  get random(): () => number {
    return () => uniformFloat64(this.g);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A new generator seeded from this one (independent streams for independent parts of a run). */
  fork(): Rng {
    return new Rng(this.int(2 ** 31));
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(list: T[]): T[] {
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
    return list;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** A distribution, as configuration. */
export type Distribution =
  | { kind: 'constant'; value: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'exponential'; mean: number }
  /** Log-normal given by its median and the standard deviation of the log. */
  | { kind: 'lognormal'; median: number; sigma: number; min?: number; max?: number }
  /** Pareto with scale `min` and shape `alpha`, capped at `max`. */
  | { kind: 'pareto'; min: number; alpha: number; max?: number };

export function draw(d: Distribution, rng: Rng): number {
  switch (d.kind) {
    case 'constant':
      return d.value;
    case 'uniform':
      return d.min + rng.next() * (d.max - d.min);
    case 'exponential':
      return rng.exponential(d.mean);
    case 'lognormal': {
      const x = d.median * Math.exp(d.sigma * rng.normal());
      return Math.min(d.max ?? Infinity, Math.max(d.min ?? 0, x));
    }
    case 'pareto': {
      const x = d.min / Math.pow(1 - rng.next(), 1 / d.alpha);
      return Math.min(d.max ?? Infinity, x);
    }
  }
}

export function describe(d: Distribution): string {
  switch (d.kind) {
    case 'constant':
      return `${d.value}`;
    case 'uniform':
      return `uniform(${d.min}, ${d.max})`;
    case 'exponential':
      return `exponential(mean ${d.mean})`;
    case 'lognormal':
      return `lognormal(median ${d.median}, σ ${d.sigma})`;
    case 'pareto':
      return `pareto(min ${d.min}, α ${d.alpha}${d.max ? `, max ${d.max}` : ''})`;
  }
}

/**
 * The crypto facade over `binding` with a deterministic random source seeded by `seed`. Installed with
 * useCrypto() for the length of a run.
 */
export function seededCrypto(binding: SodiumBinding, seed: string): Crypto {
  // The generator hashes with the facade current when it is called; the seeded facade hashes with the same binding.
  const source = seededRandom(seed);
  const wrapped: SodiumBinding = { ...binding, randomFill: (out) => out.set(source(out.length)) };
  return new Crypto(wrapped);
}
