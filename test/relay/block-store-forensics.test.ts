/**
 * A holder keeps only what serving needs (specs/content.md §7): a seized store says what is held, not when it came,
 * when it was last read, or how often. A real SQLite store in a temporary directory is filled and read at real
 * times, then scanned: every table and column, every integer cell, and the raw bytes of the database and its WAL for
 * the millisecond (and second) timestamps of the operations. Reads must not change the files at all. A store of the
 * earlier schema (with stored_at, last_access and fetches) is migrated when opened, and the old values are gone from
 * the file too.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { createIdentity } from '../../protocol/address.js';
import { blockPlaintext, BlockType, encryptBlock } from '../../protocol/chk.js';
import { encodeMailboxDeletion, inboxKey, mailboxEpochAt, sealMailboxItemV1, slotLocator } from '../../protocol/mailbox.js';
import { createRecord } from '../../protocol/ssk.js';
import { BlockStore, STORE_TIME_BUCKET_MS } from '../../relay/block-store.js';
import { tempDir } from '../helpers/network.js';
import { DAY, scanTables, storeFiles, timestampsIn } from '../helpers/store-scan.js';

function block(seed: number): { rk: Uint8Array; stored: Uint8Array } {
  const b = encryptBlock(blockPlaintext(BlockType.DATA, new Uint8Array(100).fill(seed)), 'random');
  return { rk: b.ref.rk, stored: b.stored };
}

describe('relay store: no access times, fetch counts or store times on disk (content.md §7)', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('allium-store-forensics-');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('blocks, records and mailbox slots stored and read at real times leave no access time, count or store time', async () => {
    const store = new BlockStore(dir, 64 * 1024 * 1024, 'normal', { mailboxV1Until: Number.MAX_SAFE_INTEGER }); // version 1 items, whatever the date
    const times: number[] = [];
    const at = <T>(f: () => T): T => {
      times.push(Date.now());
      const r = f();
      times.push(Date.now());
      return r;
    };
    const blocks = Array.from({ length: 6 }, (_, i) => block(i));
    blocks.forEach((b, i) => at(() => store.putBlock(b.rk, b.stored, i < 4 ? 'replica' : 'cache')));
    const publisher = IdentityKey.generate();
    const rec = createRecord(publisher.secretKey, { publisher: publisher.publicKey, secret: crypto().random(32), name: 'diary' }, 1, 'allium:chk/x');
    at(() => store.putRecord(rec.rk, rec.bytes));
    const recipient = createIdentity();
    const now = Date.now();
    const slot0 = slotLocator(inboxKey(recipient.publicKey, mailboxEpochAt(now)), 0);
    const slot1 = slotLocator(inboxKey(recipient.publicKey, mailboxEpochAt(now)), 1);
    const exp = now + 3 * DAY + 12_345;
    const item = sealMailboxItemV1({
      sender: createIdentity(),
      recipient: recipient.publicKey,
      slot: slot0,
      exp,
      t: now,
      n: 0,
      data: new TextEncoder().encode('hello'),
    });
    const other = sealMailboxItemV1({
      sender: createIdentity(),
      recipient: recipient.publicKey,
      slot: slot1,
      exp,
      t: now,
      n: 0,
      data: new TextEncoder().encode('again'),
    });
    at(() => store.putMailbox(slot0, item.bytes));
    at(() => store.putMailbox(slot1, other.bytes));
    // A deletion (of earlier versions) is refused: the owner's collection writes nothing (specs/messaging.md §9.4).
    expect(() => at(() => store.putMailbox(slot1, encodeMailboxDeletion(other.token))))
      .to.throw()
      .with.property('code', 'ERR_SCHEMA');
    // Let a wall-clock millisecond pass, so the reads below have times of their own.
    while (Date.now() === times[times.length - 1]) await new Promise((r) => setImmediate(r));

    const before = storeFiles(dir);
    for (let round = 0; round < 7; round++) {
      for (const b of blocks) expect(at(() => store.getBlock(b.rk))).to.not.equal(null);
      at(() => store.getRecord(rec.rk));
      at(() => store.getMailbox(slot0));
    }
    const after = storeFiles(dir);

    const findings: string[] = [];
    for (const [name, bytes] of after) if (!before.get(name)?.equals(bytes)) findings.push(`${name} changed when items were only read`);
    const from = Math.min(...times);
    const to = Math.max(...times);
    for (const [name, bytes] of after) findings.push(...timestampsIn(name, bytes, [from, to]));
    store.close();
    for (const [name, bytes] of storeFiles(dir)) findings.push(...timestampsIn(`${name} (closed)`, bytes, [from, to]));
    findings.push(...scanTables(join(dir, 'store.sqlite'), from, to, new Set([exp])));
    expect(findings).to.deep.equal([]);
  });

  it('migrates a store of the earlier schema: the columns and their values are gone from the file, the items stay', () => {
    const file = join(dir, 'store.sqlite');
    const T = Date.UTC(2026, 10, 3, 9, 41, 27, 613); // a distinctive millisecond
    const b = block(7);
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE blocks (rk BLOB PRIMARY KEY, data BLOB NOT NULL, role TEXT NOT NULL, copies INTEGER NOT NULL DEFAULT 0,
        stored_at INTEGER NOT NULL, last_access INTEGER NOT NULL, fetches INTEGER NOT NULL DEFAULT 0, checked_gen TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
      CREATE TABLE records (rk BLOB PRIMARY KEY, edition INTEGER NOT NULL, data BLOB NOT NULL, stored_at INTEGER NOT NULL,
        checked_gen TEXT NOT NULL DEFAULT '', expires INTEGER) WITHOUT ROWID;
      CREATE TABLE mailbox (rk BLOB PRIMARY KEY, state TEXT NOT NULL, data BLOB NOT NULL, dt BLOB, expires INTEGER NOT NULL,
        hold_until INTEGER NOT NULL, stored_at INTEGER NOT NULL, checked_gen TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
      CREATE INDEX blocks_role ON blocks (role);
    `);
    old.prepare("INSERT INTO blocks (rk, data, role, stored_at, last_access, fetches) VALUES (?, ?, 'replica', ?, ?, 4242)").run(b.rk, b.stored, T, T + 1);
    old
      .prepare("INSERT INTO mailbox (rk, state, data, dt, expires, hold_until, stored_at) VALUES (?, 'deleted', X'00', NULL, ?, ?, ?)")
      .run(crypto().random(32), T, T + 9 * DAY, T);
    old.close();

    const store = new BlockStore(dir, 64 * 1024 * 1024);
    expect(store.getBlock(b.rk)).to.not.equal(null);
    store.close();
    const findings: string[] = [];
    for (const [name, bytes] of storeFiles(dir)) {
      findings.push(...timestampsIn(name, bytes, [T, T + 1]));
      findings.push(...timestampsIn(name, bytes, [T + 9 * DAY, T + 9 * DAY]));
    }
    findings.push(...scanTables(file, T, T, new Set()));
    const db = new Database(file, { readonly: true });
    const hold = db.prepare<[], { hold_until: number }>('SELECT hold_until FROM mailbox').get()!.hold_until;
    const version = db.pragma('user_version', { simple: true });
    db.close();
    expect({ findings, hold, version }).to.deep.equal({
      findings: [],
      hold: Math.ceil((T + 9 * DAY) / STORE_TIME_BUCKET_MS) * STORE_TIME_BUCKET_MS,
      version: 2,
    });
  });

  it('migrates a store that kept mailbox deletions: each becomes an expired marker, no bytes, no time, no check', () => {
    const file = join(dir, 'store.sqlite');
    const T = Date.UTC(2026, 10, 4, 0, 0, 0, 0); // the day a deletion was made (version 1 kept the start of its day)
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE mailbox (rk BLOB PRIMARY KEY, state TEXT NOT NULL, data BLOB NOT NULL, dt BLOB, expires INTEGER NOT NULL,
        hold_until INTEGER NOT NULL, checked_gen TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
    `);
    const token = crypto().random(32);
    old
      .prepare("INSERT INTO mailbox (rk, state, data, dt, expires, hold_until) VALUES (?, 'deleted', ?, NULL, ?, ?)")
      .run(crypto().random(32), encodeMailboxDeletion(token), T, T + 9 * DAY);
    old
      .prepare("INSERT INTO mailbox (rk, state, data, dt, expires, hold_until) VALUES (?, 'item', X'01', ?, ?, ?)")
      .run(crypto().random(32), crypto().random(32), T + 3 * DAY, T + 9 * DAY);
    old.pragma('user_version = 1');
    old.close();

    new BlockStore(dir, 64 * 1024 * 1024).close();
    const db = new Database(file, { readonly: true });
    const rows = db
      .prepare<[], { state: string; n: number; dt: Buffer | null; expires: number }>('SELECT state, LENGTH(data) AS n, dt, expires FROM mailbox ORDER BY state')
      .all();
    const version = db.pragma('user_version', { simple: true });
    db.close();
    const findings: string[] = [];
    for (const [name, bytes] of storeFiles(dir))
      findings.push(...timestampsIn(name, bytes, [T, T]), ...(bytes.includes(Buffer.from(token)) ? [`${name} holds the token`] : []));
    expect({ rows, version, findings }).to.deep.equal({
      rows: [
        { state: 'expired', n: 0, dt: null, expires: 0 },
        { state: 'item', n: 1, dt: null, expires: T + 3 * DAY },
      ],
      version: 2,
      findings: [],
    });
  });
});
