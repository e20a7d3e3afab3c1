/** specs/vectors/padding.json against protocol/circuit-padding.ts (specs/padding.md §2–§4). */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import {
  decodePaddingNegotiate,
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  encodePaddingNegotiated,
  PaddingRuntime,
  paddingMachine,
  scheduleScale,
  SCHEDULE_BORROW_DEPTH,
  type PaddingAction,
  type PaddingCommand,
  type PaddingStatus,
} from '../../protocol/circuit-padding.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface PaddingVectors {
  negotiate: { name: string; command: PaddingCommand; machine: number; rtt?: number; hex: string }[];
  negotiated: { name: string; machine: number; status: PaddingStatus; hex: string }[];
  invalid: { message: 'NEGOTIATE' | 'NEGOTIATED'; name: string; hex: string; code: string }[];
  run: Run;
  runs: Run[];
  /** SCHEDULE runs that end as bulk transfers, and a SENDME that finds cells held (padding.md §2.1). */
  bulk: Run[];
  /** SCHEDULE's relay half: a late slot borrowing the next slot's count (padding.md §2.1). */
  borrow: Run[];
}

interface Run {
  machine: number;
  half: 'relay' | 'client';
  draws: number[];
  /** The round-trip byte negotiated (padding.md §4.4), if any. */
  rtt?: number;
  steps: { event: string; action: string; state: string; padding: number; held?: number; holding?: boolean; real?: number }[];
}

/** Replays a run's events on a fresh runtime with the run's draws; every action, state and count must match. */
function replay(run: Run): void {
  let i = 0;
  const rt = new PaddingRuntime(paddingMachine(run.machine)![run.half], () => run.draws[i++ % run.draws.length]!, scheduleScale(run.rtt));
  const show = (a: PaddingAction): string => (a.kind === 'schedule' ? `schedule ${a.delayMs.toFixed(3)}` : a.kind);
  run.steps.forEach((s, n) => {
    const e = s.event;
    const a =
      e === 'start'
        ? rt.start()
        : e === 'timer'
          ? rt.onPaddingSent()
          : e === 'timer-held'
            ? rt.onPaddingSent(true, true)
            : e === 'release' || e === 'urgent' || e === 'urgent-held'
              ? rt.offer(e === 'urgent-held' ? 1 : 0, e !== 'release')
              : e === 'timeout'
                ? rt.onTimeout()
                : rt.on(e as 'nonpadding-sent' | 'nonpadding-received' | 'padding-received');
    if (s.held !== undefined) expect({ held: rt.released, holding: rt.holding }, `step ${n}: ${e} (held)`).to.deep.equal({ held: s.held, holding: s.holding });
    if (s.real !== undefined) expect(rt.real, `step ${n}: ${e} (real cells seen)`).to.equal(s.real);
    expect(
      { action: typeof a === 'string' ? (a === 'release' ? 'released' : a) : show(a), state: rt.stateName, padding: rt.padding },
      `step ${n}: ${e}`,
    ).to.deep.equal({
      action: s.action,
      state: s.state,
      padding: s.padding,
    });
  });
}

const V = readVectors<PaddingVectors>('padding.json');

describe('vectors: padding.json', () => {
  for (const v of V.negotiate) {
    it(`PADDING_NEGOTIATE: ${v.name}`, () => {
      expect(toHex(encodePaddingNegotiate(v))).to.equal(v.hex);
      expect(decodePaddingNegotiate(hex(v.hex))).to.deep.equal({ command: v.command, machine: v.machine, ...(v.rtt !== undefined ? { rtt: v.rtt } : {}) });
    });
  }
  for (const v of V.negotiated) {
    it(`PADDING_NEGOTIATED: ${v.name}`, () => {
      expect(toHex(encodePaddingNegotiated(v))).to.equal(v.hex);
      expect(decodePaddingNegotiated(hex(v.hex))).to.deep.equal({ machine: v.machine, status: v.status });
    });
  }
  for (const v of V.invalid) {
    it(`invalid ${v.message}: ${v.name}`, () => {
      expectCode(() => (v.message === 'NEGOTIATE' ? decodePaddingNegotiate(hex(v.hex)) : decodePaddingNegotiated(hex(v.hex))), v.code);
    });
  }
  it('one run of the machine with fixed draws', () => replay(V.run));
  it('whole runs of EXCHANGES, both halves, reach their end', () => {
    expect(V.runs.map((r) => `${r.machine}/${r.half}`)).to.include.members(['2/relay', '2/client', '4/relay', '4/client']);
  });
  for (const r of V.runs) {
    it(`a whole run of machine ${r.machine} (${r.half} half) with fixed draws`, () => {
      replay(r);
      expect(r.steps[r.steps.length - 1]!.state).to.equal('end');
      expect(r.steps[r.steps.length - 1]!.padding).to.be.at.most(paddingMachine(r.machine)![r.half].maxPadding);
    });
  }
  for (const r of V.bulk) {
    it(`SCHEDULE (${r.half} half) ends as a bulk transfer past bulkCells real cells, and for a SENDME that finds cells held`, () => {
      replay(r);
      const last = r.steps[r.steps.length - 1]!;
      expect(last.state).to.equal('end');
      if (last.event !== 'urgent-held') expect(last.real).to.equal(paddingMachine(r.machine)![r.half].bulkCells! + 1);
    });
  }
  for (const r of V.borrow) {
    it(`SCHEDULE (${r.half} half): a late slot with its count spent borrows the next slots', and they send fewer`, () => {
      replay(r);
      const offered = r.steps.filter((s) => s.event === 'release');
      expect(offered.map((s) => s.action).slice(-2), 'a borrowed cell goes; one past both counts is held').to.deep.equal(['released', 'hold']);
      expect(r.steps[r.steps.length - 1]!.state).to.equal(`collect-${22 + SCHEDULE_BORROW_DEPTH}`);
    });
  }
});
