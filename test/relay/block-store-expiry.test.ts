/**
 * Endpoint descriptors in the relay store expire (specs/content.md §7): a row whose descriptor is no longer valid is
 * reclaimed — its bytes returned to the quota — by the sweep that drops expired mailbox items, on writes and on
 * replication passes; signed updatable-key records, which do not expire, stay. A real SQLite store, with the time
 * passed in.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import { createEndpointDescriptor } from '../../protocol/endpoint-descriptor.js';
import { periodStart } from '../../protocol/key-blinding.js';
import { BlockStore } from '../../relay/block-store.js';
import { tempDir } from '../helpers/network.js';

const P = 20_000;
const NOW = periodStart(P) * 1000 + 3_600_000; // an hour into period P
const DAY = 86_400_000;

function endpointDescriptor(period = P): { locator: Uint8Array; bytes: Uint8Array } {
  const intro = [{ relay: crypto().random(32), auth: createIdentity().publicKey, enc: crypto().x25519Keypair().publicKey }];
  return createEndpointDescriptor(createIdentity(), period, { v: 1, intro, created: NOW - 3_600_000, expires: NOW + 3_600_000 });
}

describe('relay store: endpoint descriptors expire', () => {
  let dir: string;
  let store: BlockStore;
  beforeEach(() => {
    dir = tempDir('allium-store-expiry-');
    store = new BlockStore(dir, 10 * 1024 * 1024);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reclaims the rows and quota of endpoint descriptors once their period has passed; a fresh one stays', () => {
    const old = Array.from({ length: 20 }, () => endpointDescriptor(P));
    for (const d of old) expect(store.putEndpoint(d.locator, d.bytes, NOW)).to.equal('stored');
    const held = store.stats();
    // Valid through period P + 1; from the start of P + 2 getEndpoint no longer serves them.
    const later = periodStart(P + 2) * 1000 + 1;
    const served = old.filter((d) => store.getEndpoint(d.locator, later) !== null).length;
    // A write after that (a new descriptor for the current period) sweeps them.
    const fresh = endpointDescriptor(P + 2);
    store.putEndpoint(fresh.locator, fresh.bytes, later);
    const after = store.stats();
    expect({
      heldRecords: held.records,
      served,
      records: after.records,
      bytes: after.bytes,
      freshServed: store.getEndpoint(fresh.locator, later) !== null,
    }).to.deep.equal({
      heldRecords: 20,
      served: 0,
      records: 1,
      bytes: fresh.bytes.length,
      freshServed: true,
    });
  });

  it('a replication pass sweeps them too, including rows stored before stores kept their expiry', () => {
    const d = endpointDescriptor(P);
    store.putEndpoint(d.locator, d.bytes, NOW);
    store.close();
    // The database as a store of the previous version left it: no expiry column in `records`.
    const db = new Database(join(dir, 'store.sqlite'));
    db.exec('DROP INDEX IF EXISTS records_expires');
    if (
      db
        .prepare<[], { name: string }>('PRAGMA table_info(records)')
        .all()
        .some((c) => c.name === 'expires')
    )
      db.exec('ALTER TABLE records DROP COLUMN expires');
    db.close();
    store = new BlockStore(dir, 10 * 1024 * 1024);
    const later = NOW + 3 * DAY;
    store.uncheckedRecords('gen', 32, new Uint8Array(0), later);
    expect({ records: store.stats().records, bytes: store.stats().bytes }).to.deep.equal({ records: 0, bytes: 0 });
  });
});
