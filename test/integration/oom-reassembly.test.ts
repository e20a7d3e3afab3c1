/**
 * The out-of-memory handler counts what a link holds while reassembling a CONTROL message (specs/link.md §7): a peer
 * that sends a message of nearly MAX_CONTROL_MESSAGE a fragment at a time, and never its last fragment, is closed
 * when the relay is over max_queue_bytes. A relay in this process, over real WebSockets on 127.0.0.1.
 */
import { expect } from 'chai';
import { parseBootstrap } from '../../client/bootstrap.js';
import { CellCommand, CONTROL_DATA_MAX, controlBody } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { silentLogger } from '../../relay/logger.js';
import { Relay } from '../../relay/relay.js';
import { FAST_TIMING, tempDir, waitFor } from '../helpers/network.js';

describe('out-of-memory handler and CONTROL reassembly (relay in process)', function () {
  this.timeout(60_000);
  let relay: Relay;

  before(async () => {
    relay = new Relay(
      {
        nickname: 'oom',
        listen: '127.0.0.1:0',
        data_dir: tempDir('allium-oom-'),
        storage_quota: 0,
        allow_private_addresses: true,
        max_queue_bytes: 100_000,
        timing: FAST_TIMING,
      },
      { log: silentLogger() },
    );
    await relay.start();
  });
  after(async () => {
    await relay?.stop();
  });

  it('closes a link holding 150 KB of an unfinished CONTROL message once over max_queue_bytes (100 KB); an honest link stays', async () => {
    const b = parseBootstrap(relay.bootstrapLine);
    const honest = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
    const hog = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
    let hogClosed = false;
    hog.once('link:close', () => (hogClosed = true));
    for (let i = 0; i < 150; i++) hog.sendCell(0, CellCommand.CONTROL, controlBody({ first: i === 0, last: false, data: new Uint8Array(CONTROL_DATA_MAX) }));
    hog.sendCell(1, CellCommand.RELAY, new Uint8Array(CELL_BODY_LEN)); // a cell for no circuit: counted when it arrives
    const unknownCells = async (): Promise<number> =>
      (await relay.metrics.drops.get()).values.find((v) => v.labels['reason'] === 'relay_unknown_circuit')?.value ?? 0;
    await waitFor(async () => (await unknownCells()) >= 1, 20_000, 'the fragments at the relay');
    relay.checkMemory();
    await waitFor(() => hogClosed, 5_000, 'the hog closed by the out-of-memory handler');
    expect(honest.isOpen).to.equal(true);
    expect((await relay.metrics.drops.get()).values.find((v) => v.labels['reason'] === 'oom_link_closed')?.value).to.equal(1);
    honest.close();
  });
});
