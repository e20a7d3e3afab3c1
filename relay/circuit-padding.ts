/**
 * Circuit padding at a relay (specs/padding.md §3, §5): answers PADDING_NEGOTIATE addressed to this hop and runs the
 * relay half of the machine asked for, sending DROP cells back towards the client when its timer fires.
 *
 * The reactor tells a running machine of the cells that pass (CircuitHop.padding): a cell leaving towards the client
 * is "nonpadding-sent", a cell arriving from the client side is "nonpadding-received", and a DROP addressed to this
 * hop "padding-received" (the client's half pads towards us).
 *
 * What a peer can make the relay send is bounded three ways (limits.md §Circuit padding): the machine table is
 * fixed and every machine moves forward to its end, so one START yields at most the machine's maxPadding cells;
 * a circuit gets CIRCUIT_PADDING_MAX_STARTS STARTs and CIRCUIT_PADDING_MAX_CELLS padding cells over its life; and the
 * relay runs MAX_PADDING_MACHINES machines at once (MAX_PADDING_MACHINES_PER_LINK for the circuits of one
 * previous-hop link, so one peer cannot take them all) and sends at most circuit_padding_budget bytes of padding a
 * second across every circuit. What a holding machine (SCHEDULE) keeps is bounded per circuit, per previous-hop link
 * and relay-wide, the link's bound below the relay's so one peer's circuits end only their own runs. A START the relay
 * cannot honour is answered REFUSED (the client raises a LimitError) and the circuit goes on; a padding cell the
 * budget cannot pay for ends its machine.
 *
 * Not here: machines at the first hop (the guard would see its own padding for what it is: NOT_HERE).
 */
import type { Link } from '../net/link.js';
import { CELL_LEN } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import {
  decodePaddingNegotiate,
  scheduleScale,
  encodePaddingNegotiated,
  PaddingCommand,
  PaddingRuntime,
  PaddingStatus,
  paddingMachine,
  type PaddingAction,
} from '../protocol/circuit-padding.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import type { CircuitHop, CircuitEndpointHandler } from './circuit-hop.js';
import type { CircuitReactor } from './circuits.js';
import type { RelayMetrics } from './metrics.js';
import { TokenBucket } from './token-bucket.js';

/** START requests a relay honours on one circuit over its life (specs/limits.md). */
export const CIRCUIT_PADDING_MAX_STARTS = 2;
/** Padding cells a relay sends on one circuit over its life. */
export const CIRCUIT_PADDING_MAX_CELLS = 240;
/** Padding machines a relay runs at once. */
export const MAX_PADDING_MACHINES = 8192;
/** Padding machines a relay runs at once for the circuits of one previous-hop link (a quarter of the relay's). */
export const MAX_PADDING_MACHINES_PER_LINK = 2048;
/** Real cells a holding machine keeps for one circuit; one more ends the machine, which sends them (specs/limits.md). */
export const PADDING_HOLD_MAX_CELLS = 256;
/** Real cells held across every circuit of a relay (16 MiB of cells); past it, the machine that would hold more ends. */
export const PADDING_HOLD_MAX_TOTAL = 4096;
/**
 * Real cells held across the circuits of one previous-hop link (a quarter of the relay's); past it, the machine of
 * that link that would hold more ends, so one peer's circuits cannot spend the relay's total and end other peers' runs.
 */
export const PADDING_HOLD_MAX_PER_LINK = 1024;

export interface CircuitPaddingOptions {
  /** Honour START at all (config circuit_padding; read at each request). */
  enabled: () => boolean;
  /** Padding bytes a second across every circuit (config circuit_padding_budget). */
  budgetBytesPerSecond: number;
  maxStarts?: number;
  maxCellsPerCircuit?: number;
  maxMachines?: number;
  maxMachinesPerLink?: number;
  maxHeldPerLink?: number;
  /** Uniform draws in [0, 1) (the CSPRNG; seeded in the simulator). */
  random: () => number;
  now: () => number;
  metrics: RelayMetrics;
}

