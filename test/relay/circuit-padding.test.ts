/**
 * relay/circuit-padding.ts (specs/padding.md §3, §5), driven as the reactor drives it, on a virtual clock: who may
 * start a machine, what one START yields, and the budgets that keep a peer from making the relay send padding
 * without end — per circuit over its life (across STOP and START), and relay-wide.
 */
import { expect } from 'chai';
import { CELL_LEN } from '../../protocol/constants.js';
import {
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  PaddingCommand,
  PaddingMachineId,
  PaddingStatus,
  paddingMachine,
} from '../../protocol/circuit-padding.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import type { Link } from '../../net/link.js';
import {
  CIRCUIT_PADDING_MAX_CELLS,
  CIRCUIT_PADDING_MAX_STARTS,
  CircuitPaddingService,
  MAX_PADDING_MACHINES_PER_LINK,
  PADDING_HOLD_MAX_PER_LINK,
  PADDING_HOLD_MAX_TOTAL,
  type CircuitPaddingOptions,
} from '../../relay/circuit-padding.js';
import { CircuitHop, type CircuitReactor } from '../../relay/circuits.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { VirtualClock } from '../../sim/clock.js';
import { Rng } from '../../sim/random.js';

const fromRelay = { peer: { role: LinkRole.RELAY } } as unknown as Link;
const fromClient = { peer: { role: LinkRole.CLIENT } } as unknown as Link;

class Harness {
  readonly sent: { hop: CircuitHop; msg: RelayMessage }[] = [];
  /** Real cells a holding machine (SCHEDULE) held and then sent. */
  readonly held: { hop: CircuitHop; body: Uint8Array }[] = [];
  readonly service: CircuitPaddingService;
  readonly metrics = new RelayMetrics();
  private nextId = 1;

  constructor(
    readonly clock: VirtualClock,
    o: Partial<CircuitPaddingOptions> = {},
  ) {
    const reactor = {
      sendBackward: (hop: CircuitHop, msg: RelayMessage) => {
        if (hop.state !== 'open') return false;
        this.sent.push({ hop, msg });
        if (msg.command !== RelayCommand.DROP) hop.padding?.('nonpadding-sent');
        return true;
      },
      sendHeldBackward: (hop: CircuitHop, body: Uint8Array) => {
        this.held.push({ hop, body });
        return hop.state === 'open';
      },
    } as unknown as CircuitReactor;
    this.service = new CircuitPaddingService(reactor, {
      enabled: () => true,
      budgetBytesPerSecond: 10_000_000,
      random: new Rng(4).random,
      now: () => Date.now(),
      metrics: this.metrics,
      ...o,
    });
  }

  circuit(link: Link = fromRelay): CircuitHop {
    const hop = new CircuitHop(this.nextId, { link, circId: this.nextId++ }, Date.now());
    hop.state = 'open';
    return hop;
  }

  negotiate(hop: CircuitHop, command: PaddingCommand, machine: number): PaddingStatus {
    this.service.deliver(hop, { command: RelayCommand.PADDING_NEGOTIATE, streamId: 0, data: encodePaddingNegotiate({ command, machine }) });
    const answers = this.sent.filter((s) => s.hop === hop && s.msg.command === RelayCommand.PADDING_NEGOTIATED);
    return decodePaddingNegotiated(answers[answers.length - 1]!.msg.data).status;
  }

  padding(hop?: CircuitHop): number {
    return this.sent.filter((s) => (!hop || s.hop === hop) && s.msg.command === RelayCommand.DROP).length;
  }

  /** What a client that wants padding does: starts the machine, pokes it, and lets it run to its end. */
  async run(hop: CircuitHop): Promise<PaddingStatus> {
    const status = this.negotiate(hop, PaddingCommand.START, PaddingMachineId.STREAM_SETUP);
    hop.padding?.('padding-received');
    await this.clock.runFor(120_000);
    return status;
  }
}

