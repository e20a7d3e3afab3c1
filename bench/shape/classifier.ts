/**
 * The shape audit's adversary for section 1 (bench/shape/purpose.ts): k-nearest neighbours on standardised features,
 * scored by stratified k-fold cross-validation. The adversary is given every choice that helps it: the best k and
 * the best of several feature sets, each chosen by its cross-validated accuracy (which flatters it a little: the
 * figure is an upper estimate of what this classifier does on unseen circuits).
 */

export interface Sample {
  readonly label: string;
  readonly features: readonly number[];
}

export interface Scored {
  readonly accuracy: number;
  readonly k: number;
  readonly featureSet: string;
  /** Confusion counts: true label → predicted label → count. */
  readonly confusion: Record<string, Record<string, number>>;
}

function standardise(rows: number[][]): number[][] {
  const d = rows[0]?.length ?? 0;
  const mean = new Array<number>(d).fill(0);
  const sd = new Array<number>(d).fill(0);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j]! += r[j]! / rows.length;
  for (const r of rows) for (let j = 0; j < d; j++) sd[j]! += (r[j]! - mean[j]!) ** 2 / rows.length;
  return rows.map((r) => r.map((x, j) => (sd[j]! > 0 ? (x - mean[j]!) / Math.sqrt(sd[j]!) : 0)));
}

/** Folds that keep each label's share (samples dealt round-robin per label, in a fixed shuffled order). */
function folds(samples: readonly Sample[], n: number, random: () => number): number[] {
  const fold = new Array<number>(samples.length).fill(0);
  const byLabel = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const l = byLabel.get(s.label) ?? [];
    l.push(i);
    byLabel.set(s.label, l);
  });
  for (const idx of byLabel.values()) {
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    idx.forEach((s, i) => (fold[s] = i % n));
  }
  return fold;
}

function knnAccuracy(samples: readonly Sample[], x: number[][], fold: readonly number[], nFolds: number, k: number): Scored {
  let right = 0;
  const confusion: Record<string, Record<string, number>> = {};
  for (let f = 0; f < nFolds; f++) {
    const train = samples.map((_, i) => i).filter((i) => fold[i] !== f);
    for (let i = 0; i < samples.length; i++) {
      if (fold[i] !== f) continue;
      const d = train.map((t) => {
        let s = 0;
        for (let j = 0; j < x[i]!.length; j++) s += (x[i]![j]! - x[t]![j]!) ** 2;
        return [s, t] as const;
      });
      d.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const votes = new Map<string, number>();
      for (const [dist, t] of d.slice(0, k)) votes.set(samples[t]!.label, (votes.get(samples[t]!.label) ?? 0) + 1 / (1e-9 + dist));
      let best = '';
      let bestV = -1;
      for (const [l, v] of [...votes].sort((a, b) => a[0].localeCompare(b[0]))) if (v > bestV) [best, bestV] = [l, v];
      const truth = samples[i]!.label;
      if (best === truth) right++;
      const row = (confusion[truth] ??= {});
      row[best] = (row[best] ?? 0) + 1;
    }
  }
  return { accuracy: right / samples.length, k, featureSet: '', confusion };
}

/**
 * The best cross-validated accuracy over k ∈ ks and the named feature subsets (indices into Sample.features).
 */
export function bestKnn(
  samples: readonly Sample[],
  featureSets: Readonly<Record<string, readonly number[]>>,
  random: () => number,
  ks: readonly number[] = [1, 3, 5, 9, 15],
  nFolds = 5,
): Scored {
  const fold = folds(samples, nFolds, random);
  let best: Scored | null = null;
  for (const [name, cols] of Object.entries(featureSets)) {
    const x = standardise(samples.map((s) => cols.map((c) => s.features[c]!)));
    for (const k of ks) {
      const r = knnAccuracy(samples, x, fold, nFolds, k);
      if (!best || r.accuracy > best.accuracy) best = { ...r, featureSet: name };
    }
  }
  return best!;
}

/**
 * Each feature's own cross-validated k-NN accuracy (best k of `ks`), best first: which single features still tell
 * purposes apart (what a machine must close next).
 */
export function featureImportance(
  samples: readonly Sample[],
  names: readonly string[],
  random: () => number,
  ks: readonly number[] = [5, 15],
  nFolds = 5,
): { feature: string; accuracy: number }[] {
  const fold = folds(samples, nFolds, random);
  return names
    .map((feature, c) => {
      const x = standardise(samples.map((s) => [s.features[c]!]));
      let accuracy = 0;
      for (const k of ks) accuracy = Math.max(accuracy, knnAccuracy(samples, x, fold, nFolds, k).accuracy);
      return { feature, accuracy };
    })
    .sort((a, b) => b.accuracy - a.accuracy || a.feature.localeCompare(b.feature));
}
