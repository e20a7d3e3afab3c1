/**
 * Directory authorities for the adversary audit: three authorities that vote, with the real vote, consensus,
 * flag and weight code (protocol/consensus.ts, flags.ts, weights.ts), on what they observed of each relay — its
 * reachability history and a measurement of its capacity. What they observe is the simulator's: a relay's history
 * follows from its availability and age, and a measurement is its real capacity within ±10 % (FlashFlow reports
 * its estimates within about that of the truth), never its claim. The consensus is signed by all three and checked
 * with verifyConsensusHead and checkEntries, as a client checks it.
 */
import { seededRandom } from '../../crypto/drbg.js';
import { IdentityKey } from '../../crypto/keys.js';
import {
  checkEntries,
  computeConsensus,
  descriptorMd,
  encodeSignedHead,
  signHead,
  signVote,
  verifyConsensusHead,
  verifyVote,
  type Consensus,
  type VoteEntry,
} from '../../protocol/consensus.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { isExitPolicy, parseExitPolicy, policyMightAllowPort } from '../../protocol/exit-policy.js';
import { assignFlags, DEFAULT_FLAG_THRESHOLDS, type RelayObservation } from '../../protocol/flags.js';
import { srCommit, srPeriodOf, srRound, type SrState } from '../../protocol/shared-random.js';
import { UNMEASURED_CAP } from '../../protocol/weights.js';
import { uniform } from '../anonymity.js';

export const DAY = 24 * 3600_000;
export const INTERVAL = 3600_000;
export const SR_PERIOD = DAY;

/** What the authorities can observe of a relay. */
export interface Observed {
  readonly d: Descriptor;
  /** Real capacity (bytes/s): what a measurement finds. */
  readonly capacity: number;
  /** Days the authorities have known it. */
  readonly knownDays: number;
  /** Fraction of time up. */
  readonly availability: number;
  /** Up at vote time. */
  readonly up: boolean;
  /** The current uninterrupted session, days. */
  readonly uptimeDays: number;
  /** Measured (false: a relay too new to have been measured). */
  readonly measured?: boolean;
}

export interface Authorities {
  readonly keys: readonly IdentityKey[];
  readonly fingerprints: ReadonlySet<string>;
}

export function authorities(seed: string): Authorities {
  const keys = [0, 1, 2].map((i) => IdentityKey.fromSeed(seededRandom(`${seed}/authority/${i}`)(32)));
  return { keys, fingerprints: new Set(keys.map((k) => k.fingerprint)) };
}

/** What one authority records for a relay: its flags' inputs (RelayObservation). */
function observation(o: Observed, m: number): RelayObservation {
  const policy = parseExitPolicy(o.d.exit);
  // Mean session length from the availability: up sessions of about a day each, one down day in 1/(1 − a).
  const mtbf = o.availability >= 1 ? o.knownDays * DAY : Math.min(o.knownDays * DAY, (DAY * o.availability) / (1 - o.availability));
  return {
    capacity: m > 0 ? Math.min(m, o.d.bw) : Math.min(o.d.bw, UNMEASURED_CAP),
    known: o.knownDays * DAY,
    wfu: o.availability,
    mtbf,
    uptime: o.uptimeDays * DAY,
    exit: isExitPolicy(policy) && policyMightAllowPort(policy, 80) && policyMightAllowPort(policy, 443),
    store: o.d.caps.includes('store'),
    measured: m > 0,
  };
}

/**
 * The consensus valid after `va` from the three authorities' votes on `relays` (those up), following `before`
 * (shared-random state), with reveals drawn from `seed`. Authority i measures a relay at `measure(o, i)` when given,
 * else at its capacity with fresh noise of ±10 % for every `va`.
 */
export function runConsensus(
  a: Authorities,
  relays: readonly Observed[],
  va: number,
  before: SrState | null,
  seed: string,
  measure?: (o: Observed, authority: number) => number,
): Consensus {
  const pn = srPeriodOf(va, SR_PERIOD);
  const { commitPhase } = srRound(va, SR_PERIOD, INTERVAL);
  const votes = a.keys.map((k, i) => {
    const noise = uniform(`${seed}/measure/${i}/${va}`);
    const seen = relays.filter((o) => o.up);
    const ms = seen.map((o) => (o.measured === false ? 0 : measure ? measure(o, i) : Math.max(1, Math.round(o.capacity * (0.9 + 0.2 * noise())))));
    const flags = assignFlags(new Map(seen.map((o, j) => [o.d.fingerprint, observation(o, ms[j]!)])), DEFAULT_FLAG_THRESHOLDS);
    const entries: VoteEntry[] = seen.map((o, j) => ({ id: o.d.id, md: descriptorMd(o.d), flags: flags.get(o.d.fingerprint)!, bw: o.d.bw, m: ms[j]! }));
    const reveal = seededRandom(`${seed}/reveal/${i}/${pn}`)(32);
    return verifyVote(
      signVote(
        { authority: k.publicKey, validAfter: va, measures: true, commit: srCommit(reveal, pn), reveal: commitPhase ? null : reveal, entries },
        k.secretKey,
      ),
      a.fingerprints,
    );
  });
  const { head, entries } = computeConsensus(votes, before, { validAfter: va, interval: INTERVAL, srPeriod: SR_PERIOD, authorities: a.fingerprints });
  const signed = encodeSignedHead(
    head,
    a.keys.map((k) => [k.publicKey, signHead(head, k.secretKey)] as const),
  );
  return checkEntries(verifyConsensusHead(signed, a.fingerprints, va), entries);
}
