/**
 * specs/vectors/padding.json: PADDING_NEGOTIATE and PADDING_NEGOTIATED (specs/padding.md §3), and runs of the
 * machines' halves with fixed sequences of uniform draws (padding.md §2, §4): the actions each returns for a fixed
 * sequence of events — STREAM_SETUP's relay half for a few events, and both halves of EXCHANGES, SLOTS and SCHEDULE
 * from start to end.
 */
import { fromHex, toHex } from '../../protocol/bytes.js';
import {
  decodePaddingNegotiate,
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  encodePaddingNegotiated,
  PaddingCommand,
  PaddingMachineId,
  PaddingRuntime,
  PaddingStatus,
  paddingMachine,
  SCHEDULE_BORROW_DEPTH,
  scheduleScale,
  type PaddingAction,
} from '../../protocol/circuit-padding.js';
import { check, errorCodeOf, expectCode, VECTORS_VERSION, type VectorFile } from './common.js';

/** A uniform source cycling through fixed values (the vector's `draws`). */
export function fixedDraws(draws: readonly number[]): () => number {
  let i = 0;
  return () => draws[i++ % draws.length]!;
}

/** `timer-held`: the timer fired in a holding state and sent a held real cell in place of padding (padding.md §2.1). */
/**
 * `release`: a real cell offered in the machine's direction with nothing held (PaddingRuntime.offer(0)); `urgent`: a
 * client's SENDME offered with nothing held (offer(0, true)), `urgent-held` with cells held (offer(1, true)).
 */
type RunEvent =
  'start' | 'timer' | 'timer-held' | 'release' | 'urgent' | 'urgent-held' | 'timeout' | 'nonpadding-sent' | 'nonpadding-received' | 'padding-received';
interface RunStep {
  event: RunEvent;
  action: string;
  state: string;
  padding: number;
  /** The state's deadline after the event (ms from the last state change, 3 decimals), or null. */
  deadline: number | null;
  /** Machines that hold real cells: held cells the timer has sent so far, and whether the state holds. */
  held?: number;
  holding?: boolean;
}

function step(rt: PaddingRuntime, e: RunEvent): RunStep {
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
              : rt.on(e);
  const s: RunStep = {
    event: e,
    action: typeof a === 'string' ? (a === 'release' ? 'released' : a) : show(a),
    state: rt.stateName,
    padding: rt.padding,
    deadline: rt.deadlineMs === null ? null : Number(rt.deadlineMs.toFixed(3)),
  };
  if (rt.machine.maxCells !== undefined) Object.assign(s, { held: rt.released, holding: rt.holding });
  if (rt.machine.bulkCells !== undefined) Object.assign(s, { real: rt.real });
  return s;
}

/**
 * A whole run of one half, from start to end: a scheduled timer fires (every seventh time a real cell is sent in the
 * machine's direction first, which counts where the state counts real cells), and a waiting machine gets, in turn,
 * a real cell from the other end, the other half's padding, and a real cell of its own sent in its direction (for
 * EXCHANGES' client half, a real request taking a round's place) — or, every other time while the state has a
 * deadline, the deadline runs out. Stops after `maxSteps` at most.
 */
const WAIT_EVENTS = ['nonpadding-received', 'padding-received', 'nonpadding-sent'] as const;

