/**
 * What content streams can make a store relay hold (specs/content.md §8.1, specs/streams.md §4.5): a circuit keeps at
 * most MAX_CONTENT_STREAMS_PER_CIRCUIT STORE and FETCH streams open; a stream whose queue towards the client does
 * not move for STREAM_STALL_TIMEOUT is ended; STOREs whose data is still arriving reserve at most
 * MAX_PENDING_STORE_BYTES; mailbox STOREs are bounded per circuit and per previous-hop link; and the relay serves
 * everyone else meanwhile. Real onions, links and store; in-memory
 * sockets; the rig's clock.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { BLOCK_PAYLOAD_MAX, BlockType, blockPlaintext, encryptBlock } from '../../protocol/chk.js';
import { decodeStored, encodeFetch, encodeStore } from '../../protocol/content-messages.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { fetchItem, storeItem } from '../../net/content-requests.js';
import { createIdentity } from '../../protocol/address.js';
import { inboxKey, sealMailboxItem, solveMailboxItem } from '../../protocol/mailbox.js';
import { RelayRig, until } from '../helpers/relay-rig.js';

describe('content streams at a store relay', function () {
  this.timeout(60_000);

  it('a circuit that asks for a block on 1024 streams and never acknowledges holds at most 16 of them, and stalled ones end', async () => {
    const rig = new RelayRig({ store: true });
    try {
      const block = encryptBlock(blockPlaintext(BlockType.DATA, crypto().random(BLOCK_PAYLOAD_MAX)), 'random');
      rig.store!.putBlock(block.ref.rk, block.stored);
      const c = await rig.connect();
      const attacker = await rig.circuit(c);
      // The attacker stops reading: it sends no circuit SENDME, so the relay may send 2000 DATA cells and no more.
      c.client.socket.pause();
      for (let id = 1; id <= 1024; id++)
        attacker.send({ command: RelayCommand.FETCH, streamId: id, data: encodeFetch({ k: block.ref.rk, t: 'block', h: false }) });
      await until(() => c.relayLink.stats.cellsIn >= 1 + 1024, 'the 1024 FETCHes at the relay');
      const hop = [...rig.reactor.circuits()].find((h) => h.prev.link === c.relayLink)!;
      const mux = rig.streams.muxOf(hop)!;
      const held = { streams: mux.size, queuedBytes: mux.queuedBytes };
      console.log(
        `      after 1024 FETCHes of a 32 KiB block: ${held.streams} streams open, ${(held.queuedBytes / 1048576).toFixed(1)} MiB queued on the circuit`,
      );

      // An honest client is served meanwhile.
      const honest = await rig.connect({ address: '203.0.113.9' });
      const got = await fetchItem(await rig.circuit(honest), 'block', block.ref.rk);
      expect(got && crypto().equal(got, block.stored), 'the honest client got the block').to.equal(true);

      // The attacker's queues do not move: after the stall timeout its streams are ended.
      rig.advance(1000);
      rig.advance(60_000);
      const after = { streams: mux.size, queuedBytes: mux.queuedBytes };
      console.log(`      a minute later: ${after.streams} streams open, ${after.queuedBytes} bytes queued`);
      expect(held.streams).to.be.at.most(16);
      expect(held.queuedBytes).to.be.at.most(16 * 32768);
      // Refused: all but those open and the 50-odd the circuit window let through (2000 cells, 37 per block).
      expect(await rig.drops('content_stream_limit')).to.be.greaterThan(1024 - 16 - 2000 / 37 - 2);
      expect(after).to.deep.equal({ streams: 0, queuedBytes: 0 });
      expect(await rig.drops('stream_stalled')).to.be.greaterThan(0);
    } finally {
      rig.close();
    }
  });

  it('STOREs whose data never completes reserve at most MAX_PENDING_STORE_BYTES; the rest are answered refused', async () => {
    // The relay's 64 MiB scaled down to four blocks.
    const rig = new RelayRig({ store: { maxPendingStoreBytes: 4 * 32768 } });
    try {
      const c = await rig.connect();
      const circuits = await Promise.all(Array.from({ length: 4 }, () => rig.circuit(c)));
      // 16 STOREs of a block on each circuit, each sending all but the last byte and then nothing.
      const replies: string[] = [];
      const open = (circuit: ClientCircuit): void => {
        const s = circuit.mux.open();
        s.markOpen();
        s.on('stream:reply', (_cmd, data) => replies.push(decodeStored(data).s));
        circuit.send({ command: RelayCommand.STORE, streamId: s.id, data: encodeStore({ k: crypto().random(32), t: 'block', n: 32768, c: false }) });
        s.write(new Uint8Array(32767));
      };
      for (const circuit of circuits) for (let i = 0; i < 16; i++) open(circuit);
      await until(() => c.relayLink.stats.cellsIn >= 4 + 64 * 38, 'the STOREs and their data at the relay');
      await until(() => replies.length >= 60, 'the replies', 2000).catch(() => undefined);
      const pending = rig.content!.pendingStoreBytes;
      const refused = replies.filter((r) => r === 'refused').length;
      console.log(
        `      64 unfinished STOREs of 32 KiB: ${refused} answered refused, ${64 - replies.length} waiting for data; bytes reserved: ${pending ?? 'not counted'}`,
      );
      expect(refused).to.equal(60);
      expect(pending).to.equal(4 * 32768);

      // Once the unfinished STOREs go (their circuits close), an honest STORE fits again.
      for (const circuit of circuits) circuit.close();
      await until(() => rig.content!.pendingStoreBytes === 0, 'the reservations released');
      const block = encryptBlock(blockPlaintext(BlockType.DATA, crypto().random(BLOCK_PAYLOAD_MAX)), 'random');
      expect(await storeItem(await rig.circuit(c), 'block', block.ref.rk, block.stored)).to.equal('ok');
      expect(rig.content!.pendingStoreBytes).to.equal(0);
    } finally {
      rig.close();
    }
  });

  it('mailbox STOREs beyond the per-circuit and the per-peer bucket are refused; other links are still served', async () => {
    // The relay's buckets scaled down (no refill within the test): 4 a circuit, 6 a previous-hop link.
    const rig = new RelayRig({ store: { mailboxStoresPerCircuit: { burst: 4, perSecond: 0.001 }, mailboxStoresPerPeer: { burst: 6, perSecond: 0.001 } } });
    try {
      const recipient = createIdentity();
      const sender = createIdentity();
      const inbox = inboxKey(recipient.publicKey, 1);
      let next = 0;
      const item = (): { rk: Uint8Array; bytes: Uint8Array } => {
        const s = sealMailboxItem({
          sender,
          recipient: recipient.publicKey,
          inbox,
          index: next++,
          exp: Date.now() + 3600_000,
          t: Date.now(),
          n: 0,
          data: new Uint8Array(8),
        });
        return { rk: s.slot, bytes: solveMailboxItem(s.item, crypto().random(16))! };
      };
      const store = async (circuit: ClientCircuit): Promise<string> => {
        const i = item();
        return storeItem(circuit, 'mailbox', i.rk, i.bytes);
      };
      const c = await rig.connect();
      const a = await rig.circuit(c);
      const first: string[] = [];
      for (let i = 0; i < 5; i++) first.push(await store(a));
      // A second circuit on the same link: the link's bucket has 2 left.
      const b = await rig.circuit(c);
      const second: string[] = [];
      for (let i = 0; i < 3; i++) second.push(await store(b));
      console.log(`      one circuit: ${first.join(' ')}; a second circuit on the same link: ${second.join(' ')}`);
      expect(first).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'refused']);
      expect(second).to.deep.equal(['ok', 'ok', 'refused']);
      expect(await rig.drops('mailbox_store_limit')).to.equal(2);
      // Reads are not bounded by it, and another link stores as before.
      expect(await fetchItem(a, 'mailbox', inboxKey(recipient.publicKey, 2))).to.equal(null);
      const honest = await rig.connect({ address: '203.0.113.9' });
      expect(await store(await rig.circuit(honest))).to.equal('ok');
    } finally {
      rig.close();
    }
  });
});
