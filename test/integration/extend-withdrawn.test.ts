/**
 * EXTEND is withdrawn (specs/circuits.md §6): a relay that receives one, even in a RELAY_EARLY cell on a built
 * circuit, destroys the circuit without dialing or sending CREATE to the relay it names. Real relay processes on
 * 127.0.0.1; the client side is built by hand so the test can send what an honest client no longer sends.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { fetchFromRelay } from '../../client/directory.js';
import { CellCommand, createBody, decodeCreatedBody, decodeDestroyBody, DestroyReason, type Cell } from '../../protocol/cell.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { createOnion, openReply } from '../../protocol/onion.js';
import { ClientCircuitCrypto } from '../../protocol/relay-crypto.js';
import { encodeRelayPayload, RelayCommand } from '../../protocol/relay-cell.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

/** The next cell that arrives on `circId`. */
function nextCell(link: Link, circId: number, timeoutMs = 30_000): Promise<Cell> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no cell on circuit ${circId}`));
    }, timeoutMs);
    const off = link.on('link:cell', (cell) => {
      if (cell.circId !== circId) return;
      clearTimeout(timer);
      off();
      resolve(cell);
    });
  });
}

describe('EXTEND is withdrawn (relay processes)', function () {
  this.timeout(120_000);
  let a: RelayProcess;
  let b: RelayProcess;

  before(async () => {
    a = await startRelay({ nickname: 'a' });
    b = await startRelay({ nickname: 'b', bootstrap: [a.bootstrap] });
    await waitFor(
      async () => (await a.metric('allium_directory_relays')) === 2 && (await b.metric('allium_directory_relays')) === 2,
      30_000,
      'both relays in both directories',
    );
  });
  after(async () => {
    await a?.kill('SIGKILL');
    await b?.kill('SIGKILL');
  });

  it('destroys a circuit that asks its last hop to EXTEND (in RELAY_EARLY), and the named relay sees no CREATE', async () => {
    const boot = parseBootstrap(a.bootstrap);
    const link = await openLink(nodeSocketFactory, boot.url, { role: 'initiator', responder: boot.identity });
    try {
      const descs = (await fetchFromRelay(link, 0)).raws.map((r) => verifyDescriptor(r, Date.now()));
      const da = descs.find((d) => d.fingerprint === a.fingerprint)!;
      const db = descs.find((d) => d.fingerprint === b.fingerprint)!;
      const createdAtB = await b.metric('allium_circuits_created_total');

      // A one-hop circuit to a.
      const circId = (new DataView(crypto().random(4).buffer).getUint32(0) | 0x80000000) >>> 0;
      const onion = createOnion([{ identity: da.id, onionKey: da.onion }]);
      const created = nextCell(link, circId);
      link.sendCell(circId, CellCommand.CREATE, createBody(onion.header));
      const reply = await created;
      expect(reply.command).to.equal(CellCommand.CREATED);
      const cc = new ClientCircuitCrypto(openReply(onion, decodeCreatedBody(reply.body)).hops);

      // EXTEND to b, as the withdrawn telescoping step sent it: identity | one-hop onion, in RELAY_EARLY.
      const extension = createOnion([{ identity: db.id, onionKey: db.onion }]);
      const data = new Uint8Array(32 + extension.header.length);
      data.set(db.id);
      data.set(extension.header, 32);
      const answer = nextCell(link, circId);
      link.sendCell(circId, CellCommand.RELAY_EARLY, cc.wrapForward(encodeRelayPayload({ command: RelayCommand.EXTEND, streamId: 0, data }), 0));
      const destroy = await answer;
      expect(destroy.command).to.equal(CellCommand.DESTROY);
      expect(decodeDestroyBody(destroy.body)).to.equal(DestroyReason.PROTOCOL);
      // Before the withdrawal a dialed b and sent CREATE (b built a hop) before destroying the circuit.
      expect(await b.metric('allium_circuits_created_total')).to.equal(createdAtB);
      await waitFor(async () => (await a.metric('allium_errors_total', { code: 'ERR_RELAY_COMMAND' })) >= 1, 5000, 'ERR_RELAY_COMMAND counted at a');

      // The link and the relay still serve: a fresh circuit builds.
      const circ2 = (circId ^ 1) >>> 0;
      const again = createOnion([{ identity: da.id, onionKey: da.onion }]);
      const created2 = nextCell(link, circ2);
      link.sendCell(circ2, CellCommand.CREATE, createBody(again.header));
      expect((await created2).command).to.equal(CellCommand.CREATED);
    } finally {
      link.close();
    }
  });
});
