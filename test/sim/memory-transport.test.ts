/**
 * The in-memory transport (net/memory-socket.ts) under the simulator's virtual clock: messages arrive whole, in
 * order, after their latency and serialisation time, loss delays and never drops, close/kill/blackhole behave as a
 * closed, reset or vanished TCP connection; and it carries the real link layer and real circuits between real
 * relays and a real client (handshake, frame encryption, CONTROL messages, setup onions, relay cells, streams).
 */
import { expect } from 'chai';
import { memorySocketPair } from '../../net/memory-socket.js';
import { Link } from '../../net/link.js';
import { CellCommand } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { FRAME_LEN, HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { IdentityKey } from '../../crypto/keys.js';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { FullRelay } from '../../sim/relay-node.js';
import { simulate } from '../../sim/world.js';

describe('sim: in-memory transport', () => {
  it('delivers in order after latency plus serialisation; loss delays but never drops', async () => {
    await simulate({ seed: 7 }, async (w) => {
      const [a, b] = memorySocketPair({ forward: { latencyMs: 50, bandwidth: 1_000_000, loss: 0.3, random: w.rng.random } });
      const got: { at: number; first: number }[] = [];
      b.onMessage((d) => got.push({ at: w.now, first: d[0]! }));
      const t0 = w.now;
      for (let i = 0; i < 20; i++) a.send(new Uint8Array(10_000).fill(i));
      // 200 kB at 1 MB/s: the last message leaves after 200 ms.
      expect(a.bufferedAmount).to.equal(200_000);
      await w.run(100);
      expect(a.bufferedAmount).to.equal(100_000);
      await w.run(5_000);
      expect(got.map((g) => g.first)).to.deep.equal([...Array(20).keys()]);
      expect(got[0]!.at - t0).to.be.at.least(60); // 10 ms to serialise + 50 ms latency
      expect(got[19]!.at - t0).to.be.at.least(250);
      for (let i = 1; i < got.length; i++) expect(got[i]!.at).to.be.at.least(got[i - 1]!.at);
    });
  });

  it('close reaches the peer after the data; kill resets; blackhole says nothing', async () => {
    await simulate({ seed: 8 }, async (w) => {
      const [a, b] = memorySocketPair({ forward: { latencyMs: 20 } });
      const events: string[] = [];
      b.onMessage(() => events.push('data'));
      b.onClose((code) => events.push(`close ${code}`));
      a.send(new Uint8Array(4));
      a.close(1000);
      a.send(new Uint8Array(4)); // after close: dropped
      await w.run(1000);
      expect(events).to.deep.equal(['data', 'close 1000']);

      const [c, d] = memorySocketPair({ forward: { latencyMs: 20 } });
      const closes: number[] = [];
      d.onClose((code) => closes.push(code));
      c.kill();
      await w.run(1000);
      expect(closes).to.deep.equal([1006]);

      const [e, f] = memorySocketPair({ forward: { latencyMs: 20 } });
      const seen: string[] = [];
      f.onClose(() => seen.push('close'));
      e.onMessage(() => seen.push('data'));
      e.blackhole();
      f.send(new Uint8Array(4));
      await w.run(60_000);
      expect(seen).to.deep.equal([]);
    });
  });

  it('carries a real link: handshake, cells and CONTROL messages', async () => {
    await simulate({ seed: 9 }, async (w) => {
      const relay = IdentityKey.fromSeed(new Uint8Array(32).fill(1));
      const [a, b] = memorySocketPair({ forward: { latencyMs: 30, bandwidth: 10_000_000 } });
      const server = new Link(b, { role: 'responder', identity: relay, replay: new HandshakeReplayCache(60_000, 100), maxClockSkewMs: 60_000 });
      const client = new Link(a, { role: 'initiator', responder: relay.publicKey });
      const cells: number[] = [];
      const controls: string[] = [];
      server.on('link:cell', (c) => cells.push(c.circId));
      server.on('link:control', (m) => controls.push(m.t));
      let opened = false;
      client.once('link:open', () => (opened = true));
      await w.run(1000);
      expect(opened).to.equal(true);
      expect(server.isOpen).to.equal(true);
      for (let i = 1; i <= 9; i++) client.sendCell(i, CellCommand.RELAY, new Uint8Array(CELL_BODY_LEN));
      client.sendControl({ t: 'dir-get', since: 0, after: null });
      await w.run(1000);
      expect(cells).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(controls).to.deep.equal(['dir-get']);
      // Every message on the socket is one frame size.
      expect(a.stats.bytesOut % FRAME_LEN).to.equal(0);
      expect(b.stats.bytesIn).to.equal(a.stats.bytesOut);
    });
  });

  it('carries real circuits and content between real relays and a real client', async () => {
    await simulate({ seed: 10 }, async (w) => {
      const relays: FullRelay[] = [];
      for (let i = 0; i < 8; i++) {
        const r = new FullRelay(w, w.network.addHost(), i, { store: true, exit: i < 2 });
        relays.push(r);
        r.start(relays.slice(0, 1));
        await w.run(1000);
      }
      await w.run(30_000);
      const client = new AlliumClient({
        bootstrap: relays.slice(0, 3).map((r) => r.bootstrapLine),
        socketFactory: w.network.socketFactory(w.network.addHost()),
        poolSize: 0,
      });
      await w.wait(client.start());
      const circuit = await w.wait(client.newCircuit({ exitPort: 443 }));
      expect(circuit.path).to.have.length(3);
      expect(new Set(circuit.path.map((d) => d.fingerprint)).size).to.equal(3);
      expect(circuit.path[2]!.exit.some((l) => l.startsWith('accept'))).to.equal(true);
      const content = new ContentClient(client);
      const data = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256);
      const link = await w.wait(content.put(data));
      const back = await w.wait(content.get(link));
      expect(back).to.deep.equal(data);
      // The blocks sit in the relays' SQLite stores, and relays forwarded cells for the circuits.
      const stored = relays.reduce((s, r) => s + r.store!.stats().blocks, 0);
      expect(stored).to.be.at.least(3 * 4); // 3 data + 2 parity + root, each at up to 3 holders
      expect(relays.reduce((s, r) => s + r.fetchesServed, 0)).to.be.at.least(3);
      content.close();
      await w.wait(client.stop());
      for (const r of relays) r.dispose();
      expect(w.clock.errors).to.deep.equal([]);
    });
  });
});
