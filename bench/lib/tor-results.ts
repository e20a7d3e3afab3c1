/**
 * The result file of the real-Tor loopback anchor (shared/anchors/tor-local; bench.sh writes bench-<UTC>.json): its
 * shape, as far as our benchmarks read it, and how to find it. bench:circuit (bench/lib/tor.ts) and bench:messaging
 * (bench/lib/tor-onion.ts) line their rows up with it. Run Tor's bench and ours one after the other, never at once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fmt, type Summary } from './stats.js';

/** bench.py's summary of one sample (times in ms unless the key says otherwise). */
export interface TorStat {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

export interface TorResults {
  meta: { started: string; tor_version: string };
  A_circuit_build?: { build_ms: TorStat; concurrent_builds: { K: number; circuits_per_s: number; other_cores: number }[] };
  B_ttfb?: Record<string, { ttfb_ms: TorStat }>;
  C_bulk?: Record<string, { MBps: TorStat; busy_relay_cpu_ms_per_MiB?: TorStat; client_cpu_ms_per_MiB?: TorStat; other_cores: TorStat }>;
  M_idle_circuit_memory?: { circuits_built: number; rss_delta_kB: Record<string, number>; circuits_per_relay_by_position: Record<string, number[]> };
  rss_kB_idle?: Record<string, { VmRSS: number }>;
  rss_kB_after_bulk?: Record<string, { VmRSS: number }>;
  /** Section H: a first request to each onion service new to the client, then one more over its open rendezvous circuit. */
  H_onion_services?: {
    services?: number;
    fresh_ttfb_ms?: TorStat;
    fresh_fail?: number;
    existing_ttfb_ms?: TorStat;
    existing_fail?: number;
    skipped?: string;
    error?: string;
  };
}

export interface LoadedTor {
  file: string;
  r: TorResults;
}

/** A bench-*.json file, or the newest one in a directory; with `needs`, the newest that has that section. */
export function loadTor(p: string, needs?: keyof TorResults): LoadedTor {
  if (!statSync(p).isDirectory()) return { file: p, r: JSON.parse(readFileSync(p, 'utf8')) as TorResults };
  const files = readdirSync(p)
    .filter((f) => /^bench-.*\.json$/.test(f))
    .sort()
    .reverse();
  if (!files.length) throw new Error(`no bench-*.json in ${p}`);
  for (const f of files) {
    const file = path.join(p, f);
    const r = JSON.parse(readFileSync(file, 'utf8')) as TorResults;
    if (!needs || r[needs] !== undefined) return { file, r };
  }
  throw new Error(`no bench-*.json in ${p} has ${needs} (run ./bench.sh --sections H there)`);
}

/** "median (p90 x)" of one of Tor's samples, or "—". */
export const torMedian = (s: TorStat | undefined, unit = ''): string => (s ? `${fmt(s.median)}${unit} (p90 ${fmt(s.p90)})` : '—');
/** The same for one of ours. */
export const ourMedian = (s: Summary, unit = ''): string => `${fmt(s.median)}${unit} (p90 ${fmt(s.p90)})`;
