/**
 * Congestion control from round-trip times (protocol/congestion.ts, specs/streams.md §4.6), driven with values: a
 * sender that always has data fills its window, then one SENDME per step arrives with the given round trip. The
 * cases are vectors: the round trips in, the window after each SENDME out.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { VegasController, VEGAS_DEFAULTS, type VegasParams } from '../../protocol/congestion.js';
import { CIRC_SENDME_INC, CIRC_WINDOW, CircuitSendWindow } from '../../protocol/flow.js';
import { isAlliumError } from '../../protocol/errors.js';

/** Fills the window (when `busy`), then delivers one SENDME per round trip; returns cwnd after each. */
function drive(c: VegasController, rtts: readonly number[], busy = true): number[] {
  const out: number[] = [];
  for (const rtt of rtts) {
    if (busy) while (c.available > 0) c.onSent();
    else if (c.inflight < CIRC_SENDME_INC) for (let i = 0; i < CIRC_SENDME_INC; i++) c.onSent();
    c.onAck(rtt);
    out.push(c.cwnd);
  }
  return out;
}

const repeat = (v: number, n: number): number[] => Array.from({ length: n }, () => v);

interface Case {
  name: string;
  rtts: number[];
  busy?: boolean;
  params?: Partial<VegasParams>;
  /** cwnd after each SENDME, or only the listed indices. */
  cwnd: number[] | Record<number, number>;
  slowStart: boolean;
}

const CASES: Case[] = [
  {
    name: 'slow start grows one step per SENDME while the round trip stays at its minimum, up to CIRC_CWND_MAX',
    rtts: repeat(10, 12),
    cwnd: [1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900, 2000, 2000, 2000],
    slowStart: true,
  },
  {
    name: 'an application-limited sender (window never full) does not grow',
    rtts: repeat(10, 5),
    busy: false,
    cwnd: [1000, 1000, 1000, 1000, 1000],
    slowStart: true,
  },
  {
    // 2nd sample 20 ms: ewma 10 + 10·2/(5+1)… = 13.33, bdp = ⌊1100·10/13.33⌋ = 825, queue 275 ≤ gamma: grow to 1200.
    // 3rd: ewma 13.33 + 6.67·2/7 = 15.24, bdp = ⌊1200·10/15.24⌋ = 787, queue 413 > gamma: leave, cwnd = 787 + 400.
    name: 'queueing delay ends slow start at bdp + gamma',
    rtts: [10, 20, 20],
    cwnd: [1100, 1200, 1187],
    slowStart: false,
  },
  {
    // Round trips 4× the minimum: bdp = cwnd / 4, so the queue estimate 3/4 · cwnd lies in [alpha, beta] = [200, 400]
    // for cwnd in [267, 533]. 2nd sample: N = 5, ewma = 1 + 3·2/6 = 2, bdp = ⌊1100·1/2⌋ = 550, queue 550 > gamma:
    // cwnd = 550 + 400 = 950; then it comes down and settles inside that range.
    name: 'a persistent queue (round trips 4× the minimum) shrinks the window until the queue estimate is within [alpha, beta]',
    rtts: [1, ...repeat(4, 400)],
    cwnd: { 1: 950, 400: 438 },
    slowStart: false,
  },
  {
    // 2nd sample: ewma = 1 + 999·2/6 = 334, bdp = ⌊1100/334⌋ = 3: cwnd = 3 + 400 = 403; bdp stays ≈ 0, so the queue
    // estimate is cwnd itself, and the window holds at the first value within [alpha, beta] (one step down: 303).
    name: 'round trips 1000× the minimum cut the window at once to bdp + gamma, then to the top of [alpha, beta]',
    rtts: [1, ...repeat(1000, 200)],
    cwnd: { 1: 403, 10: 303, 200: 303 },
    slowStart: false,
  },
  {
    // Tighter thresholds: the delta cut asks for bdp + 150 − 100 ≈ 50 cells, and the floor holds the window at 200.
    name: 'never below CIRC_CWND_MIN, whatever the cut asks for',
    params: { alpha: 50, beta: 100, gamma: 100, delta: 150 },
    rtts: [1, ...repeat(1000, 50)],
    cwnd: { 1: VEGAS_DEFAULTS.cwndMin, 50: VEGAS_DEFAULTS.cwndMin },
    slowStart: false,
  },
  {
    name: 'after the queue drains (round trips back at the minimum) the window grows again, one step per window',
    rtts: [10, 40, 40, 40, ...repeat(40, 60), ...repeat(10, 200)],
    cwnd: { 263: VEGAS_DEFAULTS.cwndMax },
    slowStart: false,
  },
];

