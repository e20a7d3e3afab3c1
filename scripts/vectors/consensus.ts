/**
 * specs/vectors/consensus.json: directory authorities and the consensus (specs/directory.md §6.5, §7): descriptor
 * digests (md), signed votes of three authorities, the consensus they compute (entries, head, digests, signatures,
 * the signed head), the next consensus and the diff between the two, the shared random value (commits, the value,
 * the disaster value), position weights, a signed view statement, and heads and votes that must be refused.
 */
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import {
  applyDiff,
  checkEntries,
  computeConsensus,
  descriptorMd,
  diffEntries,
  encodeEntry,
  encodeSignedHead,
  entriesDigest,
  headDigest,
  readHead,
  signHead,
  signVote,
  verifyConsensusHead,
  verifyVote,
  type Consensus,
  type VoteEntry,
} from '../../protocol/consensus.js';
import { Flag } from '../../protocol/flags.js';
import { computeSrv, disasterSrv, srCommit } from '../../protocol/shared-random.js';
import { signViewStatement, verifyViewStatement } from '../../protocol/view-statement.js';
import { positionWeights } from '../../protocol/weights.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** The consensus interval and placement period of the vectors. */
const IV = 600_000;
const SRP = 4 * IV;
/** A valid-after in a reveal phase (round 2 of 4): 2025-06-15 12:20 UTC. */
const VA = 1_749_990_000_000;

const fields = (
  i: number,
  key: IdentityKey,
): { id: Uint8Array; onion: Uint8Array; addr: string; family: Uint8Array[]; exit: string[]; caps: ('store' | 'intro' | 'rendezvous')[] } => ({
  id: key.publicKey,
  onion: seeded(`consensus/onion-${i}`)(32),
  addr: `ws://198.51.${100 + i}.7:9001/allium`,
  family: [] as Uint8Array[],
  exit: i === 1 ? ['accept *:80', 'accept *:443', 'reject *:*'] : ['reject *:*'],
  caps: i === 3 ? ['intro', 'rendezvous'] : ['store', 'intro', 'rendezvous'],
});

