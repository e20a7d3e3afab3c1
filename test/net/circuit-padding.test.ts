/**
 * net/circuit-padding.ts (specs/padding.md §2.1): the client's half of SCHEDULE on the process's timers, with the
 * cell I/O replaced by recorders — what it holds, what it sends at once, and when a run ends as a bulk transfer.
 */
import { expect } from 'chai';
import { ClientPaddingDriver } from '../../net/circuit-padding.js';
import { PaddingMachineId, paddingMachine, SCHEDULE_BULK_CELLS, SCHEDULE_MIN_SCALE } from '../../protocol/circuit-padding.js';
import { Rng } from '../../sim/random.js';

const CLIENT = paddingMachine(PaddingMachineId.SCHEDULE)!.client;
const cell = (n: number): Uint8Array => Uint8Array.of(n);

/** A driver at the least scale and what it sent: 'pad', or the held cell's number, with the state it was sent in. */
function driver(seed: number): { d: ClientPaddingDriver; sent: { what: number | 'pad'; state: string }[]; on: (fn: () => void) => void } {
  const sent: { what: number | 'pad'; state: string }[] = [];
  let listener: () => void = () => undefined;
  const d: ClientPaddingDriver = new ClientPaddingDriver(
    CLIENT,
    () => {
      sent.push({ what: 'pad', state: d.stateName });
      listener();
      return true;
    },
    new Rng(seed).random,
    (body) => {
      sent.push({ what: body[0]!, state: d.stateName });
      listener();
      return true;
    },
    SCHEDULE_MIN_SCALE,
  );
  return { d, sent, on: (fn) => (listener = fn) };
}

/** Starts the run and brings it to its first slot: the two opening cells sent, then PADDING_NEGOTIATED received. */
async function toFirstSlot(t: ReturnType<typeof driver>): Promise<void> {
  const opened = new Promise<void>((resolve) => t.on(() => t.sent.length >= 2 && resolve()));
  t.d.start();
  await opened;
  t.d.on('nonpadding-received');
  expect(t.d.stateName).to.equal('collect-0');
}

describe('net/circuit-padding: the client half of SCHEDULE', () => {
  it('never holds a SENDME: it goes at once, and one that finds cells held ends the run after them, in order', async () => {
    const t = driver(1);
    await toFirstSlot(t);
    expect(t.d.hold(cell(1), true), 'a SENDME in an early slot is not held').to.equal(false);
    expect(t.d.hold(cell(2)), 'an ordinary cell is').to.equal(true);
    const before = t.sent.length;
    expect(t.d.hold(cell(3), true)).to.equal(false);
    expect(t.d.ended, 'a SENDME that finds cells held ends the run').to.equal(true);
    expect(
      t.sent.slice(before).map((s) => s.what),
      'what was held went first',
    ).to.deep.equal([2]);
    expect(t.d.hold(cell(4)), 'nothing is held after the run').to.equal(false);
  });

  it('ends the run as a bulk transfer at the real cell past SCHEDULE_BULK_CELLS, counting cells received and its own', async () => {
    const t = driver(2);
    await toFirstSlot(t);
    expect(t.d.hold(cell(7))).to.equal(true);
    // A download: the middle's cells arrive (its run ended at the same mark); the client's half counts them.
    // PADDING_NEGOTIATED and the held cell were the first two.
    for (let i = 2; i < SCHEDULE_BULK_CELLS; i++) t.d.on('nonpadding-received');
    expect(t.d.ended).to.equal(false);
    expect(t.d.holding).to.equal(1);
    const before = t.sent.length;
    t.d.on('nonpadding-received');
    expect(t.d.ended, 'past the mark').to.equal(true);
    expect(
      t.sent.slice(before).map((s) => s.what),
      'what it held went at once',
    ).to.deep.equal([7]);
  });

  it('a late slot sends cells held past earlier slots as it begins, while it owes cells', async () => {
    const t = driver(3);
    // Every cell sent by the late slots' collect states (never a padding cell: those go at a slot's end).
    const lateSlot = (state: string): number => Number(/^(?:collect|send)-(\d+)$/.exec(state)?.[1] ?? -1);
    await toFirstSlot(t);
    const done = new Promise<boolean>((resolve) =>
      t.on(() => {
        const last = t.sent[t.sent.length - 1]!;
        if (last.what !== 'pad' && last.state.startsWith('collect-') && lateSlot(last.state) >= 20) resolve(true);
        else if (lateSlot(last.state) >= 26 || t.d.ended) resolve(false);
      }),
    );
    // More than the early and middle slots carry out (about 22 cells), fewer than the run's cap (96).
    for (let i = 0; i < 40; i++) expect(t.d.hold(cell(i))).to.equal(true);
    expect(await done, 'a held cell sent by a late slot as it began').to.equal(true);
    const order = t.sent.filter((s) => s.what !== 'pad').map((s) => s.what);
    expect(order, 'held cells leave in order').to.deep.equal([...order].sort((a, b) => (a as number) - (b as number)));
    t.d.stop(false);
  });
});
