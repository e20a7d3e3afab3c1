/**
 * Votes and the consensus (specs/directory.md §7): the network's one view. Each directory authority signs a vote —
 * the relays it found reachable, the flags it gives them, their claimed and measured capacity, and its part of the
 * shared-random protocol — and every authority computes the same consensus from the same votes, deterministically,
 * and signs it. A consensus is valid for a client when a strict majority of its configured authorities signed it.
 *
 *   entry      = CBOR [ id bytes(32), md bytes(16), flags uint, w uint ]                    ascending id
 *   ed         = H(entry_1 | … | entry_n, "allium-v1:consensus-entries")
 *   head       = CBOR { v: 2, va, fu, vu, iv, auth, sr, w, uc, n, ed }                      (§7.2)
 *   cd         = H(head, "allium-v1:consensus-head")                                        the consensus digest
 *   signature  = Ed25519(authority, "allium-v1 consensus head" | cd)
 *   signed     = CBOR { h: head, sigs: [ [authority bytes(32), signature bytes(64)], … ] } ascending authority
 *
 *   vote body  = CBOR { v: 2, a, va, ms, sr: { c, r }, r: [ [id, md, flags, bw, m], … ] }   ascending id
 *   vote       = CBOR { b: vote body, s: Ed25519(a, "allium-v1 vote" | b) }
 *
 * The head is small (it commits to the entries through ed), so it travels alone and whole; the entries travel in
 * pages, or as a diff against a consensus the receiver holds (§7.3), and are checked against ed before use.
 *
 * `md` names the routing-relevant fields of the relay's descriptor — identity, onion key, address, family, exit policy
 * and capabilities — so a client uses a relay only with a descriptor that says what the authorities checked; it
 * changes when the operator changes those or the onion key rotates, not at every renewal, which keeps diffs small.
 * Because it covers the onion key, a descriptor whose md a valid consensus lists is usable after its `exp`
 * (specs/directory.md §6.6): a client downloads a descriptor again only when its md changes.
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { fingerprintOf } from '../crypto/keys.js';
import { concatBytes, toHex, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import type { Descriptor } from './descriptor.js';
import { CryptoError, ProtocolError } from './errors.js';
import { ALL_FLAGS, Flag, hasFlag } from './flags.js';
import { nextSrState, type SrState } from './shared-random.js';
import { consensusWeight, positionWeights, UNMEASURED_CAP, WEIGHT_SCALE, type PositionWeights } from './weights.js';

export const CONSENSUS_VERSION = 2;
/** Relays one consensus or vote lists at most. */
export const MAX_CONSENSUS_RELAYS = 100_000;
/** Authorities at most (signatures on a head, votes per consensus). */
export const MAX_AUTHORITIES = 16;
/** A signed head, signatures included. */
export const MAX_CONSENSUS_HEAD_BYTES = 8192;
/** Entries in one `consensus-entries` page or changes in one `consensus-diff` page. */
export const CONSENSUS_PAGE_ENTRIES = 2000;
/** A signed vote: 100,000 entries of at most 64 bytes, and the rest. */
export const MAX_VOTE_BYTES = 8 * 1024 * 1024;
export const MD_LEN = 16;

const CTX_HEAD = utf8('allium-v1 consensus head');
const CTX_VOTE = utf8('allium-v1 vote');
const L_ENTRIES = utf8('allium-v1:consensus-entries');
const L_HEAD = utf8('allium-v1:consensus-head');
const L_MD = utf8('allium-v1:consensus-md');

export interface ConsensusEntry {
  readonly id: Uint8Array;
  readonly md: Uint8Array;
  readonly flags: number;
  /** Consensus weight (bytes/s). */
  readonly w: number;
}

export const zEntry = z
  .tuple([zBytes(32), zBytes(MD_LEN), zUint(ALL_FLAGS), zUint(2 ** 40)])
  .refine((e) => (e[2] & ~ALL_FLAGS) === 0, { message: 'unknown flag' });
const zPair = z.tuple([zBytes(32), zBytes(32)]);

