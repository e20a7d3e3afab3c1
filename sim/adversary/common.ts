/**
 * What every scenario of the adversary audit (bench/audit-adversary.ts, docs/adversary-audit.md) shares: the row
 * it reports, the options, and the honest network — the synthetic directory of sim/anonymity.ts (heavy-tailed
 * bandwidth, exits, hosting /16s, families, mixed uptime), signed with the real descriptor code.
 *
 * In the honest network a relay's advertised bandwidth is also its real capacity: honest operators report what
 * they have. Adversaries are added by each scenario, with a real capacity of their own and whatever they claim.
 */
import { crossCheck } from '../../client/directory.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { honestSpecs, HONEST_PREFIX, signSpecs, T0, type RelaySpec } from '../anonymity.js';

export interface AuditOptions {
  /** Smaller populations and fewer trials (the CI run). */
  quick: boolean;
  seed: string;
  /** Progress lines (stderr). */
  progress?: (msg: string) => void;
}

/** One line of the audit: an adversary with given resources, what it achieved, and what it should achieve at most. */
export interface AuditRow {
  /** Stable key, e.g. "bandwidth/first-guard". */
  id: string;
  /** Adversary number and name from the audit's list (1–6). */
  adversary: string;
  resources: string;
  metric: string;
  /** The figure as a number (its unit is the metric's). */
  value: number;
  /** The figure as printed. */
  display: string;
  goal: string;
  /** Whether the figure meets the goal. */
  met: boolean;
  /** The published figure of the design this one is measured against, or "—". */
  anchor: string;
  /** A figure without a goal: what a network without authorities loses (SECURITY.md). */
  informational?: boolean;
}

export interface HonestNetwork {
  readonly specs: readonly RelaySpec[];
  readonly raws: readonly Uint8Array[];
  /** The directory as a client accepts it (cross-checked from three sources that agree). */
  readonly descriptors: readonly Descriptor[];
  /** Real capacity by fingerprint (bytes per second). */
  readonly capacity: ReadonlyMap<string, number>;
  /** Availability (probability of being up on a given day) by fingerprint. */
  readonly availability: ReadonlyMap<string, number>;
}

const cache = new Map<string, HonestNetwork>();

/** The honest network of `n` relays for `seed` (built once per process). */
export function honestNetwork(n: number, seed: string): HonestNetwork {
  const key = `${n}/${seed}`;
  const have = cache.get(key);
  if (have) return have;
  const specs = honestSpecs({ honest: n, seed });
  const raws = signSpecs(specs, seed, HONEST_PREFIX);
  const { accepted } = crossCheck([raws, raws, raws], T0);
  const byNick = new Map(specs.map((s) => [`${HONEST_PREFIX}${s.label}`, s]));
  const capacity = new Map<string, number>();
  const availability = new Map<string, number>();
  for (const d of accepted) {
    const s = byNick.get(d.nick)!;
    capacity.set(d.fingerprint, Math.max(1, s.bw));
    availability.set(d.fingerprint, s.availability);
  }
  const descriptors = [...accepted].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  const net = { specs, raws, descriptors, capacity, availability };
  cache.set(key, net);
  return net;
}

export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)} %`;

/** The median of a list of numbers (the lower middle for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}
