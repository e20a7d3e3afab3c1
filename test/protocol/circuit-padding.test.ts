/**
 * protocol/circuit-padding.ts (specs/padding.md §2–§4): the padding state machine driven with values and a seeded
 * uniform source, the shipped machines' shape (forward-only, capped), and the negotiation codecs.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  decodePaddingNegotiate,
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  PaddingCommand,
  PaddingMachineId,
  PaddingRuntime,
  paddingMachine,
  paddingRttUnits,
  sampleLength,
  SCHEDULE_BORROW_DEPTH,
  SCHEDULE_BULK_CELLS,
  SCHEDULE_LATE_SLOTS,
  SCHEDULE_MIN_SCALE,
  scheduleScale,
  type PaddingAction,
  type PaddingMachine,
} from '../../protocol/circuit-padding.js';
import { isAlliumError } from '../../protocol/errors.js';
import { Rng } from '../../sim/random.js';

const seeded = (seed: number): (() => number) => new Rng(seed).random;

/** A two-state machine with fixed numbers, to check each rule alone. */
const TOY: PaddingMachine = {
  name: 'toy',
  maxPadding: 5,
  states: [
    { name: 'gap', delay: [{ lo: 100, hi: 200, weight: 1 }], length: [{ lo: 3, hi: 4, weight: 1 }], countNonPadding: true, next: { 'length-count': 1 } },
    { name: 'idle', delay: [], length: [{ lo: 1, hi: 2, weight: 1 }], countNonPadding: false, next: { 'nonpadding-received': 'end' } },
  ],
};

