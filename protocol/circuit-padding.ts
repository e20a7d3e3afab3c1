/**
 * Circuit padding machines (specs/padding.md): a small state-machine framework in the manner of Tor's proposal 254,
 * the machines Allium ships, and the PADDING_NEGOTIATE / PADDING_NEGOTIATED codecs. Pure: the caller feeds events
 * and the firing of its own timer, and supplies uniform draws in [0, 1) (the CSPRNG in relays and clients, a seeded
 * source in tests and the simulator).
 *
 *   machine   = states, a padding cap (maxPadding)
 *   state     = delay histogram (bins of ms, by weight, plus an "infinity" weight: send nothing),
 *               length histogram (cells this state sends before "length-count"),
 *               countNonPadding (non-padding cells sent in the machine's direction count towards the length),
 *               next: event → state | end
 *
 *   enter(s):   unless s.carry: inState = 0; limit = sample(s.length); deadline = sample(s.duration) or none
 *               schedule()
 *   deadline:   the caller's second timer (deadlineMs after the state change) fires → event(timeout)
 *   schedule(): inState ≥ limit → event(length-count)
 *               padding sent ≥ maxPadding → end
 *               s.delay empty → wait (no timer)
 *               draw a bin by weight: the infinity bin → event(infinity); else timer = uniform in the bin
 *   timer:      send one padding cell; padding += 1; inState += 1; event(padding-sent)
 *   event(e):   next[e] defined → enter it (or end)
 *               else e ∈ {padding-sent, nonpadding-sent} → schedule()     (a sent cell re-arms the gap timer)
 *               else e ∈ {length-count, infinity} → wait
 *               else → keep the timer as it is
 *
 * One runtime runs one direction: a relay's machine pads towards the client, a client's towards the relay it
 * negotiated with. The machines are a fixed table known to both ends (a peer names a machine by its number and
 * cannot supply histograms), and every machine's states only move forward, so one negotiation yields at most
 * maxPadding cells; relays bound them further per circuit and per relay (specs/limits.md).
 *
 * The round trip enters only as a run's scale: the client sends its circuit's build time in START, and the durations
 * of `scaled` states are multiplied by scheduleScale() of it (padding.md §4.4).
 *
 * Not here: token removal from bins (Tor's RTT-adaptive machines); timers and cell I/O (relay/circuit-padding.ts,
 * net/circuit-padding.ts: a padding timer and a deadline timer per run).
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { AlliumError, ProtocolError } from './errors.js';

export type PaddingEvent = 'nonpadding-sent' | 'nonpadding-received' | 'padding-sent' | 'padding-received' | 'length-count' | 'infinity' | 'timeout';

/** A histogram bin: [lo, hi) in milliseconds (delays) or cells (lengths), drawn with probability weight / total. */
export interface PaddingBin {
  readonly lo: number;
  readonly hi: number;
  readonly weight: number;
}

export interface PaddingState {
  readonly name: string;
  /** The gap before the next padding cell; empty: the state sends nothing and waits for a transition. */
  readonly delay: readonly PaddingBin[];
  /** Weight of the infinity bin: no padding cell, event "infinity". */
  readonly infinity?: number;
  /** Cells the state sends before "length-count" (whole numbers in [lo, hi)). */
  readonly length: readonly PaddingBin[];
  /** Non-padding cells sent in the machine's direction count towards the length. */
  readonly countNonPadding: boolean;
  readonly next: Partial<Record<PaddingEvent, number | 'end'>>;
  /** How long the state lasts (ms) before the event "timeout", whatever is sent meanwhile; absent: no deadline. */
  readonly duration?: readonly PaddingBin[];
  /** The state continues the previous one: its count, sampled length and deadline carry over (none is sampled). */
  readonly carry?: boolean;
  /**
   * While the machine is in this state the caller holds real cells in the machine's direction in a queue instead
   * of sending them, and its timer sends the oldest held cell in place of a padding cell (padding.md §2.1).
   */
  readonly hold?: boolean;
  /**
   * The state's duration is multiplied by the run's scale (the circuit's round trip against SCHEDULE_REFERENCE_RTT_MS,
   * padding.md §4.4), so its slots last about as many round trips on a fast circuit as on a slow one.
   */
  readonly scaled?: boolean;
  /**
   * A holding state that owes cells sends a real cell at once instead of holding it, while nothing is held and its
   * count is short of its length: the cell takes the place of one the state would send at its end (padding.md §2.1).
   */
  readonly release?: boolean;
  /**
   * Only with `release`: the state (its number) whose count this one may borrow. A real cell that finds the state's
   * count spent goes at once all the same while that state's count, sampled ahead, is not all borrowed — or, up to
   * the machine's borrowDepth states ahead, the count of the state that one borrows from, and so on; the state lent
   * from then sends one fewer (padding.md §2.1).
   */
  readonly borrow?: number;
}

export interface PaddingMachine {
  readonly name: string;
  readonly states: readonly PaddingState[];
  /** Padding cells one run of the machine sends at most. */
  readonly maxPadding: number;
  /** Cells one run's timer sends at most, held real cells and padding together; the run ends there. Absent: no cap. */
  readonly maxCells?: number;
  /**
   * Real cells one run's end may see — in its direction (held, released or sent) and from the other end — before the
   * circuit counts as a bulk transfer: the real cell past this many ends the run, which sends what it held, and the
   * circuit flows (padding.md §2.1). Absent: never.
   */
  readonly bulkCells?: number;
  /** How many states ahead, along their `borrow`s, a state may borrow from (padding.md §2.1). Absent: 1. */
  readonly borrowDepth?: number;
}

