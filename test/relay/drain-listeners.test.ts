/**
 * Drain listeners of the last hop's stream multiplexers (specs/streams.md §4.4): a multiplexer that waits for its
 * link to drain holds one listener on that link, and withdraws it when its circuit closes. A link that stays
 * congested (its peer reads slowly or not at all) must not collect one listener per circuit that ever waited on it.
 */
import { expect } from 'chai';
import { CellCommand } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { RelayRig, until } from '../helpers/relay-rig.js';

describe('drain listeners of last-hop multiplexers', () => {
  it('a circuit closed while its link is congested leaves no listener on the link', async () => {
    const rig = new RelayRig();
    try {
      // The relay's direction is slow (200 KB/s): 1.1 MB of padding keeps the link congested for seconds.
      const c = await rig.connect({ toClient: { bandwidth: 200_000 } });
      const circuits = await Promise.all(Array.from({ length: 20 }, () => rig.circuit(c)));
      const before = c.relayLink.listenerCount('link:drain');
      for (let i = 0; i < 1100; i++) c.relayLink.sendCell(0, CellCommand.PADDING, new Uint8Array(CELL_BODY_LEN));
      await until(() => c.relayLink.isCongested, 'the relay link congested');
      // A stream SENDME (for no stream) makes each circuit's multiplexer pump, find the link congested and wait.
      for (const circ of circuits) circ.send({ command: RelayCommand.SENDME, streamId: 1, data: new Uint8Array(0) });
      await until(() => c.relayLink.listenerCount('link:drain') === before + circuits.length, 'every multiplexer waiting for drain');
      for (const circ of circuits) circ.close();
      await until(() => rig.reactor.size === 0, 'the circuits closed at the relay');
      const left = c.relayLink.listenerCount('link:drain') - before;
      console.log(
        `      drain listeners left on the congested link after ${circuits.length} circuits closed: ${left} (still congested: ${c.relayLink.isCongested})`,
      );
      expect(c.relayLink.isCongested, 'the link is still congested').to.equal(true);
      expect(left).to.equal(0);
    } finally {
      rig.close();
    }
  });
});
