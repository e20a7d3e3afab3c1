/**
 * Introduction and rendezvous points (specs/messaging.md §8, directory.md §6.6): with a consensus, only relays with
 * both Fast and Stable, drawn by middle-position weight, never by count — a crowd of cheap relays (tiny weight, or
 * missing a flag) must not win the draw, and no fallback hands it to them once the flagged relays are used up.
 */
import { expect } from 'chai';
import { Endpoint } from '../../client/messaging/endpoint.js';
import type { CircuitSource } from '../../client/client.js';
import { pickServicePoint } from '../../client/path.js';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { createIdentity } from '../../protocol/address.js';
import { descriptorMd, type Consensus, type ConsensusEntry } from '../../protocol/consensus.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { AlliumError } from '../../protocol/errors.js';
import { Flag } from '../../protocol/flags.js';
import { DirectoryView } from '../../protocol/view.js';
import { FLAT_WEIGHTS } from '../../protocol/weights.js';

interface Relay {
  d: Descriptor;
  flags: number;
  w: number;
}

function relay(i: number, flags: number, w: number): Relay {
  const now = Date.now();
  const id = IdentityKey.generate();
  const d = signDescriptor(
    {
      id: id.publicKey,
      onion: crypto().random(32),
      addr: `ws://10.${i >> 8}.${i & 255}.1:9001/allium`,
      nick: `r${i}`,
      contact: '',
      family: [],
      bw: w,
      exit: ['reject *:*'],
      caps: ['intro', 'rendezvous'],
      pub: now,
      exp: now + 3_600_000,
    },
    id.secretKey,
  );
  return { d, flags, w };
}

/** A consensus view of `rs` (flags and weights as given, flat position weights). */
function viewOf(rs: readonly Relay[]): DirectoryView {
  const entries: ConsensusEntry[] = rs.map((r) => ({ id: r.d.id, md: descriptorMd(r.d), flags: r.flags, w: r.w }));
  return new DirectoryView(
    rs.map((r) => r.d),
    { entries, weights: FLAT_WEIGHTS } as unknown as Consensus,
  );
}

const FS = Flag.FAST | Flag.STABLE;

describe('introduction and rendezvous points are drawn by weight among Fast and Stable relays', () => {
  // 3 honest relays (4000 weight); 300 Sybils: 100 Stable but slow (not Fast), 100 Fast but new (not Stable), 100 with
  // both flags and weight 1 — 99 % of the relays by count, 300 / 4100 of the eligible weight.
  let honest: Relay[];
  let view: DirectoryView;
  before(() => {
    honest = [relay(0, FS, 2000), relay(1, FS, 1000), relay(2, FS, 1000)];
    const sybils: Relay[] = [];
    for (let i = 0; i < 100; i++) sybils.push(relay(10 + i, Flag.STABLE, 30), relay(200 + i, Flag.FAST, 30), relay(400 + i, FS, 1));
    view = viewOf([...honest, ...sybils]);
  });

  it('an endpoint tries introduction points by weight, never one without Fast and Stable', async () => {
    const first: string[] = [];
    const tried = new Set<string>();
    for (let t = 0; t < 200; t++) {
      let n = 0;
      const source: CircuitSource = {
        directory: { view, get: () => undefined },
        newCircuit: (o) => {
          const fp = o!.last!.fingerprint;
          if (n++ === 0) first.push(fp);
          tried.add(fp);
          return Promise.reject(new AlliumError('ERR_UNREACHABLE', 'stand-in'));
        },
      };
      const e = new Endpoint(source, createIdentity(), { introPoints: 1 }, { introduced() {}, published() {}, error() {} });
      await e.start().catch(() => undefined);
      e.close();
    }
    const byFp = new Map([...view.relays].map((d) => [d.fingerprint, d]));
    const unflagged = [...tried].filter((fp) => (view.flags(byFp.get(fp)!) & FS) !== FS).length;
    const honestFirst = first.filter((fp) => honest.some((h) => h.d.fingerprint === fp)).length / first.length;
    const heaviestFirst = first.filter((fp) => fp === honest[0]!.d.fingerprint).length / first.length;
    console.log(`      tried without Fast+Stable: ${unflagged}; first picks honest: ${honestFirst}, heaviest: ${heaviestFirst}`);
    expect(unflagged, 'relays tried without Fast and Stable').to.equal(0);
    // By weight: 4000 / 4100 ≈ 0.98 honest, 2000 / 4100 ≈ 0.49 the heaviest; by count it would be 3 / 103.
    expect(honestFirst).to.be.greaterThan(0.9);
    expect(heaviestFirst).to.be.within(0.35, 0.65);
  });

  it('a rendezvous point is never a relay without the flags, even when every flagged one is excluded', () => {
    const small = viewOf([...honest, ...Array.from({ length: 50 }, (_, i) => relay(600 + i, 0, 30))]);
    const exclude = new Set(honest.map((h) => h.d.fingerprint)); // the descriptor's introduction points
    expect(pickServicePoint(small, 'rendezvous', exclude)).to.equal(undefined);
    const counts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const fp = pickServicePoint(small, 'rendezvous', new Set())!.fingerprint;
      counts.set(fp, (counts.get(fp) ?? 0) + 1);
    }
    expect([...counts.keys()].every((fp) => honest.some((h) => h.d.fingerprint === fp))).to.equal(true);
    expect(counts.get(honest[0]!.d.fingerprint)! / 400).to.be.within(0.35, 0.65);
  });

  it('without a consensus every relay offering the capability is eligible, still by weight', () => {
    const flat = new DirectoryView([...honest.map((h) => h.d), ...Array.from({ length: 30 }, (_, i) => relay(700 + i, 0, 1).d)], null);
    let heavy = 0;
    for (let i = 0; i < 400; i++) if (pickServicePoint(flat, 'intro', new Set())!.fingerprint === honest[0]!.d.fingerprint) heavy++;
    expect(heavy / 400).to.be.within(0.3, 0.7);
  });
});
