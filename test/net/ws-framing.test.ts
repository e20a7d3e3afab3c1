import { expect } from 'chai';
import * as wsModule from 'ws';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { frameWsMessages, fromWs, type WsFraming } from '../../net/socket.js';
import { CLIENT_FRAMING } from '../../net/ws-node.js';

/** ws's own framing (exported by ws, not declared by its types). */
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };

/** What ws itself puts on the wire for one binary message (mask: the one our framing drew, or none). */
function wsFrame(payload: Uint8Array, mask: Uint8Array | null): Buffer {
  const parts = Sender.frame(Buffer.from(payload), {
    fin: true,
    opcode: 2,
    mask: mask !== null,
    readOnly: false,
    rsv1: false,
    ...(mask ? { generateMask: (m: Buffer) => m.set(mask) } : {}),
  });
  return Buffer.concat(parts);
}

describe('packed WebSocket framing (net/socket.ts frameWsMessages)', () => {
  const size = 4112;
  const count = 3;
  const payloads = Array.from({ length: count }, (_, i) => Uint8Array.from({ length: size }, (_, j) => (j * 7 + i * 13) & 0xff));
  let draws = 0;
  const masked: WsFraming = {
    masked: true,
    maskBytes: (out, o) => {
      draws++;
      out.set([0x11 * draws, 0x5a, 0xc3, 0x0f ^ draws], o);
    },
  };

  for (const [label, framing, offset] of [
    ['server (unmasked)', { masked: false }, 0],
    ['client (masked, aligned)', masked, 0],
    ['client (masked, unaligned buffer)', masked, 1],
    ['client (a dialed link: CSPRNG masks, native XOR where bufferutil loads)', CLIENT_FRAMING, 0],
  ] as const) {
    it(`writes exactly the bytes ws writes, message by message: ${label}`, () => {
      const gap = framing.masked ? 8 : 4;
      const stride = gap + size;
      const backing = new Uint8Array(offset + count * stride);
      const buf = backing.subarray(offset);
      payloads.forEach((p, i) => buf.set(p, i * stride + gap));
      frameWsMessages(buf, count, size, framing);
      for (let i = 0; i < count; i++) {
        const slot = buf.subarray(i * stride, (i + 1) * stride);
        const mask = framing.masked ? slot.slice(4, 8) : null;
        expect(Buffer.from(slot).equals(wsFrame(payloads[i]!, mask)), `message ${i}`).to.equal(true);
      }
    });
  }

  it('refuses sizes a 16-bit length cannot carry', () => {
    expect(() => frameWsMessages(new Uint8Array(100), 1, 96, { masked: false })).to.throw(RangeError);
  });

  it("writes a packed send to ws's socket in one write, between ws's own messages, in order (the ws internals it reads are there)", async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((r) => server.once('listening', () => r()));
    const got: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      server.on('connection', (peer) =>
        peer.on('message', (d: Buffer) => {
          got.push(Buffer.from(d));
          if (got.length === count + 2) resolve();
        }),
      ),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { perMessageDeflate: false });
    try {
      await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
      // What sendPacked relies on (net/socket.ts): ws's Sender between messages, and its socket's write.
      const internals = ws as unknown as { _sender: { _state: unknown; _queue: unknown }; _socket: { write: (...a: unknown[]) => boolean } };
      expect(internals._sender._state, "ws's Sender state between messages").to.equal(0);
      expect(internals._sender._queue).to.deep.equal([]);
      const socket = fromWs(ws as never, null, CLIENT_FRAMING);
      const write = internals._socket.write.bind(internals._socket);
      let writes = 0;
      internals._socket.write = (...a: unknown[]): boolean => (writes++, write(...a));
      const stride = 8 + size;
      const buf = new Uint8Array(count * stride);
      payloads.forEach((p, i) => buf.set(p, i * stride + 8));
      let done = 0;
      ws.send(Buffer.from('before'));
      const before = writes;
      socket.sendPacked!(buf, count, size, () => done++);
      expect(writes - before, 'socket writes for the packed send').to.equal(1);
      ws.send(Buffer.from('after'));
      await all;
      expect(done).to.equal(1);
      expect(got.map((b) => b.length)).to.deep.equal([6, size, size, size, 5]);
      payloads.forEach((p, i) => expect(got[i + 1]!.equals(Buffer.from(p)), `message ${i}`).to.equal(true));
    } finally {
      ws.terminate();
      await new Promise((r) => server.close(r));
    }
  });
});
