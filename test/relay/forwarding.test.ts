/**
 * Cells a relay forwards into a congested link (specs/link.md §4.2): they are not held back, but a circuit whose
 * cells pile up there — more than MAX_CIRCUIT_BACKLOG_CELLS still held by the link — is destroyed, while the other
 * circuits of the link go on; and cells sent into congested links bring the out-of-memory check forward, rather
 * than leaving it to the next maintenance pass. Two relays in this process: the client's circuits pass the first
 * and end at the second, over a relay link that carries 500 KB/s.
 */
import { expect } from 'chai';
import { RelayCommand } from '../../protocol/relay-cell.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { RelayRig, until, type RigConnection } from '../helpers/relay-rig.js';

/** Sends `n` DROP cells to the circuit's last hop, a thousand per turn of the event loop (the client's link queue holds 4096). */
async function flood(circuit: ClientCircuit, n: number): Promise<void> {
  for (let i = 0; i < n && circuit.state === 'open'; i++) {
    circuit.send({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(400) });
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
}

describe('forwarding into a congested link', function () {
  this.timeout(60_000);

  async function relays(o: { maxQueueBytes?: number } = {}): Promise<{ a: RelayRig; b: RelayRig; c: RigConnection }> {
    const b = new RelayRig();
    const a = new RelayRig({ next: { rig: b, path: { bandwidth: 500_000 } }, ...o });
    return { a, b, c: await a.connect() };
  }

  it('destroys a circuit whose cells pile up in the next link, and only that one', async () => {
    const { a, b, c } = await relays();
    try {
      const [attacker, honest] = await Promise.all([a.twoHopCircuit(c, b), a.twoHopCircuit(c, b)]);
      const toNext = a.linkToNext;
      let worst = 0;
      const watch = setInterval(() => (worst = Math.max(worst, toNext.bufferedBytes)), 5);
      const cellsBefore = c.relayLink.stats.cellsIn;
      await Promise.all([flood(attacker!, 20_000), flood(honest!, 10)]);
      const sent = 20_000 + 10;
      await until(() => c.relayLink.stats.cellsIn - cellsBefore >= sent || attacker!.state === 'closed', 'the cells at the first relay');
      await until(() => attacker!.state === 'closed', 'the attacking circuit destroyed', 3000).catch(() => undefined);
      clearInterval(watch);
      worst = Math.max(worst, toNext.bufferedBytes);
      console.log(
        `      20 000 cells into a 500 KB/s link: the link held at most ${(worst / 1048576).toFixed(1)} MiB; attacking circuit ${attacker!.state}, honest circuit ${honest!.state}`,
      );
      expect(attacker!.state).to.equal('closed');
      expect(honest!.state).to.equal('open');
      expect(await a.drops('circuit_backlog')).to.equal(1);
      // The link's congestion mark plus the circuit's backlog, not the 20 MB sent.
      expect(worst).to.be.below(1.1 * (1 << 20) + 2600 * 1028);
    } finally {
      a.close();
      b.close();
    }
  });

  it('cells sent into a congested link run the out-of-memory check before the next maintenance pass', async () => {
    const { a, b, c } = await relays({ maxQueueBytes: 4 << 20 });
    try {
      const circuits = await Promise.all(Array.from({ length: 4 }, () => a.twoHopCircuit(c, b)));
      const toNext = a.linkToNext;
      // Each circuit stays under its own backlog limit; together they pass max_queue_bytes.
      await Promise.all(circuits.map((circuit) => flood(circuit, 2000)));
      await until(() => toNext.isClosed, 'the link holding the most closed', 5000).catch(() => undefined);
      console.log(
        `      4 × 2000 cells into a 500 KB/s link with max_queue_bytes 4 MiB, no maintenance pass: link ${toNext.isClosed ? 'closed' : `open, holding ${(toNext.bufferedBytes / 1048576).toFixed(1)} MiB`}`,
      );
      expect(toNext.isClosed).to.equal(true);
      expect(await a.drops('oom_link_closed')).to.equal(1);
    } finally {
      a.close();
      b.close();
    }
  });
});