function wholeRun(
  machine: number,
  half: 'relay' | 'client',
  draws: readonly number[],
  rtt?: number,
  maxSteps = 1000,
): { machine: number; half: 'relay' | 'client'; draws: readonly number[]; rtt?: number; steps: RunStep[] } {
  const rt = new PaddingRuntime(paddingMachine(machine)![half], fixedDraws(draws), scheduleScale(rtt));
  const steps = [step(rt, 'start')];
  let waits = 0;
  let idle = 0;
  let armed = steps[0]!.action.startsWith('schedule');
  while (!rt.ended && steps.length < maxSteps) {
    let next: RunStep;
    // A machine that holds real cells sends them from its timer (every third firing here) and never on its own.
    if (armed && rt.machine.maxCells !== undefined) next = step(rt, steps.length % 3 === 0 ? 'timer-held' : 'timer');
    else if (armed) next = step(rt, steps.length % 7 === 0 ? 'nonpadding-sent' : 'timer');
    // A real cell while a holding state waits: released at once where the state owes cells (padding.md §2.1).
    else if (rt.holding && rt.deadlineMs !== null && idle % 4 === 2 && idle++ >= 0) next = step(rt, 'release');
    else if (rt.deadlineMs !== null && idle++ % 2 === 1) next = step(rt, 'timeout');
    else next = step(rt, WAIT_EVENTS[waits++ % WAIT_EVENTS.length]!);
    // 'keep' leaves the padding timer as it was.
    if (next.action !== 'keep') armed = next.action.startsWith('schedule');
    steps.push(next);
  }
  check(rt.ended, `padding run of machine ${machine} (${half}) ends`);
  return { machine, half, draws, ...(rtt !== undefined ? { rtt } : {}), steps };
}

/**
 * A run of SCHEDULE's `half` that ends as a bulk transfer (padding.md §2.1): real cells offered in its direction with
 * nothing held, real cells from the other end and SENDMEs in turn, a deadline running out every twentieth event, until
 * the real cell past bulkCells ends it; and one where a SENDME finds cells held.
 */
function bulkRun(
  half: 'relay' | 'client',
  draws: readonly number[],
): { machine: number; half: 'relay' | 'client'; draws: readonly number[]; steps: RunStep[] } {
  const machine = PaddingMachineId.SCHEDULE;
  const rt = new PaddingRuntime(paddingMachine(machine)![half], fixedDraws(draws));
  const steps = [step(rt, 'start')];
  const turn = ['release', 'nonpadding-received', half === 'client' ? 'urgent' : 'release'] as const;
  for (let i = 0; !rt.ended && steps.length < 1000; i++) {
    if (steps[steps.length - 1]!.action.startsWith('schedule')) steps.push(step(rt, 'timer'));
    else if (rt.deadlineMs !== null && i % 20 === 19) steps.push(step(rt, 'timeout'));
    else steps.push(step(rt, turn[i % 3]!));
  }
  check(rt.ended && rt.real === paddingMachine(machine)![half].bulkCells! + 1, `SCHEDULE ${half} ends as a bulk transfer`);
  return { machine, half, draws, steps };
}

/**
 * SCHEDULE's borrowing (padding.md §2.1): the relay's half run to its first late slot (timers fire, deadlines run out),
 * then real cells offered with nothing held until one is held: the slot's own count, then the next slots', borrowed;
 * then the slot's end and those of the slots it may borrow from, whose timers send only what was not borrowed.
 */
function borrowRun(draws: readonly number[]): { machine: number; half: 'relay'; draws: readonly number[]; steps: RunStep[] } {
  const machine = PaddingMachineId.SCHEDULE;
  const rt = new PaddingRuntime(paddingMachine(machine)!.relay, fixedDraws(draws));
  const steps = [step(rt, 'start'), step(rt, 'padding-received')];
  const go = (stop: () => boolean): void => {
    while (!rt.ended && !stop() && steps.length < 1000) steps.push(step(rt, steps[steps.length - 1]!.action.startsWith('schedule') ? 'timer' : 'timeout'));
  };
  go(() => rt.stateName === 'collect-20');
  for (let i = 0; i < 12 && steps[steps.length - 1]!.action !== 'hold'; i++) steps.push(step(rt, 'release'));
  check(steps[steps.length - 1]!.action === 'hold', 'SCHEDULE borrows only the next slot’s count');
  go(() => rt.stateName === `collect-${22 + SCHEDULE_BORROW_DEPTH}`);
  return { machine, half: 'relay', draws, steps };
}

const show = (a: PaddingAction): string => (a.kind === 'schedule' ? `schedule ${a.delayMs.toFixed(3)}` : a.kind);

