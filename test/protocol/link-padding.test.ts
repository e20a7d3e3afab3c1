/** protocol/link-padding.ts: the bounds a relay honours and the delay before a padding frame (specs/link.md §4.4). */
import { expect } from 'chai';
import { seededRandom } from '../../crypto/drbg.js';
import { decodeControl, encodeControl } from '../../protocol/control.js';
import {
  acceptLinkPadding,
  LINK_PADDING_AUTO,
  LINK_PADDING_MAX_MS,
  LINK_PADDING_MIN_MS,
  LINK_PADDING_REDUCED,
  linkPaddingDelay,
  linkPaddingOf,
} from '../../protocol/link-padding.js';

describe('protocol/link-padding', () => {
  it('honours bounds within LINK_PADDING_MIN_MS ≤ lo ≤ hi ≤ LINK_PADDING_MAX_MS, stops on 0, 0, ignores the rest', () => {
    expect(acceptLinkPadding(0, 0)).to.equal(null);
    expect(acceptLinkPadding(LINK_PADDING_MIN_MS, LINK_PADDING_MAX_MS)).to.deep.equal({ lo: LINK_PADDING_MIN_MS, hi: LINK_PADDING_MAX_MS });
    expect(acceptLinkPadding(1_500, 9_500)).to.deep.equal({ lo: 1_500, hi: 9_500 });
    for (const [lo, hi] of [
      [LINK_PADDING_MIN_MS - 1, 2_000],
      [3_000, 2_000],
      [1_000, LINK_PADDING_MAX_MS + 1],
      [0, 1_000],
      [1_000.5, 2_000],
    ]) {
      expect(acceptLinkPadding(lo!, hi!), `${lo}, ${hi}`).to.equal('ignore');
    }
  });

  it('the modes: auto 1.5–9.5 s, reduced 9–14 s, off', () => {
    expect(linkPaddingOf('auto')).to.equal(LINK_PADDING_AUTO);
    expect(LINK_PADDING_AUTO).to.deep.equal({ lo: 1_500, hi: 9_500 });
    expect(linkPaddingOf('reduced')).to.equal(LINK_PADDING_REDUCED);
    expect(LINK_PADDING_REDUCED).to.deep.equal({ lo: 9_000, hi: 14_000 });
    expect(linkPaddingOf('off')).to.equal(null);
  });

  it('draws delays within the bounds, leaning long: mean lo + 2/3 (hi − lo)', () => {
    const r = seededRandom('link-padding/delays');
    const u = (): number => r(4).reduce((a, b) => a * 256 + b, 0) / 2 ** 32;
    const p = LINK_PADDING_AUTO;
    let sum = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const d = linkPaddingDelay(p, u(), u());
      expect(d).to.be.within(p.lo, p.hi);
      sum += d;
    }
    // Standard deviation of one draw ≈ 0.236 (hi − lo) = 1 886 ms; of the mean of 20 000, 13 ms: 4 sigma is 53 ms.
    expect(sum / n).to.be.closeTo(p.lo + (2 / 3) * (p.hi - p.lo), 60);
    expect(linkPaddingDelay(p, 0, 0)).to.equal(p.lo);
  });

  it('the padding CONTROL message round-trips; unknown fields and negative bounds are refused', () => {
    const bytes = encodeControl({ t: 'padding', lo: 1_500, hi: 9_500 });
    expect(decodeControl(bytes)).to.deep.equal({ t: 'padding', lo: 1_500, hi: 9_500 });
    expect(() => decodeControl(encodeControl({ t: 'padding', lo: 1, hi: 2, x: 1 } as never))).to.throw();
    expect(() => decodeControl(encodeControl({ t: 'padding', lo: -1, hi: 2 } as never))).to.throw();
  });
});