/** What the caller does with its padding timer after an event. */
export type PaddingAction =
  | { readonly kind: 'schedule'; readonly delayMs: number } // (re)arm the timer
  | { readonly kind: 'wait' } // cancel the timer; the machine waits for an event
  | { readonly kind: 'keep' } // leave the timer as it is
  | { readonly kind: 'end' }; // cancel the timer; the machine is finished

/** A draw in [0, 1). */
export type Uniform = () => number;

/** Transitions handled in one call at most: machines move forward, so this only stops a malformed table. */
const MAX_STEPS = 64;

/** The round trip SCHEDULE's early and middle slots are tabled for (padding.md §4.4); faster circuits scale them down. */
export const SCHEDULE_REFERENCE_RTT_MS = 800;
/** The least scale: slots never shorter than this share of their tabled duration, however fast the circuit. */
export const SCHEDULE_MIN_SCALE = 1 / 16;
/** PADDING_NEGOTIATE's round-trip byte counts this many milliseconds (padding.md §3). */
export const PADDING_RTT_UNIT_MS = 4;

/** The round-trip byte PADDING_NEGOTIATE carries for a circuit whose build took `rttMs` (1–255 units). */
export function paddingRttUnits(rttMs: number): number {
  if (!Number.isFinite(rttMs)) return 255;
  return Math.max(1, Math.min(255, Math.round(rttMs / PADDING_RTT_UNIT_MS)));
}

/**
 * The scale of a run's `scaled` durations from the negotiated round-trip byte (absent: 1, the tabled durations):
 * rtt / SCHEDULE_REFERENCE_RTT_MS, within [SCHEDULE_MIN_SCALE, 1], so a slot is never longer than tabled.
 */
export function scheduleScale(rttUnits: number | undefined): number {
  if (rttUnits === undefined) return 1;
  return Math.max(SCHEDULE_MIN_SCALE, Math.min(1, (rttUnits * PADDING_RTT_UNIT_MS) / SCHEDULE_REFERENCE_RTT_MS));
}

function pickBin(bins: readonly PaddingBin[], infinity: number, u: number): PaddingBin | null {
  let total = infinity;
  for (const b of bins) total += b.weight;
  let x = u * total;
  for (const b of bins) {
    if (x < b.weight) return b;
    x -= b.weight;
  }
  return null;
}

/** A sampled state length: a bin by weight, then a whole number in [lo, hi). */
export function sampleLength(bins: readonly PaddingBin[], random: Uniform): number {
  const b = pickBin(bins, 0, random());
  if (!b) return 0;
  return b.lo + Math.floor(random() * Math.max(1, b.hi - b.lo));
}

/** One run of a machine in one direction (the module header gives the rules). */
export class PaddingRuntime {
  private state: number | 'end' = 0;
  private inState = 0;
  private limit = 0;
  private steps = 0;
  /** Later states' counts sampled ahead for borrowing, in order (`state`, sampled `limit`, cells `borrowed` from it). */
  private ahead: { readonly state: number; readonly limit: number; borrowed: number }[] = [];
  /** Padding cells this run has sent. */
  padding = 0;
  /** Held real cells this run's timer has sent in place of padding, and real cells released (padding.md §2.1). */
  released = 0;
  /** Real cells this run has seen, in its direction and from the other end (the machine's bulkCells). */
  real = 0;
  /**
   * The state's deadline: ms from the last state change after which the caller calls onTimeout(), or null for none.
   * `deadlineEpoch` changes whenever the caller must (re)arm or cancel its deadline timer.
   */
  deadlineMs: number | null = null;
  deadlineEpoch = 0;

  constructor(
    readonly machine: PaddingMachine,
    private readonly random: Uniform,
    /** Multiplies the durations of `scaled` states: scheduleScale() of the negotiated round trip (1: as tabled). */
    readonly scale = 1,
  ) {
    if (machine.states.length === 0) throw new AlliumError('ERR_INTERNAL', 'a padding machine needs a state');
    if (!(scale >= SCHEDULE_MIN_SCALE && scale <= 1)) throw new AlliumError('ERR_INTERNAL', 'padding scale out of range');
  }

  get stateName(): string {
    return this.state === 'end' ? 'end' : this.machine.states[this.state]!.name;
  }

  get ended(): boolean {
    return this.state === 'end';
  }

  /** Whether the caller must hold real cells in the machine's direction now (the state's `hold`). */
  get holding(): boolean {
    return this.state !== 'end' && this.current.hold === true;
  }

  /**
   * A real cell in the machine's direction while the state holds, `held` cells being held already (padding.md §2.1).
   * It counts towards bulkCells: past them the run ends ('end': the caller sends what it held, then the cell). Else
   * 'release': the caller sends it now, and it counted as one of the state's cells — in a `release` state with
   * nothing held and cells owed, or, when `urgent` (a client's SENDME, never held), whenever nothing is held (counted
   * if the state owes a cell). An urgent cell that finds cells held ends the run instead. Else 'hold': the caller
   * holds it. The caller raises no event for it either way.
   */
  offer(held: number, urgent = false): 'end' | 'release' | 'hold' {
    if (this.state === 'end') return 'end';
    this.real++;
    if (this.isBulk() || (urgent && held > 0)) {
      this.finish();
      return 'end';
    }
    if (held === 0 && this.release(urgent)) return 'release';
    return urgent ? 'release' : 'hold';
  }