export function paddingFile(): VectorFile {
  const negotiate = [
    { name: 'START STREAM_SETUP', command: PaddingCommand.START, machine: PaddingMachineId.STREAM_SETUP },
    { name: 'START EXCHANGES', command: PaddingCommand.START, machine: PaddingMachineId.EXCHANGES },
    { name: 'START SCHEDULE', command: PaddingCommand.START, machine: PaddingMachineId.SCHEDULE },
    { name: 'START SCHEDULE, round trip 200 ms', command: PaddingCommand.START, machine: PaddingMachineId.SCHEDULE, rtt: 50 },
    { name: 'STOP', command: PaddingCommand.STOP, machine: 0 },
  ].map((v) => {
    const hex = toHex(encodePaddingNegotiate(v));
    const d = decodePaddingNegotiate(fromHex(hex));
    check(d.command === v.command && d.machine === v.machine && d.rtt === ('rtt' in v ? v.rtt : undefined), `PADDING_NEGOTIATE "${v.name}" round trip`);
    return { ...v, hex };
  });
  const negotiated = [
    { name: 'OK', machine: PaddingMachineId.STREAM_SETUP, status: PaddingStatus.OK },
    { name: 'REFUSED', machine: PaddingMachineId.STREAM_SETUP, status: PaddingStatus.REFUSED },
    { name: 'OK EXCHANGES', machine: PaddingMachineId.EXCHANGES, status: PaddingStatus.OK },
    { name: 'NOT_HERE', machine: PaddingMachineId.EXCHANGES, status: PaddingStatus.NOT_HERE },
    { name: 'UNKNOWN_MACHINE', machine: 200, status: PaddingStatus.UNKNOWN_MACHINE },
  ].map((v) => {
    const hex = toHex(encodePaddingNegotiated(v));
    const d = decodePaddingNegotiated(fromHex(hex));
    check(d.machine === v.machine && d.status === v.status, `PADDING_NEGOTIATED "${v.name}" round trip`);
    return { ...v, hex };
  });
  const invalid = (
    [
      ['NEGOTIATE', 'version 2', '020101', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'command 3', '010301', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'STOP naming a machine', '010201', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'START naming machine 0', '010100', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'two bytes', '0101', 'ERR_BAD_LENGTH'],
      ['NEGOTIATE', 'round trip 0', '01010400', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'STOP with a round trip', '01020032', 'ERR_SCHEMA'],
      ['NEGOTIATE', 'five bytes', '0101043200', 'ERR_BAD_LENGTH'],
      ['NEGOTIATED', 'status 4', '010104', 'ERR_SCHEMA'],
      ['NEGOTIATED', 'version 0', '000100', 'ERR_SCHEMA'],
      ['NEGOTIATED', 'empty', '', 'ERR_BAD_LENGTH'],
    ] as const
  ).map(([message, name, hex, code]) => ({
    message,
    name,
    hex,
    code: expectCode(
      errorCodeOf(() => (message === 'NEGOTIATE' ? decodePaddingNegotiate(fromHex(hex)) : decodePaddingNegotiated(fromHex(hex))), name),
      code,
      `padding invalid "${name}"`,
    ),
  }));

  // One run of STREAM_SETUP's relay half: the events in order, and what the runtime answers each.
  const draws = [0.5, 0.25, 0.75, 0.1, 0.9, 0.6];
  const rt = new PaddingRuntime(paddingMachine(PaddingMachineId.STREAM_SETUP)!.relay, fixedDraws(draws));
  const events = ['start', 'nonpadding-received', 'timer', 'nonpadding-sent', 'timer', 'timer', 'timer', 'nonpadding-received'] as const;
  const run = events.map((e) => step(rt, e));
  // Whole runs of both halves of EXCHANGES (padding.md §4.2), SLOTS (§4.3) and SCHEDULE (§4.4), the machine clients
  // negotiate.
  // Thirteen draws (a prime, so a state's draws do not fall into step with the cycle), spread over [0, 1).
  const exchangeDraws = Array.from({ length: 13 }, (_, k) => Math.round(((k * 0.381966 + 0.05) % 1) * 1e4) / 1e4);
  const runs = [
    wholeRun(PaddingMachineId.EXCHANGES, 'relay', exchangeDraws),
    wholeRun(PaddingMachineId.EXCHANGES, 'client', exchangeDraws),
    wholeRun(PaddingMachineId.SLOTS, 'relay', exchangeDraws),
    wholeRun(PaddingMachineId.SLOTS, 'client', exchangeDraws),
    wholeRun(PaddingMachineId.SCHEDULE, 'relay', exchangeDraws),
    wholeRun(PaddingMachineId.SCHEDULE, 'client', exchangeDraws),
    // SCHEDULE negotiated with a round trip of 200 ms (50 units): early and middle slots at a quarter (§4.4).
    wholeRun(PaddingMachineId.SCHEDULE, 'relay', exchangeDraws, 50),
    wholeRun(PaddingMachineId.SCHEDULE, 'client', exchangeDraws, 50),
  ];
  // SCHEDULE's bulk mark (padding.md §2.1): runs that end at the real cell past bulkCells, and a SENDME that finds
  // cells held.
  const bulk = [bulkRun('relay', exchangeDraws), bulkRun('client', exchangeDraws)];
  const sendme = new PaddingRuntime(paddingMachine(PaddingMachineId.SCHEDULE)!.client, fixedDraws(exchangeDraws));
  bulk.push({
    machine: PaddingMachineId.SCHEDULE,
    half: 'client',
    draws: exchangeDraws,
    steps: (['start', 'urgent', 'release', 'urgent-held'] as const).map((e) => step(sendme, e)),
  });
  check(sendme.ended, 'a SENDME that finds cells held ends the run');
  // A late slot borrowing the next slots' counts (padding.md §2.1): with these draws its own count is 2 and the next
  // two slots' (sampled ahead) 1 and 0, so the third real cell is borrowed, the fourth held, and the next slots'
  // timers send nothing.
  const borrow = [borrowRun([0.5, 0.3, 0.3, 0.5, 0.6, 0.2, 0.8])];
  return {
    description:
      "Circuit padding (specs/padding.md). negotiate/negotiated: fields ↔ hex. invalid: decoding `hex` as `message` throws `code`. run: PaddingRuntime(STREAM_SETUP relay half) with uniform draws cycling through `draws`; each event gives `action` (delays to 3 decimals), then `state` and `padding` sent so far. runs: the same for whole runs of other machines' halves (EXCHANGES, SLOTS and SCHEDULE, relay and client), from start to end, with `deadline` the state's deadline after each event (ms, 3 decimals; null for none) and the event `timeout` its running out; for SCHEDULE, which holds real cells, the event `timer-held` is the timer sending a held real cell in place of padding, the event `release` a real cell offered while a state holds and nothing is held (action `released`: sent at once and counted, `hold`: held, `end`: the run ended as a bulk transfer), `urgent` a client's SENDME offered with nothing held and `urgent-held` with cells held (never held: `released`, or `end`), `held` counts the cells sent by the timer or released so far, `holding` says whether the state holds and `real` counts the real cells the run has seen (bulkCells); bulk: SCHEDULE runs that end at the real cell past bulkCells, and one where a SENDME finds cells held; borrow: SCHEDULE's relay half run to its first late slot, then real cells offered (`release`) while nothing is held, past the slot's own count into the next slot's (borrowed: still `released`) until one is held, then on past the slots it may borrow from (SCHEDULE_BORROW_DEPTH) — their timers send only what was not borrowed; `rtt`, when present, is the round-trip byte negotiated, whose scheduleScale() multiplies the durations of scaled states.",
    version: VECTORS_VERSION,
    negotiate,
    negotiated,
    invalid,
    run: { machine: PaddingMachineId.STREAM_SETUP, half: 'relay', draws, steps: run },
    runs,
    bulk,
    borrow,
  };
}