export function consensusFile(): VectorFile {
  const authorityKeys = [0, 1, 2].map((i) => IdentityKey.fromSeed(seeded(`consensus/authority-${i}`)(32)));
  const authorities = new Set(authorityKeys.map((k) => k.fingerprint));
  const relayKeys = [0, 1, 2, 3].map((i) => IdentityKey.fromSeed(seeded(`consensus/relay-${i}`)(32)));
  const relays = relayKeys.map((k, i) => ({ ...fields(i, k), md: descriptorMd(fields(i, k)) }));
  const reveals = authorityKeys.map((_, i) => seeded(`consensus/reveal-${i}`)(32));
  const pn = Math.floor(VA / SRP);

  // Three votes: authority 2 does not list relay 3, measures nothing; flags and measurements differ.
  const voteEntries: VoteEntry[][] = [
    [
      { id: relays[0]!.id, md: relays[0]!.md, flags: Flag.FAST | Flag.STABLE | Flag.GUARD | Flag.HOLDER | Flag.DIR, bw: 5_000_000, m: 4_000_000 },
      { id: relays[1]!.id, md: relays[1]!.md, flags: Flag.FAST | Flag.EXIT, bw: 2 ** 40, m: 300_000 },
      { id: relays[2]!.id, md: relays[2]!.md, flags: Flag.FAST | Flag.STABLE, bw: 1_000_000, m: 0 },
      { id: relays[3]!.id, md: relays[3]!.md, flags: 0, bw: 50_000, m: 40_000 },
    ],
    [
      { id: relays[0]!.id, md: relays[0]!.md, flags: Flag.FAST | Flag.STABLE | Flag.GUARD | Flag.DIR, bw: 5_000_000, m: 4_500_000 },
      { id: relays[1]!.id, md: relays[1]!.md, flags: Flag.FAST | Flag.EXIT, bw: 2 ** 40, m: 250_000 },
      { id: relays[2]!.id, md: relays[2]!.md, flags: Flag.FAST, bw: 1_000_000, m: 0 },
      { id: relays[3]!.id, md: relays[3]!.md, flags: 0, bw: 50_000, m: 45_000 },
    ],
    [
      { id: relays[0]!.id, md: relays[0]!.md, flags: Flag.FAST | Flag.STABLE | Flag.GUARD | Flag.HOLDER | Flag.DIR, bw: 5_000_000, m: 0 },
      { id: relays[1]!.id, md: relays[1]!.md, flags: Flag.FAST | Flag.EXIT, bw: 2 ** 40, m: 0 },
      { id: relays[2]!.id, md: relays[2]!.md, flags: Flag.FAST | Flag.STABLE, bw: 1_000_000, m: 0 },
    ],
  ];
  const voteRaws = authorityKeys.map((k, i) =>
    signVote(
      { authority: k.publicKey, validAfter: VA, measures: i < 2, commit: srCommit(reveals[i]!, pn), reveal: reveals[i]!, entries: voteEntries[i]! },
      k.secretKey,
    ),
  );
  const votes = voteRaws.map((raw) => verifyVote(raw, authorities));
  // The consensus before, of the same period, whose commit phase recorded all three commits.
  const before = {
    pn,
    cur: seeded('consensus/srv-current')(32),
    prev: seeded('consensus/srv-previous')(32),
    com: authorityKeys.map((k, i) => [k.publicKey, srCommit(reveals[i]!, pn)] as const).sort((a, b) => (toHex(a[0]) < toHex(b[0]) ? -1 : 1)),
    rev: [],
  };
  const params = { validAfter: VA, interval: IV, srPeriod: SRP, authorities };
  const { head, entries } = computeConsensus(votes, before, params);
  const sigs = authorityKeys.map((k) => [k.publicKey, signHead(head, k.secretKey)] as const);
  const signed = encodeSignedHead(head, sigs);
  const verified: Consensus = checkEntries(verifyConsensusHead(signed, authorities, VA), entries);
  check(verified.count === 4 && verified.sr.rev.length === 3, 'the consensus lists four relays and three reveals');

  // The next round: relay 2 loses Stable, relay 3 leaves (no vote lists it).
  const next = computeConsensus(
    votes.map((v, i) => ({
      ...v,
      validAfter: VA + IV,
      entries: voteEntries[i]!.filter((e) => e.id !== relays[3]!.id).map((e) => (e.id === relays[2]!.id ? { ...e, flags: Flag.FAST } : e)),
    })),
    verified.sr,
    { ...params, validAfter: VA + IV },
  );
  const changes = diffEntries(entries, next.entries);
  check(toHex(entriesDigest(applyDiff(entries, changes))) === toHex(entriesDigest(next.entries)), 'the diff applies');

  // Shared random value of the next period from this period's reveals.
  const nextPn = pn + 1;
  const srv = computeSrv(nextPn, verified.sr.rev, verified.sr.cur);
  const disaster = disasterSrv(nextPn, verified.sr.cur);

  const view = { at: VA + 5_000, d: seeded('consensus/view-digest')(32), n: 4, c: verified.digest };
  const viewSig = signViewStatement(view, relayKeys[0]!.secretKey);
  verifyViewStatement(relayKeys[0]!.publicKey, { ...view, s: viewSig });

  // Refusals.
  const oneSig = encodeSignedHead(head, [sigs[0]!]);
  const foreign = IdentityKey.fromSeed(seeded('consensus/foreign')(32));
  const foreignSigs = encodeSignedHead(head, [sigs[0]!, [foreign.publicKey, signHead(head, foreign.secretKey)] as const]);
  const badEntries = [...entries].reverse();
  const unordered = signVote(
    { authority: authorityKeys[0]!.publicKey, validAfter: VA, measures: true, commit: null, reveal: null, entries: voteEntries[0]! },
    authorityKeys[0]!.secretKey,
  );
  const refused = [
    {
      name: 'one signature of three authorities',
      signedHead: toHex(oneSig),
      now: VA,
      code: expectCode(
        errorCodeOf(() => verifyConsensusHead(oneSig, authorities, VA), 'one sig'),
        'ERR_DIRECTORY',
        'one signature',
      ),
    },
    {
      name: 'a majority only with a foreign authority',
      signedHead: toHex(foreignSigs),
      now: VA,
      code: expectCode(
        errorCodeOf(() => verifyConsensusHead(foreignSigs, authorities, VA), 'foreign'),
        'ERR_DIRECTORY',
        'foreign signature',
      ),
    },
    {
      name: 'expired (now = vu)',
      signedHead: toHex(signed),
      now: VA + 3 * IV,
      code: expectCode(
        errorCodeOf(() => verifyConsensusHead(signed, authorities, VA + 3 * IV), 'expired'),
        'ERR_DIRECTORY',
        'expired head',
      ),
    },
    {
      name: 'too far in the future (va > now + 10 min)',
      signedHead: toHex(signed),
      now: VA - 10 * 60_000 - 1,
      code: expectCode(
        errorCodeOf(() => verifyConsensusHead(signed, authorities, VA - 10 * 60_000 - 1), 'future'),
        'ERR_DIRECTORY',
        'future head',
      ),
    },
    {
      name: 'entries out of order',
      signedHead: toHex(signed),
      now: VA,
      entries: badEntries.map((e) => toHex(encodeEntry(e))),
      code: expectCode(
        errorCodeOf(() => checkEntries(verifyConsensusHead(signed, authorities, VA), badEntries), 'order'),
        'ERR_DIRECTORY',
        'entries out of order',
      ),
    },
  ];
  check(verifyVote(unordered, authorities).entries.length === 4, 'signVote sorts entries');

  const weights = [
    { G: 400, E: 200, D: 100, M: 300 },
    { G: 500, E: 500, D: 0, M: 0 },
    { G: 100, E: 100, D: 100, M: 700 },
    { G: 0, E: 0, D: 0, M: 1000 },
  ].map((x) => ({ ...x, w: positionWeights(x.G, x.E, x.D, x.M) }));

  const h = readHead(head, signed, verified.signers);
  return {
    description:
      "Directory authorities and the consensus (specs/directory.md §6.5, §7). `authorities`: their seeds and keys. `relays`: the routing fields of four descriptors (the onion key among them) and their md (§7.1). `votes`: three signed votes (hex) for validAfter; the consensus before them (`before`, the shared-random state: same period, three commits). `consensus`: the entries the votes compute (fields and encoding), ed, the head (hex), cd, each authority's signature, the signed head, and the decoded head. `next`: the next round's entries and head, and `diff`: the changes from the first to the second ([id, entry or null]). `sharedRandom`: each reveal's commit, the value of the next period computed from the consensus's reveals, and the disaster value. `weights`: position weights (out of 10000) for class totals. `view`: a relay's signed view statement. `refused`: heads (and entries) that must be refused, with the code.",
    version: VECTORS_VERSION,
    constants: { interval: IV, srPeriod: SRP, validAfter: VA, weightScale: 10_000, unmeasuredCap: h.unmeasuredCap },
    authorities: authorityKeys.map((k, i) => ({ seed: toHex(seeded(`consensus/authority-${i}`)(32)), publicKey: toHex(k.publicKey) })),
    relays: relays.map((r, i) => ({
      seed: toHex(seeded(`consensus/relay-${i}`)(32)),
      id: toHex(r.id),
      onion: toHex(r.onion),
      addr: r.addr,
      exit: r.exit,
      caps: r.caps,
      family: [],
      md: toHex(r.md),
      mdInput: toHex(encodeCbor({ id: r.id, onion: r.onion, addr: r.addr, family: [], exit: r.exit, caps: [...r.caps].sort() })),
    })),
    before: { pn: before.pn, cur: toHex(before.cur), prev: toHex(before.prev), com: before.com.map(([a, c]) => [toHex(a), toHex(c)]) },
    votes: voteRaws.map((raw, i) => ({ authority: i, measures: i < 2, reveal: toHex(reveals[i]!), vote: toHex(raw) })),
    consensus: {
      entries: entries.map((e) => ({ id: toHex(e.id), md: toHex(e.md), flags: e.flags, w: e.w, encoding: toHex(encodeEntry(e)) })),
      ed: toHex(entriesDigest(entries)),
      head: toHex(head),
      cd: toHex(headDigest(head)),
      signatures: sigs.map(([a, s]) => ({ authority: toHex(a), signature: toHex(s) })),
      signedHead: toHex(signed),
      decoded: {
        validAfter: h.validAfter,
        freshUntil: h.freshUntil,
        validUntil: h.validUntil,
        voters: h.voters,
        weights: h.weights,
        count: h.count,
        sr: {
          pn: h.sr.pn,
          srp: h.sr.srp,
          cur: h.sr.cur && toHex(h.sr.cur),
          prev: h.sr.prev && toHex(h.sr.prev),
          com: h.sr.com.map(([a, c]) => [toHex(a), toHex(c)]),
          rev: h.sr.rev.map(([a, r]) => [toHex(a), toHex(r)]),
        },
      },
    },
    next: { entries: next.entries.map((e) => toHex(encodeEntry(e))), head: toHex(next.head) },
    diff: changes.map(([id, e]) => [toHex(id), e ? toHex(encodeEntry(e)) : null]),
    sharedRandom: {
      commits: reveals.map((r) => ({ reveal: toHex(r), pn, commit: toHex(srCommit(r, pn)) })),
      nextPeriod: nextPn,
      srv: toHex(srv),
      disaster: toHex(disaster),
    },
    weights: weights.map((x) => ({
      G: x.G,
      E: x.E,
      D: x.D,
      M: x.M,
      Wgg: x.w.gg,
      Wgd: x.w.gd,
      Wmg: x.w.mg,
      Wme: x.w.me,
      Wmd: x.w.md,
      Wee: x.w.ee,
      Wed: x.w.ed,
    })),
    view: { relay: toHex(relayKeys[0]!.publicKey), at: view.at, d: toHex(view.d), n: view.n, c: toHex(view.c), s: toHex(viewSig) },
    refused,
  };
}