  /**
   * A held (or urgent) real cell may go now as one of the state's cells: the state holds, releases (or `any`), and
   * its count is short of its length and the run's of maxCells — or, its count spent, it may borrow one from the
   * state it names in `borrow` (sampled ahead on the first borrow), which then sends one fewer. True: it counted
   * (`inState` or the borrowed count, `released`); the caller sends it. Callers release held cells with this on
   * entering a `release` state, oldest first.
   */
  release(any = false): boolean {
    if (this.state === 'end') return false;
    const st = this.current;
    if (st.hold !== true || (st.release !== true && !any)) return false;
    if (this.machine.maxCells !== undefined && this.padding + this.released >= this.machine.maxCells) return false;
    if (this.inState < this.limit) {
      this.inState++;
      this.released++;
      return true;
    }
    // Borrow from the first state ahead, along the `borrow`s, whose count is not all borrowed.
    let from = this.state as number;
    for (let d = 0; d < (this.machine.borrowDepth ?? 1); d++) {
      const next = this.machine.states[from]!.borrow;
      if (next === undefined) return false;
      const lender = this.machine.states[next];
      if (!lender || next <= from) throw new AlliumError('ERR_INTERNAL', `padding state ${this.machine.states[from]!.name} borrows from no later state`);
      let entry = this.ahead[d];
      if (entry === undefined) {
        entry = { state: next, limit: sampleLength(lender.length, this.random), borrowed: 0 };
        this.ahead.push(entry);
      }
      if (entry.borrowed < entry.limit) {
        entry.borrowed++;
        this.released++;
        return true;
      }
      from = next;
    }
    return false;
  }

  private isBulk(): boolean {
    return this.machine.bulkCells !== undefined && this.real > this.machine.bulkCells;
  }

  /** Enters the first state. */
  start(): PaddingAction {
    this.steps = 0;
    return this.enter(0);
  }

  /** A cell other than the timer's padding: sent in the machine's direction, or received from the other end. */
  on(event: 'nonpadding-sent' | 'nonpadding-received' | 'padding-received'): PaddingAction {
    if (this.state === 'end') return { kind: 'end' };
    this.steps = 0;
    // Real cells towards bulkCells: from the other end, and sent in a state that does not hold (a holding state's
    // were counted when offered).
    if (event === 'nonpadding-received' || (event === 'nonpadding-sent' && !this.holding)) {
      this.real++;
      if (this.isBulk()) return this.finish();
    }
    if (event === 'nonpadding-sent' && this.current.countNonPadding) this.inState++;
    return this.event(event);
  }

  /**
   * The caller's timer fired and it sent one padding cell (or would have, but its budget refused: `sent` false,
   * and the machine ends, so a spent budget is never retried in a loop). `held`: in a holding state it sent the
   * oldest held real cell instead (it counts as the timer's cell, not as padding).
   */
  onPaddingSent(sent = true, held = false): PaddingAction {
    if (this.state === 'end') return { kind: 'end' };
    if (!sent) return this.finish();
    this.steps = 0;
    if (held) this.released++;
    else this.padding++;
    this.inState++;
    return this.event('padding-sent');
  }

  /** The caller's deadline timer fired (the state's duration ran out). */
  onTimeout(): PaddingAction {
    if (this.state === 'end') return { kind: 'end' };
    this.steps = 0;
    this.deadlineMs = null;
    return this.event('timeout');
  }

  /** Ends the run (a STOP, the circuit closing). */
  stop(): void {
    this.state = 'end';
  }

  private get current(): PaddingState {
    return this.machine.states[this.state as number]!;
  }

  private finish(): PaddingAction {
    this.state = 'end';
    if (this.deadlineMs !== null) this.deadlineEpoch++;
    this.deadlineMs = null;
    return { kind: 'end' };
  }

  private enter(s: number | 'end'): PaddingAction {
    if (s === 'end' || ++this.steps > MAX_STEPS) return this.finish();
    if (!this.machine.states[s]) throw new AlliumError('ERR_INTERNAL', `padding machine ${this.machine.name} has no state ${s}`);
    this.state = s;
    const st = this.current;
    if (!st.carry) {
      // A state whose count was sampled ahead and borrowed from starts with what was borrowed already counted.
      const lent = this.ahead[0]?.state === s ? this.ahead.shift()! : null;
      if (!lent) this.ahead = [];
      this.inState = lent ? lent.borrowed : 0;
      this.limit = lent ? lent.limit : sampleLength(st.length, this.random);
      const d = st.duration ? pickBin(st.duration, 0, this.random()) : null;
      const drawn = d ? d.lo + this.random() * (d.hi - d.lo) : null;
      const next = drawn !== null && st.scaled ? drawn * this.scale : drawn;
      if (next !== null || this.deadlineMs !== null) this.deadlineEpoch++;
      this.deadlineMs = next;
    }
    return this.schedule();
  }

  private schedule(): PaddingAction {
    if (this.inState >= this.limit) return this.event('length-count');
    if (this.padding >= this.machine.maxPadding) return this.finish();
    if (this.machine.maxCells !== undefined && this.padding + this.released >= this.machine.maxCells) return this.finish();
    const st = this.current;
    if (st.delay.length === 0) return { kind: 'wait' };
    const bin = pickBin(st.delay, st.infinity ?? 0, this.random());
    if (!bin) return this.event('infinity');
    return { kind: 'schedule', delayMs: bin.lo + this.random() * (bin.hi - bin.lo) };
  }