const headSchema = z.strictObject({
  v: z.literal(CONSENSUS_VERSION),
  va: zUint(),
  fu: zUint(),
  vu: zUint(),
  iv: zUint().min(1),
  auth: z.array(zBytes(32)).min(1).max(MAX_AUTHORITIES),
  sr: z.strictObject({
    pn: zUint(),
    srp: zUint().min(1),
    cur: zBytes(32).nullable(),
    prev: zBytes(32).nullable(),
    com: z.array(zPair).max(MAX_AUTHORITIES),
    rev: z.array(zPair).max(MAX_AUTHORITIES),
  }),
  w: z.tuple([
    zUint(WEIGHT_SCALE),
    zUint(WEIGHT_SCALE),
    zUint(WEIGHT_SCALE),
    zUint(WEIGHT_SCALE),
    zUint(WEIGHT_SCALE),
    zUint(WEIGHT_SCALE),
    zUint(WEIGHT_SCALE),
  ]),
  uc: zUint(),
  n: zUint(MAX_CONSENSUS_RELAYS),
  ed: zBytes(32),
});
type HeadBody = z.infer<typeof headSchema>;

const signedHeadSchema = z.strictObject({
  h: zBytes(undefined, MAX_CONSENSUS_HEAD_BYTES),
  sigs: z
    .array(z.tuple([zBytes(32), zBytes(64)]))
    .min(1)
    .max(MAX_AUTHORITIES),
});

export interface ConsensusHead {
  readonly validAfter: number;
  readonly freshUntil: number;
  readonly validUntil: number;
  readonly interval: number;
  /** Authorities whose votes the consensus was computed from (fingerprints, ascending). */
  readonly voters: readonly string[];
  readonly sr: SrState & { readonly srp: number };
  readonly weights: PositionWeights;
  readonly unmeasuredCap: number;
  readonly count: number;
  readonly entriesDigest: Uint8Array;
  /** cd: what the authorities sign, and what names this consensus. */
  readonly digest: Uint8Array;
  /** Fingerprints of the configured authorities whose signatures verified. */
  readonly signers: readonly string[];
  /** The head bytes (`h`). */
  readonly head: Uint8Array;
  /** The signed head message as received or produced. */
  readonly raw: Uint8Array;
}

/** A consensus with its entries, checked against the head. */
export interface Consensus extends ConsensusHead {
  readonly entries: readonly ConsensusEntry[];
}

