/**
 * The shared random value (specs/directory.md §7.6), a commit-and-reveal protocol among the directory authorities
 * after Tor's proposal 250: one value per placement period that nobody knew before the period's protocol run ended,
 * and that no single authority chose. Placement salts relay positions with it (specs/content.md §6.1), so nobody
 * can compute — or grind keys for — where anything will live in a period before that period's value is out.
 *
 *   period     pn = ⌊va / srp⌋, of length srp (24 h by default); rounds = ⌊srp / interval⌋ consensuses per period
 *   round      ⌊(va mod srp) / interval⌋; rounds 0 .. rounds/2 − 1 are the commit phase, the rest the reveal phase
 *   reveal     R = random(32), drawn by each authority for each period it takes part in
 *   commit     C = H(R | u64(pn), "allium-v1:srv-commit")
 *
 *   during period pn the consensuses accumulate the commits their votes carry in the commit phase (an authority's
 *   first commit of the period counts, later ones are ignored), then the reveals in the reveal phase (a reveal counts
 *   only if it opens the authority's commit);
 *
 *   the first consensus of period pn + 1 carries
 *     cur  = H("allium-v1 shared random" | u64(pn + 1) | u8(n) | a_1 | R_1 | … | a_n | R_n | prev, "allium-v1:shared-random")
 *            over the n reveals of period pn in ascending order of authority identity a, prev = the value of period
 *            pn (0^32 if none); with no reveal, or when the consensus before it is not of period pn:
 *     cur  = H(u64(pn + 1) | prev, "allium-v1:srv-disaster")
 *     prev = the value of period pn (null if unknown)
 *
 * Every input comes from the previous consensus and the votes, so every authority that holds the same previous
 * consensus and the same votes computes the same state. Pure: no clock, no randomness (the caller draws R).
 */
import { crypto } from '../crypto/index.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';

const L_COMMIT = utf8('allium-v1:srv-commit');
const L_SRV = utf8('allium-v1:shared-random');
const L_DISASTER = utf8('allium-v1:srv-disaster');
const SRV_TOKEN = utf8('allium-v1 shared random');

/** Default placement period: a day, as Tor's. */
export const DEFAULT_SR_PERIOD_MS = 24 * 3600_000;

/** The shared-random state a consensus carries. */
export interface SrState {
  /** The period this consensus belongs to. */
  readonly pn: number;
  /** The value salting placement during period pn (null before the first run ever finished: see srvFor). */
  readonly cur: Uint8Array | null;
  /** The value of period pn − 1. */
  readonly prev: Uint8Array | null;
  /** Commits of period pn's run so far: [authority, C], ascending by authority. */
  readonly com: readonly (readonly [Uint8Array, Uint8Array])[];
  /** Reveals of period pn's run so far: [authority, R], ascending by authority. */
  readonly rev: readonly (readonly [Uint8Array, Uint8Array])[];
}

/** What an authority's vote contributes: its commit for the period, and its reveal in the reveal phase. */
export interface SrVote {
  readonly a: Uint8Array;
  readonly c: Uint8Array | null;
  readonly r: Uint8Array | null;
}

function u64(n: number): Uint8Array {
  return new ByteWriter(8).u64(BigInt(n)).done();
}

export function srPeriodOf(t: number, srp: number): number {
  return Math.floor(t / srp);
}

/** The round of a consensus valid after `va` within its period, and the number of rounds per period. */
export function srRound(va: number, srp: number, interval: number): { round: number; rounds: number; commitPhase: boolean } {
  const rounds = Math.max(2, Math.floor(srp / interval));
  const round = Math.floor((va - srPeriodOf(va, srp) * srp) / interval);
  return { round, rounds, commitPhase: round < Math.floor(rounds / 2) };
}

export function srCommit(reveal: Uint8Array, pn: number): Uint8Array {
  return crypto().hash(32, concatBytes(reveal, u64(pn)), L_COMMIT);
}

const compare = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** The value of period pn from the reveals of period pn − 1 (ascending by authority) and that period's value. */
export function computeSrv(pn: number, reveals: readonly (readonly [Uint8Array, Uint8Array])[], prev: Uint8Array | null): Uint8Array {
  if (reveals.length === 0) return disasterSrv(pn, prev);
  const parts: Uint8Array[] = [SRV_TOKEN, u64(pn), Uint8Array.of(Math.min(255, reveals.length))];
  for (const [a, r] of reveals) parts.push(a, r);
  parts.push(prev ?? new Uint8Array(32));
  return crypto().hash(32, concatBytes(...parts), L_SRV);
}

/** The value used when a period's protocol run produced nothing usable. */
export function disasterSrv(pn: number, prev: Uint8Array | null): Uint8Array {
  return crypto().hash(32, concatBytes(u64(pn), prev ?? new Uint8Array(32)), L_DISASTER);
}

/**
 * The state of the consensus valid after `va`, from the state of the consensus before it (null: none) and the
 * votes it is computed from.
 */
export function nextSrState(before: SrState | null, va: number, interval: number, srp: number, votes: readonly SrVote[]): SrState {
  const pn = srPeriodOf(va, srp);
  const { commitPhase } = srRound(va, srp, interval);
  let cur: Uint8Array | null;
  let prev: Uint8Array | null;
  let com: (readonly [Uint8Array, Uint8Array])[];
  let rev: (readonly [Uint8Array, Uint8Array])[];
  if (before && before.pn === pn) {
    cur = before.cur;
    prev = before.prev;
    com = [...before.com];
    rev = [...before.rev];
  } else {
    const continuous = before !== null && before.pn === pn - 1;
    cur = continuous ? computeSrv(pn, before.rev, before.cur) : disasterSrv(pn, before?.cur ?? null);
    prev = continuous ? before.cur : null;
    com = [];
    rev = [];
  }
  const has = (list: readonly (readonly [Uint8Array, Uint8Array])[], a: Uint8Array): boolean => list.some(([x]) => compare(x, a) === 0);
  for (const v of votes) {
    if (commitPhase) {
      if (v.c && !has(com, v.a)) com.push([v.a, v.c]);
    } else if (v.r && !has(rev, v.a)) {
      const c = com.find(([x]) => compare(x, v.a) === 0);
      if (c && crypto().equal(srCommit(v.r, pn), c[1])) rev.push([v.a, v.r]);
    }
  }
  com.sort((x, y) => compare(x[0], y[0]));
  rev.sort((x, y) => compare(x[0], y[0]));
  return { pn, cur, prev, com, rev };
}

/**
 * The value placement uses at time `now` given the newest consensus's state: its `cur` when the consensus is of
 * the current period; the disaster value of the current period otherwise (a client with a stale consensus, or a
 * network without authorities computes the same function, which anyone can also compute in advance).
 */
export function srvFor(state: SrState | null, now: number, srp: number): { pn: number; srv: Uint8Array } {
  const pn = srPeriodOf(now, srp);
  if (state && state.pn === pn && state.cur) return { pn, srv: state.cur };
  return { pn, srv: disasterSrv(pn, state && state.pn === pn - 1 ? state.cur : null) };
}
