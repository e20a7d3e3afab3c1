/**
 * What every section of the shape audit (bench/audit-shape.ts, docs/shape-audit.md) shares: the figure it reports
 * and the options. Sections are numbered as in issue 17's list (1 purpose classifier, 2 endpoint guard discovery,
 * 3 introduction flood, 4 message mode, 5 padding overhead); each is its own module returning rows, so a later
 * section is one more entry in the audit's table of sections.
 */

export interface ShapeOptions {
  /** Smaller populations and fewer trials (the CI run). */
  readonly quick: boolean;
  readonly seed: string;
  /** Progress lines (stderr). */
  readonly progress?: (msg: string) => void;
}

/** One figure of the audit. */
export interface ShapeRow {
  /** Stable key, e.g. "guard-discovery/today". */
  readonly id: string;
  /** The section's number and name, e.g. "2. Endpoint guard discovery". */
  readonly section: string;
  /** What was measured, and under which conditions. */
  readonly metric: string;
  /** The figure as a number (its unit is the metric's). */
  readonly value: number;
  /** The figure as printed. */
  readonly display: string;
  /** The goal, or "—" for a figure without one (a comparison, a "before"). */
  readonly goal: string;
  /** Whether the figure meets the goal (null: no goal). */
  readonly met: boolean | null;
  /** Extra numbers for --json (distributions, counts). */
  readonly detail?: Record<string, unknown>;
}

export interface ShapeSection {
  /** Short name for --only. */
  readonly name: string;
  readonly run: (o: ShapeOptions) => Promise<ShapeRow[]>;
}

/** The q-quantile (0..1) of a sorted list, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)} %`;
