/**
 * pipeSocket (net/pipe-socket.ts) over a real TCP connection on 127.0.0.1: the cells of a turn leave together, the
 * bytes arrive whole and in order, and every cell is acknowledged to the stream once written.
 */
import { expect } from 'chai';
import net from 'node:net';
import { Emitter } from '../../net/emitter.js';
import type { MuxStream, MuxStreamEvents } from '../../net/stream-mux.js';
import { pipeSocket } from '../../net/pipe-socket.js';
import { EndReason } from '../../protocol/stream-messages.js';

/** What pipeSocket uses of a MuxStream, with emit open to the test. */
class FakeStream extends Emitter<MuxStreamEvents> {
  consumedCells = 0;
  ended = false;
  write(): boolean {
    return true;
  }
  end(): void {
    this.ended = true;
  }
  consumed(n: number): void {
    this.consumedCells += n;
  }
  fire<K extends keyof MuxStreamEvents>(event: K, ...args: MuxStreamEvents[K]): void {
    this.emit(event, ...args);
  }
}

describe('pipeSocket', () => {
  it('writes a turn of cells in order and whole, from views into the frame buffer of the turn, and acknowledges each', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const reader = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    reader.on('data', (b: Buffer) => received.push(b));
    const sock = await accepted;
    const stream = new FakeStream();
    pipeSocket(stream as unknown as MuxStream, sock);

    // Turns of cells, each cell a view into the turn's buffer (as cells are views into a link's received frames).
    const CELL = 886;
    const turns = [1, 37, 2, 64];
    const expected: number[] = [];
    let tag = 0;
    for (const cells of turns) {
      const frame = new Uint8Array(cells * CELL);
      for (let i = 0; i < cells; i++) {
        const view = frame.subarray(i * CELL, (i + 1) * CELL);
        for (let j = 0; j < CELL; j++) view[j] = (tag * 7 + j) & 0xff;
        expected.push(tag++);
        stream.fire('stream:data', view);
      }
      await new Promise((r) => setImmediate(r));
    }
    const total = tag * CELL;
    await new Promise<void>((resolve) => {
      const check = (): void => (Buffer.concat(received).length >= total ? resolve() : void reader.once('data', check));
      check();
    });
    const got = Buffer.concat(received);
    expect(got.length).to.equal(total);
    for (const t of expected) {
      const cell = got.subarray(t * CELL, (t + 1) * CELL);
      for (let j = 0; j < CELL; j += 97) expect(cell[j], `cell ${t} byte ${j}`).to.equal((t * 7 + j) & 0xff);
    }
    while (stream.consumedCells < tag) await new Promise((r) => setImmediate(r));
    expect(stream.consumedCells).to.equal(tag);
    stream.fire('stream:end', EndReason.DONE);
    await new Promise((r) => reader.once('end', r));
    reader.destroy();
    sock.destroy();
    await new Promise((r) => server.close(r));
  });
});