  private event(e: PaddingEvent): PaddingAction {
    const next = this.current.next[e];
    if (next !== undefined) return this.enter(next);
    if (e === 'padding-sent' || e === 'nonpadding-sent') return this.schedule();
    if (e === 'length-count' || e === 'infinity') return { kind: 'wait' };
    return { kind: 'keep' };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The machines (specs/padding.md §4). A negotiated machine number names a pair: the relay's half pads towards the
// client, the client's half towards the relay.

/** Machine numbers on the wire. */
export const PaddingMachineId = {
  /** Make a circuit's first exchanges look like an ordinary stream's: a BEGIN-like cell and a request, a
   * CONNECTED-like answer and a response burst, whatever the circuit carries (padding.md §4). */
  STREAM_SETUP: 1,
  /** Make a circuit's first seconds a few request/response exchanges drawn from one distribution, whatever it
   * carries: requests from the client's half, response bursts from the relay's (padding.md §4.2). */
  EXCHANGES: 2,
  /** Cut a circuit's first ten seconds into slots of sampled duration and give each slot a sampled number of cells
   * each way, real cells counting and padding making up the rest at the slot's end (padding.md §4.3); what clients
   * negotiate. */
  SLOTS: 3,
  /** Hold a circuit's real cells to a schedule for its first ten seconds: slots of sampled duration, each sending
   * exactly its sampled number of cells each way at its end, held real cells first and padding for the rest
   * (padding.md §4.4); what clients negotiate. */
  SCHEDULE: 4,
} as const;
export type PaddingMachineId = (typeof PaddingMachineId)[keyof typeof PaddingMachineId];

const one: readonly PaddingBin[] = [{ lo: 1, hi: 2, weight: 1 }];

/** Late, sparse cells (a second request, a chat's next message): some circuits have them, so none stands out. */
const TAIL_DELAY: readonly PaddingBin[] = [
  { lo: 200, hi: 1000, weight: 2 },
  { lo: 1000, hi: 3000, weight: 3 },
  { lo: 3000, hi: 6000, weight: 2 },
];

/**
 * The relay's half of STREAM_SETUP: a CONNECTED-like cell, then a first response cell, a response burst, and a few
 * late cells.
 */
const STREAM_SETUP_RELAY: PaddingMachine = {
  name: 'stream-setup/relay',
  maxPadding: 160,
  states: [
    // Waits for the client's first cell after the negotiation (its BEGIN, or the padding that stands for one).
    { name: 'wait-begin', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 1, 'padding-received': 1 } },
    {
      name: 'connected',
      delay: [
        { lo: 0, hi: 20, weight: 3 },
        { lo: 20, hi: 60, weight: 3 },
        { lo: 60, hi: 150, weight: 3 },
        { lo: 150, hi: 400, weight: 1 },
      ],
      length: one,
      countNonPadding: true,
      next: { 'length-count': 2 },
    },
    {
      name: 'first-byte',
      delay: [
        { lo: 300, hi: 700, weight: 3 },
        { lo: 700, hi: 1200, weight: 4 },
        { lo: 1200, hi: 2000, weight: 2 },
      ],
      length: one,
      countNonPadding: true,
      next: { 'length-count': 3 },
    },
    {
      name: 'burst',
      delay: [
        { lo: 0, hi: 1.5, weight: 9 },
        { lo: 1.5, hi: 10, weight: 1 },
      ],
      length: [
        { lo: 2, hi: 12, weight: 2 },
        { lo: 12, hi: 40, weight: 3 },
        { lo: 40, hi: 100, weight: 3 },
        { lo: 100, hi: 150, weight: 1 },
      ],
      countNonPadding: true,
      next: { 'length-count': 4 },
    },
    {
      name: 'tail',
      delay: TAIL_DELAY,
      infinity: 1,
      length: [
        { lo: 0, hi: 3, weight: 1 },
        { lo: 3, hi: 8, weight: 2 },
        { lo: 8, hi: 14, weight: 1 },
      ],
      countNonPadding: true,
      next: { 'length-count': 'end', infinity: 'end' },
    },
  ],
};

/**
 * The client's half: the circuit's first two cells out (its own, or padding for what it lacks), then, after the
 * second cell back, a request of one or two cells, and a few late cells.
 */
const STREAM_SETUP_CLIENT: PaddingMachine = {
  name: 'stream-setup/client',
  maxPadding: 12,
  states: [
    {
      name: 'begin',
      delay: [{ lo: 0, hi: 1, weight: 1 }],
      length: [{ lo: 2, hi: 3, weight: 1 }],
      countNonPadding: true,
      next: { 'length-count': 1 },
    },
    // The first cell back is the relay's PADDING_NEGOTIATED; the next stands for CONNECTED.
    { name: 'wait-negotiated', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 2, 'padding-received': 2 } },
    { name: 'wait-connected', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 3, 'padding-received': 3 } },
    {
      name: 'request',
      delay: [{ lo: 0, hi: 3, weight: 1 }],
      length: [{ lo: 1, hi: 3, weight: 1 }],
      countNonPadding: true,
      next: { 'length-count': 4 },
    },
    {
      name: 'tail',
      delay: TAIL_DELAY,
      infinity: 1,
      length: [
        { lo: 0, hi: 3, weight: 1 },
        { lo: 3, hi: 8, weight: 2 },
      ],
      countNonPadding: true,
      next: { 'length-count': 'end', infinity: 'end' },
    },
  ],
};

