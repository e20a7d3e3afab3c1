/**
 * The relay's content store (specs/content.md §7) in SQLite (better-sqlite3, loaded on demand: relay/sqlite.ts),
 * one file in the data directory.
 *
 * - Crash safety: WAL journal; a write is committed to the WAL before the relay acknowledges it, so a relay killed
 *   with SIGKILL restarts with a consistent store and every acknowledged block (store_sync = "full" also survives
 *   power loss, at the cost of an fsync per write).
 * - Every block is verified against its routing key when stored and again when read; a block that fails on read is
 *   deleted and reported missing (it will be repaired from another holder).
 * - Quota: blocks are admitted while the total stays under the quota. When full, cached copies go first (those not
 *   read since the last repair pass, then the best replicated); replicas are never evicted for another block — the
 *   store refuses instead (ERR_QUOTA). (Evicting replicas "known to have other copies" lost blocks: every holder knows
 *   the same count and evicts the same block.)
 * - Only what serving needs is on disk (specs/content.md §7): no time an item was stored or last read and no count
 *   of reads, so a seized store says what is held, not when it came or who wanted it. A read writes nothing. Reads
 *   are counted coarsely in memory for popularity (§6.4) and eviction, cleared every repair pass. The one time near
 *   a STORE that reaches the disk, a mailbox slot's hold_until, is rounded up to STORE_TIME_BUCKET_MS. Deleted rows
 *   are overwritten (secure_delete). Stores of schema version 0 are migrated when opened (columns dropped, file
 *   rewritten).
 * - No plaintext, file name or decryption key ever reaches this store: only routing keys and encrypted blocks,
 *   and signed records that need the name to be read.
 * - Mailbox slots (specs/messaging.md §9) hold one sealed item each, first come first kept. An item is served
 *   until its `exp` and then replaced by an empty marker; nothing replaces it earlier (there are no deletions, so
 *   the owner's collection writes nothing here and leaves no time or state behind). The slot stays occupied for
 *   MAILBOX_HOLD_MS after it was stored, so an inbox's slots stay a contiguous run, and then the row goes. Expiry
 *   is enforced on every read and swept on writes and replication passes.
 * - An updatable-key record's edition to come (content.md §4: an edition, read as Unix ms, 10 min to 13 h ahead of
 *   the clock) waits in records_held, one row per key, and is served from its time on; the next write or sweep
 *   moves it to records (a read still writes nothing).
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
import { fromHex, toHex } from '../protocol/bytes.js';
import { editionToCome, RECORD_CLOCK_SKEW_MS, verifyRecord, type SskRecord } from '../protocol/ssk.js';
import { verifyEndpointDescriptor } from '../protocol/endpoint-descriptor.js';
import { AlliumError, LimitError, ProtocolError } from '../protocol/errors.js';
import { periodStart } from '../protocol/key-blinding.js';
import { MAILBOX_HOLD_MS, MAILBOX_V1_UNTIL_MS, verifyMailboxStore } from '../protocol/mailbox.js';
import { loadSqlite, type SqliteDatabase } from './sqlite.js';

/** Sorts before every key (a zero-length blob is less than any other). */
const NO_KEY = new Uint8Array(0);

export type BlockRole = 'replica' | 'cache';
export type StoreResult = 'stored' | 'exists';
/** A mailbox STORE: stored, the same bytes already held, or the slot holds something else. */
export type MailboxResult = StoreResult | 'occupied';
/** What a mailbox slot holds: a live item, or nothing after the item expired. */
export type MailboxState = 'item' | 'expired';

/** The only resolution of a time the store writes (specs/limits.md STORE_TIME_BUCKET): one UTC day. */
export const STORE_TIME_BUCKET_MS = 86_400_000;
/** Blocks whose reads are counted in memory between two repair passes (specs/limits.md MAX_POPULAR_TRACKED). */
export const MAX_POPULAR_TRACKED = 4096;
/** A read count saturates here: popularity needs "many", not how many. */
const MAX_READ_COUNT = 255;
/**
 * The schema this code writes (PRAGMA user_version); 0 had stored_at, last_access and fetches; 1 kept mailbox
 * deletions (state 'deleted', with the day they were made) and each item's deletion check.
 */
const SCHEMA_VERSION = 2;

