/**
 * The consensus at 50,000 relays (specs/directory.md §7.3): the signed head stays under its cap whatever the size,
 * the entries travel in pages that fit a CONTROL message, and a diff between two consensuses in which a few hundred
 * relays changed is a small fraction of the whole.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import {
  applyDiff,
  CONSENSUS_PAGE_ENTRIES,
  computeConsensus,
  diffEntries,
  encodeEntry,
  encodeSignedHead,
  entriesDigest,
  entryToTuple,
  MAX_CONSENSUS_HEAD_BYTES,
  signHead,
  signVote,
  verifyVote,
  type VoteEntry,
} from '../../protocol/consensus.js';
import { encodeControl, MAX_CONTROL_MESSAGE } from '../../protocol/control.js';
import { Flag } from '../../protocol/flags.js';

describe('consensus at 50,000 relays', function () {
  this.timeout(120_000);

  it('a small head, pages that fit, and diffs of a few percent', () => {
    const keys = [0, 1, 2].map(() => IdentityKey.generate());
    const authorities = new Set(keys.map((k) => k.fingerprint));
    const n = 50_000;
    const base: VoteEntry[] = Array.from({ length: n }, (_, i) => ({
      id: crypto().random(32),
      md: crypto().random(16),
      flags: Flag.FAST | (i % 7 === 0 ? Flag.GUARD : 0),
      bw: 1_000_000 + i,
      m: 900_000 + i,
    }));
    const iv = 3_600_000;
    const va = 480_000 * iv;
    const run = (entries: VoteEntry[], at: number) => {
      const votes = keys.map((k) =>
        verifyVote(signVote({ authority: k.publicKey, validAfter: at, measures: true, commit: null, reveal: null, entries }, k.secretKey), authorities),
      );
      return computeConsensus(votes, null, { validAfter: at, interval: iv, srPeriod: 24 * iv, authorities });
    };
    const a = run(base, va);
    const signed = encodeSignedHead(
      a.head,
      keys.map((k) => [k.publicKey, signHead(a.head, k.secretKey)] as const),
    );
    expect(signed.length).to.be.below(MAX_CONSENSUS_HEAD_BYTES);
    const whole = a.entries.reduce((s, e) => s + encodeEntry(e).length, 0);
    const page = encodeControl({
      t: 'consensus-entries',
      d: crypto().random(32),
      from: 0,
      e: a.entries.slice(0, CONSENSUS_PAGE_ENTRIES).map(entryToTuple),
      more: true,
      ok: true,
    });
    expect(page.length).to.be.below(MAX_CONTROL_MESSAGE);
    // An hour later 300 relays changed weight or flags, 100 left and 100 joined.
    const next = base.slice(100).map((e, i) => (i % 166 === 0 ? { ...e, m: e.m + 50_000 } : e));
    for (let i = 0; i < 100; i++) next.push({ id: crypto().random(32), md: crypto().random(16), flags: Flag.FAST, bw: 500_000, m: 400_000 });
    const b = run(next, va + iv);
    const changes = diffEntries(a.entries, b.entries);
    expect(entriesDigest(applyDiff(a.entries, changes))).to.deep.equal(entriesDigest(b.entries));
    const diffBytes = changes.reduce((s, [id, e]) => s + id.length + (e ? encodeEntry(e).length : 1), 0);
    expect(diffBytes / whole).to.be.below(0.02);
    console.log(
      `      ${n} relays: head ${signed.length} B, entries ${(whole / 1e6).toFixed(2)} MB in ${Math.ceil(n / CONSENSUS_PAGE_ENTRIES)} pages of at most ${page.length} B; a diff of ${changes.length} changes ${(diffBytes / 1e3).toFixed(1)} kB`,
    );
  });
});
