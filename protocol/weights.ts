/**
 * Selection weights (specs/directory.md §7.5, specs/path.md §2.2): what a relay's weight is, and how much of it
 * each circuit position may use. Pure.
 *
 * A relay's consensus weight comes from measurement: the low median of the authorities' measurements when at least
 * half of the measuring authorities measured it, never above its own claim; otherwise its claim capped at
 * UNMEASURED_CAP. Nobody gets weight by claiming it.
 *
 * Position weights keep scarce capacity for the position that needs it. Relays fall into four classes by flag —
 * G (Guard, not Exit), E (Exit, not Guard), D (both) and M (neither) — with total weights G, E, D, M and T their
 * sum. Each position should carry a third of T. The scarce class's own position is served first: exit capacity goes
 * to the exit position up to T/3 before any of it is used as middle, guard capacity likewise to the guard position,
 * and D (usable anywhere) fills whichever of the guard and exit positions is still short, then is spread so that the
 * three positions come out as even as the classes allow. The result, as fractions in units of 1/WEIGHT_SCALE:
 *
 *   guard position:   Wgg of each G relay's weight, Wgd of each D relay's
 *   middle position:  Wmg of G, Wme of E, Wmd of D, all of M
 *   exit position:    Wee of E, Wed of D
 *
 * with Wgg + Wmg = Wee + Wme = Wgd + Wmd + Wed = WEIGHT_SCALE. The same balance Tor's bandwidth weights aim for
 * (dir-spec §3.8.3), reached by filling positions in order of scarcity instead of by cases.
 */

/** Position weights are integers out of this. */
export const WEIGHT_SCALE = 10_000;
/** An unmeasured relay's weight is its claim, at most this (bytes/s): as Tor's 20 KB/s for unmeasured relays. */
export const UNMEASURED_CAP = 20_000;

export interface PositionWeights {
  readonly gg: number;
  readonly gd: number;
  readonly mg: number;
  readonly me: number;
  readonly md: number;
  readonly ee: number;
  readonly ed: number;
}

/** Weights that use every relay fully in every position it may take (no balancing): authority-free networks. */
export const FLAT_WEIGHTS: PositionWeights = {
  gg: WEIGHT_SCALE,
  gd: WEIGHT_SCALE,
  mg: WEIGHT_SCALE,
  me: WEIGHT_SCALE,
  md: WEIGHT_SCALE,
  ee: WEIGHT_SCALE,
  ed: WEIGHT_SCALE,
};

export type Position = 'guard' | 'middle' | 'exit';

/** The low median: the smaller middle element of an even-length list. */
export function lowMedian(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/**
 * A relay's consensus weight and whether it is measured, from the claims and measurements in the votes that list
 * it. `measuring` is the number of voting authorities that measure (say so in their votes); measurements are the
 * non-zero `m` values.
 */
export function consensusWeight(
  claims: readonly number[],
  measurements: readonly number[],
  measuring: number,
  cap = UNMEASURED_CAP,
): { w: number; measured: boolean } {
  const claim = claims.length ? lowMedian(claims) : 0;
  if (measuring > 0 && measurements.length > 0 && measurements.length * 2 >= measuring) {
    return { w: Math.max(1, Math.min(lowMedian(measurements), claim || Infinity)), measured: true };
  }
  return { w: Math.max(1, Math.min(claim, cap)), measured: false };
}

/**
 * Position weights for class totals G, E, D, M (specs/directory.md §7.5). Integers in [0, WEIGHT_SCALE].
 */
export function positionWeights(G: number, E: number, D: number, M: number): PositionWeights {
  const T = G + E + D + M;
  if (T <= 0) return FLAT_WEIGHTS;
  const third = T / 3;
  // Each class's capacity assigned to each position it may take.
  const gG = Math.min(G, third); // G to the guard position, up to a third
  const eE = Math.min(E, third); // E to the exit position
  const needG = third - gG;
  const needE = third - eE;
  let dG = 0;
  let dE = 0;
  if (needG + needE <= D) {
    dG = needG;
    dE = needE;
  } else if (needG + needE > 0) {
    // D cannot fill both: share it in proportion to what each scarce position lacks.
    dG = (D * needG) / (needG + needE);
    dE = D - dG;
  }
  // What is left goes to the middle first, then evens out the three positions: water-filling of D's remainder.
  let dRest = D - dG - dE;
  const guard = gG + dG;
  const exit = eE + dE;
  const middle = M + (G - gG) + (E - eE);
  if (dRest > 0) {
    const levels = [
      { p: 'g' as const, v: guard },
      { p: 'e' as const, v: exit },
      { p: 'm' as const, v: middle },
    ].sort((a, b) => a.v - b.v);
    const add: Record<'g' | 'e' | 'm', number> = { g: 0, e: 0, m: 0 };
    // Raise the lowest position to the next, then the two lowest together, then all three.
    for (let i = 0; i < 3 && dRest > 0; i++) {
      const next = i < 2 ? levels[i + 1]!.v : Infinity;
      const width = i + 1;
      const need = (next - levels[i]!.v) * width;
      const give = Math.min(need, dRest);
      for (let j = 0; j <= i; j++) add[levels[j]!.p] += give / width;
      for (let j = 0; j <= i; j++) levels[j]!.v += give / width;
      dRest -= give;
    }
    dG += add.g;
    dE += add.e; // add.m stays with the middle: Wmd is the remainder
  }
  const frac = (part: number, whole: number, fallback: number): number => (whole > 0 ? Math.round((WEIGHT_SCALE * part) / whole) : fallback);
  const gg = frac(gG, G, WEIGHT_SCALE);
  const ee = frac(eE, E, WEIGHT_SCALE);
  const gd = frac(dG, D, 0);
  const ed = frac(dE, D, 0);
  const md = D > 0 ? Math.max(0, WEIGHT_SCALE - gd - ed) : 0;
  return { gg, gd, mg: WEIGHT_SCALE - gg, me: WEIGHT_SCALE - ee, md, ee, ed };
}

/**
 * How a relay counts for a position: its weight times the position weight of its class (0: not eligible). Only
 * Guard relays take the guard position; the exit position is open to any relay whose policy allows the target.
 */
export function positionFactor(w: PositionWeights, position: Position, guard: boolean, exit: boolean): number {
  switch (position) {
    case 'guard':
      if (!guard) return 0;
      return exit ? w.gd : w.gg;
    case 'exit':
      // A relay without the Exit flag whose policy still allows the port asked for (the caller checks) counts fully.
      if (!exit) return WEIGHT_SCALE;
      return guard ? w.ed : w.ee;
    case 'middle':
      if (guard && exit) return w.md;
      if (guard) return w.mg;
      if (exit) return w.me;
      return WEIGHT_SCALE;
  }
}

/**
 * Authority-free networks (no measurements): a relay's weight is its claim, at most CLAIM_CAP_FACTOR times the
 * median claim of the directory, so one relay's claim cannot outweigh the network (specs/path.md §2.2).
 */
export const CLAIM_CAP_FACTOR = 8;

export function claimCap(claims: readonly number[]): number {
  if (claims.length === 0) return UNMEASURED_CAP;
  return Math.max(UNMEASURED_CAP, CLAIM_CAP_FACTOR * lowMedian(claims));
}
