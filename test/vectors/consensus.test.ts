/** specs/vectors/consensus.json against protocol/consensus.ts, shared-random.ts, weights.ts and view-statement.ts. */
import { expect } from 'chai';
import { fingerprintOf } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import {
  applyDiff,
  checkEntries,
  computeConsensus,
  descriptorMd,
  encodeEntry,
  entriesDigest,
  entryFromTuple,
  headDigest,
  headSignatureValid,
  verifyConsensusHead,
  verifyVote,
  type ConsensusEntry,
} from '../../protocol/consensus.js';
import { decodeCbor } from '../../protocol/cbor.js';
import { computeSrv, disasterSrv, srCommit } from '../../protocol/shared-random.js';
import { verifyViewStatement } from '../../protocol/view-statement.js';
import { positionWeights } from '../../protocol/weights.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface V {
  constants: { interval: number; srPeriod: number; validAfter: number };
  authorities: { seed: string; publicKey: string }[];
  relays: { id: string; onion: string; addr: string; exit: string[]; caps: ('store' | 'intro' | 'rendezvous')[]; md: string; mdInput: string }[];
  before: { pn: number; cur: string; prev: string; com: [string, string][] };
  votes: { vote: string; reveal: string }[];
  consensus: {
    entries: { id: string; md: string; flags: number; w: number; encoding: string }[];
    ed: string;
    head: string;
    cd: string;
    signatures: { authority: string; signature: string }[];
    signedHead: string;
    decoded: { validAfter: number; freshUntil: number; validUntil: number; voters: string[]; count: number; weights: Record<string, number> };
  };
  next: { entries: string[]; head: string };
  diff: [string, string | null][];
  sharedRandom: { commits: { reveal: string; pn: number; commit: string }[]; nextPeriod: number; srv: string; disaster: string };
  weights: { G: number; E: number; D: number; M: number; Wgg: number; Wgd: number; Wmg: number; Wme: number; Wmd: number; Wee: number; Wed: number }[];
  view: { relay: string; at: number; d: string; n: number; c: string; s: string };
  refused: { name: string; signedHead: string; now: number; entries?: string[]; code: string }[];
}

const entryOf = (h: string): ConsensusEntry => entryFromTuple(decodeCbor(hex(h), 1024) as unknown as [Uint8Array, Uint8Array, number, number]);

describeEachBinding('vectors: consensus', () => {
  const v = readVectors<V>('consensus.json');
  const authorities = new Set(v.authorities.map((a) => fingerprintOf(hex(a.publicKey))));

  it("md of each relay's routing fields", () => {
    for (const r of v.relays) {
      expect(toHex(encodeCbor({ id: hex(r.id), onion: hex(r.onion), addr: r.addr, family: [], exit: r.exit, caps: [...r.caps].sort() }))).to.equal(r.mdInput);
      expect(toHex(descriptorMd({ id: hex(r.id), onion: hex(r.onion), addr: r.addr, family: [], exit: r.exit, caps: r.caps }))).to.equal(r.md);
      // The md covers the onion key: another key, another md (a rotation is a new md, specs/directory.md §7.1).
      const other = hex(r.onion);
      other[0] = other[0]! ^ 1;
      expect(toHex(descriptorMd({ id: hex(r.id), onion: other, addr: r.addr, family: [], exit: r.exit, caps: r.caps }))).to.not.equal(r.md);
    }
  });

  it('votes verify; computing the consensus from them gives the head and entries', () => {
    const votes = v.votes.map((x) => verifyVote(hex(x.vote), authorities));
    const before = { pn: v.before.pn, cur: hex(v.before.cur), prev: hex(v.before.prev), com: v.before.com.map(([a, c]) => [hex(a), hex(c)] as const), rev: [] };
    const { head, entries } = computeConsensus(votes, before, {
      validAfter: v.constants.validAfter,
      interval: v.constants.interval,
      srPeriod: v.constants.srPeriod,
      authorities,
    });
    expect(toHex(head)).to.equal(v.consensus.head);
    expect(entries.map((e) => toHex(encodeEntry(e)))).to.deep.equal(v.consensus.entries.map((e) => e.encoding));
    expect(toHex(entriesDigest(entries))).to.equal(v.consensus.ed);
    expect(toHex(headDigest(head))).to.equal(v.consensus.cd);
  });

  it('the signed head verifies, with every signature, and its entries check', () => {
    for (const s of v.consensus.signatures) expect(headSignatureValid(hex(v.consensus.head), hex(s.authority), hex(s.signature))).to.equal(true);
    const h = verifyConsensusHead(hex(v.consensus.signedHead), authorities, v.constants.validAfter);
    expect(h.signers).to.have.length(3);
    expect(h.validAfter).to.equal(v.consensus.decoded.validAfter);
    expect(h.validUntil).to.equal(v.consensus.decoded.validUntil);
    expect(h.voters).to.deep.equal(v.consensus.decoded.voters);
    expect(h.weights).to.deep.equal(v.consensus.decoded.weights);
    const c = checkEntries(
      h,
      v.consensus.entries.map((e) => entryOf(e.encoding)),
    );
    expect(c.entries.map((e) => [toHex(e.id), toHex(e.md), e.flags, e.w])).to.deep.equal(v.consensus.entries.map((e) => [e.id, e.md, e.flags, e.w]));
  });

  it("the diff turns the entries into the next consensus's", () => {
    const from = v.consensus.entries.map((e) => entryOf(e.encoding));
    const changes = v.diff.map(([id, e]) => [hex(id), e ? entryOf(e) : null] as const);
    expect(applyDiff(from, changes).map((e) => toHex(encodeEntry(e)))).to.deep.equal(v.next.entries);
  });

  it("shared random: commits, the next period's value and the disaster value", () => {
    for (const c of v.sharedRandom.commits) expect(toHex(srCommit(hex(c.reveal), c.pn))).to.equal(c.commit);
    const h = verifyConsensusHead(hex(v.consensus.signedHead), authorities, v.constants.validAfter);
    expect(toHex(computeSrv(v.sharedRandom.nextPeriod, h.sr.rev, h.sr.cur))).to.equal(v.sharedRandom.srv);
    expect(toHex(disasterSrv(v.sharedRandom.nextPeriod, h.sr.cur))).to.equal(v.sharedRandom.disaster);
  });

  it('position weights', () => {
    for (const w of v.weights) {
      const p = positionWeights(w.G, w.E, w.D, w.M);
      expect([p.gg, p.gd, p.mg, p.me, p.md, p.ee, p.ed]).to.deep.equal([w.Wgg, w.Wgd, w.Wmg, w.Wme, w.Wmd, w.Wee, w.Wed]);
    }
  });

  it('a view statement verifies under its relay, and not altered', () => {
    const m = { at: v.view.at, d: hex(v.view.d), n: v.view.n, c: hex(v.view.c), s: hex(v.view.s) };
    expect(verifyViewStatement(hex(v.view.relay), m).n).to.equal(v.view.n);
    expectCode(() => verifyViewStatement(hex(v.view.relay), { ...m, n: m.n + 1 }), 'ERR_SIGNATURE');
  });

  it('refused heads and entries', () => {
    for (const r of v.refused) {
      if (r.entries) {
        const h = verifyConsensusHead(hex(r.signedHead), authorities, r.now);
        expectCode(() => checkEntries(h, r.entries!.map(entryOf)), r.code);
      } else expectCode(() => verifyConsensusHead(hex(r.signedHead), authorities, r.now), r.code);
    }
  });
});
