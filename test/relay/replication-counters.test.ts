/**
 * The counters a replication pass leaves (specs/content.md §6.2): `allium_repair_passes_total` and
 * `allium_repair_checked_total`, both counted when a pass ends. A settled store (everything checked under the
 * generation) makes passes that check nothing; an item whose transfer failed is checked again on every pass, so the
 * checked counter keeps moving while repair has work. With a store stand-in, a real directory and an injected clock.
 */
import { expect } from 'chai';
import pino from 'pino';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { DirectoryStore } from '../../protocol/directory-store.js';
import type { BlockStore } from '../../relay/block-store.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { Replicator } from '../../relay/replication.js';
import { descriptorFor } from '../helpers/overlay.js';

/** A store with `n` blocks not yet checked; a block leaves the unchecked list once a pass records it. */
function storeStandIn(n: number): BlockStore {
  const unchecked = new Map(Array.from({ length: n }, () => crypto().random(32)).map((rk) => [toHex(rk), rk]));
  return {
    sampleKeys: () => [],
    uncheckedBlocks: () => [...unchecked.values()],
    uncheckedRecords: () => [],
    uncheckedMailboxes: () => [],
    popular: () => [],
    getBlock: () => new Uint8Array(100),
    markChecked: (rk: Uint8Array) => void unchecked.delete(toHex(rk)),
  } as unknown as BlockStore;
}

/** A counter's value. */
const value = async (c: RelayMetrics['repairPasses']): Promise<number> => (await c.get()).values[0]?.value ?? 0;

describe('replication pass counters', () => {
  const now = 1_750_000_000_000;

  function replicator(store: BlockStore, otherHolder: boolean): { r: Replicator; metrics: RelayMetrics } {
    const directory = new DirectoryStore();
    if (otherHolder) directory.add(descriptorFor({ pub: now, lifetimeMs: 24 * 3600_000, caps: ['store'] }), now);
    const metrics = new RelayMetrics();
    const r = new Replicator({
      store,
      directory,
      identity: IdentityKey.fromSeed(crypto().random(32)),
      k: 3,
      circuitTo: () => Promise.reject(new Error('the other holder cannot be reached')),
      probe: () => Promise.resolve(false),
      repairIntervalMs: 60_000,
      metrics,
      log: pino({ level: 'silent' }),
      now: () => now,
    });
    return { r, metrics };
  }

  it('count each pass and the items it checked; a settled store then makes passes that check nothing', async () => {
    const { r, metrics } = replicator(storeStandIn(5), false);
    const seen: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      await r.tick();
      seen.push([await value(metrics.repairPasses), await value(metrics.repairChecked)]);
    }
    expect(seen).to.deep.equal([
      [1, 5],
      [2, 5],
      [3, 5],
    ]);
  });

  it('an item whose transfer failed is checked again on every pass: the checked counter keeps moving', async () => {
    const { r, metrics } = replicator(storeStandIn(2), true);
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      await r.tick();
      seen.push(await value(metrics.repairChecked));
    }
    expect(seen).to.deep.equal([2, 4, 6]);
    expect(await value(metrics.repairPasses)).to.equal(3);
  });
});
