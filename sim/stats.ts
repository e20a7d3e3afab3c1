/** Summary statistics for experiment results. */

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** The q-quantile (0..1) by linear interpolation; NaN for no data. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5);

/**
 * The Gini coefficient of non-negative values: 0 when all are equal, approaching 1 when one holds everything.
 * G = Σ (2i − n − 1) x_i / (n Σ x), with x sorted ascending and i from 1.
 */
export function gini(xs: readonly number[]): number {
  const n = xs.length;
  if (n === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  let total = 0;
  let weighted = 0;
  for (let i = 0; i < n; i++) {
    total += s[i]!;
    weighted += (2 * (i + 1) - n - 1) * s[i]!;
  }
  return total === 0 ? 0 : weighted / (n * total);
}

/** Points of the Lorenz curve (fraction of holders, fraction of the total), `steps` + 1 of them. */
export function lorenz(xs: readonly number[], steps = 50): [number, number][] {
  const s = [...xs].sort((a, b) => a - b);
  const total = s.reduce((a, b) => a + b, 0) || 1;
  const out: [number, number][] = [[0, 0]];
  let acc = 0;
  let j = 0;
  for (let k = 1; k <= steps; k++) {
    const upto = Math.round((k / steps) * s.length);
    while (j < upto) acc += s[j++]!;
    out.push([k / steps, acc / total]);
  }
  return out;
}
