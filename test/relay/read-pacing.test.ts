/**
 * Read pacing under a flood (specs/link.md §7): one link sending frames as fast as it can puts the relay-wide
 * bandwidth bucket in debt, but an honest link that reads within its fair share is not paused for it: its circuits
 * are built at once. A relay in this process over real WebSockets on 127.0.0.1, with a 1 MB/s read budget and no
 * per-link limit to speak of (so the flood is bounded only by the relay-wide bucket, as with the defaults, where one
 * link's allowance is about the whole budget).
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { CellCommand } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { buildCircuit, CircuitTable } from '../../net/circuit.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import { tempDir } from '../helpers/network.js';

describe('read pacing under a flood', function () {
  this.timeout(120_000);

  it('an honest link keeps its share of the read budget while another link floods', async () => {
    const dir = tempDir();
    const relay = new Relay(
      {
        listen: '127.0.0.1:0',
        data_dir: dir,
        storage_quota: 0,
        log_level: 'silent',
        allow_private_addresses: true,
        bandwidth_rate: 1_000_000,
        bandwidth_burst: 1_000_000,
        cells_per_second_per_link: 1_000_000,
      },
      { log: silentLogger() },
    );
    await relay.start();
    const peer = { role: 'initiator' as const, responder: relay.identity.publicKey };
    const flood = await openLink(nodeSocketFactory, relay.address, peer);
    const honest = await openLink(nodeSocketFactory, relay.address, peer);
    let flooding = true;
    const body = new Uint8Array(CELL_BODY_LEN);
    const readBytes = async (): Promise<number> => ((await relay.status()) as { bytes: { in: number } }).bytes.in;
    const inBefore = await readBytes();
    const started = performance.now();
    const floodDone = (async () => {
      while (flooding && flood.isOpen) {
        if (flood.socket.bufferedAmount < 2 << 20 && flood.queuedCells < 2000) for (let i = 0; i < 400; i++) flood.sendCell(0, CellCommand.PADDING, body);
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      // Let the flood put the relay-wide bucket in debt.
      const bytesBefore = flood.stats.bytesOut;
      while (flood.stats.bytesOut - bytesBefore < 4_000_000) await new Promise((r) => setTimeout(r, 20));
      const table = new CircuitTable();
      const times: number[] = [];
      for (let i = 0; i < 8; i++) {
        const t = performance.now();
        (await buildCircuit(honest, table, [relay.descriptor!], { timeoutMs: 30_000 })).close();
        times.push(Math.round(performance.now() - t));
      }
      const total = times.reduce((a, b) => a + b, 0);
      // The flood goes on for three seconds more: the relay still reads no more than its budget and burst.
      const until = performance.now() + 3000;
      while (performance.now() < until) await new Promise((r) => setTimeout(r, 50));
      const seconds = (performance.now() - started) / 1000;
      const read = (await readBytes()) - inBefore;
      console.log(
        `      8 circuit builds on the honest link during the flood: ${times.join(' ')} ms (${total} ms in all); the relay read ${(read / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s`,
      );
      expect(total).to.be.below(3000);
      expect(read).to.be.below(1.3 * (1_000_000 * seconds + 1_000_000));
    } finally {
      flooding = false;
      await floodDone;
      flood.close();
      honest.close();
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
