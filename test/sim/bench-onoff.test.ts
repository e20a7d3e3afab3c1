/**
 * bench/lib/onoff.ts, the comparison --defences-off-too prints: turns alternate run by run, and each figure's
 * medians, ratio of medians and median of paired ratios come from the samples as taken.
 */
import { expect } from 'chai';
import { OnOff, sidesOf } from '../../bench/lib/onoff.js';

describe('bench on/off comparison', () => {
  it('alternates which side goes first, run by run', () => {
    expect([0, 1, 2, 3].map((i) => sidesOf(i).join(','))).to.deep.equal(['on,off', 'off,on', 'on,off', 'off,on']);
  });

  it('gives medians, their ratio and the median of the ratios of the pairs', () => {
    const c = new OnOff();
    // Pairs (on, off): (10, 5), (12, 4), (30, 10); a fourth "on" has no pair.
    for (const [on, off] of [
      [10, 5],
      [12, 4],
      [30, 10],
    ] as const) {
      c.add('build ms', 'on', on);
      c.add('build ms', 'off', off);
    }
    c.add('build ms', 'on', 40);
    const [r] = c.rows();
    expect(r).to.include({ figure: 'build ms', off: 5, pairs: 3 });
    expect(r!.on).to.equal(21); // median of 10, 12, 30, 40
    expect(r!.ratioOfMedians).to.equal(21 / 5);
    expect(r!.pairedRatio).to.equal(3); // median of 2, 3, 3
    expect(c.table()).to.match(/build ms\s+21\s+5\s+4\.2\s+3\s+3/);
  });

  it('leaves a failed sample (NaN) out of the medians', () => {
    const c = new OnOff();
    c.add('MB/s', 'on', 8);
    c.add('MB/s', 'off', 10);
    c.add('MB/s', 'on', NaN);
    c.add('MB/s', 'off', 12);
    const [r] = c.rows();
    expect(r!.on).to.equal(8);
    expect(r!.off).to.equal(11);
    expect(r!.pairedRatio).to.equal(0.8);
  });
});
