/**
 * Scans a relay store's files for what a holder must not keep (specs/content.md §7): columns beyond the spec's,
 * integer cells that are times finer than the store's bucket, and the raw bytes of the database and its WAL for given
 * millisecond times (as 4-byte seconds, 6- or 8-byte milliseconds, or decimal text). Used on a store opened in the
 * test and on the stores of relay processes.
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STORE_TIME_BUCKET_MS } from '../../relay/block-store.js';

export const DAY = 86_400_000;
/** The columns specs/content.md §7 allows, and nothing else. */
export const ALLOWED: Record<string, string[]> = {
  blocks: ['rk', 'data', 'role', 'copies', 'checked_gen'],
  records: ['rk', 'edition', 'data', 'checked_gen', 'expires'],
  records_held: ['rk', 'edition', 'data'],
  mailbox: ['rk', 'state', 'data', 'dt', 'expires', 'hold_until', 'checked_gen'],
};
const FORBIDDEN_NAME = /access|fetch|read|stored|count|last|seen|time|at$/i;

/** Every file of the store: the database and, if present, its WAL. */
export function storeFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of ['store.sqlite', 'store.sqlite-wal']) if (existsSync(join(dir, f))) out.set(f, readFileSync(join(dir, f)));
  return out;
}

/** Where `times` (ms) appear in the bytes: as 4-byte (seconds), 6- or 8-byte big-endian integers, or as decimal text. */
export function timestampsIn(name: string, bytes: Buffer, times: number[]): string[] {
  const found: string[] = [];
  const lo = Math.min(...times);
  const hi = Math.max(...times);
  const loS = Math.floor(lo / 1000);
  const hiS = Math.floor(hi / 1000);
  for (let i = 0; i + 4 <= bytes.length; i++) {
    if (i + 6 <= bytes.length) {
      const v6 = bytes.readUIntBE(i, 6);
      if (v6 >= lo && v6 <= hi) found.push(`${name}@${i}: ${v6} (6-byte ms)`);
    }
    if (i + 8 <= bytes.length && bytes.readUInt16BE(i) === 0) {
      const v8 = Number(bytes.readBigUInt64BE(i));
      if (v8 >= lo && v8 <= hi) found.push(`${name}@${i}: ${v8} (8-byte ms)`);
    }
    const v4 = bytes.readUInt32BE(i);
    if (v4 >= loS && v4 <= hiS) found.push(`${name}@${i}: ${v4} (4-byte s)`);
  }
  const text = bytes.toString('latin1');
  for (let t = lo; t <= hi; t++) if (text.includes(String(t))) found.push(`${name}: ${t} as text`);
  return found;
}

/** Column names, and integer cells that look like times finer than the bucket, in every table. */
export function scanTables(file: string, from: number, to: number, itemExpiries: Set<number>): string[] {
  const db = new Database(file, { readonly: true });
  const findings: string[] = [];
  try {
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((t) => t.name);
    for (const table of tables) {
      const cols = db
        .prepare<[], { name: string }>(`PRAGMA table_info(${table})`)
        .all()
        .map((c) => c.name);
      for (const c of cols) {
        if (FORBIDDEN_NAME.test(c) || !(ALLOWED[table] ?? []).includes(c)) findings.push(`column ${table}.${c}`);
      }
      for (const row of db.prepare<[], Record<string, unknown>>(`SELECT * FROM ${table}`).all()) {
        for (const [c, v] of Object.entries(row)) {
          if (typeof v !== 'number' && typeof v !== 'bigint') continue;
          const n = Number(v);
          if (table === 'mailbox' && c === 'expires' && itemExpiries.has(n)) continue; // an item's own exp, in its bytes
          const ms = n >= from - 30 * DAY && n <= to + 30 * DAY;
          const s = n * 1000 >= from - 30 * DAY && n * 1000 <= to + 30 * DAY;
          if ((ms && n % STORE_TIME_BUCKET_MS !== 0) || (s && (n * 1000) % STORE_TIME_BUCKET_MS !== 0))
            findings.push(`${table}.${c} = ${n}: a time finer than the bucket`);
        }
      }
    }
  } finally {
    db.close();
  }
  return findings;
}