describe('protocol/circuit-padding: the state machine', () => {
  it('schedules a delay inside the state bin, re-arms after each cell sent, and moves on when the length is reached', () => {
    const rt = new PaddingRuntime(TOY, seeded(1));
    const first = rt.start();
    expect(first.kind).to.equal('schedule');
    expect((first as { delayMs: number }).delayMs).to.be.within(100, 200);
    expect(rt.onPaddingSent().kind, 'one padding cell: the gap timer is armed again').to.equal('schedule');
    // A non-padding cell counts towards the length (countNonPadding) and re-arms the timer.
    expect(rt.on('nonpadding-sent').kind).to.equal('schedule');
    expect(rt.stateName).to.equal('gap');
    // The third cell reaches the sampled length (exactly 3): to "idle", which waits.
    expect(rt.onPaddingSent()).to.deep.equal({ kind: 'wait' });
    expect(rt.stateName).to.equal('idle');
    expect(rt.padding).to.equal(2);
    expect(rt.on('padding-received'), 'an event with no transition keeps the timer').to.deep.equal({ kind: 'keep' });
    expect(rt.on('nonpadding-received')).to.deep.equal({ kind: 'end' });
    expect(rt.ended).to.equal(true);
    expect(rt.onPaddingSent()).to.deep.equal({ kind: 'end' });
  });

  it('never sends more than maxPadding, and a budget that refuses a cell ends the machine', () => {
    const endless: PaddingMachine = {
      name: 'endless',
      maxPadding: 7,
      states: [{ name: 's', delay: [{ lo: 0, hi: 1, weight: 1 }], length: [{ lo: 1000, hi: 1001, weight: 1 }], countNonPadding: false, next: {} }],
    };
    const rt = new PaddingRuntime(endless, seeded(2));
    let a: PaddingAction = rt.start();
    let sent = 0;
    while (a.kind === 'schedule' && sent < 100) {
      sent++;
      a = rt.onPaddingSent();
    }
    expect(sent).to.equal(7);
    expect(a.kind).to.equal('end');
    const refused = new PaddingRuntime(endless, seeded(2));
    refused.start();
    expect(refused.onPaddingSent(false)).to.deep.equal({ kind: 'end' });
    expect(refused.padding).to.equal(0);
  });

  it('an infinity draw sends nothing and raises "infinity"', () => {
    const m: PaddingMachine = {
      name: 'inf',
      maxPadding: 3,
      states: [
        {
          name: 'never',
          delay: [{ lo: 1, hi: 2, weight: 0 }],
          infinity: 1,
          length: [{ lo: 5, hi: 6, weight: 1 }],
          countNonPadding: false,
          next: { infinity: 1 },
        },
        { name: 'after', delay: [], length: [{ lo: 1, hi: 2, weight: 1 }], countNonPadding: false, next: {} },
      ],
    };
    const rt = new PaddingRuntime(m, seeded(3));
    expect(rt.start()).to.deep.equal({ kind: 'wait' });
    expect(rt.stateName).to.equal('after');
  });

  it('is deterministic for a seed: the same events give the same actions', () => {
    const run = (seed: number): string[] => {
      const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay, seeded(seed));
      const out = [JSON.stringify(rt.start()), JSON.stringify(rt.on('nonpadding-received'))];
      for (let i = 0; i < 200 && !rt.ended; i++) out.push(JSON.stringify(rt.onPaddingSent()));
      return out;
    };
    expect(run(11)).to.deep.equal(run(11));
    expect(run(11)).to.not.deep.equal(run(12));
  });

  it('STREAM_SETUP (relay half): waits for the client, then CONNECTED, first byte and a burst, never more than its cap', () => {
    const relay = paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay;
    for (let seed = 0; seed < 200; seed++) {
      const rt = new PaddingRuntime(relay, seeded(seed));
      expect(rt.start()).to.deep.equal({ kind: 'wait' });
      const a = rt.on('padding-received');
      expect(rt.stateName).to.equal('connected');
      expect(a.kind).to.equal('schedule');
      let b: PaddingAction = a;
      let n = 0;
      while (b.kind === 'schedule') {
        n++;
        b = rt.onPaddingSent();
      }
      expect(b.kind).to.equal('end');
      expect(n).to.be.within(3, relay.maxPadding);
    }
  });

  it('STREAM_SETUP counts real cells: a circuit that already sent a long burst gets no padding burst', () => {
    const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay, seeded(5));
    rt.start();
    rt.on('nonpadding-received'); // the client's BEGIN
    for (let i = 0; i < 200 && !rt.ended; i++) rt.on('nonpadding-sent'); // CONNECTED and a long response
    expect(rt.ended).to.equal(true);
    expect(rt.padding).to.equal(0);
  });

  /** Drives a half with the other half's cells: whenever it waits, one cell arrives from the other end. */
  function driveAlone(m: PaddingMachine, seed: number): { states: string[]; padding: number; end: PaddingAction } {
    const rt = new PaddingRuntime(m, seeded(seed));
    const states = [rt.stateName];
    let a = rt.start();
    for (let i = 0; i < 1000 && a.kind !== 'end'; i++) {
      a = a.kind === 'schedule' ? rt.onPaddingSent() : rt.on('padding-received');
      if (states[states.length - 1] !== rt.stateName) states.push(rt.stateName);
    }
    return { states, padding: rt.padding, end: a };
  }

  it('EXCHANGES (relay half): CONNECTED, an optional early burst, then eight request/think/response rounds, capped', () => {
    const relay = paddingMachine(PaddingMachineId.EXCHANGES)!.relay;
    expect(relay.states.map((s) => s.name).slice(0, 6)).to.deep.equal(['wait-begin', 'connected', 'early-response', 'wait-request-0', 'think-0', 'response-0']);
    const early = new Set<boolean>();
    for (let seed = 0; seed < 200; seed++) {
      const rt = new PaddingRuntime(relay, seeded(seed));
      expect(rt.start(), 'waits for the client').to.deep.equal({ kind: 'wait' });
      expect(rt.on('padding-received').kind).to.equal('schedule');
      expect(rt.stateName).to.equal('connected');
      // After CONNECTED: the early burst (30–59 cells at gaps under 1.5 ms) or straight to waiting for a request.
      let a = rt.onPaddingSent();
      if (rt.stateName === 'early-response') {
        early.add(true);
        let n = 0;
        while (rt.stateName === 'early-response') {
          expect(a.kind).to.equal('schedule');
          expect((a as { delayMs: number }).delayMs).to.be.below(1.5);
          a = rt.onPaddingSent();
          n++;
        }
        expect(n).to.be.within(30, 59);
      } else early.add(false);
      expect(rt.stateName).to.equal('wait-request-0');
      expect(a).to.deep.equal({ kind: 'wait' });
      // Each round: a request arrives, a think time, a response burst; then the next round waits.
      for (let round = 0; round < 8 && !rt.ended; round++) {
        expect(rt.stateName).to.equal(`wait-request-${round}`);
        a = rt.on('padding-received');
        expect(rt.stateName).to.equal(`think-${round}`);
        expect((a as { delayMs: number }).delayMs).to.be.within(20, 1500);
        a = rt.onPaddingSent();
        while (!rt.ended && rt.stateName === `response-${round}`) a = rt.onPaddingSent();
      }
      expect(rt.ended, `seed ${seed}`).to.equal(true);
      expect(rt.padding).to.be.within(1, relay.maxPadding);
    }
    expect([...early].sort(), 'both branches taken over 200 seeds').to.deep.equal([false, true]);
  });

  it('EXCHANGES (client half): two cells at once, waits for the answer and CONNECTED, then eight request rounds; real requests take rounds', () => {
    const client = paddingMachine(PaddingMachineId.EXCHANGES)!.client;
    for (let seed = 0; seed < 100; seed++) {
      const { states, padding, end } = driveAlone(client, seed);
      const rounds = Array.from({ length: 8 }, (_, i) => [`request-${i}`, `wait-response-${i}`]).flat();
      expect(states).to.deep.equal(['begin', 'wait-negotiated', 'wait-connected', ...rounds, 'end']);
      expect(end.kind).to.equal('end');
      expect(padding).to.be.within(2 + 8, client.maxPadding);
    }
    // Real cells count: a client that sends its own two first cells and its own requests sends no padding for them.
    const rt = new PaddingRuntime(client, seeded(1));
    rt.start();
    rt.on('nonpadding-sent');
    rt.on('nonpadding-sent');
    expect(rt.stateName).to.equal('wait-negotiated');
    rt.on('nonpadding-received');
    rt.on('nonpadding-received');
    expect(rt.stateName).to.equal('request-0');
    for (let i = 0; i < 3 && rt.stateName === 'request-0'; i++) rt.on('nonpadding-sent');
    expect(rt.stateName).to.equal('wait-response-0');
    // A real request sent while the response is awaited takes the next round's request's place.
    expect(rt.on('nonpadding-sent')).to.deep.equal({ kind: 'wait' });
    expect(rt.stateName).to.equal('wait-response-1');
    expect(rt.on('nonpadding-received').kind).to.equal('schedule');
    expect(rt.stateName).to.equal('request-2');
    expect(rt.padding).to.equal(0);
  });

  it('EXCHANGES counts real responses: a real burst at least as large as the sampled one gets no padding burst', () => {
    const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.EXCHANGES)!.relay, seeded(5));
    rt.start();
    rt.on('nonpadding-received'); // the client's first cell
    for (let i = 0; i < 70 && rt.stateName !== 'wait-request-0'; i++) rt.on('nonpadding-sent'); // CONNECTED and a block
    expect(rt.stateName).to.equal('wait-request-0');
    rt.on('nonpadding-received'); // a real request
    for (let i = 0; i < 71 && rt.stateName !== 'wait-request-1'; i++) rt.on('nonpadding-sent'); // a real response
    expect(rt.stateName).to.equal('wait-request-1');
    expect(rt.padding, 'every cell so far was real').to.equal(0);
  });

  it('a state with a duration ends on time whatever is sent; a carried state keeps the count, length and deadline', () => {
    const SLOT: PaddingMachine = {
      name: 'slot',
      maxPadding: 10,
      states: [
        {
          name: 'collect',
          delay: [],
          duration: [{ lo: 200, hi: 201, weight: 1 }],
          length: [{ lo: 3, hi: 4, weight: 1 }],
          countNonPadding: true,
          next: { 'length-count': 2, timeout: 1 },
        },
        {
          name: 'fill',
          delay: [{ lo: 0, hi: 1, weight: 1 }],
          carry: true,
          length: [{ lo: 1, hi: 2, weight: 1 }],
          countNonPadding: true,
          next: { 'length-count': 'end' },
        },
        { name: 'over', delay: [], carry: true, length: [{ lo: 1, hi: 2, weight: 1 }], countNonPadding: false, next: { timeout: 'end' } },
      ],
    };
    // Real cells count but do not move the deadline; when it runs out, padding makes up the rest of the target.
    let rt = new PaddingRuntime(SLOT, seeded(3));
    expect(rt.start()).to.deep.equal({ kind: 'wait' });
    const epoch = rt.deadlineEpoch;
    expect(rt.deadlineMs).to.be.within(200, 201);
    expect(rt.on('nonpadding-sent')).to.deep.equal({ kind: 'wait' });
    expect(rt.deadlineEpoch, 'a real cell does not re-arm the deadline').to.equal(epoch);
    expect(rt.onTimeout().kind).to.equal('schedule');
    expect(rt.stateName, 'fill carries the count (1 of 3), not a new length of 1').to.equal('fill');
    rt.onPaddingSent();
    expect(rt.onPaddingSent()).to.deep.equal({ kind: 'end' });
    expect(rt.padding).to.equal(2);
    // Real cells that reach the target before the deadline: no padding, and the slot is waited out.
    rt = new PaddingRuntime(SLOT, seeded(3));
    rt.start();
    rt.on('nonpadding-sent');
    rt.on('nonpadding-sent');
    expect(rt.on('nonpadding-sent')).to.deep.equal({ kind: 'wait' });
    expect(rt.stateName).to.equal('over');
    expect(rt.deadlineMs, 'over carries the deadline').to.be.within(200, 201);
    expect(rt.deadlineEpoch).to.equal(epoch);
    expect(rt.onTimeout()).to.deep.equal({ kind: 'end' });
    expect(rt.padding).to.equal(0);
    expect(rt.deadlineMs).to.equal(null);
  });

  it("SLOTS: slots end on time, so real cells take padding's place without moving the schedule", () => {
    const relay = paddingMachine(PaddingMachineId.SLOTS)!.relay;
    // A circuit without traffic and one whose real cells exceed every target: the same number of slots (timeouts).
    const run = (real: boolean): { timeouts: number; padding: number } => {
      const rt = new PaddingRuntime(relay, seeded(11));
      let a = rt.start();
      a = rt.on('nonpadding-received');
      let timeouts = 0;
      for (let i = 0; i < 5000 && !rt.ended; i++) {
        if (real) for (let k = 0; k < 70 && rt.stateName.startsWith('collect'); k++) a = rt.on('nonpadding-sent');
        if (a.kind === 'schedule') a = rt.onPaddingSent();
        else if (rt.deadlineMs !== null) {
          timeouts++;
          a = rt.onTimeout();
        } else break;
      }
      expect(rt.ended).to.equal(true);
      return { timeouts, padding: rt.padding };
    };
    const idle = run(false);
    const busy = run(true);
    if (idle.padding < relay.maxPadding) expect(idle.timeouts, 'one deadline per slot').to.equal(36);
    expect(busy.padding, "real cells took every padding cell's place").to.equal(0);
    expect(busy.timeouts, 'every slot waited out its time').to.equal(36);
    expect(idle.padding).to.be.within(1, relay.maxPadding);
  });

  it('SCHEDULE scales its early and middle slots by the negotiated round trip, never its late ones', () => {
    const relay = paddingMachine(PaddingMachineId.SCHEDULE)!.relay;
    // Every slot's deadline in order, for a run at `scale` with the same draws.
    const deadlines = (scale: number): number[] => {
      const rt = new PaddingRuntime(relay, seeded(5), scale);
      const out: number[] = [];
      let a = rt.start();
      a = rt.on('padding-received');
      for (let i = 0; i < 5000 && !rt.ended; i++) {
        if (a.kind === 'schedule') a = rt.onPaddingSent();
        else if (rt.deadlineMs !== null) {
          out.push(rt.deadlineMs);
          a = rt.onTimeout();
        } else break;
      }
      return out;
    };
    const full = deadlines(1);
    const fast = deadlines(scheduleScale(paddingRttUnits(40)));
    expect(scheduleScale(paddingRttUnits(40))).to.equal(SCHEDULE_MIN_SCALE);
    expect(scheduleScale(paddingRttUnits(200))).to.equal(0.25);
    expect(scheduleScale(paddingRttUnits(5000))).to.equal(1);
    expect(scheduleScale(undefined)).to.equal(1);
    expect(fast.length).to.equal(full.length);
    for (let i = 0; i < 20; i++) expect(fast[i], `slot ${i}`).to.be.closeTo(full[i]! * SCHEDULE_MIN_SCALE, 1e-9);
    for (let i = 20; i < full.length; i++) expect(fast[i], `slot ${i}`).to.equal(full[i]);
    expect(full.length, 'every slot, when the cap is not reached').to.be.at.most(20 + SCHEDULE_LATE_SLOTS);
    expect(
      full.slice(20).reduce((a, b) => a + b, 0) + fast.slice(0, 20).reduce((a, b) => a + b, 0),
      'a run covers ten seconds at the least scale',
    ).to.be.greaterThan(full.length === 20 + SCHEDULE_LATE_SLOTS ? 9000 : 0);
  });

  it("SCHEDULE releases a real cell at once only in a late slot that owes cells or may borrow the next slot's; the two send exactly their counts", () => {
    const client = paddingMachine(PaddingMachineId.SCHEDULE)!.client;
    const rt = new PaddingRuntime(client, seeded(3));
    let a = rt.start();
    a = rt.onPaddingSent();
    a = rt.onPaddingSent();
    a = rt.on('nonpadding-received');
    expect(rt.stateName).to.equal('collect-0');
    expect(rt.release(), 'early slots hold every real cell').to.equal(false);
    expect(rt.offer(0), 'early slots hold every real cell').to.equal('hold');
    // Run to the first late slot.
    for (let i = 0; i < 5000 && !rt.ended && rt.stateName !== 'collect-20'; i++) {
      if (a.kind === 'schedule') a = rt.onPaddingSent();
      else a = rt.onTimeout();
    }
    expect(rt.stateName).to.equal('collect-20');
    const before = { padding: rt.padding, released: rt.released };
    // A late client slot owes one or two cells: the first real cells go at once, its count and then those of the
    // SCHEDULE_BORROW_DEPTH slots after it (one or two each, borrowed), no more.
    let released = 0;
    while (rt.release()) released++;
    expect(released).to.be.within(1 + SCHEDULE_BORROW_DEPTH, 2 + 2 * SCHEDULE_BORROW_DEPTH);
    // Its end sends nothing more: the slot's count is made of released cells.
    a = rt.onTimeout();
    let sent = 0;
    while (a.kind === 'schedule' && rt.stateName === 'send-20') {
      a = rt.onPaddingSent();
      sent++;
    }
    expect(sent).to.equal(0);
    expect(rt.stateName).to.equal('collect-21');
    expect(rt.released - before.released).to.equal(released);
    expect(rt.padding).to.equal(before.padding);
    // The slots after it lent their whole counts: their ends send nothing.
    for (let i = 1; i <= SCHEDULE_BORROW_DEPTH; i++) {
      a = rt.onTimeout();
      expect(a.kind, `slot ${20 + i}`).to.not.equal('schedule');
      expect(rt.stateName).to.equal(`collect-${21 + i}`);
    }
    // A slot whose count a real cell did not fill still sends the rest as padding at its end.
    const last = `send-${21 + SCHEDULE_BORROW_DEPTH}`;
    a = rt.onTimeout();
    let padded = 0;
    while (a.kind === 'schedule' && rt.stateName === last) {
      a = rt.onPaddingSent();
      padded++;
    }
    expect(padded).to.be.within(1, 2);
  });

  it("SCHEDULE: a real cell that finds its late slot's count spent borrows the next slot's and goes at once; the next slot sends one fewer, the run no more", () => {
    const client = paddingMachine(PaddingMachineId.SCHEDULE)!.client;
    // Constant draws: every late client slot's count is 2, so the counts are known without reading the runtime.
    const always = (): number => 0.99;
    /** Runs the client's half, offering `perLateSlot` real cells (nothing held) as each late slot begins. */
    const run = (perLateSlot: number): { rt: PaddingRuntime; offers: string[][]; sent: number[] } => {
      const rt = new PaddingRuntime(client, always);
      const offers: string[][] = [];
      const sent: number[] = [];
      let a = rt.start();
      a = rt.onPaddingSent();
      a = rt.onPaddingSent();
      a = rt.on('nonpadding-received');
      for (let i = 0; i < 5000 && !rt.ended; i++) {
        if (a.kind === 'schedule') {
          a = rt.onPaddingSent();
          sent[sent.length - 1]!++;
        } else {
          const slot = Number(rt.stateName.replace('collect-', ''));
          if (slot >= 20 && offers.length === slot - 20) offers.push(Array.from({ length: perLateSlot }, () => rt.offer(0)));
          a = rt.onTimeout();
          sent.push(0);
        }
      }
      return { rt, offers, sent };
    };
    const idle = run(0);
    const busy = run(3);
    // Slot 20 owes 2: the first two real cells count as its own, the third borrows one of slot 21's 2 and goes at once.
    expect(busy.offers[0], 'the third cell goes at once, borrowed').to.deep.equal(['release', 'release', 'release']);
    // Its end sends nothing more. Slot 21 then owes 1 (one fewer), which its first real cell takes, and the next two
    // borrow slot 22's 2; and so on, every late slot releasing its 3 while the run lasts.
    expect(busy.sent[20], 'slot 20 sends nothing at its end').to.equal(0);
    expect(idle.sent[20], 'a slot with no real cells pads its count').to.equal(2);
    // In one slot, its own 2 and the 2 of each of the SCHEDULE_BORROW_DEPTH slots after it; one more is held.
    const lent = 2 * SCHEDULE_BORROW_DEPTH;
    const four = new PaddingRuntime(client, always);
    let a = four.start();
    a = four.onPaddingSent();
    a = four.onPaddingSent();
    a = four.on('nonpadding-received');
    for (let i = 0; i < 5000 && four.stateName !== 'collect-20'; i++) a = a.kind === 'schedule' ? four.onPaddingSent() : four.onTimeout();
    expect(Array.from({ length: 3 + lent }, () => four.offer(0))).to.deep.equal([...Array<string>(2 + lent).fill('release'), 'hold']);
    // The slots after it lent all they had: at their ends they send nothing.
    a = four.onTimeout();
    expect(four.stateName).to.equal('collect-21');
    for (let i = 1; i <= SCHEDULE_BORROW_DEPTH; i++) {
      a = four.onTimeout();
      expect(a.kind, `slot ${20 + i} sends none of its 2: both were borrowed`).to.not.equal('schedule');
      expect(four.stateName).to.equal(`collect-${21 + i}`);
    }
    // The run's total is the schedule's whatever was borrowed: capped at maxCells, the same as an idle run's.
    expect(busy.rt.ended && idle.rt.ended).to.equal(true);
    expect(busy.rt.padding + busy.rt.released).to.equal(idle.rt.padding + idle.rt.released);
    expect(busy.rt.padding + busy.rt.released).to.be.at.most(client.maxCells!);
  });

  it('SCHEDULE ends a run as a bulk transfer at the real cell past SCHEDULE_BULK_CELLS, counted both ways and in any slot', () => {
    for (const half of ['relay', 'client'] as const) {
      const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.SCHEDULE)![half], seeded(5));
      rt.start();
      // Into the first (early) slot: the client's half after its two cells and the answer, the relay's at once.
      if (half === 'client') {
        rt.onPaddingSent();
        rt.onPaddingSent();
      }
      rt.on('nonpadding-received');
      expect(rt.stateName).to.equal('collect-0');
      // Real cells from the other end and real cells in the machine's direction (held), half and half.
      let held = 0;
      while (rt.real < SCHEDULE_BULK_CELLS) {
        if (rt.real % 2) expect(rt.on('nonpadding-received').kind, `${half}: cell ${rt.real}`).to.not.equal('end');
        else expect(rt.offer(held++), `${half}: cell ${rt.real}`).to.equal('hold');
      }
      expect(rt.ended).to.equal(false);
      expect(rt.holding, 'early slots hold').to.equal(true);
      // The next real cell, either way, is past the mark: the run ends (the caller sends what it held, then the cell).
      expect(half === 'relay' ? rt.offer(held) : rt.on('nonpadding-received').kind).to.equal('end');
      expect(rt.ended).to.equal(true);
    }
  });

  it('SCHEDULE never holds an urgent cell (a SENDME): it counts as an owed cell, goes beyond the count, or ends a run that holds cells', () => {
    const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.SCHEDULE)!.client, seeded(8));
    rt.start();
    rt.onPaddingSent();
    rt.onPaddingSent();
    rt.on('nonpadding-received');
    expect(rt.stateName).to.equal('collect-0');
    // An early slot does not release ordinary cells, but an urgent one goes at once, counted while the slot owes.
    expect(rt.offer(0)).to.equal('hold');
    const released = rt.released;
    for (let i = 0; i < 4; i++) expect(rt.offer(0, true)).to.equal('release');
    expect(rt.released - released, 'counted as the slot’s cells up to its count (an early client slot: 0–2)').to.be.within(0, 2);
    expect(rt.ended).to.equal(false);
    // With cells held, an urgent cell ends the run: what was held goes, then it.
    expect(rt.offer(1, true)).to.equal('end');
    expect(rt.ended).to.equal(true);
  });

  it('every shipped machine only moves forward and has a cap', () => {
    for (const id of Object.values(PaddingMachineId)) {
      for (const m of Object.values(paddingMachine(id)!)) {
        expect(m.maxPadding).to.be.within(1, 1000);
        m.states.forEach((s, i) => {
          for (const next of Object.values(s.next)) if (next !== 'end') expect(next, `${m.name} ${s.name}`).to.be.greaterThan(i);
        });
      }
    }
    expect(paddingMachine(0)).to.equal(null);
    expect(paddingMachine(200)).to.equal(null);
  });

  it('sampleLength draws whole numbers inside a bin', () => {
    const r = seeded(9);
    for (let i = 0; i < 500; i++) {
      const n = sampleLength(
        [
          { lo: 1, hi: 4, weight: 1 },
          { lo: 40, hi: 120, weight: 1 },
        ],
        r,
      );
      expect(Number.isInteger(n)).to.equal(true);
      expect((n >= 1 && n < 4) || (n >= 40 && n < 120), String(n)).to.equal(true);
    }
  });
});

