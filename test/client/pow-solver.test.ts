/**
 * The initiator's solver (client/messaging/pow-solver.ts, specs/rendezvous.md §4.3): it yields to the event loop
 * between slices, so other work runs while it solves, and stops with ERR_ABORTED when its signal aborts.
 */
import { expect } from 'chai';
import { solveIntroPow } from '../../client/messaging/pow-solver.js';
import { crypto } from '../../crypto/index.js';
import { isAlliumError } from '../../protocol/errors.js';
import { MAX_POW_EFFORT, powBinding, verifyPow } from '../../protocol/intro-pow.js';

describe('introduction puzzle solver', () => {
  it('finds a valid solution', async () => {
    const seed = crypto().random(32);
    const binding = powBinding(crypto().random(100));
    const w = await solveIntroPow(seed, 20_000, binding);
    expect(verifyPow([seed], w, binding)).to.equal(0);
  });

  // The abort comes from a setImmediate callback: it can run mid-solve only if the solver yields to the event loop
  // (a solve at the highest effort takes seconds of hashing otherwise).
  it('stops with ERR_ABORTED when its signal aborts mid-solve', async () => {
    const ac = new AbortController();
    const solving = solveIntroPow(crypto().random(32), MAX_POW_EFFORT, powBinding(crypto().random(100)), { signal: ac.signal });
    setImmediate(() => ac.abort());
    const e = await solving.then(
      () => null,
      (x: unknown) => x,
    );
    expect(isAlliumError(e) ? e.code : String(e)).to.equal('ERR_ABORTED');
  });
});
