/**
 * When a link frames its queued cells (specs/link.md §4.2): as soon as the task that queued them ends, every cell
 * of that task in the same frames, not a turn of the event loop later (a wait every hop of a circuit paid, twelve
 * times on the way to a first byte).
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { CellCommand } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { linkPair } from '../helpers/overlay.js';

describe('link send queue: framing', () => {
  it('cells queued in one task leave in one frame once the task ends, before the event loop turns', async () => {
    const { a, b } = await linkPair({ responder: IdentityKey.fromSeed(crypto().random(32)) });
    // Let whatever the handshake queued go first.
    await new Promise((r) => setImmediate(r));
    const frames = a.stats.framesOut;
    const cells = a.stats.cellsOut;
    let turned = false;
    setImmediate(() => (turned = true));
    a.sendCell(1, CellCommand.RELAY, new Uint8Array(CELL_BODY_LEN));
    a.sendCell(2, CellCommand.RELAY, new Uint8Array(CELL_BODY_LEN).fill(7));
    await Promise.resolve();
    const out = { frames: a.stats.framesOut - frames, cells: a.stats.cellsOut - cells, turned };
    const got: number[] = [];
    await new Promise<void>((r) =>
      b.on('link:cell', (c) => {
        got.push(c.circId);
        if (got.length === 2) r();
      }),
    );
    expect({ out, got }).to.deep.equal({ out: { frames: 1, cells: 2, turned: false }, got: [1, 2] });
    a.close();
  });

  it('cells queued after the first flush of a turn wait for the end of the turn and share a frame', async () => {
    const { a, b } = await linkPair({ responder: IdentityKey.fromSeed(crypto().random(32)) });
    await new Promise((r) => setImmediate(r));
    const frames = a.stats.framesOut;
    const cells = a.stats.cellsOut;
    // Three cells queued in three tasks of one turn, each after the last one's flush had its chance (as three socket
    // reads of one poll phase would queue them): the first leaves at once, the other two together.
    const body = new Uint8Array(CELL_BODY_LEN);
    await Promise.resolve()
      .then(() => a.sendCell(1, CellCommand.RELAY, body))
      .then(() => a.sendCell(2, CellCommand.RELAY, body))
      .then(() => a.sendCell(3, CellCommand.RELAY, body));
    const got: number[] = [];
    await new Promise<void>((r) =>
      b.on('link:cell', (c) => {
        got.push(c.circId);
        if (got.length === 3) r();
      }),
    );
    // Before: a frame for each (3 frames, each with one cell and three cells' worth of padding).
    expect({ frames: a.stats.framesOut - frames, cells: a.stats.cellsOut - cells, got }).to.deep.equal({ frames: 2, cells: 3, got: [1, 2, 3] });
    a.close();
  });
});