describe('relay/circuit-padding: machines a relay runs for its circuits', () => {
  let clock: VirtualClock;
  let restore: () => void;
  beforeEach(() => {
    clock = new VirtualClock();
    restore = clock.install();
  });
  afterEach(() => restore());

  it('answers START with OK before the first padding cell, pads back towards the client, and stops on STOP', async () => {
    const h = new Harness(clock);
    const hop = h.circuit();
    expect(h.negotiate(hop, PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.OK);
    expect(h.sent[0]!.msg.command).to.equal(RelayCommand.PADDING_NEGOTIATED);
    expect(h.service.running).to.equal(1);
    hop.padding!('padding-received'); // the client's BEGIN-like cell
    await clock.runFor(120_000);
    expect(h.padding(hop)).to.be.within(3, paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay.maxPadding);
    expect(h.service.running, 'the machine ran to its end').to.equal(0);
    expect(h.service.cellsOn(hop)).to.equal(h.padding(hop));
    // STOP is answered (machine 0, OK) even with nothing running.
    expect(h.negotiate(hop, PaddingCommand.STOP, 0)).to.equal(PaddingStatus.OK);
  });

  it('refuses the first hop, an unknown machine, a second machine on one circuit, and padding turned off', () => {
    const h = new Harness(clock);
    expect(h.negotiate(h.circuit(fromClient), PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.NOT_HERE);
    expect(h.negotiate(h.circuit(), PaddingCommand.START, 77)).to.equal(PaddingStatus.UNKNOWN_MACHINE);
    const hop = h.circuit();
    expect(h.negotiate(hop, PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.OK);
    expect(h.negotiate(hop, PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.REFUSED);
    const off = new Harness(clock, { enabled: () => false });
    expect(off.negotiate(off.circuit(), PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.NOT_HERE);
  });

  it('a malformed PADDING_NEGOTIATE is a protocol violation (the reactor destroys that circuit)', () => {
    const h = new Harness(clock);
    const hop = h.circuit();
    expect(() => h.service.deliver(hop, { command: RelayCommand.PADDING_NEGOTIATE, streamId: 0, data: Uint8Array.of(1, 1) }))
      .to.throw()
      .with.property('code', 'ERR_BAD_LENGTH');
    expect(() => h.service.deliver(hop, { command: RelayCommand.PADDING_NEGOTIATE, streamId: 3, data: Uint8Array.of(1, 1, 1) }))
      .to.throw()
      .with.property('code', 'ERR_RELAY_COMMAND');
    expect(h.service.deliver(hop, { command: RelayCommand.DATA, streamId: 1, data: new Uint8Array(0) }), 'other commands are not its').to.equal(false);
  });

  it('a peer cannot make a relay send unbounded padding: STOP and START again on one circuit stays within the circuit budget', async () => {
    const h = new Harness(clock);
    const hop = h.circuit();
    const statuses: PaddingStatus[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push(await h.run(hop));
      h.negotiate(hop, PaddingCommand.STOP, 0);
    }
    console.log(`      padding cells sent on one circuit after 30 START/STOP cycles: ${h.padding(hop)} (cap ${CIRCUIT_PADDING_MAX_CELLS})`);
    expect(statuses.filter((s) => s === PaddingStatus.OK)).to.have.length(CIRCUIT_PADDING_MAX_STARTS);
    expect(statuses.slice(CIRCUIT_PADDING_MAX_STARTS).every((s) => s === PaddingStatus.REFUSED)).to.equal(true);
    expect(h.padding(hop)).to.be.at.most(CIRCUIT_PADDING_MAX_CELLS);
  });

  it('the per-circuit cell cap ends a machine in mid-burst', async () => {
    const h = new Harness(clock, { maxCellsPerCircuit: 5, maxStarts: 100 });
    const hop = h.circuit();
    for (let i = 0; i < 10; i++) {
      await h.run(hop);
      h.negotiate(hop, PaddingCommand.STOP, 0);
    }
    expect(h.padding(hop)).to.equal(5);
  });

  it('the relay-wide budget refuses a START it cannot pay for, and bounds what many circuits draw', async () => {
    const machine = paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay;
    // A budget whose burst holds exactly one run of the machine, refilled at one cell a second.
    const h = new Harness(clock, { budgetBytesPerSecond: (machine.maxPadding * CELL_LEN) / 2 });
    const first = h.circuit();
    expect(await h.run(first)).to.equal(PaddingStatus.OK);
    const spent = h.padding();
    const poor = new Harness(clock, { budgetBytesPerSecond: CELL_LEN });
    expect(poor.negotiate(poor.circuit(), PaddingCommand.START, PaddingMachineId.STREAM_SETUP)).to.equal(PaddingStatus.REFUSED);
    // 50 circuits asking at once from a bucket of 160 cells refilled at 80 a second: the START check passes them all
    // (nothing is spent yet), but the cells sent never exceed the bucket and its refill, and machines are ended.
    const many = new Harness(clock, { budgetBytesPerSecond: 80 * CELL_LEN });
    const started = Date.now();
    const hops = Array.from({ length: 50 }, () => many.circuit());
    for (const hop of hops) {
      many.negotiate(hop, PaddingCommand.START, PaddingMachineId.STREAM_SETUP);
      hop.padding?.('padding-received');
    }
    await clock.runFor(10_000);
    const seconds = (Date.now() - started) / 1000;
    expect(many.padding()).to.be.at.most(160 + 80 * seconds);
    expect(spent).to.be.greaterThan(0);
    const ended = (await many.metrics.circuitPaddingRefused.get()).values.find((v) => v.labels.reason === 'budget')?.value ?? 0;
    expect(ended, 'machines the budget ended').to.be.greaterThan(0);
  });

  it("SCHEDULE: a real cell towards the client that finds its late slot's count spent borrows the next slot's and goes at once; the next slot pads one fewer", async () => {
    // Constant draws (padding.md §4.4 at scale 1): early slots of 70 ms and 17 cells, middle slots of 175 ms and 2
    // cells (220 cells in all, by about 2.35 s), late slots of 350 ms and 2 cells.
    const h = new Harness(clock, { random: () => 0.5 });
    const hop = h.circuit();
    expect(h.negotiate(hop, PaddingCommand.START, PaddingMachineId.SCHEDULE)).to.equal(PaddingStatus.OK);
    hop.padding!('padding-received');
    await clock.runFor(2500);
    expect(h.padding(hop), 'the early and middle slots have sent their cells: the run is in its first late slot').to.equal(220);
    // Three real cells towards the client at once (the reactor sends a cell the machine does not hold): the slot's 2,
    // and one borrowed from the next slot's 2.
    const atOnce = Array.from({ length: 3 }, (_, i) => {
      const held = hop.holdBackward!(Uint8Array.of(i));
      if (!held) hop.padding!('nonpadding-sent');
      return !held;
    });
    expect(atOnce, 'each cell goes at once').to.deep.equal([true, true, true]);
    await clock.runFor(600);
    expect(h.held, 'none was held').to.have.length(0);
    // Slot 20 sent its 2 and 1 more; slot 21 pads only the 1 it has left.
    expect(h.padding(hop), 'slot 20 pads none, slot 21 one').to.equal(221);
    h.service.closed(hop);
  });

  it('a closed circuit leaves no machine and no timer behind', async () => {
    const h = new Harness(clock);
    const hop = h.circuit();
    h.negotiate(hop, PaddingCommand.START, PaddingMachineId.STREAM_SETUP);
    hop.padding!('padding-received');
    hop.state = 'closed';
    h.service.closed(hop);
    const before = h.padding(hop);
    await clock.runFor(10_000);
    expect(h.padding(hop)).to.equal(before);
    expect(h.service.running).to.equal(0);
    expect(hop.padding).to.equal(null);
  });
});

describe('relay/circuit-padding: machines per previous-hop link', () => {
  let clock: VirtualClock;
  let restore: () => void;
  beforeEach(() => {
    clock = new VirtualClock();
    restore = clock.install();
  });
  afterEach(() => restore());

  it('regression: one peer link cannot take every machine of the relay; its table entry goes with its circuits', () => {
    const h = new Harness(clock);
    const flooder = { peer: { role: LinkRole.RELAY } } as unknown as Link;
    const honest = { peer: { role: LinkRole.RELAY } } as unknown as Link;
    const hops: CircuitHop[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < MAX_PADDING_MACHINES_PER_LINK + 50; i++) {
      const hop = h.circuit(flooder);
      hops.push(hop);
      const s = h.negotiate(hop, PaddingCommand.START, PaddingMachineId.EXCHANGES);
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    console.log(`      STARTs from one link: ${JSON.stringify(Object.fromEntries(statuses))} (0 OK, 2 REFUSED), machines running ${h.service.running}`);
    expect(statuses.get(PaddingStatus.OK)).to.equal(MAX_PADDING_MACHINES_PER_LINK);
    expect(statuses.get(PaddingStatus.REFUSED)).to.equal(50);
    // Another peer's circuits are still served.
    expect(h.negotiate(h.circuit(honest), PaddingCommand.START, PaddingMachineId.EXCHANGES)).to.equal(PaddingStatus.OK);
    expect(h.service.linksRunning).to.equal(2);
    // The flooder's circuits close: its entry is gone, and it may start machines again.
    for (const hop of hops) h.service.closed(hop);
    expect(h.service.running).to.equal(1);
    expect(h.service.linksRunning).to.equal(1);
    expect(h.negotiate(h.circuit(flooder), PaddingCommand.START, PaddingMachineId.EXCHANGES)).to.equal(PaddingStatus.OK);
  });

  it("regression: one peer link's circuits cannot hold the relay's every cell and so end another link's SCHEDULE run", () => {
    const h = new Harness(clock, { random: () => 0.5 });
    const flooder = { peer: { role: LinkRole.RELAY } } as unknown as Link;
    const honest = { peer: { role: LinkRole.RELAY } } as unknown as Link;
    const start = (hop: CircuitHop): void => {
      expect(h.negotiate(hop, PaddingCommand.START, PaddingMachineId.SCHEDULE)).to.equal(PaddingStatus.OK);
      hop.padding!('padding-received');
    };
    /** Real cells towards the client as the reactor sends them; how many the run held. */
    const offer = (hop: CircuitHop, n: number): number => {
      let held = 0;
      for (let i = 0; i < n; i++) {
        if (hop.holdBackward?.(Uint8Array.of(i))) held++;
        else hop.padding?.('nonpadding-sent');
      }
      return held;
    };
    const honestHop = h.circuit(honest);
    start(honestHop);
    expect(offer(honestHop, 30), 'the honest run holds some of its cells').to.be.greaterThan(0);
    // The flooder's circuits each get just under bulkCells at once (padding.md §4.4): on so many circuits, enough to
    // fill the relay's total, which they fill to the brim where nothing stops them.
    const flooding = Array.from({ length: Math.ceil(PADDING_HOLD_MAX_TOTAL / 200) + 2 }, () => h.circuit(flooder));
    let most = 0;
    for (const hop of flooding) {
      start(hop);
      for (let i = 0; i < 235 && h.service.heldCells < PADDING_HOLD_MAX_TOTAL; i++) offer(hop, 1);
      most = Math.max(most, h.service.heldCells);
    }
    const ended = flooding.filter((hop) => hop.padding === null).length;
    console.log(`      flooding link: ${flooding.length} runs, at most ${most} cells held relay-wide, ${ended} of its runs ended`);
    // The honest link's run goes on holding.
    expect(offer(honestHop, 30), 'the honest run still holds').to.be.greaterThan(0);
    expect(honestHop.padding, 'the honest run was not ended').to.not.equal(null);
    expect(
      h.held.filter((c) => c.hop === honestHop),
      'no cell of the honest run was flushed by an end',
    ).to.have.length(0);
    expect(ended, "the flooder's own runs end").to.be.greaterThan(0);
    expect(most, "the relay's total is never reached: the flooder's link stops at its own bound").to.be.at.most(PADDING_HOLD_MAX_PER_LINK + 30);
    for (const hop of [honestHop, ...flooding]) h.service.closed(hop);
    expect(h.service.linksRunning).to.equal(0);
    expect(h.service.heldCells, 'every held cell is out of the counts').to.equal(0);
  });
});
