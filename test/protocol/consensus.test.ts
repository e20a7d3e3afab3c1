/**
 * Votes and the consensus (specs/directory.md §7): the computation is deterministic and follows the majority rules;
 * weights are measured or capped; a head needs a majority of the configured authorities; diffs round-trip; the
 * shared random value over a period needs every commit before any reveal.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import {
  applyDiff,
  checkEntries,
  computeConsensus,
  diffEntries,
  encodeEntry,
  encodeSignedHead,
  readHead,
  signHead,
  signVote,
  verifyConsensusHead,
  verifyVote,
  type ConsensusEntry,
  type Vote,
  type VoteEntry,
} from '../../protocol/consensus.js';
import { Flag } from '../../protocol/flags.js';
import { nextSrState, srCommit, srvFor, type SrState } from '../../protocol/shared-random.js';
import { UNMEASURED_CAP } from '../../protocol/weights.js';
import { expectCode } from '../helpers/vectors.js';

const IV = 60_000;
const SRP = 8 * IV;
let keys: IdentityKey[] = [];
let authorities = new Set<string>();
let relays: Uint8Array[] = [];

function vote(i: number, va: number, entries: VoteEntry[], sr: { c?: Uint8Array | null; r?: Uint8Array | null } = {}, measures = true): Vote {
  return verifyVote(
    signVote({ authority: keys[i]!.publicKey, validAfter: va, measures, commit: sr.c ?? null, reveal: sr.r ?? null, entries }, keys[i]!.secretKey),
    authorities,
  );
}

const e = (j: number, flags: number, bw: number, m: number): VoteEntry => ({ id: relays[j]!, md: new Uint8Array(16).fill(j), flags, bw, m });

describe('consensus', () => {
  const va = 100 * IV;
  before(() => {
    keys = [0, 1, 2].map(() => IdentityKey.generate());
    authorities = new Set(keys.map((k) => k.fingerprint));
    relays = Array.from({ length: 6 }, () => crypto().random(32));
  });

  it('is the same bytes for every authority holding the same votes, in any order', () => {
    const votes = [vote(0, va, [e(0, 3, 1000, 900)]), vote(1, va, [e(0, 3, 1000, 800)]), vote(2, va, [e(0, 1, 1000, 0)])];
    const a = computeConsensus(votes, null, { validAfter: va, interval: IV, srPeriod: SRP, authorities });
    const b = computeConsensus([...votes].reverse(), null, { validAfter: va, interval: IV, srPeriod: SRP, authorities });
    expect(toHex(a.head)).to.equal(toHex(b.head));
  });

  it('lists a relay only when a majority of the votes do; flags by majority; measured weight capped by the claim', () => {
    const votes = [
      vote(0, va, [e(0, Flag.FAST | Flag.GUARD, 5000, 4000), e(1, Flag.FAST, 2 ** 40, 300), e(2, 0, 1000, 0)]),
      vote(1, va, [e(0, Flag.FAST, 5000, 4500), e(1, Flag.FAST, 2 ** 40, 250)]),
      vote(2, va, [e(0, Flag.FAST | Flag.GUARD, 5000, 9000), e(1, Flag.FAST, 2 ** 40, 0)]),
    ];
    const { entries } = computeConsensus(votes, null, { validAfter: va, interval: IV, srPeriod: SRP, authorities });
    const byId = new Map(entries.map((x) => [toHex(x.id), x]));
    expect(byId.has(toHex(relays[2]!))).to.equal(false); // one vote of three
    const r0 = byId.get(toHex(relays[0]!))!;
    expect(r0.flags & Flag.GUARD).to.equal(Flag.GUARD); // two of three
    expect(r0.w).to.equal(4500); // the low median of 4000, 4500, 9000
    expect(r0.flags & Flag.MEASURED).to.equal(Flag.MEASURED);
    const r1 = byId.get(toHex(relays[1]!))!;
    expect(r1.w).to.equal(250); // a claim of 2^40 buys nothing: the low median of the measurements
    // Never above the claim: an operator can ask for less than it has.
    const capped = computeConsensus(
      [0, 1, 2].map((i) => vote(i, va, [e(4, Flag.FAST, 1000, 5000)])),
      null,
      { validAfter: va, interval: IV, srPeriod: SRP, authorities },
    );
    expect(capped.entries[0]!.w).to.equal(1000);
  });

  it('an unmeasured relay is weighted at its claim capped at UNMEASURED_CAP', () => {
    const votes = [0, 1, 2].map((i) => vote(i, va, [e(3, Flag.FAST, 2 ** 40, 0)]));
    const { entries } = computeConsensus(votes, null, { validAfter: va, interval: IV, srPeriod: SRP, authorities });
    expect(entries[0]!.w).to.equal(UNMEASURED_CAP);
    expect(entries[0]!.flags & Flag.MEASURED).to.equal(0);
  });

  it('needs votes of a majority of the authorities, and a head signed by a majority', () => {
    expectCode(() => computeConsensus([vote(0, va, [])], null, { validAfter: va, interval: IV, srPeriod: SRP, authorities }), 'ERR_DIRECTORY');
    const { head, entries } = computeConsensus([vote(0, va, [e(0, 1, 10, 0)]), vote(1, va, [e(0, 1, 10, 0)])], null, {
      validAfter: va,
      interval: IV,
      srPeriod: SRP,
      authorities,
    });
    const one = encodeSignedHead(head, [[keys[0]!.publicKey, signHead(head, keys[0]!.secretKey)]]);
    expectCode(() => verifyConsensusHead(one, authorities, va), 'ERR_DIRECTORY');
    const two = encodeSignedHead(
      head,
      [0, 1].map((i) => [keys[i]!.publicKey, signHead(head, keys[i]!.secretKey)] as const),
    );
    const h = verifyConsensusHead(two, authorities, va);
    expect(checkEntries(h, entries).count).to.equal(1);
    // A signature over another head counts for nothing.
    const other = computeConsensus([vote(0, va, []), vote(1, va, [])], null, { validAfter: va, interval: IV, srPeriod: SRP, authorities }).head;
    const mixed = encodeSignedHead(head, [
      [keys[0]!.publicKey, signHead(head, keys[0]!.secretKey)],
      [keys[1]!.publicKey, signHead(other, keys[1]!.secretKey)],
    ]);
    expectCode(() => verifyConsensusHead(mixed, authorities, va), 'ERR_DIRECTORY');
    expectCode(() => checkEntries(readHead(head, two), []), 'ERR_DIRECTORY');
  });

  it('diffs round-trip between random entry lists', () => {
    for (let t = 0; t < 50; t++) {
      const pool = Array.from({ length: 30 }, () => crypto().random(32));
      const pick = (): ConsensusEntry[] =>
        pool
          .filter(() => crypto().uniform() < 0.6)
          .map((id) => ({ id, md: new Uint8Array(16), flags: crypto().randomInt(4), w: 1 + crypto().randomInt(5) }))
          .sort((a, b) => (toHex(a.id) < toHex(b.id) ? -1 : 1));
      const a = pick();
      const b = pick();
      expect(applyDiff(a, diffEntries(a, b)).map((x) => toHex(encodeEntry(x)))).to.deep.equal(b.map((x) => toHex(encodeEntry(x))));
    }
  });

  it('shared random: commits in the commit phase, reveals that open them in the reveal phase, a new value each period', () => {
    const reveals = keys.map(() => crypto().random(32));
    let st: SrState | null = null;
    const pn = 7;
    for (let round = 0; round < 8; round++) {
      const t = pn * SRP + round * IV;
      const commitPhase = round < 4;
      const votes = keys.map((k, i) => ({ a: k.publicKey, c: srCommit(reveals[i]!, pn), r: commitPhase ? null : i === 2 ? crypto().random(32) : reveals[i]! }));
      st = nextSrState(st, t, IV, SRP, votes);
    }
    expect(st!.com).to.have.length(3);
    expect(st!.rev).to.have.length(2); // authority 2 revealed something it did not commit to
    const next = nextSrState(st, (pn + 1) * SRP, IV, SRP, []);
    expect(next.pn).to.equal(pn + 1);
    expect(next.prev).to.deep.equal(st!.cur);
    expect(next.cur).to.not.equal(null);
    expect(toHex(srvFor(next, (pn + 1) * SRP + 1, SRP).srv)).to.equal(toHex(next.cur!));
    // A commit made after the commit phase does not count.
    const late = nextSrState(
      nextSrState(null, (pn + 1) * SRP + 5 * IV, IV, SRP, [{ a: keys[0]!.publicKey, c: srCommit(reveals[0]!, pn + 1), r: null }]),
      (pn + 1) * SRP + 6 * IV,
      IV,
      SRP,
      [{ a: keys[0]!.publicKey, c: null, r: reveals[0]! }],
    );
    expect(late.com).to.have.length(0);
    expect(late.rev).to.have.length(0);
  });
});
