/**
 * Editions to come (specs/content.md §4, §7): a holder that receives a prekey record's edition for the next window
 * keeps serving the current one until that window starts by its clock, then serves the new one — so a reader that
 * polls it sees the edition change at the window's start, not when the owner stored it (specs/messaging.md §9.6).
 * One edition is held per key; editions further ahead than RECORD_HOLD_MAX_MS are served at once, as before. A real
 * SQLite store with real prekey records, the time passed in.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import { isAlliumError } from '../../protocol/errors.js';
import { mailboxEpochAt } from '../../protocol/mailbox.js';
import { createPrekeyRecord, openPrekeyRecord, PREKEY_WINDOW_MS, prekeyWindowAt, type PrekeyBundle } from '../../protocol/prekeys.js';
import { RECORD_CLOCK_SKEW_MS } from '../../protocol/ssk.js';
import { BlockStore } from '../../relay/block-store.js';

const W = prekeyWindowAt(Date.UTC(2026, 11, 7, 1)); // a window's start: 00:00 UTC
const NEXT = W + PREKEY_WINDOW_MS;
const HOUR = 3600_000;

describe('relay store: editions to come', () => {
  const epoch = mailboxEpochAt(W);
  let owner: ReturnType<typeof createIdentity>;
  let bundle: PrekeyBundle;
  before(() => {
    owner = createIdentity();
    bundle = { spk: crypto().x25519Keypair().publicKey, created: W, otks: [], version: 2 };
  });
  const record = (ed: number): { rk: Uint8Array; bytes: Uint8Array } => createPrekeyRecord(owner, epoch, ed, bundle);
  const served = (store: BlockStore, rk: Uint8Array, now: number): number | null => {
    const bytes = store.getRecord(rk, now);
    return bytes ? openPrekeyRecord(owner.publicKey, epoch, bytes).edition : null;
  };
  let dir: string;
  let store: BlockStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'allium-store-held-'));
    store = new BlockStore(dir, 10 * 1024 * 1024);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps serving the current edition until the next window's edition's time comes, then serves it", () => {
    const current = record(W + 5);
    const next = record(NEXT + 7);
    expect(store.putRecord(current.rk, current.bytes, W + HOUR).result).to.equal('stored');
    // The owner, online at 03:00, stores its edition for the next window (12:00).
    expect(store.putRecord(next.rk, next.bytes, W + 3 * HOUR).result).to.equal('stored');
    expect(store.putRecord(next.rk, next.bytes, W + 3 * HOUR).result).to.equal('exists');
    const before = store.stats();
    const timeline = [W + 3 * HOUR, W + 11 * HOUR, NEXT + 7 - RECORD_CLOCK_SKEW_MS - 1, NEXT + 7 - RECORD_CLOCK_SKEW_MS, NEXT + HOUR];
    const seen = timeline.map((t) => served(store, current.rk, t));
    // A write after the window's start moves it to the records: one record, the new edition's bytes.
    store.sweepExpired(NEXT + HOUR, true);
    const after = store.stats();
    expect({ seen, before: [before.records, before.bytes], after: [after.records, after.bytes], later: served(store, current.rk, NEXT + HOUR) }).to.deep.equal({
      seen: [W + 5, W + 5, W + 5, NEXT + 7, NEXT + 7],
      before: [1, current.bytes.length + next.bytes.length],
      after: [1, next.bytes.length],
      later: NEXT + 7,
    });
    // The held edition is now the served one: an older one is stale.
    expect(() => store.putRecord(current.rk, current.bytes, NEXT + HOUR))
      .to.throw()
      .that.satisfies((e: unknown) => isAlliumError(e) && e.code === 'ERR_RECORD_STALE');
  });

  it('holds one edition per key: a higher one replaces it, a lower one is stale; one whose time has come drops it', () => {
    const first = record(NEXT + 7);
    const second = record(NEXT + 8);
    // No edition served yet (the key is new): nothing until the window starts.
    store.putRecord(first.rk, first.bytes, W + HOUR);
    expect(store.putRecord(second.rk, second.bytes, W + 2 * HOUR).result).to.equal('stored');
    let stale = '';
    try {
      store.putRecord(first.rk, first.bytes, W + 2 * HOUR);
    } catch (e) {
      stale = isAlliumError(e) ? e.code : 'other';
    }
    const seen = [served(store, first.rk, W + 2 * HOUR), served(store, first.rk, NEXT)];
    const heldBytes = store.stats().bytes;
    // An edition whose time has come, above the held one, drops it.
    const now = record(NEXT + 9);
    store.putRecord(now.rk, now.bytes, NEXT);
    expect({ stale, seen, heldBytes, bytes: store.stats().bytes, served: served(store, first.rk, NEXT + 1) }).to.deep.equal({
      stale: 'ERR_RECORD_STALE',
      seen: [null, NEXT + 8],
      heldBytes: second.bytes.length,
      bytes: now.bytes.length,
      served: NEXT + 9,
    });
  });

  it('serves at once an edition further ahead than RECORD_HOLD_MAX_MS, and any counter edition', () => {
    const far = record(W + 2 * 86_400_000);
    store.putRecord(far.rk, far.bytes, W);
    const other = createIdentity();
    const counter = createPrekeyRecord(other, epoch, 3, { ...bundle, created: 0 });
    store.putRecord(counter.rk, counter.bytes, W);
    expect([served(store, far.rk, W), store.getRecord(counter.rk, W) !== null]).to.deep.equal([W + 2 * 86_400_000, true]);
  });

  it('never serves a held edition over a newer stored one (a held row left behind by a write that did not finish)', async () => {
    // Regression (review): the write of a newer record and the removal of the held one were two statements; a crash
    // between them left the held row, and once its time came the holder served it over the newer record.
    const held = record(NEXT + 5);
    store.putRecord(held.rk, held.bytes, W + HOUR);
    store.close();
    const newer = record(NEXT + 6);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(dir, 'store.sqlite'));
    db.prepare('INSERT INTO records (rk, edition, data, expires) VALUES (?, ?, ?, NULL)').run(newer.rk, NEXT + 6, newer.bytes);
    db.close();
    store = new BlockStore(dir, 10 * 1024 * 1024);
    expect([served(store, held.rk, W + HOUR), served(store, held.rk, NEXT + 3 * HOUR)]).to.deep.equal([NEXT + 6, NEXT + 6]);
  });
});
