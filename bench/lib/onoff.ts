/**
 * The cost of the defences on by default (`--defences-off-too` of bench:circuit and bench:messaging): each figure
 * is measured with the defaults (on) and with the defences off, in the same run on the same network, the two
 * taking turns run by run in alternating order (`firstOn`), so a trend in the shared machine's load favours
 * neither. The table gives each figure's medians, their ratio, and the median of the ratios of the pairs measured
 * back to back (as bench:content's forwarding / direct), which load swings affect less than a ratio of medians.
 */
import { table } from '../harness.js';
import { fmt, median } from './stats.js';

export type Side = 'on' | 'off';

/** Whether run `i` measures the defaults first (even runs) or the defences off first (odd runs). */
export function firstOn(i: number): boolean {
  return i % 2 === 0;
}

/** The two sides of run `i`, in the order they are measured. */
export function sidesOf(i: number): readonly [Side, Side] {
  return firstOn(i) ? ['on', 'off'] : ['off', 'on'];
}

export interface OnOffRow {
  readonly figure: string;
  readonly on: number;
  readonly off: number;
  /** median(on) / median(off). */
  readonly ratioOfMedians: number;
  /** Median of on[i] / off[i] over the pairs measured back to back (NaN without a pair). */
  readonly pairedRatio: number;
  readonly pairs: number;
}

/** Samples of each figure on both sides, in the order they were taken (the i-th of each side form a pair). */
export class OnOff {
  private readonly samples = new Map<string, { on: number[]; off: number[] }>();

  add(figure: string, side: Side, value: number): void {
    let s = this.samples.get(figure);
    if (!s) this.samples.set(figure, (s = { on: [], off: [] }));
    s[side].push(value);
  }

  rows(): OnOffRow[] {
    return [...this.samples].map(([figure, s]) => {
      const pairs = Math.min(s.on.length, s.off.length);
      const ratios: number[] = [];
      for (let i = 0; i < pairs; i++) ratios.push(s.on[i]! / s.off[i]!);
      const on = median(s.on);
      const off = median(s.off);
      return { figure, on, off, ratioOfMedians: on / off, pairedRatio: median(ratios), pairs };
    });
  }

  /** figure | on | off | on/off (medians) | on/off (paired) | pairs. */
  table(): string {
    const out: string[][] = [['figure', 'defaults (on)', 'defences off', 'on / off, medians', 'on / off, paired', 'pairs']];
    for (const r of this.rows()) out.push([r.figure, fmt(r.on), fmt(r.off), fmt(r.ratioOfMedians), fmt(r.pairedRatio), String(r.pairs)]);
    return table(out, new Set([1, 2, 3, 4, 5]));
  }

  /** Every sample, for the results file. */
  toJSON(): Record<string, { on: number[]; off: number[] }> {
    return Object.fromEntries(this.samples);
  }
}
