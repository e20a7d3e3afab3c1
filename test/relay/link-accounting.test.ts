/** relay/link-accounting.ts: each link's bytes and cells are counted once, on a sweep or when it closes. */
import { expect } from 'chai';
import type { Link } from '../../net/link.js';
import { LinkAccounting } from '../../relay/link-accounting.js';

class Counter {
  total = 0;
  inc(n = 1): void {
    this.total += n;
  }
}

function fakeLink(): Link & { stats: { bytesIn: number; bytesOut: number; cellsOut: number } } {
  return { stats: { bytesIn: 0, bytesOut: 0, cellsOut: 0 } } as unknown as Link & { stats: { bytesIn: number; bytesOut: number; cellsOut: number } };
}

describe('link accounting', () => {
  it('adds what each link carried since its last reading, on sweeps and at close, and nothing after', () => {
    const metrics = { bytesIn: new Counter(), bytesOut: new Counter(), cellsOut: new Counter() };
    const a = new LinkAccounting(metrics as never);
    const one = fakeLink();
    const two = fakeLink();
    a.track(one);
    a.track(two);
    Object.assign(one.stats, { bytesIn: 100, bytesOut: 50, cellsOut: 1 });
    a.sweep();
    a.sweep(); // nothing new: nothing added
    Object.assign(one.stats, { bytesIn: 130, bytesOut: 50, cellsOut: 1 });
    Object.assign(two.stats, { bytesIn: 7, bytesOut: 9, cellsOut: 2 });
    a.untrack(two);
    Object.assign(two.stats, { bytesIn: 1000, bytesOut: 1000, cellsOut: 1000 }); // after its close: not counted
    a.sweep();
    expect({ totals: a.totals, bytesIn: metrics.bytesIn.total, bytesOut: metrics.bytesOut.total, cellsOut: metrics.cellsOut.total }).to.deep.equal({
      totals: { in: 137, out: 59 },
      bytesIn: 137,
      bytesOut: 59,
      cellsOut: 3,
    });
  });
});