/** `t` rounded up to the next bucket boundary (a time already on one stays). */
export function bucketUp(t: number): number {
  return Math.ceil(t / STORE_TIME_BUCKET_MS) * STORE_TIME_BUCKET_MS;
}

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
  /** Rows in `blocks`, kept with every insert and delete (the gauges read it after each STORE). */
  private blockCount = 0;
  private readonly stmts;
  private lastSweep = 0;
  private lastWriteFailure = 0;
  /** Reads (FETCH, not head-only) per block since the last repair pass, by hex key: memory only, bounded. */
  private readonly reads = new Map<string, number>();

  /** Version 1 mailbox items (no proof of work) are stored until this time (Unix ms; messaging.md §9.3). */
  private readonly mailboxV1Until: number;

  constructor(
    dir: string,
    readonly quota: number,
    sync: 'normal' | 'full' = 'normal',
    /** `mailboxV1Until`: default MAILBOX_V1_UNTIL_MS (config `mailbox_v1_until`). */
    options: { mailboxV1Until?: number } = {},
  ) {
    this.mailboxV1Until = options.mailboxV1Until ?? MAILBOX_V1_UNTIL_MS;
    const Database = loadSqlite();
    this.db = new Database(join(dir, 'store.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // WAL with synchronous=NORMAL: a committed write is in the WAL file before we acknowledge it, so it survives the
    // process being killed (SIGKILL); surviving power loss as well needs store_sync = "full".
    this.db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
    // Deleted rows (evicted blocks, collected mailbox items) are overwritten, not left readable in free pages.
    this.db.pragma('secure_delete = ON');
    const fresh = this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").get()!.n === 0;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS blocks (
        rk BLOB PRIMARY KEY,
        data BLOB NOT NULL,
        role TEXT NOT NULL,
        copies INTEGER NOT NULL DEFAULT 0,
        checked_gen TEXT NOT NULL DEFAULT ''
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS records (
        rk BLOB PRIMARY KEY,
        edition INTEGER NOT NULL,
        data BLOB NOT NULL,
        checked_gen TEXT NOT NULL DEFAULT '',
        expires INTEGER
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS records_held (
        rk BLOB PRIMARY KEY,
        edition INTEGER NOT NULL,
        data BLOB NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS records_held_edition ON records_held (edition);
      CREATE TABLE IF NOT EXISTS mailbox (
        rk BLOB PRIMARY KEY,
        state TEXT NOT NULL,
        data BLOB NOT NULL,
        dt BLOB,
        expires INTEGER NOT NULL,
        hold_until INTEGER NOT NULL,
        checked_gen TEXT NOT NULL DEFAULT ''
      ) WITHOUT ROWID;
      DROP INDEX IF EXISTS blocks_role;
      CREATE INDEX IF NOT EXISTS blocks_evict ON blocks (role, copies DESC, rk);
      CREATE INDEX IF NOT EXISTS blocks_check ON blocks (rk, checked_gen);
      CREATE INDEX IF NOT EXISTS records_check ON records (rk, checked_gen);
      CREATE INDEX IF NOT EXISTS mailbox_check ON mailbox (rk, state, checked_gen);
      CREATE INDEX IF NOT EXISTS mailbox_expires ON mailbox (state, expires);
      CREATE INDEX IF NOT EXISTS mailbox_hold ON mailbox (hold_until);
    `);
    this.addRecordExpiry();
    if (fresh) this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    else this.migrate();
    this.stmts = {
      getBlock: this.db.prepare<[Uint8Array], { data: Buffer }>('SELECT data FROM blocks WHERE rk = ?'),
      hasBlock: this.db.prepare<[Uint8Array], { n: number }>('SELECT 1 AS n FROM blocks WHERE rk = ?'),
      cacheCount: this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM blocks WHERE role = 'cache'"),
      blockAtOrAfter: this.db.prepare<[Uint8Array], { rk: Buffer }>('SELECT rk FROM blocks WHERE rk >= ? ORDER BY rk LIMIT 1'),
      mailboxAtOrAfter: this.db.prepare<[Uint8Array], { rk: Buffer }>('SELECT rk FROM mailbox WHERE rk >= ? ORDER BY rk LIMIT 1'),
      insertBlock: this.db.prepare('INSERT OR IGNORE INTO blocks (rk, data, role) VALUES (?, ?, ?)'),
      promote: this.db.prepare("UPDATE blocks SET role = 'replica' WHERE rk = ? AND role = 'cache'"),
      deleteBlock: this.db.prepare('DELETE FROM blocks WHERE rk = ?'),
      getRecord: this.db.prepare<[Uint8Array], { data: Buffer; edition: number }>('SELECT data, edition FROM records WHERE rk = ?'),
      upsertRecord: this.db.prepare(
        "INSERT INTO records (rk, edition, data, expires) VALUES (?, ?, ?, ?) ON CONFLICT(rk) DO UPDATE SET edition = excluded.edition, data = excluded.data, expires = excluded.expires, checked_gen = ''",
      ),
      getHeld: this.db.prepare<[Uint8Array], { data: Buffer; edition: number }>('SELECT data, edition FROM records_held WHERE rk = ?'),
      upsertHeld: this.db.prepare(
        'INSERT INTO records_held (rk, edition, data) VALUES (?, ?, ?) ON CONFLICT(rk) DO UPDATE SET edition = excluded.edition, data = excluded.data',
      ),
      deleteHeld: this.db.prepare('DELETE FROM records_held WHERE rk = ?'),
      dueHeld: this.db.prepare<[number], { rk: Buffer }>('SELECT rk FROM records_held WHERE edition <= ? ORDER BY edition LIMIT 256'),
      heldUsage: this.db.prepare<[], { b: number | null }>('SELECT SUM(LENGTH(data)) AS b FROM records_held'),
      expiredEndpointBytes: this.db.prepare<[number], { b: number | null }>('SELECT SUM(LENGTH(data)) AS b FROM records WHERE expires <= ?'),
      deleteExpiredEndpoints: this.db.prepare('DELETE FROM records WHERE expires <= ?'),
      evictable: this.db.prepare<[], { rk: Buffer; role: string; copies: number }>(
        "SELECT rk, role, copies FROM blocks WHERE role = 'cache' ORDER BY copies DESC, rk LIMIT 64",
      ),
      usage: this.db.prepare<[], { b: number | null; n: number }>('SELECT SUM(LENGTH(data)) AS b, COUNT(*) AS n FROM blocks'),
      recordUsage: this.db.prepare<[], { b: number | null; n: number }>('SELECT SUM(LENGTH(data)) AS b, COUNT(*) AS n FROM records'),
      setCopies: this.db.prepare('UPDATE blocks SET copies = ?, role = ?, checked_gen = ? WHERE rk = ?'),
      setRecordGen: this.db.prepare('UPDATE records SET checked_gen = ? WHERE rk = ?'),
      unchecked: this.db.prepare<[string, Uint8Array, number], { rk: Buffer }>('SELECT rk FROM blocks WHERE checked_gen != ? AND rk > ? ORDER BY rk LIMIT ?'),
      uncheckedRecords: this.db.prepare<[string, Uint8Array, number], { rk: Buffer }>(
        'SELECT rk FROM records WHERE checked_gen != ? AND rk > ? ORDER BY rk LIMIT ?',
      ),
      blockRole: this.db.prepare<[Uint8Array], { role: string }>('SELECT role FROM blocks WHERE rk = ?'),
      getMailbox: this.db.prepare<[Uint8Array], { state: MailboxState; data: Buffer; expires: number; hold_until: number }>(
        'SELECT state, data, expires, hold_until FROM mailbox WHERE rk = ?',
      ),
      deleteMailbox: this.db.prepare('DELETE FROM mailbox WHERE rk = ?'),
      insertMailbox: this.db.prepare('INSERT INTO mailbox (rk, state, data, dt, expires, hold_until) VALUES (?, ?, ?, ?, ?, ?)'),
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
    const held = this.stmts.heldUsage.get()!;
    this.bytesUsed = (u.b ?? 0) + (r.b ?? 0) + (m.b ?? 0) + (held.b ?? 0);
    this.blockCount = u.n;
  }

  /** Counts every kind of item (a scan of each table's narrowest index): for status pages, not for every request. */
  stats(): StoreStats {
    const count = (table: 'records' | 'mailbox'): number => this.db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).get()!.n;
    return { blocks: this.blockCount, records: count('records'), mailboxes: count('mailbox'), bytes: this.bytesUsed, quota: this.quota };
  }

  /** Blocks held and bytes used, kept in memory: what the gauges read after every STORE, at no cost. */
  get held(): { blocks: number; bytes: number } {
    return { blocks: this.blockCount, bytes: this.bytesUsed };
  }

  /**
   * How SQLite runs the statements repeated over the whole store — a replication pass's cursor over each kind,
   * eviction's choice of victims, the count of cached copies (EXPLAIN QUERY PLAN). Each must read an index only:
   * the columns they need lie after a block's 32 KiB of data, so reading rows would read the whole store each time.
   */
  scanPlans(): Record<string, string> {
    const plan = (stmt: { source: string }, ...args: unknown[]): string =>
      this.db
        .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${stmt.source}`)
        .all(...args)
        .map((r) => r.detail)
        .join('; ');
    return {
      uncheckedBlocks: plan(this.stmts.unchecked, '', NO_KEY, 1),
      uncheckedRecords: plan(this.stmts.uncheckedRecords, '', NO_KEY, 1),
      uncheckedMailboxes: plan(this.stmts.uncheckedMailboxes, '', NO_KEY, 1),
      evictable: plan(this.stmts.evictable),
      cacheCount: plan(this.stmts.cacheCount),
    };
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
      const victims = this.stmts.evictable.all().filter((v) => v.role === 'cache');
      // Cache copies nobody read since the last pass go first (the in-memory counts; nothing on disk says when).
      const victim = victims.find((v) => !this.reads.has(toHex(v.rk))) ?? victims[0];
      if (!victim) throw new LimitError('storage_quota', 'relay storage quota is full', 'ERR_QUOTA');
      this.blockCount -= this.stmts.deleteBlock.run(victim.rk).changes;
      this.bytesUsed -= BLOCK_LEN;
    }
  }

  /**
   * Stores a block after checking it hashes to `rk`. Throws ERR_CONTENT_TAMPERED for a mismatch, ERR_QUOTA when
   * full. Returns 'exists' for a block already held (a cached copy becomes a replica).
   */
  putBlock(rk: Uint8Array, data: Uint8Array, role: BlockRole = 'replica'): StoreResult {
    if (!verifyStoredBlock(rk, data)) throw new AlliumError('ERR_CONTENT_TAMPERED', 'block does not hash to its routing key');
    if (this.stmts.hasBlock.get(rk)) {
      if (role === 'replica') this.stmts.promote.run(rk);
      return 'exists';
    }
    this.makeRoom(data.length);
    this.blockCount += this.write(() => this.stmts.insertBlock.run(rk, data, role)).changes;
    this.bytesUsed += data.length;
    return 'stored';
  }

  /**
   * Reads a block, verifying it; a damaged block is deleted and reported as missing. A 'fetch' (someone asked for
   * the content) counts towards popularity, in memory only; a 'check' (replication's own reads and HEAD requests)
   * does not, or retrying an unreachable holder every repair pass would make every block look popular. Nothing is
   * written either way.
   */
  getBlock(rk: Uint8Array, purpose: 'fetch' | 'check' = 'fetch'): Uint8Array | null {
    const row = this.stmts.getBlock.get(rk);
    if (!row) return null;
    const data = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.length);
    if (!verifyStoredBlock(rk, data)) {
      this.blockCount -= this.stmts.deleteBlock.run(rk).changes;
      this.bytesUsed -= row.data.length;
      return null;
    }
    if (purpose === 'fetch') this.countRead(rk);
    return data;
  }

  hasBlock(rk: Uint8Array): boolean {
    return !!this.stmts.hasBlock.get(rk);
  }

  deleteBlock(rk: Uint8Array): void {
    const row = this.stmts.getBlock.get(rk);
    if (!row) return;
    this.blockCount -= this.stmts.deleteBlock.run(rk).changes;
    this.bytesUsed -= row.data.length;
  }

  /**
   * Stores a signed record if it verifies and is newer than the one held. An edition to come (content.md §4: ahead
   * of `now` by more than RECORD_CLOCK_SKEW_MS, at most RECORD_HOLD_MAX_MS) is held, one per key (a higher one
   * replaces it), and served from its time on; an edition whose time has come drops a held one it is not below.
   * Throws ERR_SIGNATURE, ERR_CONTENT, ERR_RECORD_STALE (an older edition than one held or served: a replay or a
   * rollback attempt).
   */
  putRecord(rk: Uint8Array, data: Uint8Array, now = Date.now()): { result: StoreResult; record: SskRecord } {
    const record = verifyRecord(rk, data);
    this.promoteHeld(rk, now);
    const have = this.stmts.getRecord.get(rk);
    if (have) {
      if (have.edition > record.ed) throw new ProtocolError('ERR_RECORD_STALE', 'a newer edition is held');
      if (have.edition === record.ed) return { result: 'exists', record };
    }
    const held = this.stmts.getHeld.get(rk);
    if (held?.edition === record.ed) return { result: 'exists', record };
    if (editionToCome(record.ed, now)) {
      if (held && held.edition > record.ed) throw new ProtocolError('ERR_RECORD_STALE', 'a newer edition is held');
      this.makeRoom(data.length - (held?.data.length ?? 0));
      this.write(() => this.stmts.upsertHeld.run(rk, record.ed, data));
      this.bytesUsed += data.length - (held?.data.length ?? 0);
      return { result: 'stored', record };
    }
    this.makeRoom(data.length - (have?.data.length ?? 0));
    // One transaction: a held edition at or below the one stored goes with the write, never left behind it.
    const dropHeld = held !== undefined && held.edition <= record.ed;
    this.write(() =>
      this.db.transaction(() => {
        this.stmts.upsertRecord.run(rk, record.ed, data, null);
        if (dropHeld) this.stmts.deleteHeld.run(rk);
      })(),
    );
    this.bytesUsed += data.length - (have?.data.length ?? 0) - (dropHeld ? held.data.length : 0);
    return { result: 'stored', record };
  }

  /** Moves `rk`'s held edition to the records when its time has come at `now` (content.md §4). */
  private promoteHeld(rk: Uint8Array, now: number): void {
    const held = this.stmts.getHeld.get(rk);
    if (!held || held.edition > now + RECORD_CLOCK_SKEW_MS) return;
    const have = this.stmts.getRecord.get(rk);
    this.write(() =>
      this.db.transaction(() => {
        if (!have || have.edition < held.edition) this.stmts.upsertRecord.run(rk, held.edition, held.data, null);
        this.stmts.deleteHeld.run(rk);
      })(),
    );
    // Bytes freed (counted once the transaction committed): none when the held edition is the first, the replaced
    // one's, or the held one's when it was behind.
    this.bytesUsed -= !have ? 0 : have.edition < held.edition ? have.data.length : held.data.length;
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
    this.write(() => this.stmts.upsertRecord.run(locator, v.revision, data, endpointExpiry(v.period)));
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

  /**
   * The record served under `rk` at `now`: the held edition once its time has come (content.md §4; read without
   * writing: the next write or sweep moves it), else the stored one; null when neither verifies.
   */
  getRecord(rk: Uint8Array, now = Date.now()): Uint8Array | null {
    const held = this.stmts.getHeld.get(rk);
    const stored = this.stmts.getRecord.get(rk);
    // The held edition only over an older stored one: a held row left behind a newer record is never served.
    const row = held && held.edition <= now + RECORD_CLOCK_SKEW_MS && (!stored || stored.edition < held.edition) ? held : stored;
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
   * Stores an item in a mailbox slot (specs/messaging.md §9.4). An item goes into an empty slot; the same bytes
   * again are 'exists'; anything else in an occupied slot is 'occupied'. Nothing else is stored: a deletion (of
   * earlier versions) is refused by verifyMailboxStore, so it neither removes an item nor occupies a free slot, and
   * so is an item without the proof of work its slot needs. Throws what verifyMailboxStore throws, ERR_QUOTA.
   */
  putMailbox(rk: Uint8Array, data: Uint8Array, now = Date.now()): MailboxResult {
    const v = verifyMailboxStore(data, now, rk, { acceptV1: now < this.mailboxV1Until });
    this.sweepExpired(now);
    const have = this.readMailbox(rk, now);
    if (have) return have.state !== 'expired' && sameBytes(have.data, data) ? 'exists' : 'occupied';
    this.makeRoom(data.length);
    // The expiry is the item's own `exp` (in its bytes anyway); the hold ends at the end of the day MAILBOX_HOLD_MS
    // from now. No time finer than the bucket is written.
    this.write(() => this.stmts.insertMailbox.run(rk, 'item', data, null, v.exp, bucketUp(now + MAILBOX_HOLD_MS)));
    this.bytesUsed += data.length;
    return 'stored';
  }

  /**
   * What a mailbox slot holds for a FETCH: the item, an empty array when the item expired (the slot is still
   * occupied), or null for a free slot.
   */
  getMailbox(rk: Uint8Array, now = Date.now()): Uint8Array | null {
    const have = this.readMailbox(rk, now);
    return have ? have.data : null;
  }

  /** Reads a slot, expiring an item whose time has come (so an expired item is never served). */
  private readMailbox(rk: Uint8Array, now: number): { state: MailboxState; data: Uint8Array } | null {
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
      return { state: 'expired', data: new Uint8Array(0) };
    }
    const data = new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.length);
    return { state: row.state, data };
  }

  /**
   * Drops the payload of expired mailbox items, the mailbox rows whose hold has ended, and the rows of endpoint
   * descriptors no longer valid, and moves held editions whose time has come to the records (at most once a second unless forced).
   */
  sweepExpired(now = Date.now(), force = false): void {
    if (!force && now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    // The bytes freed are counted once the transaction commits: one that rolls back frees nothing, and the next
    // sweep counts them then.
    const freed = this.db.transaction(() => {
      let n = this.stmts.expiredMailboxBytes.get(now)!.b ?? 0;
      this.stmts.expireMailboxes.run(now);
      n += this.stmts.releasedMailboxBytes.get(now)!.b ?? 0;
      this.stmts.releaseMailboxes.run(now);
      n += this.stmts.expiredEndpointBytes.get(now)!.b ?? 0;
      this.stmts.deleteExpiredEndpoints.run(now);
      return n;
    })();
    this.bytesUsed -= freed;
    // Held editions whose time has come, each in its own transaction after the expiries: one that cannot be written
    // (a full disk) stays held and served as it is, and neither blocks the expiries, which free space, nor the rest.
    for (const { rk } of this.stmts.dueHeld.all(now + RECORD_CLOCK_SKEW_MS)) {
      try {
        this.promoteHeld(rk, now);
      } catch {
        /* left for the next sweep or write */
      }
    }
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

  /** Counts a read in memory (saturating; at most MAX_POPULAR_TRACKED keys between two passes). */
  private countRead(rk: Uint8Array): void {
    const k = toHex(rk);
    const n = this.reads.get(k);
    if (n !== undefined) this.reads.set(k, Math.min(n + 1, MAX_READ_COUNT));
    else if (this.reads.size < MAX_POPULAR_TRACKED) this.reads.set(k, 1);
  }

  /**
   * Replicas read at least `minFetches` times since the last call (popular: worth caching elsewhere), most read
   * first; then every count is cleared (a repair pass calls this once).
   */
  popular(minFetches: number, limit: number): Uint8Array[] {
    const hot = [...this.reads].filter(([, n]) => n >= minFetches).sort((a, b) => b[1] - a[1]);
    this.reads.clear();
    const out: Uint8Array[] = [];
    for (const [k] of hot) {
      if (out.length >= limit) break;
      const rk = fromHex(k);
      if (this.stmts.blockRole.get(rk)?.role === 'replica') out.push(rk);
    }
    return out;
  }

  /**
   * Migrates a store of an earlier schema (specs/content.md §7): version 0 kept stored_at, last_access and fetches
   * per block and stored_at per record and slot, and a slot's exact hold_until. Drops those columns, rounds
   * hold_until up to its bucket. Version 1 kept mailbox deletions: they become expired markers (no bytes, no time)
   * and every deletion check goes (specs/messaging.md §9.4). Then rewrites the file (VACUUM, then a checkpoint that
   * truncates the WAL) so the old values do not survive in free pages.
   */
  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version >= SCHEMA_VERSION) return;
    const columns = (table: string): string[] =>
      this.db
        .prepare<[], { name: string }>(`PRAGMA table_info(${table})`)
        .all()
        .map((c) => c.name);
    this.db.transaction(() => {
      for (const [table, drop] of [
        ['blocks', ['stored_at', 'last_access', 'fetches']],
        ['records', ['stored_at']],
        ['mailbox', ['stored_at']],
      ] as const) {
        const have = columns(table);
        for (const c of drop) if (have.includes(c)) this.db.exec(`ALTER TABLE ${table} DROP COLUMN ${c}`);
      }
      const b = STORE_TIME_BUCKET_MS; // an integer literal in the SQL: integer division (a bound number is a REAL)
      if (version < 1) this.db.exec(`UPDATE mailbox SET hold_until = ((CAST(hold_until AS INTEGER) + ${b} - 1) / ${b}) * ${b}`);
      this.db.exec("UPDATE mailbox SET state = 'expired', data = X'', expires = 0 WHERE state = 'deleted'");
      this.db.exec('UPDATE mailbox SET dt = NULL');
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    this.db.exec('VACUUM');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
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