describe('protocol/circuit-padding: PADDING_NEGOTIATE and PADDING_NEGOTIATED', () => {
  it('round-trips START and STOP, and refuses STOP with a machine in the encoder', () => {
    const start = { command: PaddingCommand.START, machine: PaddingMachineId.STREAM_SETUP };
    expect(decodePaddingNegotiate(encodePaddingNegotiate(start))).to.deep.equal(start);
    const withRtt = { command: PaddingCommand.START, machine: PaddingMachineId.SCHEDULE, rtt: 50 };
    expect(encodePaddingNegotiate(withRtt)).to.have.length(4);
    expect(decodePaddingNegotiate(encodePaddingNegotiate(withRtt))).to.deep.equal(withRtt);
    expect(() => encodePaddingNegotiate({ command: PaddingCommand.STOP, machine: 0, rtt: 1 }))
      .to.throw()
      .with.property('code', 'ERR_SCHEMA');
    expect(() => encodePaddingNegotiate({ command: PaddingCommand.STOP, machine: 1 }))
      .to.throw()
      .with.property('code', 'ERR_SCHEMA');
  });

  it('decoding any bytes gives a value or one of our errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6 }), (b) => {
        for (const decode of [decodePaddingNegotiate, decodePaddingNegotiated]) {
          try {
            decode(b);
          } catch (e) {
            if (!isAlliumError(e)) throw e;
          }
        }
      }),
    );
  });
});
