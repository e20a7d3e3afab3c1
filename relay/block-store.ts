/**
 * The relay's content store (specs/content.md §7) in SQLite (better-sqlite3, loaded on demand: relay/sqlite.ts),
 * one file in the data directory.
 *
 * - Crash safety: WAL journal; a write is committed to the WAL before the relay acknowledges it, so a relay killed
 *   with SIGKILL restarts with a consistent store and every acknowledged block (store_sync = "full" also survives
 *   power loss, at the cost of an fsync per write).
 * - Every block is verified against its routing key when stored and again when read; a block that fails on read is
 *   deleted and reported missing (it will be repaired from another holder).
 * - Quota: blocks are admitted while the total stays under the quota. When full, cached copies go first (least
 *   recently used); replicas are never evicted for another block — the store refuses instead (ERR_QUOTA). (Evicting
 *   replicas "known to have other copies" lost blocks: every holder knows the same count and evicts the same block.)
 * - No plaintext, file name or decryption key ever reaches this store: only routing keys and encrypted blocks,
 *   and signed records that need the name to be read.
 * - Mailbox slots (specs/messaging.md §9) hold one sealed item each, first come first kept. An item is served
 *   until its `exp` and then replaced by an empty marker; a valid deletion replaces it earlier. Either way the slot
 *   stays occupied for MAILBOX_HOLD_MS after it was stored, so an inbox's slots stay a contiguous run, and then
 *   the row goes. Expiry is enforced on every read and swept on writes and replication passes.
 * - Endpoint descriptors (records rows with an `expires` time) are valid until the end of the period after theirs;
 *   the same sweep deletes the rows past that, returning their bytes to the quota. Signed updatable-key records
 *   (`expires` NULL) do not expire.
 *
 * Why this file is above ~400 lines: it is the one module that speaks SQL, and the four kinds of item (blocks,
 * records, endpoint descriptors, mailbox slots) share one quota, one eviction order and one expiry sweep inside the
 * same transactions. Splitting it per kind would spread the quota arithmetic and the schema over several files that
 * must agree on every statement.
 */
import { join } from 'node:path';
import { BLOCK_LEN, verifyStoredBlock } from '../protocol/chk.js';
import { crypto } from '../crypto/index.js';
import { toHex } from '../protocol/bytes.js';
import { verifyRecord, type SskRecord } from '../protocol/ssk.js';
import { verifyEndpointDescriptor } from '../protocol/endpoint-descriptor.js';
import { AlliumError, LimitError, ProtocolError } from '../protocol/errors.js';
import { periodStart } from '../protocol/key-blinding.js';
import { deletionCheck, MAILBOX_HOLD_MS, verifyMailboxStore } from '../protocol/mailbox.js';
import { loadSqlite, type SqliteDatabase } from './sqlite.js';

/** Sorts before every key (a zero-length blob is less than any other). */
const NO_KEY = new Uint8Array(0);

export type BlockRole = 'replica' | 'cache';
export type StoreResult = 'stored' | 'exists';
/** A mailbox STORE: stored, the same bytes already held, or the slot holds something else. */
export type MailboxResult = StoreResult | 'occupied';
/** What a mailbox slot holds: a live item, the deletion that replaced it, or nothing after the item expired. */
export type MailboxState = 'item' | 'deleted' | 'expired';

/** Sweep expired mailbox items and endpoint descriptors at most this often (ms). */
const SWEEP_INTERVAL_MS = 1000;

/**
 * When an endpoint descriptor for `period` stops being valid at a relay (Unix ms): relays accept the previous,
 * current and next period (verifyEndpointDescriptor), so at the start of period + 2.
 */
function endpointExpiry(period: number): number {
  return periodStart(period + 2) * 1000;
}

export interface StoredItem {
  readonly kind: 'block' | 'record';
  readonly data: Uint8Array;
}

export interface StoreStats {
  blocks: number;
  records: number;
  /** Mailbox slots held (items, deletions and expired markers). */
  mailboxes: number;
  bytes: number;
  quota: number;
}

export class BlockStore {
  private readonly db: SqliteDatabase;
  private bytesUsed: number;
  private readonly stmts;
  private lastSweep = 0;
  private lastWriteFailure = 0;