describe('congestion control (protocol/congestion.ts, streams.md §4.6)', () => {
  for (const k of CASES) {
    it(k.name, () => {
      const c = new VegasController({ ...VEGAS_DEFAULTS, ...k.params });
      const got = drive(c, k.rtts, k.busy ?? true);
      if (Array.isArray(k.cwnd)) expect(got).to.deep.equal(k.cwnd);
      else for (const [i, v] of Object.entries(k.cwnd)) expect({ i, cwnd: got[Number(i)] }).to.deep.equal({ i, cwnd: v });
      expect(c.inSlowStart).to.equal(k.slowStart);
    });
  }

  it('stays within [CIRC_CWND_MIN, CIRC_CWND_MAX] and never lets more than cwnd cells out, for any round trips', () => {
    for (let seed = 0; seed < 50; seed++) {
      const c = new VegasController();
      const rtts = Array.from({ length: 300 }, () => 1 + crypto().random(1)[0]! * (seed % 2 === 0 ? 4 : 0.2));
      for (const rtt of rtts) {
        while (c.available > 0) c.onSent();
        expect(c.inflight).to.be.at.most(CIRC_WINDOW);
        c.onAck(rtt);
        expect(c.cwnd).to.be.within(VEGAS_DEFAULTS.cwndMin, VEGAS_DEFAULTS.cwndMax);
      }
    }
  });

  it('takes a zero, negative or non-finite sample without breaking (clock steps)', () => {
    const c = new VegasController();
    drive(c, [0, -5, Number.NaN, Infinity, 10]);
    expect(c.cwnd).to.be.within(VEGAS_DEFAULTS.cwndMin, VEGAS_DEFAULTS.cwndMax);
    expect(Number.isFinite(c.ewmaRtt)).to.equal(true);
  });

  it('refuses parameters that break its bounds, and a sender window whose maximum exceeds CIRC_WINDOW', () => {
    const bad: Partial<VegasParams>[] = [{ cwndMin: 50 }, { cwndInit: 100 }, { cwndMax: 500 }, { alpha: 500 }, { delta: 300 }];
    for (const b of bad)
      expect(() => new VegasController({ ...VEGAS_DEFAULTS, ...b }))
        .to.throw()
        .that.satisfies(isAlliumError);
    expect(() => new CircuitSendWindow({ ...VEGAS_DEFAULTS, cwndMax: CIRC_WINDOW + 100 }))
      .to.throw()
      .with.property('code', 'ERR_CONFIG');
  });

  it('the sender window samples the round trip from the tagged cell to its SENDME, and refuses a wrong tag', () => {
    const w = new CircuitSendWindow();
    const tags: Uint8Array[] = [];
    for (let i = 1; i <= 200; i++) {
      const tag = crypto().random(16);
      tags.push(tag);
      w.onSent(tag, 1000 + i * 0.01);
    }
    expect(w.available).to.equal(VEGAS_DEFAULTS.cwndInit - 200);
    w.onSendme(tags[99]!, 1011); // sent at 1001: 10 ms
    expect({ min: w.cc.minRtt, inflight: w.cc.inflight }).to.deep.equal({ min: 10, inflight: 100 });
    expect(() => w.onSendme(tags[99]!, 1012))
      .to.throw()
      .with.property('code', 'ERR_SENDME');
  });
});