/** Exchanges one run of EXCHANGES imitates. */
export const EXCHANGES_ROUNDS = 8;
/** Rounds whose responses are block-sized; later ones are smaller (acknowledgements, late requests). */
const EXCHANGES_LARGE = 3;

/** The gap before the client half's next request (think time between a response and the next request). */
const EXCHANGE_GAP: readonly PaddingBin[] = [
  { lo: 20, hi: 300, weight: 3 },
  { lo: 300, hi: 1200, weight: 3 },
  { lo: 1200, hi: 3500, weight: 2 },
];

/** The relay half's wait before a response's first cell (the last hop's round trip and think time). */
const EXCHANGE_THINK: readonly PaddingBin[] = [
  { lo: 20, hi: 80, weight: 3 },
  { lo: 80, hi: 250, weight: 3 },
  { lo: 250, hi: 1500, weight: 2 },
];

/** A response's size in cells: a chat acknowledgement to a content block to a web object. */
const EXCHANGE_BURST: readonly PaddingBin[] = [
  { lo: 1, hi: 6, weight: 1 },
  { lo: 30, hi: 45, weight: 2 },
  { lo: 45, hi: 70, weight: 2 },
  { lo: 70, hi: 110, weight: 1 },
];

/** A late response's size: acknowledgements and small objects. */
const EXCHANGE_LATE_BURST: readonly PaddingBin[] = [
  { lo: 1, hi: 4, weight: 3 },
  { lo: 4, hi: 12, weight: 2 },
];

/**
 * The relay's half of EXCHANGES (padding.md §4.2): a CONNECTED-like cell, for half the circuits an immediate
 * block-sized burst, then EXCHANGES_ROUNDS rounds of (wait for a request, a first response cell after a think time,
 * the rest of the response as a burst). Real cells count towards each state's length, so a real response no
 * larger than the sampled one shows as that one; real cells are never held back.
 */
function exchangesRelay(): PaddingMachine {
  const states: PaddingState[] = [
    { name: 'wait-begin', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 1, 'padding-received': 1 } },
    {
      name: 'connected',
      delay: [
        { lo: 0, hi: 40, weight: 3 },
        { lo: 40, hi: 150, weight: 3 },
      ],
      length: one,
      countNonPadding: true,
      next: { 'length-count': 2 },
    },
    // Half the circuits answer at once with a block-sized burst, as a content fetch does (no CONNECTED round trip).
    {
      name: 'early-response',
      delay: [{ lo: 0, hi: 1.5, weight: 1 }],
      length: [
        { lo: 0, hi: 1, weight: 1 },
        { lo: 30, hi: 60, weight: 1 },
      ],
      countNonPadding: true,
      next: { 'length-count': 3 },
    },
  ];
  for (let i = 0; i < EXCHANGES_ROUNDS; i++) {
    const base = states.length;
    const last = i === EXCHANGES_ROUNDS - 1;
    states.push(
      // A request (the client's or its half's padding) starts the round's response.
      {
        name: `wait-request-${i}`,
        delay: [],
        length: one,
        countNonPadding: false,
        next: { 'nonpadding-received': base + 1, 'padding-received': base + 1 },
      },
      { name: `think-${i}`, delay: EXCHANGE_THINK, length: one, countNonPadding: true, next: { 'length-count': base + 2 } },
      {
        name: `response-${i}`,
        delay: [{ lo: 0, hi: 1.5, weight: 1 }],
        length: i < EXCHANGES_LARGE ? EXCHANGE_BURST : EXCHANGE_LATE_BURST,
        countNonPadding: true,
        next: { 'length-count': last ? 'end' : base + 3 },
      },
    );
  }
  return { name: 'exchanges/relay', maxPadding: 200, states };
}

/**
 * The client's half: the circuit's first two cells out, then, after the second cell back, EXCHANGES_ROUNDS rounds of
 * (a request of one or two cells after a gap, then wait for any cell back). Real requests count towards a request.
 */
function exchangesClient(): PaddingMachine {
  const states: PaddingState[] = [
    { name: 'begin', delay: [{ lo: 0, hi: 1, weight: 1 }], length: [{ lo: 2, hi: 3, weight: 1 }], countNonPadding: true, next: { 'length-count': 1 } },
    { name: 'wait-negotiated', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 2, 'padding-received': 2 } },
    { name: 'wait-connected', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 3, 'padding-received': 3 } },
  ];
  for (let i = 0; i < EXCHANGES_ROUNDS; i++) {
    const base = states.length;
    const last = i === EXCHANGES_ROUNDS - 1;
    states.push(
      {
        name: `request-${i}`,
        delay: i === 0 ? [{ lo: 0, hi: 3, weight: 1 }] : EXCHANGE_GAP,
        length: [{ lo: 1, hi: 3, weight: 1 }],
        countNonPadding: true,
        next: { 'length-count': base + 1 },
      },
      // Any cell back (the relay half's think cell, or a real one) ends the wait; a real request sent meanwhile
      // takes the next round's request's place.
      {
        name: `wait-response-${i}`,
        delay: [],
        length: one,
        countNonPadding: false,
        next: {
          'nonpadding-received': last ? 'end' : base + 2,
          'padding-received': last ? 'end' : base + 2,
          ...(last ? {} : { 'nonpadding-sent': base + 3 }),
        },
      },
    );
  }
  return { name: 'exchanges/client', maxPadding: 20, states };
}

