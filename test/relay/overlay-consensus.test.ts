/**
 * How a relay passes consensus heads on (specs/directory.md §7.3), in process over real links on memory sockets: a
 * head several neighbours push is verified once, and it is not pushed back to the neighbours that sent it.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { checkEntries, computeConsensus, encodeSignedHead, readHead, signHead, signVote, verifyVote, type Consensus } from '../../protocol/consensus.js';
import type { ControlMessage } from '../../protocol/control.js';
import type { Link } from '../../net/link.js';
import { nextControl, OverlayHarness } from '../helpers/overlay.js';

const IV = 60_000;

/** A consensus for `va` signed by every authority of `keys`, listing `relays`. */
function consensusOf(keys: readonly IdentityKey[], va: number, relays: readonly Uint8Array[]): Consensus {
  const authorities = new Set(keys.map((k) => k.fingerprint));
  const entries = [...relays].sort((a, b) => Buffer.compare(a, b)).map((id) => ({ id, md: new Uint8Array(16).fill(1), flags: 1, bw: 1000, m: 0 }));
  const votes = keys.map((k) =>
    verifyVote(signVote({ authority: k.publicKey, validAfter: va, measures: false, commit: null, reveal: null, entries }, k.secretKey), authorities),
  );
  const c = computeConsensus(votes, null, { validAfter: va, interval: IV, srPeriod: 24 * IV, authorities });
  const signed = encodeSignedHead(
    c.head,
    keys.map((k) => [k.publicKey, signHead(c.head, k.secretKey)] as const),
  );
  return checkEntries(readHead(c.head, signed, [...authorities].sort()), c.entries);
}

/** The heads with bytes `raw` the relay sends on `link` from now on; `first` resolves with the first of them. */
function headsOf(link: Link, raw: Uint8Array): { count: () => number; first: Promise<void> } {
  let n = 0;
  let resolve!: () => void;
  const first = new Promise<void>((r) => (resolve = r));
  link.on('link:control', (m: ControlMessage) => {
    if (m.t === 'consensus-head' && m.c && crypto().equal(m.c, raw)) {
      n++;
      resolve();
    }
  });
  return { count: () => n, first };
}

describe('consensus heads between relays (specs/directory.md §7.3)', () => {
  let h: OverlayHarness;
  afterEach(() => h?.stop());

  it('a head several neighbours push is verified once, fetched from one, and pushed only to the neighbours that did not send it', async () => {
    const keys = [0, 1, 2].map(() => IdentityKey.fromSeed(crypto().random(32)));
    h = new OverlayHarness({ authorities: new Set(keys.map((k) => k.fingerprint)) });
    const relays = [0, 1, 2].map(() => crypto().random(32));
    const va = Math.floor(h.now / IV) * IV;
    const older = consensusOf(keys, va - IV, relays);
    const newer = consensusOf(keys, va, relays);
    expect(h.overlay.adoptConsensus(older)).to.equal(true);
    const ns = await Promise.all([0, 1, 2].map(() => h.inbound({ identity: IdentityKey.fromSeed(crypto().random(32)) })));
    const heads = ns.map((n) => headsOf(n.peer, newer.raw));
    // Count the signature checks the relay makes from here on.
    const c = crypto();
    const verify = c.verify.bind(c);
    let checks = 0;
    c.verify = (...a: Parameters<typeof c.verify>): boolean => (checks++, verify(...a));
    try {
      // Neighbours 0 and 1 push the newer head (the same bytes); the relay asks neighbour 0 for the diff.
      const asked = nextControl(ns[0]!.peer, 'consensus-diff-get');
      ns[0]!.peer.sendControl({ t: 'consensus-head', c: newer.raw });
      ns[1]!.peer.sendControl({ t: 'consensus-head', c: newer.raw });
      const q = await asked;
      ns[0]!.peer.sendControl({ t: 'consensus-diff', from: q.from, to: q.to, ch: [], more: false, ok: true });
      await heads[2]!.first;
      // A link's messages arrive in order: after a round trip on neighbours 0 and 1, whatever the relay pushed to them
      // has arrived (the answer to consensus-head-get is the newer head itself).
      ns[0]!.peer.sendControl({ t: 'consensus-head-get' });
      ns[1]!.peer.sendControl({ t: 'consensus-head-get' });
      await Promise.all([heads[0]!.first, heads[1]!.first]);
    } finally {
      c.verify = verify;
    }
    expect({
      adopted: crypto().equal(h.overlay.consensus.current!.digest, newer.digest),
      // One check per authority's signature, for the first copy only.
      checks,
      // Neighbours 0 and 1 get the newer head only as the answer to their consensus-head-get; neighbour 2 gets it pushed.
      toNeighbours: heads.map((x) => x.count()),
    }).to.deep.equal({ adopted: true, checks: 3, toNeighbours: [1, 1, 1] });
  });
});