interface Run {
  readonly runtime: PaddingRuntime;
  timer: ReturnType<typeof setTimeout> | null;
  /** The state's deadline timer (specs/padding.md §2), and the runtime's deadlineEpoch it was armed for. */
  deadline: ReturnType<typeof setTimeout> | null;
  epoch: number;
  /** Real cells held by a holding state (specs/padding.md §2.1), encrypted, oldest first. */
  held: Uint8Array[];
}

/** What the circuits of one previous-hop link use at once. */
interface LinkUse {
  machines: number;
  /** Real cells their runs hold. */
  held: number;
}

interface Spent {
  starts: number;
  cells: number;
}

const answer = (machine: number, status: PaddingStatus): RelayMessage => ({
  command: RelayCommand.PADDING_NEGOTIATED,
  streamId: 0,
  data: encodePaddingNegotiated({ machine, status }),
});

export class CircuitPaddingService implements CircuitEndpointHandler {
  private readonly runs = new Map<CircuitHop, Run>();
  /** What each circuit has used (kept while the circuit lives, so a STOP and START again does not reset it). */
  private readonly spent = new Map<CircuitHop, Spent>();
  /** Machines running, and cells they hold, per previous-hop link (an entry goes when its machines reach 0). */
  private readonly perLink = new Map<Link, LinkUse>();
  private readonly budget: TokenBucket;
  private readonly maxStarts: number;
  private readonly maxCells: number;
  private readonly maxMachines: number;
  private readonly maxPerLink: number;
  private readonly maxHeldPerLink: number;
  /** Real cells held across every run. */
  private heldTotal = 0;

  constructor(
    private readonly reactor: CircuitReactor,
    private readonly o: CircuitPaddingOptions,
  ) {
    this.budget = new TokenBucket(o.budgetBytesPerSecond, Math.max(CELL_LEN, 2 * o.budgetBytesPerSecond), o.now);
    this.maxStarts = o.maxStarts ?? CIRCUIT_PADDING_MAX_STARTS;
    this.maxCells = o.maxCellsPerCircuit ?? CIRCUIT_PADDING_MAX_CELLS;
    this.maxMachines = o.maxMachines ?? MAX_PADDING_MACHINES;
    this.maxPerLink = o.maxMachinesPerLink ?? MAX_PADDING_MACHINES_PER_LINK;
    this.maxHeldPerLink = o.maxHeldPerLink ?? PADDING_HOLD_MAX_PER_LINK;
  }

  /** Machines running now (tests, status). */
  get running(): number {
    return this.runs.size;
  }

  /** Previous-hop links with a machine running (tests: the per-link table is cleaned). */
  get linksRunning(): number {
    return this.perLink.size;
  }

  /** Real cells held across every run now (tests: the relay-wide bound). */
  get heldCells(): number {
    return this.heldTotal;
  }

  /** Padding cells sent on `hop` so far. */
  cellsOn(hop: CircuitHop): number {
    return this.spent.get(hop)?.cells ?? 0;
  }

  deliver(hop: CircuitHop, msg: RelayMessage): boolean {
    if (msg.command !== RelayCommand.PADDING_NEGOTIATE) return false;
    if (msg.streamId !== 0) throw new ProtocolError('ERR_RELAY_COMMAND', 'PADDING_NEGOTIATE on a stream');
    const req = decodePaddingNegotiate(msg.data);
    if (req.command === PaddingCommand.STOP) {
      this.stop(hop);
      this.reactor.sendBackward(hop, answer(0, PaddingStatus.OK));
      return true;
    }
    const status = this.admit(hop, req.machine);
    if (status !== PaddingStatus.OK) {
      this.o.metrics.circuitPaddingRefused.inc({
        reason: status === PaddingStatus.REFUSED ? 'limit' : status === PaddingStatus.NOT_HERE ? 'not_here' : 'unknown',
      });
      this.reactor.sendBackward(hop, answer(req.machine, status));
      return true;
    }
    // Answer first: the machine's first cell must not overtake the answer the client waits for.
    this.reactor.sendBackward(hop, answer(req.machine, PaddingStatus.OK));
    this.start(hop, req.machine, scheduleScale(req.rtt));
    return true;
  }