  constructor(
    dir: string,
    readonly quota: number,
    sync: 'normal' | 'full' = 'normal',
  ) {
    const Database = loadSqlite();
    this.db = new Database(join(dir, 'store.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // WAL with synchronous=NORMAL: a committed write is in the WAL file before we acknowledge it, so it survives the
    // process being killed (SIGKILL); surviving power loss as well needs store_sync = "full".
    this.db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS blocks (
        rk BLOB PRIMARY KEY,
        data BLOB NOT NULL,
        role TEXT NOT NULL,
        copies INTEGER NOT NULL DEFAULT 0,
        stored_at INTEGER NOT NULL,
        last_access INTEGER NOT NULL,
        fetches INTEGER NOT NULL DEFAULT 0,
        checked_gen TEXT NOT NULL DEFAULT ''
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS records (
        rk BLOB PRIMARY KEY,
        edition INTEGER NOT NULL,
        data BLOB NOT NULL,
        stored_at INTEGER NOT NULL,
        checked_gen TEXT NOT NULL DEFAULT '',
        expires INTEGER
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS mailbox (
        rk BLOB PRIMARY KEY,
        state TEXT NOT NULL,
        data BLOB NOT NULL,
        dt BLOB,
        expires INTEGER NOT NULL,
        hold_until INTEGER NOT NULL,
        stored_at INTEGER NOT NULL,
        checked_gen TEXT NOT NULL DEFAULT ''
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS blocks_role ON blocks (role);
      CREATE INDEX IF NOT EXISTS mailbox_expires ON mailbox (state, expires);
      CREATE INDEX IF NOT EXISTS mailbox_hold ON mailbox (hold_until);
    `);
    this.addRecordExpiry();
    this.stmts = {
      getBlock: this.db.prepare<[Uint8Array], { data: Buffer }>('SELECT data FROM blocks WHERE rk = ?'),
      hasBlock: this.db.prepare<[Uint8Array], { n: number }>('SELECT 1 AS n FROM blocks WHERE rk = ?'),
      cacheCount: this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM blocks WHERE role = 'cache'"),
      blockAtOrAfter: this.db.prepare<[Uint8Array], { rk: Buffer }>('SELECT rk FROM blocks WHERE rk >= ? ORDER BY rk LIMIT 1'),
      mailboxAtOrAfter: this.db.prepare<[Uint8Array], { rk: Buffer }>('SELECT rk FROM mailbox WHERE rk >= ? ORDER BY rk LIMIT 1'),
      insertBlock: this.db.prepare('INSERT OR IGNORE INTO blocks (rk, data, role, stored_at, last_access) VALUES (?, ?, ?, ?, ?)'),
      promote: this.db.prepare("UPDATE blocks SET role = 'replica' WHERE rk = ? AND role = 'cache'"),
      touch: this.db.prepare('UPDATE blocks SET last_access = ?, fetches = fetches + 1 WHERE rk = ?'),
      deleteBlock: this.db.prepare('DELETE FROM blocks WHERE rk = ?'),
      getRecord: this.db.prepare<[Uint8Array], { data: Buffer; edition: number }>('SELECT data, edition FROM records WHERE rk = ?'),
      upsertRecord: this.db.prepare(
        "INSERT INTO records (rk, edition, data, stored_at, expires) VALUES (?, ?, ?, ?, ?) ON CONFLICT(rk) DO UPDATE SET edition = excluded.edition, data = excluded.data, stored_at = excluded.stored_at, expires = excluded.expires, checked_gen = ''",
      ),
      expiredEndpointBytes: this.db.prepare<[number], { b: number | null }>('SELECT SUM(LENGTH(data)) AS b FROM records WHERE expires <= ?'),
      deleteExpiredEndpoints: this.db.prepare('DELETE FROM records WHERE expires <= ?'),
      evictable: this.db.prepare<[], { rk: Buffer; role: string; copies: number }>(
        "SELECT rk, role, copies FROM blocks ORDER BY CASE role WHEN 'cache' THEN 0 ELSE 1 END, copies DESC, last_access ASC LIMIT 64",
      ),
      usage: this.db.prepare<[], { b: number | null; n: number }>('SELECT SUM(LENGTH(data)) AS b, COUNT(*) AS n FROM blocks'),
      recordUsage: this.db.prepare<[], { b: number | null; n: number }>('SELECT SUM(LENGTH(data)) AS b, COUNT(*) AS n FROM records'),
      setCopies: this.db.prepare('UPDATE blocks SET copies = ?, role = ?, checked_gen = ? WHERE rk = ?'),
      setRecordGen: this.db.prepare('UPDATE records SET checked_gen = ? WHERE rk = ?'),
      unchecked: this.db.prepare<[string, Uint8Array, number], { rk: Buffer }>('SELECT rk FROM blocks WHERE checked_gen != ? AND rk > ? ORDER BY rk LIMIT ?'),
      uncheckedRecords: this.db.prepare<[string, Uint8Array, number], { rk: Buffer }>(
        'SELECT rk FROM records WHERE checked_gen != ? AND rk > ? ORDER BY rk LIMIT ?',
      ),
      popular: this.db.prepare<[number, number], { rk: Buffer }>("SELECT rk FROM blocks WHERE fetches >= ? AND role = 'replica' ORDER BY fetches DESC LIMIT ?"),
      resetFetches: this.db.prepare('UPDATE blocks SET fetches = 0 WHERE rk = ?'),
      getMailbox: this.db.prepare<[Uint8Array], { state: MailboxState; data: Buffer; dt: Buffer | null; expires: number; hold_until: number }>(
        'SELECT state, data, dt, expires, hold_until FROM mailbox WHERE rk = ?',
      ),
      deleteMailbox: this.db.prepare('DELETE FROM mailbox WHERE rk = ?'),
      insertMailbox: this.db.prepare('INSERT INTO mailbox (rk, state, data, dt, expires, hold_until, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      setMailbox: this.db.prepare("UPDATE mailbox SET state = ?, data = ?, checked_gen = '' WHERE rk = ?"),
      expiredMailboxBytes: this.db.prepare<[number], { b: number | null }>("SELECT SUM(LENGTH(data)) AS b FROM mailbox WHERE state = 'item' AND expires <= ?"),
      expireMailboxes: this.db.prepare("UPDATE mailbox SET state = 'expired', data = X'' WHERE state = 'item' AND expires <= ?"),
      releasedMailboxBytes: this.db.prepare<[number], { b: number | null }>('SELECT SUM(LENGTH(data)) AS b FROM mailbox WHERE hold_until <= ?'),
      releaseMailboxes: this.db.prepare('DELETE FROM mailbox WHERE hold_until <= ?'),
      mailboxUsage: this.db.prepare<[], { b: number | null; n: number }>('SELECT SUM(LENGTH(data)) AS b, COUNT(*) AS n FROM mailbox'),
      uncheckedMailboxes: this.db.prepare<[string, Uint8Array, number], { rk: Buffer }>(
        "SELECT rk FROM mailbox WHERE state != 'expired' AND checked_gen != ? AND rk > ? ORDER BY rk LIMIT ?",
      ),
      setMailboxGen: this.db.prepare('UPDATE mailbox SET checked_gen = ? WHERE rk = ?'),
    };
    const u = this.stmts.usage.get()!;
    const r = this.stmts.recordUsage.get()!;
    const m = this.stmts.mailboxUsage.get()!;
    this.bytesUsed = (u.b ?? 0) + (r.b ?? 0) + (m.b ?? 0);
  }

  stats(): StoreStats {
    const u = this.stmts.usage.get()!;
    const r = this.stmts.recordUsage.get()!;
    const m = this.stmts.mailboxUsage.get()!;
    return { blocks: u.n, records: r.n, mailboxes: m.n, bytes: this.bytesUsed, quota: this.quota };
  }

  /**
   * Runs a write. SQLite's "database or disk is full" and I/O errors become ERR_QUOTA (the store cannot take it,
   * the request was not at fault) and are remembered, so the relay can stop advertising its store (relay.ts).
   */
  private write<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR'))) {
        this.lastWriteFailure = Date.now();
        throw new LimitError('storage_quota', `relay storage cannot be written (${code})`, 'ERR_QUOTA');
      }
      throw e;
    }
  }

  /** When a write last failed for want of disk space or with an I/O error (Unix ms; 0: never). */
  get lastWriteFailureAt(): number {
    return this.lastWriteFailure;
  }

  /**
   * Bytes still free for items this relay must keep: the quota minus everything but cached copies (which are
   * evicted to make room).
   */
  roomLeft(): number {
    const cached = this.stmts.cacheCount.get()!.n * BLOCK_LEN;
    return this.quota - (this.bytesUsed - cached);
  }

  /** Makes room for `bytes` by evicting; throws ERR_QUOTA when only last copies remain. */
  private makeRoom(bytes: number): void {
    while (this.bytesUsed + bytes > this.quota) {
      const victims = this.stmts.evictable.all();
      const victim = victims.find((v) => v.role === 'cache');
      if (!victim) throw new LimitError('storage_quota', 'relay storage quota is full', 'ERR_QUOTA');
      this.stmts.deleteBlock.run(victim.rk);
      this.bytesUsed -= BLOCK_LEN;
    }
  }

  /**
   * Stores a block after checking it hashes to `rk`. Throws ERR_CONTENT_TAMPERED for a mismatch, ERR_QUOTA when
   * full. Returns 'exists' for a block already held (a cached copy becomes a replica).
   */
  putBlock(rk: Uint8Array, data: Uint8Array, role: BlockRole = 'replica', now = Date.now()): StoreResult {
    if (!verifyStoredBlock(rk, data)) throw new AlliumError('ERR_CONTENT_TAMPERED', 'block does not hash to its routing key');
    if (this.stmts.hasBlock.get(rk)) {
      if (role === 'replica') this.stmts.promote.run(rk);
      return 'exists';
    }
    this.makeRoom(data.length);
    this.write(() => this.stmts.insertBlock.run(rk, data, role, now, now));
    this.bytesUsed += data.length;
    return 'stored';
  }

  /**
   * Reads a block, verifying it; a damaged block is deleted and reported as missing. A 'fetch' (someone asked for
   * the content) counts towards popularity and recency; a 'check' (replication's own reads and HEAD requests) does
   * not, or retrying an unreachable holder every repair pass would make every block look popular.
   */
  getBlock(rk: Uint8Array, now = Date.now(), purpose: 'fetch' | 'check' = 'fetch'): Uint8Array | null {
    const row = this.stmts.getBlock.get(rk);
    if (!row) return null;
    const data = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.length);
    if (!verifyStoredBlock(rk, data)) {
      this.stmts.deleteBlock.run(rk);
      this.bytesUsed -= row.data.length;
      return null;
    }
    if (purpose === 'fetch') this.stmts.touch.run(now, rk);
    return data;
  }

  hasBlock(rk: Uint8Array): boolean {
    return !!this.stmts.hasBlock.get(rk);
  }

  deleteBlock(rk: Uint8Array): void {
    const row = this.stmts.getBlock.get(rk);
    if (!row) return;
    this.stmts.deleteBlock.run(rk);
    this.bytesUsed -= row.data.length;
  }

  /**
   * Stores a signed record if it verifies and is newer than the one held. Throws ERR_SIGNATURE, ERR_CONTENT,
   * ERR_RECORD_STALE (an older or equal edition: a replay or a rollback attempt).
   */
  putRecord(rk: Uint8Array, data: Uint8Array, now = Date.now()): { result: StoreResult; record: SskRecord } {
    const record = verifyRecord(rk, data);
    const have = this.stmts.getRecord.get(rk);
    if (have) {
      if (have.edition > record.ed) throw new ProtocolError('ERR_RECORD_STALE', 'a newer edition is held');
      if (have.edition === record.ed) return { result: 'exists', record };
    }
    this.makeRoom(data.length - (have?.data.length ?? 0));
    this.write(() => this.stmts.upsertRecord.run(rk, record.ed, data, now, null));
    this.bytesUsed += data.length - (have?.data.length ?? 0);
    return { result: 'stored', record };
  }

  /**
   * Stores a signed endpoint descriptor under its locator if it verifies and has a higher revision than the one
   * held (records table, revision as the edition). Throws what verifyEndpointDescriptor throws, ERR_RECORD_STALE.
   */
  putEndpoint(locator: Uint8Array, data: Uint8Array, now = Date.now()): StoreResult {
    const v = verifyEndpointDescriptor(locator, data, now);
    this.sweepExpired(now);
    const have = this.stmts.getRecord.get(locator);
    if (have) {
      if (have.edition > v.revision) throw new ProtocolError('ERR_RECORD_STALE', 'a newer revision is held');
      if (have.edition === v.revision) return 'exists';
    }
    this.makeRoom(data.length - (have?.data.length ?? 0));
    this.write(() => this.stmts.upsertRecord.run(locator, v.revision, data, now, endpointExpiry(v.period)));
    this.bytesUsed += data.length - (have?.data.length ?? 0);
    return 'stored';
  }

  /** An endpoint descriptor, if held and still valid for the current period. */
  getEndpoint(locator: Uint8Array, now = Date.now()): Uint8Array | null {
    const row = this.stmts.getRecord.get(locator);
    if (!row) return null;
    const data = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.length);
    try {
      verifyEndpointDescriptor(locator, data, now);
    } catch {
      return null;
    }
    return data;
  }

  getRecord(rk: Uint8Array): Uint8Array | null {
    const row = this.stmts.getRecord.get(rk);
    if (!row) return null;
    const data = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.length);
    try {
      verifyRecord(rk, data);
    } catch {
      return null;
    }
    return data;
  }

  /**
   * Stores an item or a deletion in a mailbox slot (specs/messaging.md §9.4). An item goes into an empty slot;
   * the same bytes again are 'exists'; anything else in an occupied slot is 'occupied'. A deletion whose token
   * matches the held item's check replaces it; one for an empty slot occupies it (anyone may fill a free slot).
   * Throws what verifyMailboxStore throws, ERR_SIGNATURE for a deletion that does not match, ERR_QUOTA.
   */
  putMailbox(rk: Uint8Array, data: Uint8Array, now = Date.now()): MailboxResult {
    const v = verifyMailboxStore(data, now);
    this.sweepExpired(now);
    const have = this.readMailbox(rk, now);
    if (!have) {
      this.makeRoom(data.length);
      const dt = v.kind === 'item' ? v.dt : null;
      const exp = v.kind === 'item' ? v.exp : now;
      this.write(() => this.stmts.insertMailbox.run(rk, v.kind === 'item' ? 'item' : 'deleted', data, dt, exp, now + MAILBOX_HOLD_MS, now));
      this.bytesUsed += data.length;
      return 'stored';
    }
    if (v.kind === 'item') return have.state !== 'expired' && sameBytes(have.data, data) ? 'exists' : 'occupied';
    if (have.state !== 'item') return have.state === 'deleted' && sameBytes(have.data, data) ? 'exists' : 'occupied';
    if (!have.dt || !crypto().equal(deletionCheck(v.token), have.dt)) throw new AlliumError('ERR_SIGNATURE', 'deletion token does not match the item');
    this.write(() => this.stmts.setMailbox.run('deleted', data, rk));
    this.bytesUsed += data.length - have.data.length;
    return 'stored';
  }

  /**
   * What a mailbox slot holds for a FETCH: the item, the deletion that replaced it, an empty array when the item
   * expired (the slot is still occupied), or null for a free slot.
   */
  getMailbox(rk: Uint8Array, now = Date.now()): Uint8Array | null {
    const have = this.readMailbox(rk, now);
    return have ? have.data : null;
  }

  /** Reads a slot, expiring an item whose time has come (so an expired item is never served). */
  private readMailbox(rk: Uint8Array, now: number): { state: MailboxState; data: Uint8Array; dt: Uint8Array | null } | null {
    const row = this.stmts.getMailbox.get(rk);
    if (!row) return null;
    if (row.hold_until <= now) {
      this.stmts.deleteMailbox.run(rk);
      this.bytesUsed -= row.data.length;
      return null;
    }
    if (row.state === 'item' && row.expires <= now) {
      this.stmts.setMailbox.run('expired', new Uint8Array(0), rk);
      this.bytesUsed -= row.data.length;
      return { state: 'expired', data: new Uint8Array(0), dt: null };
    }
    const data = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.length);
    return { state: row.state, data, dt: row.dt ? new Uint8Array(row.dt) : null };
  }

  /**
   * Drops the payload of expired mailbox items, the mailbox rows whose hold has ended, and the rows of endpoint
   * descriptors no longer valid (at most once a second unless forced).
   */
  sweepExpired(now = Date.now(), force = false): void {
    if (!force && now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    this.db.transaction(() => {
      this.bytesUsed -= this.stmts.expiredMailboxBytes.get(now)!.b ?? 0;
      this.stmts.expireMailboxes.run(now);
      this.bytesUsed -= this.stmts.releasedMailboxBytes.get(now)!.b ?? 0;
      this.stmts.releaseMailboxes.run(now);
      this.bytesUsed -= this.stmts.expiredEndpointBytes.get(now)!.b ?? 0;
      this.stmts.deleteExpiredEndpoints.run(now);
    })();
  }

  /**
   * Stores of an older version have no `expires` column in `records`: adds it, and sets it for the endpoint
   * descriptors already held (the rows that verify as one; updatable-key records keep NULL), so they are swept too.
   */
  private addRecordExpiry(): void {
    const columns = this.db.prepare<[], { name: string }>('PRAGMA table_info(records)').all();
    if (!columns.some((c) => c.name === 'expires')) {
      this.db.transaction(() => {
        this.db.exec('ALTER TABLE records ADD COLUMN expires INTEGER');
        const set = this.db.prepare('UPDATE records SET expires = ? WHERE rk = ?');
        for (const row of this.db.prepare<[], { rk: Buffer; data: Buffer }>('SELECT rk, data FROM records').all()) {
          try {
            set.run(endpointExpiry(verifyEndpointDescriptor(new Uint8Array(row.rk), new Uint8Array(row.data)).period), row.rk);
          } catch {
            /* not an endpoint descriptor: an updatable-key record, which does not expire */
          }
        }
      })();
    }
    this.db.exec('CREATE INDEX IF NOT EXISTS records_expires ON records (expires) WHERE expires IS NOT NULL');
  }

  /** Mailbox slots with an item or a deletion not yet checked against placement generation `gen`. */
  uncheckedMailboxes(gen: string, limit: number, after: Uint8Array = NO_KEY, now = Date.now()): Uint8Array[] {
    this.sweepExpired(now, true);
    return this.stmts.uncheckedMailboxes.all(gen, after, limit).map((r) => new Uint8Array(r.rk));
  }

  markMailboxChecked(rk: Uint8Array, gen: string): void {
    this.stmts.setMailboxGen.run(gen, rk);
  }

  /** Routing keys not yet checked against placement generation `gen` (replication). */
  /**
   * Up to `n` keys of held blocks and mailbox slots, spread over the keyspace: for each of n random points, the first
   * key at or after it (wrapping round). Cheap at any store size (index seeks only).
   */
  sampleKeys(n: number): Uint8Array[] {
    const out = new Map<string, Uint8Array>();
    for (let i = 0; i < n; i++) {
      const at = crypto().random(32);
      for (const stmt of [this.stmts.blockAtOrAfter, this.stmts.mailboxAtOrAfter]) {
        const r = stmt.get(at) ?? stmt.get(new Uint8Array(32));
        if (r) out.set(toHex(r.rk), new Uint8Array(r.rk));
      }
    }
    return [...out.values()];
  }

  /** Up to `limit` blocks not checked under `gen`, in key order after `after` (a pass's cursor; none: from the start). */
  uncheckedBlocks(gen: string, limit: number, after: Uint8Array = NO_KEY): Uint8Array[] {
    return this.stmts.unchecked.all(gen, after, limit).map((r) => new Uint8Array(r.rk));
  }

  /** Records not checked under `gen` (a replication pass, which sweeps expired rows first). */
  uncheckedRecords(gen: string, limit: number, after: Uint8Array = NO_KEY, now = Date.now()): Uint8Array[] {
    this.sweepExpired(now, true);
    return this.stmts.uncheckedRecords.all(gen, after, limit).map((r) => new Uint8Array(r.rk));
  }

  markChecked(rk: Uint8Array, gen: string, copies: number, role: BlockRole): void {
    this.stmts.setCopies.run(copies, role, gen, rk);
  }

  markRecordChecked(rk: Uint8Array, gen: string): void {
    this.stmts.setRecordGen.run(gen, rk);
  }

  /** Replicas fetched at least `minFetches` times since last asked (popular: worth caching elsewhere). */
  popular(minFetches: number, limit: number): Uint8Array[] {
    const out = this.stmts.popular.all(minFetches, limit).map((r) => new Uint8Array(r.rk));
    for (const rk of out) this.stmts.resetFetches.run(rk);
    return out;
  }

  close(): void {
    this.db.close();
  }

  /** For logs and tests only. */
  static keyName(rk: Uint8Array): string {
    return toHex(rk).slice(0, 12);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto().equal(a, b);
}
