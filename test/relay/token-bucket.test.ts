/**
 * TokenBucket (relay/token-bucket.ts) with an injected clock: the rate limits of bandwidth, handshakes and cells.
 */
import { expect } from 'chai';
import { TokenBucket } from '../../relay/token-bucket.js';

describe('token bucket (relay/token-bucket.ts)', () => {
  it('starts full, gives out its burst, then refills at its rate and never beyond its burst', () => {
    let now = 0;
    const b = new TokenBucket(100, 50, () => now);
    let taken = 0;
    while (b.tryTake(1)) taken++;
    expect(taken).to.equal(50);
    now += 100; // a tenth of a second: 10 tokens
    expect(b.tryTake(11)).to.equal(false);
    expect(b.tryTake(10)).to.equal(true);
    now += 3_600_000;
    expect(b.available).to.equal(50);
  });

  it('take() goes into debt and says how long until it is repaid', () => {
    let now = 0;
    const b = new TokenBucket(1000, 1000, () => now);
    expect(b.take(600)).to.equal(0);
    expect(b.take(900)).to.equal(500); // 500 tokens short at 1000/s
    now += 500;
    expect(b.available).to.equal(0);
    expect(b.tryTake(1)).to.equal(false);
  });

  it('ignores a clock that steps backwards (no tokens minted, none lost)', () => {
    let now = 10_000;
    const b = new TokenBucket(10, 10, () => now);
    b.tryTake(10);
    now = 0;
    expect(b.available).to.equal(0);
    now = 10_000 + 500;
    expect(b.available).to.equal(5);
  });
});