  private admit(hop: CircuitHop, machine: number): PaddingStatus {
    if (!this.o.enabled() || hop.isEntry) return PaddingStatus.NOT_HERE;
    const m = paddingMachine(machine);
    if (!m) return PaddingStatus.UNKNOWN_MACHINE;
    const spent = this.spent.get(hop) ?? { starts: 0, cells: 0 };
    if (this.runs.has(hop) || spent.starts >= this.maxStarts || spent.cells >= this.maxCells) return PaddingStatus.REFUSED;
    if (this.runs.size >= this.maxMachines || (this.perLink.get(hop.prev.link)?.machines ?? 0) >= this.maxPerLink) return PaddingStatus.REFUSED;
    // The relay-wide budget must hold a whole run of this machine now, or the request is refused.
    if (this.budget.available < m.relay.maxPadding * CELL_LEN) return PaddingStatus.REFUSED;
    return PaddingStatus.OK;
  }

  /** `scale`: scheduleScale() of the client's round-trip byte (padding.md §4.4), 1 without one. */
  private start(hop: CircuitHop, machine: number, scale: number): void {
    const spent = this.spent.get(hop) ?? { starts: 0, cells: 0 };
    spent.starts++;
    this.spent.set(hop, spent);
    const run: Run = { runtime: new PaddingRuntime(paddingMachine(machine)!.relay, this.o.random, scale), timer: null, deadline: null, epoch: 0, held: [] };
    this.runs.set(hop, run);
    const use = this.perLink.get(hop.prev.link);
    if (use) use.machines++;
    else this.perLink.set(hop.prev.link, { machines: 1, held: 0 });
    hop.padding = (e) => this.apply(hop, run, run.runtime.on(e));
    hop.holdBackward = (body) => this.hold(hop, run, body);
    this.apply(hop, run, run.runtime.start());
  }

  /** Keeps a real cell towards the client while the run holds (specs/padding.md §2.1); false: send it now. */
  private hold(hop: CircuitHop, run: Run, body: Uint8Array): boolean {
    if (this.runs.get(hop) !== run) return false;
    if (!run.runtime.holding) {
      this.flush(hop, run);
      return false;
    }
    // Counted towards the bulk mark (past it the run ends: what it held goes, then this cell); released at once
    // where the slot owes cells (specs/padding.md §2.1).
    const verdict = run.runtime.offer(run.held.length);
    if (verdict === 'end') {
      this.stop(hop);
      return false;
    }
    if (verdict === 'release') return false;
    const use = this.perLink.get(hop.prev.link)!;
    if (run.held.length >= PADDING_HOLD_MAX_CELLS || use.held >= this.maxHeldPerLink || this.heldTotal >= PADDING_HOLD_MAX_TOTAL) {
      // Past the bounds the run ends: what it held goes first, then this cell, in order. The link's bound comes
      // before the relay's, so a link that holds too much ends its own runs, not another link's.
      this.o.metrics.circuitPaddingRefused.inc({ reason: 'hold' });
      this.stop(hop);
      return false;
    }
    run.held.push(Uint8Array.from(body));
    this.counted(hop, 1);
    return true;
  }

  /** Counts `n` cells more (or fewer) held on `hop`, relay-wide and for its previous-hop link. */
  private counted(hop: CircuitHop, n: number): void {
    this.heldTotal += n;
    const use = this.perLink.get(hop.prev.link);
    if (use) use.held += n;
  }

