/**
 * What a directory authority remembers of each relay (specs/directory.md §7.4): when it first saw it, the outcome
 * of each reachability test, and from those the figures flags are earned by —
 *
 *   known   now − first seen
 *   wfu     weighted fractional uptime: the share of observed time the relay was up, each interval weighted by
 *           2^(−age / HALF_LIFE), so the last weeks count most
 *   mtbf    weighted mean time between failures: the mean length of its up sessions (the current one included),
 *           each ended session weighted the same way
 *   uptime  the current session's length (0 while it is down)
 *
 * Time between two tests is counted with the state of the earlier one. Persisted as JSON in the authority's data
 * directory (authority-history.json, written atomically), so a restarted authority keeps the history relays earned.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './keystore.js';

export const HISTORY_HALF_LIFE_MS = 10 * 24 * 3600_000;
/** Relays not seen for this long are forgotten. */
export const HISTORY_FORGET_MS = 30 * 24 * 3600_000;

interface Record {
  firstSeen: number;
  lastTest: number;
  up: boolean;
  sessionStart: number;
  wUp: number;
  wTotal: number;
  sessLen: number;
  sessCount: number;
  lastUp: number;
}

export interface RelayFigures {
  known: number;
  wfu: number;
  mtbf: number;
  uptime: number;
  /** The last test succeeded. */
  up: boolean;
  lastTest: number;
}

export class RelayHistory {
  private readonly records = new Map<string, Record>();

  constructor(private readonly file: string | null = null) {
    if (file && existsSync(file)) {
      try {
        const data = JSON.parse(readFileSync(file, 'utf8')) as { [fp: string]: Record };
        for (const [fp, r] of Object.entries(data)) if (/^[0-9a-f]{64}$/.test(fp) && typeof r.firstSeen === 'number') this.records.set(fp, r);
      } catch {
        /* a damaged history starts afresh: relays earn their flags again */
      }
    }
  }

  static inDir(dataDir: string): RelayHistory {
    return new RelayHistory(join(dataDir, 'authority-history.json'));
  }

  /** Records a reachability test of `fp` at `now`. */
  observe(fp: string, up: boolean, now: number): void {
    let r = this.records.get(fp);
    if (!r) {
      r = { firstSeen: now, lastTest: now, up, sessionStart: now, wUp: 0, wTotal: 0, sessLen: 0, sessCount: 0, lastUp: up ? now : 0 };
      this.records.set(fp, r);
      return;
    }
    const dt = Math.max(0, now - r.lastTest);
    const decay = Math.pow(2, -dt / HISTORY_HALF_LIFE_MS);
    r.wUp = r.wUp * decay + (r.up ? dt : 0);
    r.wTotal = r.wTotal * decay + dt;
    if (r.up && !up) {
      // A session ended (at the test that found it down).
      r.sessLen = r.sessLen * decay + (now - r.sessionStart);
      r.sessCount = r.sessCount * decay + 1;
    } else {
      r.sessLen *= decay;
      r.sessCount *= decay;
    }
    if (!r.up && up) r.sessionStart = now;
    r.up = up;
    if (up) r.lastUp = now;
    r.lastTest = now;
  }

  figures(fp: string, now: number): RelayFigures | null {
    const r = this.records.get(fp);
    if (!r) return null;
    const current = r.up ? now - r.sessionStart : 0;
    return {
      known: now - r.firstSeen,
      wfu: r.wTotal > 0 ? r.wUp / r.wTotal : r.up ? 1 : 0,
      mtbf: (r.sessLen + current) / (r.sessCount + (r.up ? 1 : 0) || 1),
      uptime: current,
      up: r.up,
      lastTest: r.lastTest,
    };
  }

  /** Forgets relays not up for HISTORY_FORGET_MS; writes the file. */
  save(now: number): void {
    for (const [fp, r] of this.records) if (now - Math.max(r.lastUp, r.firstSeen) > HISTORY_FORGET_MS) this.records.delete(fp);
    if (this.file) writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.records)) + '\n');
  }

  get size(): number {
    return this.records.size;
  }
}