export const majorityOf = (n: number): number => Math.floor(n / 2) + 1;

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** The routing-relevant digest of a descriptor (the entry's md). */
const mds = new WeakMap<object, Uint8Array>();

export function descriptorMd(d: Pick<Descriptor, 'id' | 'onion' | 'addr' | 'family' | 'exit' | 'caps'>): Uint8Array {
  let md = mds.get(d);
  if (!md) {
    const b = encodeCbor({ id: d.id, onion: d.onion, addr: d.addr, family: [...d.family].sort(compareBytes), exit: d.exit, caps: [...d.caps].sort() });
    mds.set(d, (md = crypto().hash(MD_LEN, b, L_MD)));
  }
  return md;
}

export function encodeEntry(e: ConsensusEntry): Uint8Array {
  return encodeCbor([e.id, e.md, e.flags, e.w]);
}

export function entriesDigest(entries: readonly ConsensusEntry[]): Uint8Array {
  const parts = entries.map(encodeEntry);
  let n = 0;
  for (const x of parts) n += x.length;
  const all = new Uint8Array(n);
  let o = 0;
  for (const x of parts) {
    all.set(x, o);
    o += x.length;
  }
  return crypto().hash(32, all, L_ENTRIES);
}

export function headDigest(head: Uint8Array): Uint8Array {
  return crypto().hash(32, head, L_HEAD);
}

function weightsOf(w: readonly number[]): PositionWeights {
  const [gg, gd, mg, me, md, ee, ed] = w as [number, number, number, number, number, number, number];
  return { gg, gd, mg, me, md, ee, ed };
}

/** A signature by one authority over a head (what `consensus-sig` carries). */
export function signHead(head: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return crypto().sign(concatBytes(CTX_HEAD, headDigest(head)), secretKey);
}

export function headSignatureValid(head: Uint8Array, authority: Uint8Array, signature: Uint8Array): boolean {
  return signature.length === 64 && crypto().verify(signature, concatBytes(CTX_HEAD, headDigest(head)), authority);
}

/** The signed head message from a head and signatures (sorted, one per authority). */
export function encodeSignedHead(head: Uint8Array, sigs: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  const seen = new Set<string>();
  const list = [...sigs].filter(([a]) => (seen.has(toHex(a)) ? false : (seen.add(toHex(a)), true))).sort((x, y) => compareBytes(x[0], y[0]));
  return encodeCbor({ h: head, sigs: list.map(([a, s]) => [a, s]) });
}

/**
 * Decodes and verifies a signed head at `now` (specs/directory.md §7.2): the head decodes; its voters are all
 * configured authorities; at least a strict majority of the configured authorities signed it (invalid signatures
 * and signatures by others do not count); va − skew ≤ now < vu. Throws ERR_CBOR_* / ERR_SCHEMA (malformed),
 * ERR_DIRECTORY (unknown voter, not valid now, too few valid signatures).
 */
export function verifyConsensusHead(raw: Uint8Array, authorities: ReadonlySet<string>, now: number, skewMs = 10 * 60_000): ConsensusHead {
  const signed = decodeMessage(signedHeadSchema, raw, MAX_CONSENSUS_HEAD_BYTES + 1024, 'signed consensus head');
  const h = decodeMessage(headSchema, signed.h, MAX_CONSENSUS_HEAD_BYTES, 'consensus head');
  checkHeadShape(h);
  const voters = h.auth.map(fingerprintOf);
  if (voters.some((a) => !authorities.has(a))) throw new ProtocolError('ERR_DIRECTORY', 'consensus computed from a vote of an authority not configured');
  const cd = headDigest(signed.h);
  const msg = concatBytes(CTX_HEAD, cd);
  const signers = new Set<string>();
  for (const [a, s] of signed.sigs) {
    const fp = fingerprintOf(a);
    if (!authorities.has(fp) || signers.has(fp)) continue;
    if (crypto().verify(s, msg, a)) signers.add(fp);
  }
  if (signers.size < majorityOf(authorities.size)) {
    throw new ProtocolError(
      'ERR_DIRECTORY',
      `consensus signed by ${signers.size} of the ${authorities.size} configured authorities (${majorityOf(authorities.size)} needed)`,
    );
  }
  if (h.va > now + skewMs || h.vu <= now) throw new ProtocolError('ERR_DIRECTORY', 'consensus not valid now');
  return headFrom(h, signed.h, cd, [...signers].sort(), raw);
}

/** Decodes a signed head without checking signatures or time (for the entries of a head already verified). */
function headFrom(h: HeadBody, head: Uint8Array, cd: Uint8Array, signers: readonly string[], raw: Uint8Array): ConsensusHead {
  return {
    validAfter: h.va,
    freshUntil: h.fu,
    validUntil: h.vu,
    interval: h.iv,
    voters: h.auth.map(fingerprintOf),
    sr: { pn: h.sr.pn, srp: h.sr.srp, cur: h.sr.cur, prev: h.sr.prev, com: h.sr.com, rev: h.sr.rev },
    weights: weightsOf(h.w),
    unmeasuredCap: h.uc,
    count: h.n,
    entriesDigest: h.ed,
    digest: cd,
    signers,
    head: Uint8Array.from(head),
    raw: Uint8Array.from(raw),
  };
}

function ascending(list: readonly Uint8Array[]): boolean {
  for (let i = 1; i < list.length; i++) if (compareBytes(list[i - 1]!, list[i]!) >= 0) return false;
  return true;
}

function checkHeadShape(h: HeadBody): void {
  if (!(h.va < h.fu && h.fu <= h.vu)) throw new ProtocolError('ERR_DIRECTORY', 'consensus times out of order');
  if (!ascending(h.auth) || !ascending(h.sr.com.map(([a]) => a)) || !ascending(h.sr.rev.map(([a]) => a))) {
    throw new ProtocolError('ERR_DIRECTORY', 'consensus head lists out of order');
  }
}

/**
 * Checks entries against a verified head: exactly `n` of them, identities strictly ascending, known flags only, and
 * their digest is `ed`. Throws ERR_DIRECTORY.
 */
export function checkEntries(head: ConsensusHead, entries: readonly ConsensusEntry[]): Consensus {
  if (entries.length !== head.count) throw new ProtocolError('ERR_DIRECTORY', `consensus has ${entries.length} entries, its head says ${head.count}`);
  if (!ascending(entries.map((e) => e.id))) throw new ProtocolError('ERR_DIRECTORY', 'consensus entries out of order');
  for (const e of entries) if ((e.flags & ~ALL_FLAGS) !== 0) throw new ProtocolError('ERR_DIRECTORY', 'unknown flag');
  if (!crypto().equal(entriesDigest(entries), head.entriesDigest)) throw new ProtocolError('ERR_DIRECTORY', 'consensus entries do not match the head');
  return { ...head, entries };
}

export function entryFromTuple(t: readonly [Uint8Array, Uint8Array, number, number]): ConsensusEntry {
  return { id: t[0], md: t[1], flags: t[2], w: t[3] };
}

export function entryToTuple(e: ConsensusEntry): [Uint8Array, Uint8Array, number, number] {
  return [e.id, e.md, e.flags, e.w];
}

// ---------------------------------------------------------------------------------------------------------------
// Diffs (§7.3)

/** One change of a diff: the new entry for an identity, or null when the identity leaves. */
export type EntryChange = readonly [Uint8Array, ConsensusEntry | null];

/** The changes from `from` to `to` (both ascending), ascending by identity. */
export function diffEntries(from: readonly ConsensusEntry[], to: readonly ConsensusEntry[]): EntryChange[] {
  const out: EntryChange[] = [];
  let i = 0;
  let j = 0;
  while (i < from.length || j < to.length) {
    const a = from[i];
    const b = to[j];
    const c = !a ? 1 : !b ? -1 : compareBytes(a.id, b.id);
    if (c < 0) {
      out.push([a!.id, null]);
      i++;
    } else if (c > 0) {
      out.push([b!.id, b!]);
      j++;
    } else {
      if (!crypto().equal(encodeEntry(a!), encodeEntry(b!))) out.push([b!.id, b!]);
      i++;
      j++;
    }
  }
  return out;
}

/** Applies changes (ascending by identity) to entries (ascending). Throws ERR_DIRECTORY on a malformed diff. */
export function applyDiff(from: readonly ConsensusEntry[], changes: readonly EntryChange[]): ConsensusEntry[] {
  if (!ascending(changes.map(([id]) => id))) throw new ProtocolError('ERR_DIRECTORY', 'consensus diff out of order');
  const out: ConsensusEntry[] = [];
  let i = 0;
  for (const [id, e] of changes) {
    if (e && !crypto().equal(e.id, id)) throw new ProtocolError('ERR_DIRECTORY', 'consensus diff entry under another identity');
    while (i < from.length && compareBytes(from[i]!.id, id) < 0) out.push(from[i++]!);
    const same = i < from.length && compareBytes(from[i]!.id, id) === 0;
    if (same) i++;
    else if (!e) throw new ProtocolError('ERR_DIRECTORY', 'consensus diff removes an identity that is not there');
    if (e) out.push(e);
  }
  while (i < from.length) out.push(from[i++]!);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Votes (§7.1)

export interface VoteEntry {
  readonly id: Uint8Array;
  readonly md: Uint8Array;
  readonly flags: number;
  /** The relay's claimed bandwidth (its descriptor's bw). */
  readonly bw: number;
  /** This authority's measurement (bytes/s), 0 for none. */
  readonly m: number;
}

export interface VoteBody {
  readonly authority: Uint8Array;
  readonly validAfter: number;
  /** The authority measures bandwidth. */
  readonly measures: boolean;
  readonly commit: Uint8Array | null;
  readonly reveal: Uint8Array | null;
  readonly entries: readonly VoteEntry[];
}

export interface Vote extends VoteBody {
  readonly fingerprint: string;
  readonly raw: Uint8Array;
}

const voteSchema = z.strictObject({
  v: z.literal(CONSENSUS_VERSION),
  a: zBytes(32),
  va: zUint(),
  ms: z.boolean(),
  sr: z.strictObject({ c: zBytes(32).nullable(), r: zBytes(32).nullable() }),
  r: z.array(z.tuple([zBytes(32), zBytes(MD_LEN), zUint(ALL_FLAGS), zUint(2 ** 40), zUint(2 ** 40)])).max(MAX_CONSENSUS_RELAYS),
});
const signedVoteSchema = z.strictObject({ b: zBytes(undefined, MAX_VOTE_BYTES), s: zBytes(64) });

export function signVote(v: VoteBody, secretKey: Uint8Array): Uint8Array {
  const entries = [...v.entries].sort((x, y) => compareBytes(x.id, y.id));
  const b = encodeCbor({
    v: CONSENSUS_VERSION,
    a: v.authority,
    va: v.validAfter,
    ms: v.measures,
    sr: { c: v.commit, r: v.reveal },
    r: entries.map((e) => [e.id, e.md, e.flags, e.bw, e.m]),
  });
  const s = crypto().sign(concatBytes(CTX_VOTE, b), secretKey);
  return encodeCbor({ b, s });
}

/**
 * Verifies a vote from one of `authorities`. Throws ERR_CBOR_* / ERR_SCHEMA, ERR_DIRECTORY (unknown authority,
 * entries out of order or with unknown flags), ERR_SIGNATURE.
 */
export function verifyVote(raw: Uint8Array, authorities: ReadonlySet<string>): Vote {
  const signed = decodeMessage(signedVoteSchema, raw, MAX_VOTE_BYTES + 256, 'signed vote');
  const body = decodeMessage(voteSchema, signed.b, MAX_VOTE_BYTES, 'vote');
  const fp = fingerprintOf(body.a);
  if (!authorities.has(fp)) throw new ProtocolError('ERR_DIRECTORY', 'vote from an authority not configured');
  if (!crypto().verify(signed.s, concatBytes(CTX_VOTE, signed.b), body.a)) throw new CryptoError('ERR_SIGNATURE', 'vote signature does not verify');
  if (!ascending(body.r.map(([id]) => id))) throw new ProtocolError('ERR_DIRECTORY', 'vote entries out of order');
  for (const e of body.r) if ((e[2] & ~ALL_FLAGS) !== 0) throw new ProtocolError('ERR_DIRECTORY', 'unknown flag');
  return {
    authority: body.a,
    fingerprint: fp,
    validAfter: body.va,
    measures: body.ms,
    commit: body.sr.c,
    reveal: body.sr.r,
    entries: body.r.map(([id, md, flags, bw, m]) => ({ id, md, flags, bw, m })),
    raw: Uint8Array.from(raw),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Computing the consensus (§7.4–§7.6)

export interface ConsensusParams {
  readonly validAfter: number;
  readonly interval: number;
  /** Placement (shared-random) period, ms. */
  readonly srPeriod: number;
  /** The configured authorities (fingerprints). */
  readonly authorities: ReadonlySet<string>;
  readonly unmeasuredCap?: number;
}

/** Flags voted, not derived: the consensus sets them by majority of the votes listing the relay. */
const VOTED_FLAGS = [Flag.FAST, Flag.STABLE, Flag.GUARD, Flag.EXIT, Flag.HOLDER, Flag.DIR];

/**
 * The consensus valid after `validAfter` from the votes for it (one per configured authority at most; others and
 * votes for another time are ignored) and the shared-random state of the consensus before it. Deterministic: every
 * authority with the same votes and the same previous consensus computes the same head and entries. Throws
 * ERR_DIRECTORY when fewer than a strict majority of the configured authorities voted.
 */
export function computeConsensus(votes: readonly Vote[], before: SrState | null, p: ConsensusParams): { head: Uint8Array; entries: ConsensusEntry[] } {
  const byAuthority = new Map<string, Vote>();
  for (const v of votes)
    if (p.authorities.has(v.fingerprint) && v.validAfter === p.validAfter && !byAuthority.has(v.fingerprint)) byAuthority.set(v.fingerprint, v);
  const used = [...byAuthority.values()].sort((x, y) => compareBytes(x.authority, y.authority));
  if (used.length < majorityOf(p.authorities.size)) {
    throw new ProtocolError('ERR_DIRECTORY', `${used.length} votes of ${p.authorities.size} authorities: a consensus needs ${majorityOf(p.authorities.size)}`);
  }
  const measuring = used.filter((v) => v.measures).length;
  const listing = new Map<string, VoteEntry[]>();
  for (const v of used) {
    for (const e of v.entries) {
      const fp = toHex(e.id);
      let l = listing.get(fp);
      if (!l) listing.set(fp, (l = []));
      l.push(v.measures ? e : { ...e, m: 0 });
    }
  }
  const need = majorityOf(used.length);
  const cap = p.unmeasuredCap ?? UNMEASURED_CAP;
  const entries: ConsensusEntry[] = [];
  for (const l of listing.values()) {
    if (l.length < need) continue;
    // The md most votes give (ties: the smallest), flags by majority of the votes listing the relay.
    const mds = new Map<string, { md: Uint8Array; n: number }>();
    for (const e of l) {
      const k = toHex(e.md);
      const x = mds.get(k);
      if (x) x.n++;
      else mds.set(k, { md: e.md, n: 1 });
    }
    const md = [...mds.values()].sort((x, y) => y.n - x.n || compareBytes(x.md, y.md))[0]!.md;
    let flags = 0;
    for (const f of VOTED_FLAGS) if (l.filter((e) => hasFlag(e.flags, f)).length * 2 > l.length) flags |= f;
    const { w, measured } = consensusWeight(
      l.map((e) => e.bw),
      l.filter((e) => e.m > 0).map((e) => e.m),
      measuring,
      cap,
    );
    if (measured) flags |= Flag.MEASURED;
    entries.push({ id: l[0]!.id, md, flags, w });
  }
  entries.sort((x, y) => compareBytes(x.id, y.id));
  let G = 0;
  let E = 0;
  let D = 0;
  let M = 0;
  for (const e of entries) {
    const g = hasFlag(e.flags, Flag.GUARD);
    const x = hasFlag(e.flags, Flag.EXIT);
    if (g && x) D += e.w;
    else if (g) G += e.w;
    else if (x) E += e.w;
    else M += e.w;
  }
  const pw = positionWeights(G, E, D, M);
  const sr = nextSrState(
    before,
    p.validAfter,
    p.interval,
    p.srPeriod,
    used.map((v) => ({ a: v.authority, c: v.commit, r: v.reveal })),
  );
  const head = encodeCbor({
    v: CONSENSUS_VERSION,
    va: p.validAfter,
    fu: p.validAfter + p.interval,
    vu: p.validAfter + 3 * p.interval,
    iv: p.interval,
    auth: used.map((v) => v.authority),
    sr: { pn: sr.pn, srp: p.srPeriod, cur: sr.cur, prev: sr.prev, com: sr.com.map(([a, c]) => [a, c]), rev: sr.rev.map(([a, r]) => [a, r]) },
    w: [pw.gg, pw.gd, pw.mg, pw.me, pw.md, pw.ee, pw.ed],
    uc: cap,
    n: entries.length,
    ed: entriesDigest(entries),
  });
  return { head, entries };
}

/** Decodes a head (already verified, e.g. our own) into its fields, without signature or time checks. */
export function readHead(head: Uint8Array, signed: Uint8Array, signers: readonly string[] = []): ConsensusHead {
  const h = decodeMessage(headSchema, head, MAX_CONSENSUS_HEAD_BYTES, 'consensus head');
  return headFrom(h, head, headDigest(head), signers, signed);
}
