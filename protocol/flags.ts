/**
 * Relay flags (specs/directory.md §7.4): what the directory authorities say about a relay, earned over time from
 * what they observe — reachability tests (the relay's address dialled and its identity proven), how long they have
 * known it, its weighted fractional uptime and mean time between failures, and its measured capacity — never from
 * the relay's own word. A flag is in the consensus when a strict majority of the authorities that voted on the relay
 * set it.
 *
 * Pure: the caller supplies the observations and the thresholds; nothing here reads a clock.
 *
 *   Fast    capacity at least FAST_MIN, or among the fastest 7/8 of the running relays
 *   Stable  weighted MTBF at least the median of the running relays, or at least STABLE_MTBF
 *   Guard   Fast and Stable, known for GUARD_MIN_KNOWN, weighted fractional uptime at least GUARD_MIN_WFU, and a
 *           capacity among the fastest quarter or at least GUARD_BW_GUARANTEE
 *   Exit    an exit policy that might allow both port 80 and port 443
 *   Holder  a store relay (capability "store") that is Fast and Stable and has been up for HOLDER_MIN_UPTIME without
 *           interruption: content, endpoint descriptors and mailbox slots are placed only at holders
 *   Dir     Stable and known for DIR_MIN_KNOWN: a directory source for clients
 *
 * Measured is not an observation of behaviour: it says the weight comes from measurements (§7.5) rather than from
 * the relay's claim capped at the unmeasured cap.
 */

export const Flag = {
  FAST: 1 << 0,
  STABLE: 1 << 1,
  GUARD: 1 << 2,
  EXIT: 1 << 3,
  HOLDER: 1 << 4,
  DIR: 1 << 5,
  MEASURED: 1 << 6,
} as const;
export type FlagName = keyof typeof Flag;
/** Every flag bit defined; a consensus or vote with another bit set is refused (ERR_SCHEMA). */
export const ALL_FLAGS = Object.values(Flag).reduce((a, b) => a | b, 0);

export function hasFlag(flags: number, f: number): boolean {
  return (flags & f) === f;
}

/** The flag names set in `flags`, in bit order (for people: status pages, logs). */
export function flagNames(flags: number): FlagName[] {
  return (Object.keys(Flag) as FlagName[]).filter((k) => hasFlag(flags, Flag[k]));
}

const DAY = 24 * 3600_000;

/** When a relay earns each flag (specs/directory.md §7.4). Test networks shorten the times. */
export interface FlagThresholds {
  /** Fast regardless of rank at this capacity (bytes/s). */
  fastMin: number;
  /** Stable regardless of rank at this weighted MTBF (ms). */
  stableMtbf: number;
  guardMinKnown: number;
  /** Weighted fractional uptime, 0..1. */
  guardMinWfu: number;
  /** Guard regardless of rank at this capacity (bytes/s). */
  guardBwGuarantee: number;
  holderMinUptime: number;
  dirMinKnown: number;
}

export const DEFAULT_FLAG_THRESHOLDS: FlagThresholds = {
  fastMin: 100_000,
  stableMtbf: 7 * DAY,
  guardMinKnown: 8 * DAY,
  guardMinWfu: 0.98,
  guardBwGuarantee: 2_000_000,
  holderMinUptime: 4 * DAY,
  dirMinKnown: DAY,
};

/** What one authority observed of one running relay. */
export interface RelayObservation {
  /** Capacity used for ranking: the authority's own measurement, else the claim capped at the unmeasured cap. */
  capacity: number;
  /** How long the authority has known the relay (ms). */
  known: number;
  /** Weighted fractional uptime, 0..1. */
  wfu: number;
  /** Weighted mean time between failures (ms), counting the current session. */
  mtbf: number;
  /** The current uninterrupted session (ms). */
  uptime: number;
  /** The exit policy might allow ports 80 and 443. */
  exit: boolean;
  /** The descriptor lists the "store" capability. */
  store: boolean;
  /** The weight is the authority's measurement. */
  measured: boolean;
}

/** The k-th smallest of `xs` at quantile q (0..1), the lower one between two. */
function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Infinity;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * (s.length - 1))))]!;
}

/**
 * The flags one authority votes for each running relay. Ranks (fastest 7/8, fastest quarter, median MTBF) are taken
 * over all the running relays given.
 */
export function assignFlags(relays: ReadonlyMap<string, RelayObservation>, t: FlagThresholds = DEFAULT_FLAG_THRESHOLDS): Map<string, number> {
  const obs = [...relays.values()];
  const fastCut = quantile(
    obs.map((o) => o.capacity),
    1 / 8,
  );
  const guardCut = quantile(
    obs.map((o) => o.capacity),
    3 / 4,
  );
  const mtbfMedian = quantile(
    obs.map((o) => o.mtbf),
    1 / 2,
  );
  const out = new Map<string, number>();
  for (const [fp, o] of relays) {
    let f = 0;
    const fast = o.capacity >= t.fastMin || o.capacity >= fastCut;
    const stable = o.mtbf >= t.stableMtbf || o.mtbf >= mtbfMedian;
    if (fast) f |= Flag.FAST;
    if (stable) f |= Flag.STABLE;
    if (fast && stable && o.known >= t.guardMinKnown && o.wfu >= t.guardMinWfu && (o.capacity >= t.guardBwGuarantee || o.capacity >= guardCut)) f |= Flag.GUARD;
    if (o.exit) f |= Flag.EXIT;
    if (o.store && fast && stable && o.uptime >= t.holderMinUptime) f |= Flag.HOLDER;
    if (stable && o.known >= t.dirMinKnown) f |= Flag.DIR;
    if (o.measured) f |= Flag.MEASURED;
    out.set(fp, f);
  }
  return out;
}
