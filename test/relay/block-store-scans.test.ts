/**
 * What a relay repeats over its whole store — each replication pass's cursor over unchecked items, eviction's
 * choice of victims, the gauges after every STORE — must not read the stored data. A block row keeps its 32 KiB of
 * data before the columns those statements need, so a statement that reads rows reads the whole store: at 3,000
 * blocks one pass's first batch took 625 ms, and a relay with a few gigabytes would read them all every repair
 * interval. A real SQLite store.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { BLOCK_LEN, routingKeyOf } from '../../protocol/chk.js';
import { BlockStore } from '../../relay/block-store.js';
import { tempDir } from '../helpers/network.js';

function block(): { rk: Uint8Array; data: Uint8Array } {
  const data = crypto().random(BLOCK_LEN);
  return { rk: routingKeyOf(data), data };
}

describe('relay store: scans over the whole store read indexes, not data', () => {
  let dir: string;
  let store: BlockStore;
  beforeEach(() => {
    dir = tempDir('allium-store-scans-');
    store = new BlockStore(dir, 64 * BLOCK_LEN);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves every repeated scan from a covering index', () => {
    const plans = store.scanPlans();
    expect(Object.keys(plans)).to.have.members(['uncheckedBlocks', 'uncheckedRecords', 'uncheckedMailboxes', 'evictable', 'cacheCount']);
    for (const [name, plan] of Object.entries(plans)) expect(plan, name).to.match(/USING COVERING INDEX/);
  });

  it('a store created before these indexes gets them when it opens', () => {
    store.close();
    const db = new Database(join(dir, 'store.sqlite'));
    for (const i of ['blocks_evict', 'blocks_check', 'records_check', 'mailbox_check']) db.exec(`DROP INDEX ${i}`);
    db.exec('CREATE INDEX blocks_role ON blocks (role)');
    db.close();
    store = new BlockStore(dir, 64 * BLOCK_LEN);
    for (const [name, plan] of Object.entries(store.scanPlans())) expect(plan, name).to.match(/USING COVERING INDEX/);
  });

  it('a pass finds exactly the blocks not checked in its generation, in key order, from its cursor', () => {
    const held = Array.from({ length: 6 }, block);
    for (const b of held) store.putBlock(b.rk, b.data);
    const sorted = [...held].sort((a, b) => Buffer.compare(Buffer.from(a.rk), Buffer.from(b.rk)));
    for (const b of sorted.slice(0, 3)) store.markChecked(b.rk, 'g1', 3, 'replica');
    const hex = (ks: Uint8Array[]): string[] => ks.map((k) => Buffer.from(k).toString('hex'));
    expect(hex(store.uncheckedBlocks('g1', 10))).to.deep.equal(hex(sorted.slice(3).map((b) => b.rk)));
    expect(hex(store.uncheckedBlocks('g1', 10, sorted[4]!.rk))).to.deep.equal(hex([sorted[5]!.rk]));
    expect(store.uncheckedBlocks('g2', 10)).to.have.length(6);
  });

  it('evicts cached copies, most copies first, and keeps the in-memory counts equal to the table', () => {
    const replicas = Array.from({ length: 60 }, block);
    for (const b of replicas) store.putBlock(b.rk, b.data);
    const cached = Array.from({ length: 4 }, block);
    cached.forEach((b, i) => {
      store.putBlock(b.rk, b.data, 'cache');
      store.markChecked(b.rk, 'g', i + 1, 'cache'); // copies 1..4
    });
    expect(store.held.blocks).to.equal(64);
    const more = block();
    store.putBlock(more.rk, more.data); // full: the cached copy with the most copies goes
    expect(store.hasBlock(cached[3]!.rk)).to.equal(false);
    expect(store.hasBlock(cached[0]!.rk)).to.equal(true);
    store.deleteBlock(replicas[0]!.rk);
    store.putBlock(more.rk, more.data); // already held: no change
    const db = new Database(join(dir, 'store.sqlite'), { readonly: true });
    const row = db.prepare<[], { n: number; b: number }>('SELECT COUNT(*) AS n, SUM(LENGTH(data)) AS b FROM blocks').get()!;
    db.close();
    expect(store.held).to.deep.equal({ blocks: row.n, bytes: row.b });
    expect(store.stats().blocks).to.equal(row.n);
  });
});
