/**
 * What replication remembers about other relays (relay/replication.ts, specs/content.md §6.2) is pruned against the
 * directory on every pass: misses and departures of relays that left the directory, and the transport's cached
 * circuits to them. With a store stand-in, a real directory, probes the test answers, and an injected clock.
 */
import { expect } from 'chai';
import pino from 'pino';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { DirectoryStore } from '../../protocol/directory-store.js';
import type { Link } from '../../net/link.js';
import { CircuitTable } from '../../net/circuit.js';
import type { BlockStore } from '../../relay/block-store.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { Replicator, replicationTransport } from '../../relay/replication.js';
import { descriptorFor } from '../helpers/overlay.js';

const INTERVAL = 60_000;

/** A store holding one block (so the holders of its key are probed) and nothing to check. */
function storeStandIn(): BlockStore {
  const rk = crypto().random(32);
  return {
    sampleKeys: () => [rk],
    uncheckedBlocks: () => [],
    uncheckedRecords: () => [],
    uncheckedMailboxes: () => [],
    popular: () => [],
  } as unknown as BlockStore;
}

describe('replication state about other relays', () => {
  it('forgets the misses and departure of a relay that left the directory; when it comes back it starts afresh', async () => {
    let now = 1_750_000_000_000;
    const directory = new DirectoryStore();
    const key = IdentityKey.fromSeed(crypto().random(32));
    const first = descriptorFor({ identity: key, pub: now, lifetimeMs: 24 * 3600_000, caps: ['store'] });
    directory.add(first, now);
    const r = new Replicator({
      store: storeStandIn(),
      directory,
      identity: IdentityKey.fromSeed(crypto().random(32)),
      k: 3,
      circuitTo: () => Promise.reject(new Error('no transfers in this test')),
      probe: () => Promise.resolve(false), // it never answers
      repairIntervalMs: INTERVAL,
      metrics: new RelayMetrics(),
      log: pino({ level: 'silent' }),
      now: () => now,
    });
    // Unreachable for three repair intervals: left out of placement.
    for (let i = 0; i < 4; i++) {
      await r.tick();
      now += INTERVAL;
    }
    const whileListed = r.departedRelays();
    // Its descriptor leaves the directory (it left the network); the next pass forgets it.
    directory.remove(first.fingerprint);
    await r.tick();
    const afterLeaving = r.departedRelays();
    // Hours later it comes back with a new descriptor, and misses one probe (it is still starting): one miss is no
    // departure. (Before, its first miss hours ago still counted, and it was left out at once.)
    now += 3 * 3600_000;
    directory.add(descriptorFor({ identity: key, pub: now, lifetimeMs: 24 * 3600_000, caps: ['store'] }), now);
    await r.tick();
    expect({ whileListed, afterLeaving, afterReturn: r.departedRelays() }).to.deep.equal({
      whileListed: [first.fingerprint],
      afterLeaving: [],
      afterReturn: [],
    });
  });

  it("the transport's cached circuit to a relay that left the directory is dropped on the next pass", async () => {
    const gone = descriptorFor({ pub: Date.now(), caps: ['store'] });
    let dials = 0;
    // A link that never opens: the circuit stays pending, cached under the relay.
    const t = replicationTransport(() => {
      dials++;
      return new Promise<Link>(() => undefined);
    }, new CircuitTable());
    void t.circuitTo(gone).catch(() => undefined);
    void t.circuitTo(gone).catch(() => undefined);
    const cachedBefore = dials;
    (t as { prune?: (live: ReadonlySet<string>) => void }).prune?.(new Set());
    void t.circuitTo(gone).catch(() => undefined);
    expect({ cachedBefore, afterPrune: dials }).to.deep.equal({ cachedBefore: 1, afterPrune: 2 });
  });
});