  /** Takes every cell the run holds out of it, oldest first, and out of the counts. */
  private take(hop: CircuitHop, run: Run): Uint8Array[] {
    const held = run.held.splice(0);
    this.counted(hop, -held.length);
    return held;
  }

  /** Sends every cell the run holds, oldest first (the run left its holding states). */
  private flush(hop: CircuitHop, run: Run): void {
    for (const body of this.take(hop, run)) this.reactor.sendHeldBackward(hop, body);
  }

  private apply(hop: CircuitHop, run: Run, a: PaddingAction): void {
    if (run.runtime.deadlineEpoch !== run.epoch && this.runs.get(hop) === run) {
      run.epoch = run.runtime.deadlineEpoch;
      if (run.deadline) clearTimeout(run.deadline);
      run.deadline = null;
      const ms = run.runtime.deadlineMs;
      if (ms !== null) {
        run.deadline = setTimeout(() => {
          run.deadline = null;
          this.apply(hop, run, run.runtime.onTimeout());
        }, ms);
        (run.deadline as { unref?: () => void }).unref?.();
      }
    }
    if (a.kind !== 'end' && !run.runtime.holding && run.held.length > 0) this.flush(hop, run);
    // A `release` state owing cells sends held ones at once, oldest first (specs/padding.md §2.1).
    while (a.kind !== 'end' && this.runs.get(hop) === run && run.held.length > 0 && run.runtime.release()) {
      this.counted(hop, -1);
      this.reactor.sendHeldBackward(hop, run.held.shift()!);
    }
    if (a.kind === 'keep' || this.runs.get(hop) !== run) return;
    if (run.timer) clearTimeout(run.timer);
    run.timer = null;
    if (a.kind === 'end') return this.stop(hop);
    if (a.kind === 'wait') return;
    run.timer = setTimeout(() => {
      run.timer = null;
      // A holding state's timer sends the oldest held cell in place of padding (specs/padding.md §2.1).
      const body = run.runtime.holding ? run.held.shift() : undefined;
      if (body) {
        this.counted(hop, -1);
        this.apply(hop, run, run.runtime.onPaddingSent(this.reactor.sendHeldBackward(hop, body), true));
      } else this.apply(hop, run, run.runtime.onPaddingSent(this.pad(hop)));
    }, a.delayMs);
    (run.timer as { unref?: () => void }).unref?.();
  }

  /** Sends one DROP towards the client if the circuit's and the relay's budgets allow; false ends the machine. */
  private pad(hop: CircuitHop): boolean {
    const spent = this.spent.get(hop);
    if (!spent || hop.state !== 'open' || spent.cells >= this.maxCells || !this.budget.tryTake(CELL_LEN)) {
      this.o.metrics.circuitPaddingRefused.inc({ reason: 'budget' });
      return false;
    }
    if (!this.reactor.sendBackward(hop, { command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) })) return false;
    spent.cells++;
    this.o.metrics.circuitPaddingCells.inc();
    return true;
  }

  private stop(hop: CircuitHop, send = true): void {
    const run = this.runs.get(hop);
    if (!run) return;
    hop.holdBackward = null;
    if (run.timer) clearTimeout(run.timer);
    run.timer = null;
    if (run.deadline) clearTimeout(run.deadline);
    run.deadline = null;
    run.runtime.stop();
    this.runs.delete(hop);
    // Out of the counts while the link's entry is still there.
    const held = this.take(hop, run);
    const use = this.perLink.get(hop.prev.link);
    if (use && --use.machines <= 0) this.perLink.delete(hop.prev.link);
    hop.padding = null;
    // Last: sending may fail and close the circuit, which comes back here and finds nothing running.
    if (send) for (const body of held) this.reactor.sendHeldBackward(hop, body);
  }

  closed(hop: CircuitHop): void {
    this.stop(hop, false);
    this.spent.delete(hop);
  }

  /** A machine holds nothing a silent circuit needs: idle circuits are not spared for it. */
  holds(): boolean {
    return false;
  }
}
