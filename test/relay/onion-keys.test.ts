/**
 * Onion keys under a flood of valid onions (specs/circuits.md §3.3.1, §3.4.1): each replay filter that fills forces
 * an early rotation, yet the relay holds at most MAX_ONION_KEYS keys, and its replay filters and journals are those
 * of the keys it holds, so it restarts with them intact. A relay in this process over real WebSockets on 127.0.0.1,
 * with a replay filter of three onions per key so that a few circuits fill it.
 */
import { expect } from 'chai';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../../protocol/bytes.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { buildCircuit, CircuitTable } from '../../net/circuit.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import { tempDir } from '../helpers/network.js';

/** The node's onion replay filter, which the test swaps for a small one. */
interface NodeInside {
  replay: ReplayFilter;
}

function config(dir: string): ConstructorParameters<typeof Relay>[0] {
  return { listen: '127.0.0.1:0', data_dir: dir, storage_quota: 0, log_level: 'silent', allow_private_addresses: true };
}

describe('onion keys under a flood of valid onions', function () {
  this.timeout(60_000);

  it('hold at most three keys, with the filters and journals of exactly those, across a restart', async () => {
    const dir = tempDir();
    const relay = new Relay(config(dir), { log: silentLogger() });
    await relay.start();
    try {
      const node = relay.node;
      const inside = node as unknown as NodeInside;
      inside.replay = new ReplayFilter({ capacity: 3 });
      const link = await openLink(nodeSocketFactory, relay.address, { role: 'initiator', responder: relay.identity.publicKey });
      const table = new CircuitTable();
      const sizes: number[] = [];
      for (let round = 0; round < 6; round++) {
        // Three circuits fill the current key's filter; the maintenance pass rotates early and publishes the new key.
        for (let i = 0; i < 3; i++) (await buildCircuit(link, table, [relay.descriptor!], { timeoutMs: 10_000 })).close();
        node.maintain();
        sizes.push(node.onionKeys.all.length);
      }
      const held = node.onionKeys.usable.map((k) => toHex(k.publicKey)).sort();
      const journals = readdirSync(join(dir, 'replay'))
        .filter((n) => n.startsWith('onion-'))
        .map((n) => n.slice(6, -4))
        .sort();
      const filterBytes = inside.replay.bytes;
      const oneFilter = new ReplayFilter({ capacity: 3 });
      oneFilter.checkAndRecord(new Uint8Array(32), new Uint8Array(16));
      console.log(`      keys held after each of 6 early rotations: ${sizes.join(' ')}; journals ${journals.length}; filters ${filterBytes / oneFilter.bytes}`);
      expect(Math.max(...sizes)).to.be.at.most(3);
      expect(journals).to.deep.equal(held);
      expect(filterBytes).to.be.at.most(held.length * oneFilter.bytes);
      link.close();
      await relay.stop();

      // The next run restores every held key's filter from its journal: none is retired.
      const again = new Relay(config(dir), { log: silentLogger() });
      await again.start();
      try {
        const after = again.node.onionKeys.usable.map((k) => toHex(k.publicKey)).sort();
        expect(after).to.deep.equal(held);
      } finally {
        await again.stop();
      }
    } finally {
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
