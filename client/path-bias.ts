/**
 * Path-bias accounting (specs/path.md §3.1, after Tor's path-spec §7): a guard that fails far more of the circuits
 * built through it than the network explains is either broken or selectively destroying circuits — killing those
 * whose last hop is not its accomplice, so that the circuits that survive are the ones it can watch end to end.
 *
 * For each guard the client counts attempts (builds sent through it after its link opened) and successes. Once
 * PB_MIN_ATTEMPTS attempts are counted, the success rate is judged:
 *
 *   rate < PB_NOTICE (70 %)   notice      a `guard:path-bias` event at level "notice"
 *   rate < PB_WARN (50 %)     warn        … at level "warn"
 *   rate < PB_EXTREME (30 %)  extreme     … at level "extreme"; with reaction "avoid" (the default) the guard is
 *                                         disabled: no longer used, as if unlisted, and replaced by the usual rules
 *
 * Counts are halved when attempts reach PB_SCALE, so old behaviour fades. Pure: the caller keeps the counts in its
 * guard records.
 */

export const PB_MIN_ATTEMPTS = 20;
export const PB_NOTICE = 0.7;
export const PB_WARN = 0.5;
export const PB_EXTREME = 0.3;
export const PB_SCALE = 300;

export type PathBiasLevel = 'ok' | 'notice' | 'warn' | 'extreme';
export type PathBiasReaction = 'warn' | 'avoid';

export interface PathBiasCounts {
  attempts: number;
  successes: number;
}

/** Counts one attempt's outcome and returns the level it leaves the guard at. */
export function recordAttempt(c: PathBiasCounts, succeeded: boolean): PathBiasLevel {
  c.attempts++;
  if (succeeded) c.successes++;
  if (c.attempts >= PB_SCALE) {
    c.attempts = Math.floor(c.attempts / 2);
    c.successes = Math.floor(c.successes / 2);
  }
  return levelOf(c);
}

export function levelOf(c: PathBiasCounts): PathBiasLevel {
  if (c.attempts < PB_MIN_ATTEMPTS) return 'ok';
  const rate = c.successes / c.attempts;
  if (rate < PB_EXTREME) return 'extreme';
  if (rate < PB_WARN) return 'warn';
  if (rate < PB_NOTICE) return 'notice';
  return 'ok';
}
