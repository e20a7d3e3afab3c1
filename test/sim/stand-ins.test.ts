/**
 * The simulator's shortcuts compute what the real code computes: the CBOR size of control messages without encoding
 * them, the k nearest holders of a key from a sorted index, guards and paths from the same random numbers as
 * GuardSet and choosePath, and the message-level directory store's incremental digest, which is equal for equal
 * views and differs otherwise.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { encodeCbor } from '../../protocol/cbor.js';
import type { ControlMessage } from '../../protocol/control.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { holdersOf, positionOf } from '../../protocol/placement.js';
import { GuardSet } from '../../client/guards.js';
import { choosePath } from '../../client/path.js';
import { cborSize } from '../../sim/cbor-size.js';
import { FastPaths } from '../../sim/fast-path.js';
import { Rng } from '../../sim/random.js';
import { SimDirectoryStore, VerifyCache } from '../../sim/directory.js';
import { PlacementIndex } from '../../sim/placement-index.js';

/** The same relay re-signed with other exit policy lines. */
function signDescriptorAs(d: Descriptor, exit: string[], now: number): Descriptor {
  const id = keys.get(d.fingerprint)!;
  return signDescriptor(
    { id: d.id, onion: d.onion, addr: d.addr, nick: d.nick, contact: '', family: [], bw: d.bw, exit, caps: d.caps, pub: now, exp: now + 3_600_000 },
    id.secretKey,
  );
}

const keys = new Map<string, IdentityKey>();

function descriptors(n: number, now: number): Descriptor[] {
  return Array.from({ length: n }, (_, i) => {
    const id = IdentityKey.fromSeed(crypto().hash(32, new Uint8Array([i & 255, i >> 8])));
    keys.set(id.fingerprint, id);
    return signDescriptor(
      {
        id: id.publicKey,
        onion: crypto().random(32),
        addr: `ws://10.0.${i >> 8}.${i & 255}:9001/allium`,
        nick: `r${i}`,
        contact: '',
        family: [],
        bw: 1000 + ((i * 7919) % 100_000),
        exit: ['reject *:*'],
        caps: i % 7 === 3 ? ['intro'] : ['store'],
        pub: now,
        exp: now + 3_600_000,
      },
      id.secretKey,
    );
  });
}

describe('sim: stand-ins', () => {
  it('cborSize equals the length of the real encoding', () => {
    const bytes = fc.uint8Array({ maxLength: 600 });
    const message = fc.oneof(
      fc.record({ t: fc.constant('gossip-digest'), d: fc.uint8Array({ minLength: 32, maxLength: 32 }), n: fc.nat() }),
      fc.record({
        t: fc.constant('gossip-summary'),
        e: fc.array(fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.maxSafeNat()), { maxLength: 300 }),
        after: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 })),
        more: fc.boolean(),
      }),
      fc.record({
        t: fc.constant('gossip-announce'),
        e: fc.array(fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.maxSafeNat()), { minLength: 1, maxLength: 300 }),
      }),
      fc.record({ t: fc.constant('gossip-push'), ds: fc.array(bytes, { maxLength: 30 }) }),
      fc.record({ t: fc.constant('dir'), at: fc.maxSafeNat(), ds: fc.array(bytes, { maxLength: 10 }), more: fc.boolean() }),
      fc.record({ t: fc.constant('dir-get'), since: fc.nat(), after: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 })) }),
    );
    fc.assert(
      fc.property(message, (m) => cborSize(m) === encodeCbor(m as ControlMessage).length),
      { numRuns: 300 },
    );
  });

  it('the placement index returns the holders holdersOf returns, in order', () => {
    const ds = descriptors(300, Date.now()).filter((d) => d.caps.includes('store'));
    const index = new PlacementIndex(ds.map((d) => ({ pos: positionOf(d.id, d.fingerprint), item: d })));
    for (let i = 0; i < 300; i++) {
      const key = crypto().random(32);
      for (const k of [1, 3, 5]) expect(index.nearest(key, k).map((d) => d.fingerprint)).to.deep.equal(holdersOf(key, ds, k).map((d) => d.fingerprint));
    }
    // It stays right as relays come and go.
    for (const d of ds.slice(0, 100)) index.remove(positionOf(d.id, d.fingerprint), d);
    const rest = ds.slice(100);
    for (let i = 0; i < 100; i++) {
      const key = crypto().random(32);
      expect(index.nearest(key, 3)).to.deep.equal(holdersOf(key, rest, 3));
    }
  });

  it('fast path selection chooses what GuardSet and choosePath choose from the same random numbers', async () => {
    const now = Date.now();
    const ds = descriptors(400, now).map((d, i) => (i % 4 === 0 ? signDescriptorAs(d, ['accept *:443', 'reject *:*'], now) : d));
    const fast = new FastPaths(ds);
    for (let c = 0; c < 150; c++) {
      const a = new Rng(c).random;
      const b = new Rng(c).random;
      const records = fast.sampleGuards(a, now);
      const real = new GuardSet(null, b);
      const realUsable = await real.refresh(ds, now);
      expect(records.map((r) => r.fingerprint)).to.deep.equal(real.all.map((r) => r.fingerprint));
      expect(records.map((r) => r.expiresAt)).to.deep.equal(real.all.map((r) => r.expiresAt));
      const usable = fast.usable(records, now);
      const exclude = new Set(ds.filter((_, i) => (i * 7 + c) % 37 === 0).map((d) => d.fingerprint));
      const fps = (p: Descriptor[]): string[] => p.map((d) => d.fingerprint);
      expect(fps(fast.choose({ exitPort: 443, guards: usable, exclude }, a))).to.deep.equal(
        fps(choosePath(ds, { hops: 3, exitPort: 443, guards: realUsable, enforceDistinctSubnets: false, exclude, random: b })),
      );
      const last = ds[(c * 13) % ds.length]!;
      expect(fps(fast.choose({ exitPort: null, guards: [], last }, a))).to.deep.equal(
        fps(choosePath(ds, { hops: 3, exitPort: null, guards: [], enforceDistinctSubnets: false, last, random: b })),
      );
    }
  });

  it('the incremental digest is equal exactly for equal views', () => {
    const now = Date.now();
    const ds = descriptors(40, now);
    const cache = new VerifyCache();
    const a = new SimDirectoryStore(cache);
    const b = new SimDirectoryStore(cache);
    for (const d of ds) a.offer(d.raw, now);
    for (const d of [...ds].reverse()) b.offer(d.raw, now);
    expect(a.digest()).to.deep.equal(b.digest());
    b.remove(ds[5]!.fingerprint);
    expect(a.digest()).to.not.deep.equal(b.digest());
    b.offer(ds[5]!.raw, now);
    expect(a.digest()).to.deep.equal(b.digest());
    // Verification still refuses what the real store refuses.
    expect(() => a.offer(ds[0]!.raw, now + 2 * 3_600_000))
      .to.throw()
      .with.property('code', 'ERR_DESCRIPTOR_EXPIRED');
    const forged = Uint8Array.from(ds[1]!.raw);
    forged[forged.length - 1]! ^= 1;
    expect(() => a.offer(forged, now))
      .to.throw()
      .with.property('code', 'ERR_SIGNATURE');
  });
});
