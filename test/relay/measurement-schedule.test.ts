/**
 * The measurement schedule of a directory authority (specs/measurement.md §3): a relay is measured once per
 * measurement interval; a measurement that fails is tried again after the reachability interval, doubling with each
 * failure in a row up to the measurement interval; the schedule holds one entry per listed relay.
 */
import { expect } from 'chai';
import type { Descriptor } from '../../protocol/descriptor.js';
import type { DirectoryStore } from '../../protocol/directory-store.js';
import { RelayHistory } from '../../relay/authority-history.js';
import { ReachabilityTester } from '../../relay/authority-reachability.js';

const TEST_MS = 2_000;
const MEASURE_MS = 60_000;

describe('measurement schedule at an authority', () => {
  let now: number;
  let listed: Descriptor[];
  let outcomes: (number | Error)[];
  let tries: { fp: string; at: number }[];
  let failures: number[];
  let tester: ReachabilityTester;
  let history: RelayHistory;

  const relay = (fp: string): Descriptor => ({ fingerprint: fp }) as unknown as Descriptor;
  /** Lets the measurement promises settle. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };

  beforeEach(() => {
    now = 1_000_000;
    listed = [relay('a'.repeat(64))];
    outcomes = [];
    tries = [];
    failures = [];
    history = new RelayHistory(null);
    history.observe(listed[0]!.fingerprint, true, now);
    tester = new ReachabilityTester({
      directory: { all: () => listed } as unknown as DirectoryStore,
      history,
      // every relay answers its reachability test at once
      prove: () => Promise.resolve({ close: () => {} }),
      measure: (d) => {
        tries.push({ fp: d.fingerprint, at: now });
        const o = outcomes.shift() ?? 1000;
        return o instanceof Error ? Promise.reject(o) : Promise.resolve(o);
      },
      testIntervalMs: TEST_MS,
      measureIntervalMs: MEASURE_MS,
      now: () => now,
      onMeasureFailed: (_d, n) => failures.push(n),
    });
  });
  afterEach(() => tester.stop());

  /** Advances the clock by `ms` in ticks of `step`, ticking the tester each time. */
  const advance = async (ms: number, step = 250): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      now += step;
      tester.tick();
      await settle();
    }
  };

  it('a failed measurement is tried again after the reachability interval, doubling, not after a whole interval', async () => {
    outcomes = [new Error('no circuit'), 0, new Error('no link'), 5000];
    tester.tick();
    await settle();
    expect(tries.map((t) => t.at - 1_000_000)).to.deep.equal([0]);
    await advance(20_000);
    // failures at 0, then after 2 s, then after 4 s more; the fourth (after 8 s) succeeds
    expect(tries.map((t) => t.at - 1_000_000)).to.deep.equal([0, 2_000, 6_000, 14_000]);
    expect(failures).to.deep.equal([1, 2, 3]);
    expect(tester.measurementOf(listed[0]!.fingerprint)).to.equal(5000);
    expect(tester.measuredCount).to.equal(1);
  });

  it('after a success, the next measurement waits the whole interval; the retry never waits longer than it', async () => {
    tester.tick();
    await settle();
    await advance(MEASURE_MS - 1_000, 1_000);
    expect(tries).to.have.length(1);
    await advance(2_000, 1_000);
    expect(tries).to.have.length(2);
    // A relay that never answers: the retry doubles up to the measurement interval and stays there.
    outcomes = Array.from({ length: 40 }, () => new Error('down'));
    await advance(10 * MEASURE_MS, 1_000);
    const gaps = tries.slice(2).map((t, i) => t.at - tries[i + 1]!.at);
    expect(gaps[0]).to.be.at.most(MEASURE_MS + 1_000);
    expect(Math.max(...gaps.slice(1))).to.be.at.most(MEASURE_MS + 1_000);
    expect(gaps.slice(1, 5)).to.deep.equal([2_000, 4_000, 8_000, 16_000]);
  });

  it('regression: a relay whose measurements fail does not go ahead of one due longer ago', async () => {
    // Measurements end when the test says: each relay's pending one, by fingerprint.
    tester.stop();
    const ends = new Map<string, { ok: (bw: number) => void; fail: (e: Error) => void }>();
    const order: string[] = [];
    const [h, s, x, z] = ['h', 's', 'x', 'z'].map((c) => relay(c.repeat(64)));
    listed = [h!, x!];
    for (const d of [h!, s!, x!, z!]) history.observe(d.fingerprint, true, now);
    tester = new ReachabilityTester({
      directory: { all: () => listed } as unknown as DirectoryStore,
      history,
      prove: () => Promise.resolve({ close: () => {} }),
      measure: (d) => {
        order.push(d.fingerprint[0]!);
        return new Promise<number>((ok, fail) => ends.set(d.fingerprint[0]!, { ok, fail }));
      },
      testIntervalMs: TEST_MS,
      measureIntervalMs: MEASURE_MS,
      now: () => now,
    });
    const t0 = now;
    const at = async (ms: number): Promise<void> => advance(t0 + ms - now);
    tester.tick();
    ends.get('h')!.ok(1000); // h measured at 0, due again at 60 s; x holds a slot throughout
    await settle();
    await at(500);
    listed.push(s!); // a new relay: tried at once, and its measurement fails late
    await at(1_000);
    await at(58_500);
    ends.get('s')!.fail(new Error('stalled'));
    await settle();
    listed.push(z!); // takes the freed slot before h and s are due
    await at(59_000);
    await at(61_000); // h due since 60 s (last tried at 0), s since 60.5 s (last tried at 0.5 s): no slot free
    expect(order).to.deep.equal(['h', 'x', 's', 'z']);
    ends.get('z')!.ok(1000); // one slot frees
    await at(62_000);
    expect(order.slice(4, 5), 'the relay tried longest ago goes first').to.deep.equal(['h']);
  });

  it('forgets the schedule of relays that left the directory', async () => {
    for (let i = 0; i < 50; i++) {
      listed.push(relay(i.toString(16).padStart(64, '0')));
      history.observe(listed[listed.length - 1]!.fingerprint, true, now);
    }
    await advance(30_000, 1_000);
    const t = tester as unknown as { nextMeasure: Map<string, number>; measureFailures: Map<string, number> };
    expect(t.nextMeasure.size).to.equal(51);
    listed = [listed[0]!];
    await advance(1_000);
    expect(t.nextMeasure.size).to.be.at.most(1);
    expect(t.measureFailures.size).to.be.at.most(1);
  });
});
