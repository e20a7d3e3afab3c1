/**
 * BuildTimeout (client/build-timeout.ts, specs/path.md §4): the learned circuit build timeout.
 */
import { expect } from 'chai';
import { BuildTimeout, DEFAULT_BUILD_TIMEOUT_MS, MIN_BUILD_TIMEOUT_MS } from '../../client/build-timeout.js';

describe('learned build timeout (client/build-timeout.ts)', () => {
  it('uses the default until ten builds are seen, then about twice their 80th percentile', () => {
    const t = new BuildTimeout();
    for (let i = 0; i < 9; i++) t.record(1000);
    expect(t.current).to.equal(DEFAULT_BUILD_TIMEOUT_MS);
    t.record(1000);
    expect(t.current).to.equal(2000);
    for (let i = 0; i < 10; i++) t.record(4000); // 10 at 1 s, 10 at 4 s: the 80th percentile is 4 s
    expect(t.current).to.equal(8000);
  });

  it('never goes below the floor, and forgets all but the last 100 builds', () => {
    const t = new BuildTimeout();
    for (let i = 0; i < 20; i++) t.record(5);
    expect(t.current).to.equal(MIN_BUILD_TIMEOUT_MS);
    for (let i = 0; i < 100; i++) t.record(3000);
    expect({ samples: t.sampleCount, current: t.current }).to.deep.equal({ samples: 100, current: 6000 });
  });

  it('widens after timeouts (doubling, at most 32 times, capped at the default) and narrows again as builds succeed', () => {
    const t = new BuildTimeout();
    for (let i = 0; i < 10; i++) t.record(500);
    expect(t.current).to.equal(MIN_BUILD_TIMEOUT_MS);
    t.recordTimeout();
    t.recordTimeout();
    expect(t.current).to.equal(MIN_BUILD_TIMEOUT_MS * 4);
    for (let i = 0; i < 10; i++) t.recordTimeout();
    expect(t.current).to.equal(Math.min(DEFAULT_BUILD_TIMEOUT_MS, MIN_BUILD_TIMEOUT_MS * 32));
    for (let i = 0; i < 12; i++) t.record(500);
    expect(t.current).to.equal(MIN_BUILD_TIMEOUT_MS);
  });
});
