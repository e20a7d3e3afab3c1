/**
 * The link's send queue (net/frame-queue.ts): cells are framed in order, FRAME_CELLS to a frame, unused cells are
 * PADDING (zero) even in a reused buffer, and a cell is copied when queued, so the sender may reuse its buffer.
 * Then over a real link pair: the peer receives exactly the cells sent, in order, from one reused body.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { CellCommand, encodeCell, type Cell } from '../../protocol/cell.js';
import { CELL_BODY_LEN, CELL_LEN } from '../../protocol/constants.js';
import { FRAME_CELLS, FRAME_PLAIN_LEN } from '../../protocol/link-handshake.js';
import { FrameQueue } from '../../net/frame-queue.js';
import { linkPair } from '../helpers/overlay.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('link send queue (FrameQueue)', () => {
  it('frames cells in order, zeroes the unused cells of a reused buffer, and copies each body when queued', () => {
    const q = new FrameQueue();
    const body = new Uint8Array(CELL_BODY_LEN);
    const expected: Uint8Array[] = [];
    // 6 cells: one full frame and one with 2 cells; the body buffer is overwritten after every push.
    for (let i = 0; i < 6; i++) {
      body.fill(0x10 + i);
      q.push(100 + i, CellCommand.RELAY, body);
      expected.push(encodeCell({ circId: 100 + i, command: CellCommand.RELAY, body: Uint8Array.from(body) }));
    }
    body.fill(0xee);
    expect(q.cells).to.equal(6);
    expect(q.nextCells).to.equal(FRAME_CELLS);
    const f1 = q.shift();
    expect(hex(f1)).to.equal(expected.slice(0, 4).map(hex).join(''));
    FrameQueue.release(f1); // its buffer (full of cells) is reused for the next frame queued
    expect(q.nextCells).to.equal(2);
    const f2 = q.shift();
    expect(hex(f2)).to.equal(expected.slice(4).map(hex).join('') + '00'.repeat(FRAME_PLAIN_LEN - 2 * CELL_LEN));
    FrameQueue.release(f2);
    expect(q.cells).to.equal(0);
    expect(q.nextCells).to.equal(0);
    // One short cell into a reused buffer: the rest of its body and the other three cells are zero.
    q.push(7, CellCommand.RELAY, new Uint8Array([1, 2, 3]));
    const f3 = q.shift();
    expect(hex(f3)).to.equal(
      hex(encodeCell({ circId: 7, command: CellCommand.RELAY, body: new Uint8Array([1, 2, 3]) })) + '00'.repeat(FRAME_PLAIN_LEN - CELL_LEN),
    );
    expect(() => q.shift())
      .to.throw()
      .with.property('code', 'ERR_INTERNAL');
  });

  it('over a real link, the peer receives every cell sent from one reused body, in order', async () => {
    const relay = IdentityKey.fromSeed(crypto().random(32));
    const { a, b } = await linkPair({ responder: relay });
    const got: Cell[] = [];
    const n = 4 * FRAME_CELLS + 3;
    const all = new Promise<void>((resolve) =>
      b.on('link:cell', (c) => {
        got.push({ circId: c.circId, command: c.command, body: Uint8Array.from(c.body) });
        if (got.length === n) resolve();
      }),
    );
    const body = new Uint8Array(CELL_BODY_LEN);
    for (let i = 0; i < n; i++) {
      body.fill(i + 1);
      a.sendCell(0x80000000 + i, CellCommand.RELAY, body);
    }
    body.fill(0xff);
    await all;
    expect(got.map((c) => c.circId)).to.deep.equal(Array.from({ length: n }, (_, i) => 0x80000000 + i));
    expect(got.every((c, i) => c.body.every((x) => x === i + 1))).to.equal(true);
    a.close();
    b.close();
  });
});