/** Slots of one run of SLOTS (padding.md §4.3): about ten seconds at the durations below. */
export const SLOTS_COUNT = 36;
/** Slots whose targets are block-sized for most circuits, and shorter, as a fetch's blocks come early. */
const SLOTS_EARLY = 4;
const SLOT_EARLY_DURATION: readonly PaddingBin[] = [{ lo: 80, hi: 250, weight: 1 }];
const SLOT_DURATION: readonly PaddingBin[] = [{ lo: 150, hi: 400, weight: 1 }];
/** Cells back in an early slot: none, or a block's worth. */
const SLOT_BACK_EARLY: readonly PaddingBin[] = [
  { lo: 0, hi: 1, weight: 1 },
  { lo: 30, hi: 60, weight: 2 },
];
/** Cells back in a later slot: mostly none, some acknowledgements, a few small objects. */
const SLOT_BACK_LATER: readonly PaddingBin[] = [
  { lo: 0, hi: 1, weight: 5 },
  { lo: 1, hi: 4, weight: 1 },
  { lo: 4, hi: 12, weight: 1 },
];
/** Cells out in any slot: none, or a request of one or two cells. */
const SLOT_OUT: readonly PaddingBin[] = [
  { lo: 0, hi: 1, weight: 1 },
  { lo: 1, hi: 3, weight: 2 },
];
const SLOT_FILL: readonly PaddingBin[] = [{ lo: 0, hi: 1.5, weight: 1 }];

/**
 * One half of SLOTS after its opening states: per slot, `collect` (no padding; real cells count towards the slot's
 * target until its duration runs out), `fill` (padding up to the target, the count and target carried over), and
 * `over` (a slot whose real cells reached the target waits out the slot's duration, carried over). Slots end on time,
 * never on cells, so a busy circuit's own cells take padding's place without moving the schedule.
 */
function slotStates(opening: PaddingState[], early: readonly PaddingBin[], later: readonly PaddingBin[]): PaddingState[] {
  const states = [...opening];
  for (let i = 0; i < SLOTS_COUNT; i++) {
    const base = states.length;
    const next = i === SLOTS_COUNT - 1 ? 'end' : base + 3;
    states.push(
      {
        name: `collect-${i}`,
        delay: [],
        duration: i < SLOTS_EARLY ? SLOT_EARLY_DURATION : SLOT_DURATION,
        length: i < SLOTS_EARLY ? early : later,
        countNonPadding: true,
        next: { 'length-count': base + 2, timeout: base + 1 },
      },
      { name: `fill-${i}`, delay: SLOT_FILL, carry: true, length: one, countNonPadding: true, next: { 'length-count': next } },
      { name: `over-${i}`, delay: [], carry: true, length: one, countNonPadding: false, next: { timeout: next } },
    );
  }
  return states;
}

/** The relay's half of SLOTS: waits for the client's first cell after the negotiation, then the slots of cells back. */
const SLOTS_RELAY: PaddingMachine = {
  name: 'slots/relay',
  maxPadding: 200,
  states: slotStates(
    [{ name: 'wait-begin', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 1, 'padding-received': 1 } }],
    SLOT_BACK_EARLY,
    SLOT_BACK_LATER,
  ),
};

/** The client's half: the circuit's first two cells out, then, once PADDING_NEGOTIATED is back, the slots of cells out. */
const SLOTS_CLIENT: PaddingMachine = {
  name: 'slots/client',
  maxPadding: 60,
  states: slotStates(
    [
      { name: 'begin', delay: [{ lo: 0, hi: 1, weight: 1 }], length: [{ lo: 2, hi: 3, weight: 1 }], countNonPadding: true, next: { 'length-count': 1 } },
      { name: 'wait-negotiated', delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 2, 'padding-received': 2 } },
    ],
    SLOT_OUT,
    SLOT_OUT,
  ),
};

/** One phase of SCHEDULE (padding.md §4.4): `slots` slots, each lasting a draw of `duration` ms, sending a draw of `cells`. */
export interface SchedulePhase {
  readonly slots: number;
  /** The phase's slots send a real cell at once while they owe cells and nothing is held (padding.md §4.4). */
  readonly release?: boolean;
  /** The phase's durations scale with the circuit's round trip (padding.md §4.4). */
  readonly scaled?: boolean;
  readonly duration: readonly PaddingBin[];
  readonly cells: readonly PaddingBin[];
}

const SCHEDULE_FILL: readonly PaddingBin[] = [{ lo: 0, hi: 1, weight: 1 }];

/**
 * One half of SCHEDULE after its opening states: per slot, `collect` (holds every real cell; the slot's number of
 * cells is sampled on entry and the state lasts the slot's duration) and `send` (the timer sends exactly that
 * number, held real cells first, then padding; the count carried over). Every state holds, so what the guard sees
 * is the schedule alone, whatever the circuit carries.
 */
function scheduleStates(opening: PaddingState[], phases: readonly SchedulePhase[]): PaddingState[] {
  const states = [...opening];
  const total = phases.reduce((n, p) => n + p.slots, 0);
  let i = 0;
  for (const phase of phases) {
    for (let j = 0; j < phase.slots; j++, i++) {
      const base = states.length;
      const next = i === total - 1 ? 'end' : base + 2;
      states.push(
        {
          name: `collect-${i}`,
          hold: true,
          ...(phase.scaled ? { scaled: true } : {}),
          ...(phase.release ? { release: true } : {}),
          // A late slot whose count is spent borrows the next slot's (the last slot has none to borrow).
          ...(phase.release && next !== 'end' ? { borrow: next } : {}),
          delay: [],
          duration: phase.duration,
          length: phase.cells,
          countNonPadding: false,
          next: { timeout: base + 1 },
        },
        { name: `send-${i}`, hold: true, carry: true, delay: SCHEDULE_FILL, length: one, countNonPadding: false, next: { 'length-count': next } },
      );
    }
  }
  return states;
}

