/**
 * The facade's uniform choices (specs/README.md §Notation: uniform, randomInt, shuffle): exact arithmetic on
 * scripted random bytes, rejection of the biased tail, and distributions checked by a chi-square test on a seeded
 * source (deterministic, so the test cannot flake). Also shows why the old `sort(() => Math.random() - 0.5)` had to
 * go: on the same uniform source it is far from uniform.
 */
import { expect } from 'chai';
import type { SodiumBinding } from '../../crypto/binding.js';
import { seededRandom } from '../../crypto/drbg.js';
import { Crypto } from '../../crypto/index.js';
import { pooledRandomFill, RANDOM_POOL_LEN, RANDOM_POOL_MAX_DRAW } from '../../crypto/random-pool.js';

/** A facade whose random bytes come from `fill` (only random() is used by the functions under test). */
function facadeWith(fill: (out: Uint8Array) => void): Crypto {
  return new Crypto({ randomFill: fill } as unknown as SodiumBinding);
}

function scripted(...chunks: number[][]): Crypto {
  const queue = chunks.map((c) => Uint8Array.from(c));
  return facadeWith((out) => {
    const next = queue.shift();
    if (!next || next.length !== out.length) throw new Error(`unexpected draw of ${out.length} bytes`);
    out.set(next);
  });
}

function seeded(label: string): Crypto {
  const source = seededRandom(label);
  return facadeWith((out) => out.set(source(out.length)));
}

/** Pearson's chi-square statistic of observed counts against equal expectation. */
function chiSquare(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const e = total / counts.length;
  return counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
}

describe('crypto facade: uniform choices', () => {
  it('uniform() takes the top 53 bits of a big-endian u64', () => {
    expect(scripted([0, 0, 0, 0, 0, 0, 0, 0]).uniform()).to.equal(0);
    expect(scripted([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).uniform()).to.equal(1 - 2 ** -53);
    expect(scripted([0x80, 0, 0, 0, 0, 0, 0, 0]).uniform()).to.equal(0.5);
    expect(scripted([0, 0, 0, 0, 0, 0, 0x08, 0]).uniform()).to.equal(2 ** -53); // bit 11 is the lowest one kept
    expect(scripted([0, 0, 0, 0, 0, 0, 0x07, 0xff]).uniform()).to.equal(0); // bits 0–10 are dropped
  });

  it('randomInt(n) redraws the biased tail, and refuses bounds outside [1, 2^32]', () => {
    // n = 3: 2^32 mod 3 = 1, so 0xffffffff is the one value redrawn; the next draw (7) gives 7 mod 3 = 1.
    expect(scripted([0xff, 0xff, 0xff, 0xff], [0, 0, 0, 7]).randomInt(3)).to.equal(1);
    expect(scripted([0xff, 0xff, 0xff, 0xfe]).randomInt(3)).to.equal(0xfffffffe % 3);
    // n = 2^31 + 1: only draws below 2^31 + 1 are kept.
    expect(scripted([0x80, 0, 0, 1], [0x80, 0, 0, 0]).randomInt(2 ** 31 + 1)).to.equal(2 ** 31);
    expect(scripted([0xff, 0xff, 0xff, 0xff]).randomInt(2 ** 32)).to.equal(2 ** 32 - 1);
    expect(scripted([1, 2, 3, 4]).randomInt(1)).to.equal(0);
    for (const bad of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN])
      expect(() => scripted().randomInt(bad))
        .to.throw()
        .with.property('code', 'ERR_INTERNAL');
  });

  it('randomInt and uniform are uniform (chi-square, seeded source)', () => {
    const c = seeded('random-int');
    const ints = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) ints[c.randomInt(7)]!++;
    // 6 degrees of freedom: P(chi2 > 22.46) = 0.001.
    expect(chiSquare(ints)).to.be.below(22.46);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 50_000; i++) {
      const u = c.uniform();
      expect(u).to.be.at.least(0).and.below(1);
      buckets[Math.floor(u * 10)]!++;
    }
    expect(chiSquare(buckets)).to.be.below(27.88); // 9 degrees of freedom, p = 0.001
  });

  it('shuffle gives every order of four items equally often; the old comparator sort does not', () => {
    const c = seeded('shuffle');
    const orders = (f: (l: number[]) => number[]): number[] => {
      const counts = new Map<string, number>();
      for (let i = 0; i < 48_000; i++) {
        const k = f([0, 1, 2, 3]).join('');
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      const all = [...counts.values()];
      while (all.length < 24) all.push(0);
      return all;
    };
    const fisherYates = orders((l) => c.shuffle(l));
    expect(fisherYates.every((n) => n > 0)).to.equal(true);
    expect(chiSquare(fisherYates)).to.be.below(49.73); // 23 degrees of freedom, p = 0.001
    const comparator = orders((l) => l.sort(() => c.uniform() - 0.5));
    expect(chiSquare(comparator)).to.be.above(1000);
    expect(c.shuffle([])).to.deep.equal([]);
    expect(c.shuffle([9])).to.deep.equal([9]);
  });
});

describe('crypto facade: the pool of short random draws', () => {
  /** A fill that writes a counter (so every byte it ever wrote is distinct in sequence) and keeps what it was given. */
  function recordingFill(): { fill: (out: Uint8Array) => void; given: Uint8Array[]; written: number[] } {
    const given: Uint8Array[] = [];
    const written: number[] = [];
    let next = 0;
    return {
      given,
      written,
      fill: (out) => {
        given.push(out);
        for (let i = 0; i < out.length; i++) {
          out[i] = (next * 131 + (next >>> 8)) & 0xff;
          written.push(out[i]!);
          next++;
        }
      },
    };
  }

  it("hands out the binding's bytes unchanged, each once, and zeroes each one in the pool as it leaves", () => {
    const r = recordingFill();
    const draw = pooledRandomFill(r.fill);
    const out: number[] = [];
    const take = (k: number): void => {
      for (let i = 0; i < k; i++) {
        const b = new Uint8Array(32);
        draw(b);
        out.push(...b);
      }
    };
    take(RANDOM_POOL_LEN / 32);
    expect(r.given).to.have.length(1);
    const pool = r.given[0]!;
    expect(pool).to.have.length(RANDOM_POOL_LEN);
    expect(pool.every((x) => x === 0)).to.equal(true); // used up: every byte zeroed as it left
    take(3); // the next draw refills the same pool
    expect(r.given).to.have.length(2);
    expect(r.given[1]).to.equal(pool);
    expect(pool.subarray(0, 96).every((x) => x === 0)).to.equal(true);
    expect(Array.from(pool.subarray(96, 200))).to.deep.equal(r.written.slice(RANDOM_POOL_LEN + 96, RANDOM_POOL_LEN + 200));
    // Draw by draw, the bytes the binding wrote, in order: none repeated, none altered.
    expect(out).to.deep.equal(r.written.slice(0, out.length));
  });

  it('sends a draw longer than the pool serves to the binding directly, and an empty draw nowhere', () => {
    const r = recordingFill();
    const draw = pooledRandomFill(r.fill);
    const big = new Uint8Array(RANDOM_POOL_MAX_DRAW + 1);
    draw(big);
    expect(r.given).to.deep.equal([big]);
    const c = new Crypto({ randomFill: pooledRandomFill(r.fill) } as unknown as SodiumBinding);
    expect(c.random(0)).to.have.length(0);
    expect(r.given).to.have.length(1);
  });
});
