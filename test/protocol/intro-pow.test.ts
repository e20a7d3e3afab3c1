/**
 * The introduction puzzle (protocol/intro-pow.ts, specs/rendezvous.md §4.3): a solution verifies under its seed, effort
 * and binding and under nothing else (ERR_INTRO_POW), and solving costs about `effort` hashes — more for more effort.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { isAlliumError } from '../../protocol/errors.js';
import { MAX_POW_EFFORT, powBinding, powThreshold, solvePow, verifyPow, type PowSolution } from '../../protocol/intro-pow.js';

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return isAlliumError(e) ? e.code : String(e);
  }
}

/** Solves from a fixed start and returns the solution and the tries it took. */
function solve(seed: Uint8Array, effort: number, binding: Uint8Array, start = new Uint8Array(16)): { w: PowSolution; tries: number } {
  const w = solvePow(seed, effort, binding, start, 1 << 24)!;
  let tries = 0;
  for (let i = 15, mul = 1; i >= 8; i--, mul *= 256) tries += (w.n[i]! - start[i]!) * mul;
  return { w, tries: tries + 1 };
}

describe('introduction proof of work', () => {
  let seed: Uint8Array;
  let other: Uint8Array;
  let binding: Uint8Array;
  before(() => {
    seed = crypto().random(32);
    other = crypto().random(32);
    binding = powBinding(crypto().random(300));
  });

  it('a solution verifies under its seed, and is refused with a wrong seed, nonce, binding or effort', () => {
    const { w } = solve(seed, 1000, binding);
    expect(verifyPow([seed], w, binding)).to.equal(0);
    expect(verifyPow([other, seed], w, binding)).to.equal(1);
    expect(codeOf(() => verifyPow([other], w, binding))).to.equal('ERR_INTRO_POW');
    expect(codeOf(() => verifyPow([seed], w, powBinding(crypto().random(300))))).to.equal('ERR_INTRO_POW');
    // Claiming a higher effort than solved for (the effort is inside the hash) fails, as does another nonce.
    const wrongNonce = Uint8Array.from(w.n);
    wrongNonce[15] = wrongNonce[15]! ^ 1;
    const refused = [
      codeOf(() => verifyPow([seed], { n: wrongNonce, e: w.e }, binding)),
      codeOf(() => verifyPow([seed], { n: w.n, e: 100_000 }, binding)),
      codeOf(() => verifyPow([seed], { n: w.n, e: 0 }, binding)),
      codeOf(() => verifyPow([seed], { n: w.n, e: MAX_POW_EFFORT + 1 }, binding)),
      codeOf(() => verifyPow([seed], { n: w.n.subarray(1), e: w.e }, binding)),
      codeOf(() => verifyPow([seed.subarray(1)], w, binding)),
    ];
    expect(refused).to.deep.equal(Array(6).fill('ERR_INTRO_POW'));
  });

  it('effort is monotonic: the target shrinks and the mean work grows about in proportion', () => {
    for (let e = 1; e < 5000; e += 7) expect(powThreshold(e + 1)).to.be.at.most(powThreshold(e));
    expect(solve(seed, 1, binding).tries).to.equal(1); // effort 1: every hash meets the target
    const mean = (effort: number): number => {
      let sum = 0;
      const runs = 40;
      for (let r = 0; r < runs; r++) sum += solve(crypto().random(32), effort, binding).tries;
      return sum / runs;
    };
    const low = mean(16);
    const high = mean(512);
    console.log(`      mean tries: effort 16 → ${low}, effort 512 → ${high}`);
    expect(low).to.be.within(4, 64);
    expect(high).to.be.within(200, 1300);
  });

  it('the solver gives up after its budget of tries and does not touch its start nonce', () => {
    const start = new Uint8Array(16).fill(255);
    expect(solvePow(seed, MAX_POW_EFFORT, binding, start, 10)).to.equal(null);
    expect([...start]).to.deep.equal(Array(16).fill(255));
  });
});
