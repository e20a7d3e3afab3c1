/**
 * Waiting for the relays' replication passes to go quiet (specs/content.md §6.2) before a benchmark times a get: after
 * a put, every holder checks each new block at its other holders (a FETCH head per holder, a STORE where one lacks
 * it), which at a short repair_interval costs the relays hundreds of milliseconds of CPU in the seconds that follow —
 * CPU a get timed then would share. A relay is quiet when two passes have ended since a reading of its counters
 * (`allium_repair_passes_total`, `allium_repair_checked_total`) and the items checked did not move: passes run one at
 * a time, so the second began after the reading and found nothing left to check. Polled, not slept: it returns as
 * soon as every relay is quiet, and says how long that took, how many passes and checks it saw and what the relays
 * spent meanwhile.
 */
import type { RelayProcess } from '../../cli/relay-process.js';
import { cpuSeconds } from './proc.js';

export interface RepairQuiet {
  /** Whether every relay went quiet before the limit. */
  quiet: boolean;
  /** Milliseconds from the call to the last relay found quiet (or to the limit). */
  ms: number;
  /** Passes and items checked at all relays in that time. */
  passes: number;
  checked: number;
  /** CPU milliseconds the relays used in that time (all of them, from /proc; the readings' scrapes included). */
  relayCpuMs: number;
}

/**
 * How often the counters are read: half the benchmarks' 1 s repair interval. Each reading scrapes every relay's
 * /metrics, some 5 ms of a relay's CPU: read every 200 ms, ten relays spent 470-490 ms/s in the wait against 160-260
 * idle, so the reading is kept sparse (it adds at most half a second to a wait that is over 2 s).
 */
const POLL_MS = 500;

/** Resolves once every relay's repair passes are quiet (above), or after `limitMs` (then `quiet` is false). */
export async function repairQuiet(relays: readonly RelayProcess[], limitMs = 60_000): Promise<RepairQuiet> {
  const t0 = performance.now();
  const cpu0 = relays.reduce((a, r) => a + cpuSeconds(r.pid), 0);
  const read = (r: RelayProcess): Promise<[number, number]> =>
    Promise.all([r.metric('allium_repair_passes_total').catch(() => NaN), r.metric('allium_repair_checked_total').catch(() => NaN)]);
  const first = await Promise.all(relays.map(read));
  const mark = first.map(([p, c]) => ({ p, c }));
  let last = first;
  let quiet = false;
  while (performance.now() - t0 < limitMs) {
    last = await Promise.all(relays.map(read));
    // Every relay looked at (map, not every: each one's mark moves on when it checked something).
    quiet = last
      .map(([p, c], i) => {
        const m = mark[i]!;
        // A relay whose metrics cannot be read (killed by the benchmark) does no repair.
        if (Number.isNaN(p) || Number.isNaN(c)) return true;
        if (c !== m.c) {
          // It checked something since the mark: it is still repairing; start over from here.
          m.p = p;
          m.c = c;
          return false;
        }
        return p >= m.p + 2;
      })
      .every(Boolean);
    if (quiet) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const sum = (i: 0 | 1): number => last.reduce((a, x, j) => a + (x[i] - first[j]![i] || 0), 0);
  return {
    quiet,
    ms: performance.now() - t0,
    passes: sum(0),
    checked: sum(1),
    relayCpuMs: (relays.reduce((a, r) => a + cpuSeconds(r.pid), 0) - cpu0) * 1000,
  };
}

/** One line for a benchmark's log. */
export function describeQuiet(q: RepairQuiet): string {
  return `${q.quiet ? 'repair passes quiet' : 'repair passes still busy'} after ${q.ms.toFixed(0)} ms (${q.passes} passes, ${q.checked} items checked, relays' CPU ${q.relayCpuMs.toFixed(0)} ms, ${((q.relayCpuMs / q.ms) * 1000).toFixed(0)} ms/s)`;
}
