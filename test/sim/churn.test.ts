/**
 * Content survives churn when fewer than k holders fail at once: real store relays (SQLite stores, the real
 * Replicator over one-hop circuits) lose two relays at a time, every twenty minutes, replaced by new ones, and repair
 * between the waves; no block is lost and a new client fetches the file back. Taking down all k holders of a block
 * at once loses that block, which shows the check can fail.
 */
import { expect } from 'chai';
import { realChurn } from '../../sim/experiments/churn.js';

const quick = {
  descriptor_lifetime: 10 * 60_000,
  descriptor_renew: 3 * 60_000,
  gossip_interval: 60_000,
  repair_interval: 60_000,
  onion_key_overlap: 10 * 60_000,
};

describe('sim: content under churn', () => {
  it('loses no block when fewer than k = 3 relays fail at once', async () => {
    const r = await realChurn({
      seed: 5,
      relays: 9,
      k: 3,
      files: 1,
      dataBlocks: 4,
      churnPerHour: 0,
      hours: 1,
      sampleEveryMs: 10 * 60_000,
      config: { timing: quick },
      waves: { count: 2, everyMs: 20 * 60_000 },
    });
    expect(r.departures).to.equal(6);
    expect(r.blocks).to.equal(7); // 4 data, 2 parity, 1 root
    expect(r.lostBlocks).to.equal(0);
    for (const s of r.samples) expect(s.durable).to.equal(1);
    expect(r.samples[r.samples.length - 1]!.retrievable).to.equal(1);
    expect(r.filesFetched).to.equal(1);
  });

  it('loses a block whose k holders all fail at once', async () => {
    const r = await realChurn({
      seed: 6,
      relays: 9,
      k: 3,
      files: 1,
      dataBlocks: 4,
      churnPerHour: 0,
      hours: 0.5,
      sampleEveryMs: 30 * 60_000,
      config: { timing: quick },
      waves: { count: 3, everyMs: 30 * 60_000, holdersOnly: true },
    });
    expect(r.departures).to.equal(3);
    expect(r.lostBlocks).to.be.at.least(1);
  });
});
