/**
 * The insert journal (specs/content.md §10.4): an append-only file of the routing keys of blocks a holder
 * acknowledged during a publish, one hex key a line. A publish stopped by a crash or Ctrl-C and run again with the
 * same files skips every block listed, so nothing the network acknowledged is sent twice. A torn last line (the
 * process died mid-write) is ignored. Node only (the browser bundle does not include it).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { toHex } from '../protocol/bytes.js';

export interface InsertJournal {
  /** True when this block was acknowledged by an earlier run. */
  has(rk: Uint8Array): boolean;
  /** Records an acknowledged block (durably before it returns). */
  add(rk: Uint8Array): void;
  /** Blocks listed. */
  readonly size: number;
  /** Removes the journal (the edition is published). */
  clear(): void;
}

export function openInsertJournal(file: string): InsertJournal {
  const done = new Set<string>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) if (/^[0-9a-f]{64}$/.test(line)) done.add(line);
  } else mkdirSync(dirname(file), { recursive: true });
  return {
    has: (rk) => done.has(toHex(rk)),
    add(rk) {
      const h = toHex(rk);
      if (done.has(h)) return;
      done.add(h);
      appendFileSync(file, `${h}\n`);
    },
    get size() {
      return done.size;
    },
    clear() {
      done.clear();
      rmSync(file, { force: true });
    },
  };
}

/** A journal that keeps nothing (a one-shot put). */
export function memoryJournal(): InsertJournal {
  const done = new Set<string>();
  return {
    has: (rk) => done.has(toHex(rk)),
    add: (rk) => void done.add(toHex(rk)),
    get size() {
      return done.size;
    },
    clear: () => done.clear(),
  };
}