/**
 * Late slots (absolute durations): 28 of [250, 450) ms keep a run at about ten seconds or more even when the early
 * and middle phases are scaled to their least (0.14 s), so the first ten seconds stay covered on any circuit.
 */
export const SCHEDULE_LATE_SLOTS = 28;
/**
 * Real cells a run's end sees (both ways) before the circuit counts as a bulk transfer: the run ends at both ends and
 * the circuit flows (padding.md §2.1, §4.4). As many as the relay's half sends back in a run at most.
 */
export const SCHEDULE_BULK_CELLS = 240;

/**
 * Late slots ahead a late slot whose count is spent may borrow from, the next first (padding.md §2.1, §4.4): a real
 * cell waits only when this many slots after its own have lent all they had.
 */
export const SCHEDULE_BORROW_DEPTH = 2;

/** Cells back: slots dense at first, where a circuit's first answers and responses fall, sparse later. */
export const SCHEDULE_RELAY_PHASES: readonly SchedulePhase[] = [
  {
    slots: 12,
    scaled: true,
    duration: [{ lo: 40, hi: 100, weight: 1 }],
    cells: [
      { lo: 0, hi: 1, weight: 1 },
      { lo: 4, hi: 12, weight: 1 },
      { lo: 10, hi: 24, weight: 2 },
    ],
  },
  {
    slots: 8,
    scaled: true,
    duration: [{ lo: 100, hi: 250, weight: 1 }],
    cells: [
      { lo: 0, hi: 1, weight: 2 },
      { lo: 1, hi: 4, weight: 1 },
      { lo: 4, hi: 12, weight: 1 },
    ],
  },
  {
    slots: SCHEDULE_LATE_SLOTS,
    release: true,
    duration: [{ lo: 250, hi: 450, weight: 1 }],
    cells: [
      { lo: 0, hi: 1, weight: 1 },
      { lo: 1, hi: 3, weight: 1 },
      { lo: 2, hi: 6, weight: 1 },
    ],
  },
];

/** Cells out: requests of one or two cells, often at first, then every few hundred milliseconds. */
export const SCHEDULE_CLIENT_PHASES: readonly SchedulePhase[] = [
  {
    slots: 12,
    scaled: true,
    duration: [{ lo: 40, hi: 100, weight: 1 }],
    cells: [
      { lo: 0, hi: 1, weight: 1 },
      { lo: 1, hi: 3, weight: 3 },
    ],
  },
  {
    slots: 8,
    scaled: true,
    duration: [{ lo: 100, hi: 250, weight: 1 }],
    cells: [
      { lo: 0, hi: 1, weight: 1 },
      { lo: 1, hi: 3, weight: 2 },
    ],
  },
  { slots: SCHEDULE_LATE_SLOTS, release: true, duration: [{ lo: 250, hi: 450, weight: 1 }], cells: [{ lo: 1, hi: 3, weight: 1 }] },
];

/** The relay's half of SCHEDULE: holds from the negotiation, starts its slots with the client's first cell after it. */
const SCHEDULE_RELAY: PaddingMachine = {
  name: 'schedule/relay',
  maxPadding: 240,
  maxCells: 240,
  bulkCells: SCHEDULE_BULK_CELLS,
  borrowDepth: SCHEDULE_BORROW_DEPTH,
  states: scheduleStates(
    [{ name: 'wait-begin', hold: true, delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 1, 'padding-received': 1 } }],
    SCHEDULE_RELAY_PHASES,
  ),
};

/** The client's half: exactly two cells out at once (held real cells first), then its slots once PADDING_NEGOTIATED is back. */
const SCHEDULE_CLIENT: PaddingMachine = {
  name: 'schedule/client',
  maxPadding: 96,
  maxCells: 96,
  bulkCells: SCHEDULE_BULK_CELLS,
  borrowDepth: SCHEDULE_BORROW_DEPTH,
  states: scheduleStates(
    [
      {
        name: 'begin',
        hold: true,
        delay: [{ lo: 0, hi: 1, weight: 1 }],
        length: [{ lo: 2, hi: 3, weight: 1 }],
        countNonPadding: false,
        next: { 'length-count': 1 },
      },
      { name: 'wait-negotiated', hold: true, delay: [], length: one, countNonPadding: false, next: { 'nonpadding-received': 2, 'padding-received': 2 } },
    ],
    SCHEDULE_CLIENT_PHASES,
  ),
};

const MACHINES: ReadonlyMap<number, { relay: PaddingMachine; client: PaddingMachine }> = new Map([
  [PaddingMachineId.STREAM_SETUP, { relay: STREAM_SETUP_RELAY, client: STREAM_SETUP_CLIENT }],
  [PaddingMachineId.EXCHANGES, { relay: exchangesRelay(), client: exchangesClient() }],
  [PaddingMachineId.SLOTS, { relay: SLOTS_RELAY, client: SLOTS_CLIENT }],
  [PaddingMachineId.SCHEDULE, { relay: SCHEDULE_RELAY, client: SCHEDULE_CLIENT }],
]);

