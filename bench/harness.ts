/**
 * The timing loop and statistics shared by the npm run bench:* scripts. A case is timed for a fixed slice of
 * process.hrtime.bigint() time, in batches; work a case needs to prepare its inputs (cells that must be produced by
 * the other end of a circuit, fresh onions for a replay-checked relay) runs between batches, outside the clock.
 *
 * Results are medians with min–max across runs, never pass/fail on time: the machine decides the numbers, the
 * ratios say whether the code is close to the primitives it wraps.
 */

export interface BenchCase {
  /** Stable key for JSON and for ratios. */
  readonly id: string;
  readonly label: string;
  /** Bytes each operation processes, for the MB/s column (omitted: no MB/s). */
  readonly bytes?: number;
  /** Largest batch this case can prepare at once (default unlimited). */
  readonly maxBatch?: number;
  /** Untimed: prepares inputs for the next `n` calls of op. */
  prepare?(n: number): void;
  /** Timed: operation number `i` of the current batch. */
  op(i: number): void;
}

export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Each timed batch aims at this fraction of a turn, so hrtime calls stay negligible. */
const BATCH_FRACTION = 1 / 8;

/** Batch size each case grew into during warm-up; kept so every run starts at its steady-state batch size. */
const batchOf = new Map<string, number>();

export interface Timing {
  ops: number;
  ns: bigint;
}

/**
 * Runs `c` for `sliceMs` of timed work and adds what it did to `into`. Preparation time is not counted, so a case
 * that prepares expensive inputs takes longer than the slice in wall time.
 */
export function timeCase(c: BenchCase, sliceMs: number, into: Timing = { ops: 0, ns: 0n }): Timing {
  const slice = BigInt(Math.round(sliceMs * 1e6));
  const target = Number(slice) * BATCH_FRACTION;
  const cap = c.maxBatch ?? Number.MAX_SAFE_INTEGER;
  let batch = Math.min(batchOf.get(c.id) ?? 1, cap);
  let ns = 0n;
  while (ns < slice) {
    c.prepare?.(batch);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) c.op(i);
    const dt = process.hrtime.bigint() - t0;
    ns += dt;
    into.ops += batch;
    // Grow (or shrink) towards batches of about `target` ns.
    const per = Number(dt) / batch;
    if (per > 0) batch = Math.max(1, Math.min(cap, Math.round(target / per)));
  }
  into.ns += ns;
  batchOf.set(c.id, batch);
  return into;
}

/**
 * One run: every case gets `sliceMs` of timed work, dealt out in `rounds` equal turns that go round all the cases,
 * so each case's figure averages over the same stretch of time as every other's. On a machine shared with other
 * work, a burst of load then lands on numerator and denominator of a ratio alike. Returns operations per second.
 */
export function runCases(cases: readonly BenchCase[], sliceMs: number, rounds: number, onTurn?: (c: BenchCase) => void): Map<string, number> {
  const acc = new Map<string, Timing>(cases.map((c) => [c.id, { ops: 0, ns: 0n }]));
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      onTurn?.(c);
      timeCase(c, sliceMs / rounds, acc.get(c.id));
    }
  }
  return new Map([...acc].map(([id, t]) => [id, (t.ops * 1e9) / Number(t.ns)]));
}

export function stat(values: readonly number[]): Stat {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

/** 3 significant digits with thousands separators: 12,300 / 466 / 3.14. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return '—';
  if (x >= 1000) return Math.round(Number(x.toPrecision(3))).toLocaleString('en-US');
  return Number(x.toPrecision(3)).toString();
}

export function fmtRange(s: Stat, unit = ''): string {
  return `${fmtNum(s.min)}${unit}–${fmtNum(s.max)}${unit}`;
}

export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '—';
}

/** A plain-text table: columns left-aligned except those listed in `right`. */
export function table(rows: readonly (readonly string[])[], right: ReadonlySet<number>): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
