/**
 * Sample statistics and text formatting for the network benchmarks: medians, nearest-rank p90, min–max, and
 * PASS/MISS verdicts against the goals the issues set. Numbers only; nothing here decides pass or fail of a test.
 */
import { fmtNum } from '../harness.js';

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p90: number;
  readonly min: number;
  readonly max: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: readonly number[]): Summary {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, median: NaN, p90: NaN, min: NaN, max: NaN };
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, p90: percentile(s, 90), min: s[0]!, max: s[s.length - 1]! };
}

export function median(values: readonly number[]): number {
  return summarize(values).median;
}

/** "12.3" with a unit, or "—" for a missing value. */
export function fmt(x: number, unit = ''): string {
  return Number.isFinite(x) ? `${fmtNum(x)}${unit}` : '—';
}

export function fmtMinMax(s: Summary, unit = ''): string {
  return s.n === 0 ? '—' : `${fmtNum(s.min)}–${fmtNum(s.max)}${unit}`;
}

export type Verdict = 'PASS' | 'MISS' | 'n/a';

/** PASS when `value` is on the right side of `goal` ('<=' or '>='); n/a when it was not measured. */
export function verdict(value: number, op: '<' | '<=' | '>=', goal: number): Verdict {
  if (!Number.isFinite(value)) return 'n/a';
  if (op === '<') return value < goal ? 'PASS' : 'MISS';
  return op === '<=' ? (value <= goal ? 'PASS' : 'MISS') : value >= goal ? 'PASS' : 'MISS';
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