/** The two halves of machine `id`, or null for a number no machine has. */
export function paddingMachine(id: number): { relay: PaddingMachine; client: PaddingMachine } | null {
  return MACHINES.get(id) ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// PADDING_NEGOTIATE and PADDING_NEGOTIATED (specs/padding.md §3)

export const PADDING_VERSION = 1;

export const PaddingCommand = { START: 1, STOP: 2 } as const;
export type PaddingCommand = (typeof PaddingCommand)[keyof typeof PaddingCommand];

export const PaddingStatus = {
  OK: 0,
  /** No machine has that number. */
  UNKNOWN_MACHINE: 1,
  /** A limit of the relay (padding.md §5): the circuit's or the relay's budget, or machines running. */
  REFUSED: 2,
  /** The relay is the circuit's first hop, or padding is off there. */
  NOT_HERE: 3,
} as const;
export type PaddingStatus = (typeof PaddingStatus)[keyof typeof PaddingStatus];

export interface PaddingNegotiate {
  readonly command: PaddingCommand;
  /** The machine (0 with STOP). */
  readonly machine: number;
  /**
   * START only, optional: the circuit's round trip as the client measured it (its build), in PADDING_RTT_UNIT_MS
   * units, 1–255 (paddingRttUnits); both halves scale their `scaled` durations by scheduleScale() of it (§3, §4.4).
   */
  readonly rtt?: number;
}

export interface PaddingNegotiated {
  readonly machine: number;
  readonly status: PaddingStatus;
}

export const PADDING_NEGOTIATE_LEN = 3;
/** PADDING_NEGOTIATE with the round-trip byte (START only). */
export const PADDING_NEGOTIATE_RTT_LEN = 4;
export const PADDING_NEGOTIATED_LEN = 3;

export function encodePaddingNegotiate(m: PaddingNegotiate): Uint8Array {
  if (m.command === PaddingCommand.STOP && m.machine !== 0) throw new ProtocolError('ERR_SCHEMA', 'STOP names no machine');
  if (!Number.isInteger(m.machine) || m.machine < 0 || m.machine > 0xff) throw new ProtocolError('ERR_SCHEMA', 'machine out of range');
  if (m.rtt === undefined) return new ByteWriter(PADDING_NEGOTIATE_LEN).u8(PADDING_VERSION).u8(m.command).u8(m.machine).done();
  if (m.command !== PaddingCommand.START) throw new ProtocolError('ERR_SCHEMA', 'only START carries a round trip');
  if (!Number.isInteger(m.rtt) || m.rtt < 1 || m.rtt > 0xff) throw new ProtocolError('ERR_SCHEMA', 'round trip out of range');
  return new ByteWriter(PADDING_NEGOTIATE_RTT_LEN).u8(PADDING_VERSION).u8(m.command).u8(m.machine).u8(m.rtt).done();
}

export function decodePaddingNegotiate(data: Uint8Array): PaddingNegotiate {
  if (data.length !== PADDING_NEGOTIATE_LEN && data.length !== PADDING_NEGOTIATE_RTT_LEN) {
    throw new ProtocolError('ERR_BAD_LENGTH', `PADDING_NEGOTIATE is ${PADDING_NEGOTIATE_LEN} or ${PADDING_NEGOTIATE_RTT_LEN} bytes`);
  }
  const r = new ByteReader(data, 'PADDING_NEGOTIATE');
  if (r.u8() !== PADDING_VERSION) throw new ProtocolError('ERR_SCHEMA', 'unknown PADDING_NEGOTIATE version');
  const command = r.u8();
  const machine = r.u8();
  const rtt = data.length === PADDING_NEGOTIATE_RTT_LEN ? r.u8() : undefined;
  r.end();
  if (rtt !== undefined && command !== PaddingCommand.START) throw new ProtocolError('ERR_SCHEMA', 'only START carries a round trip');
  if (rtt === 0) throw new ProtocolError('ERR_SCHEMA', 'round trip 0');
  if (command !== PaddingCommand.START && command !== PaddingCommand.STOP) throw new ProtocolError('ERR_SCHEMA', 'unknown padding command');
  if (command === PaddingCommand.STOP && machine !== 0) throw new ProtocolError('ERR_SCHEMA', 'STOP names no machine');
  if (command === PaddingCommand.START && machine === 0) throw new ProtocolError('ERR_SCHEMA', 'START names machine 0');
  return { command: command as PaddingCommand, machine, ...(rtt !== undefined ? { rtt } : {}) };
}

export function encodePaddingNegotiated(m: PaddingNegotiated): Uint8Array {
  if (!Number.isInteger(m.machine) || m.machine < 0 || m.machine > 0xff) throw new ProtocolError('ERR_SCHEMA', 'machine out of range');
  return new ByteWriter(PADDING_NEGOTIATED_LEN).u8(PADDING_VERSION).u8(m.machine).u8(m.status).done();
}

export function decodePaddingNegotiated(data: Uint8Array): PaddingNegotiated {
  if (data.length !== PADDING_NEGOTIATED_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `PADDING_NEGOTIATED is ${PADDING_NEGOTIATED_LEN} bytes`);
  const r = new ByteReader(data, 'PADDING_NEGOTIATED');
  if (r.u8() !== PADDING_VERSION) throw new ProtocolError('ERR_SCHEMA', 'unknown PADDING_NEGOTIATED version');
  const machine = r.u8();
  const status = r.u8();
  r.end();
  if (status > PaddingStatus.NOT_HERE) throw new ProtocolError('ERR_SCHEMA', 'unknown padding status');
  return { machine, status: status as PaddingStatus };
}
