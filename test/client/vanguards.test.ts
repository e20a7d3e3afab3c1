/**
 * Vanguards for endpoint circuits (specs/path.md §3.2): four second-layer guards drawn by middle weight among Fast
 * and Stable relays, apart from each other and from the guards, each kept 1 to 12 days (max of two uniforms), stored
 * so a restart keeps them; and every endpoint circuit takes its second hop from them, with a fresh middle after it,
 * never a fresh second hop in their place.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { choosePath } from '../../client/path.js';
import { L2_COUNT, VanguardSet, type VanguardRecord, type VanguardStorage } from '../../client/vanguards.js';
import { descriptorMd, type Consensus, type ConsensusEntry } from '../../protocol/consensus.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { Flag } from '../../protocol/flags.js';
import { networkOf, sameFamily } from '../../protocol/relay-network.js';
import { DirectoryView } from '../../protocol/view.js';
import { FLAT_WEIGHTS } from '../../protocol/weights.js';
import { uniform } from '../../sim/anonymity.js';

const DAY = 24 * 3600_000;
const T = Date.UTC(2026, 0, 1);

interface Spec {
  net?: string;
  family?: Uint8Array[];
  bw?: number;
}

function relay(i: number, s: Spec = {}, key = IdentityKey.generate()): { d: Descriptor; key: IdentityKey } {
  const d = signDescriptor(
    {
      id: key.publicKey,
      onion: crypto().random(32),
      addr: `ws://${s.net ?? `${10 + (i >> 8)}.${i & 255}`}.${i & 255}.1:9001/allium`,
      nick: `v${i}`,
      contact: '',
      family: s.family ?? [],
      bw: s.bw ?? 1000 + i,
      exit: ['reject *:*'],
      caps: ['intro', 'rendezvous'],
      pub: T,
      exp: T + 3600_000,
    },
    key.secretKey,
  );
  return { d, key };
}

const relays = (n: number): Descriptor[] => Array.from({ length: n }, (_, i) => relay(i).d);

function memoryStorage(): VanguardStorage & { saves: number; records: VanguardRecord[] | null } {
  const s = {
    saves: 0,
    records: null as VanguardRecord[] | null,
    load: () => Promise.resolve(s.records && s.records.map((r) => ({ ...r }))),
    save: (r: VanguardRecord[]) => {
      s.saves++;
      s.records = r.map((x) => ({ ...x }));
      return Promise.resolve();
    },
  };
  return s;
}

function related(a: Descriptor, b: Descriptor): boolean {
  return a.fingerprint === b.fingerprint || sameFamily(a, b) || networkOf(a) === networkOf(b);
}

describe('vanguards (specs/path.md §3.2)', () => {
  it('holds four, each with a lifetime of 1 to 12 days drawn as the max of two uniforms', async () => {
    const all = relays(60);
    const lifetimes: number[] = [];
    for (let k = 0; k < 200; k++) {
      const v = new VanguardSet(null, uniform(`lifetimes/${k}`));
      expect(await v.refresh({ relays: all }, T, [])).to.have.length(L2_COUNT);
      for (const r of v.all) lifetimes.push((r.expiresAt - r.addedAt) / DAY);
    }
    expect(Math.min(...lifetimes)).to.be.at.least(1);
    expect(Math.max(...lifetimes)).to.be.below(12);
    const mean = lifetimes.reduce((s, x) => s + x, 0) / lifetimes.length;
    // max(U₁, U₂) has mean 2/3: 1 + 11·2/3 ≈ 8.3 days (a single uniform would give 6.5).
    expect(mean).to.be.within(7.8, 8.9);
  });

  it('rotates each vanguard when its own lifetime ends, and no sooner (an injected clock)', async () => {
    const all = relays(60);
    const v = new VanguardSet(null, uniform('rotation'));
    await v.refresh({ relays: all }, T, []);
    let now = T;
    for (let step = 0; step < 40; step++) {
      const before = v.all.map((r) => ({ ...r }));
      const next = Math.min(...before.map((r) => r.expiresAt));
      // Just before the first expiry: nothing changes.
      await v.refresh({ relays: all }, next - 1, []);
      expect(v.all.map((r) => r.fingerprint)).to.deep.equal(before.map((r) => r.fingerprint));
      // At it: exactly the expired ones are replaced, with lifetimes starting now.
      now = next;
      await v.refresh({ relays: all }, now, []);
      expect(v.all).to.have.length(L2_COUNT);
      const kept = before.filter((r) => r.expiresAt > now);
      for (const r of kept) expect(v.all.some((x) => x.fingerprint === r.fingerprint && x.expiresAt === r.expiresAt)).to.equal(true);
      for (const r of v.all.filter((x) => !kept.some((k) => k.fingerprint === x.fingerprint))) {
        expect(r.addedAt).to.equal(now);
        expect(r.expiresAt - now).to.be.within(DAY, 12 * DAY);
      }
    }
    expect(now - T).to.be.above(30 * DAY);
  });

  it('replaces a vanguard that leaves the directory or loses Fast or Stable at once', async () => {
    const all = relays(30);
    const v = new VanguardSet(null, uniform('unlisted'));
    const first = await v.refresh({ relays: all }, T, []);
    const gone = first[0]!;
    const next = await v.refresh({ relays: all.filter((d) => d !== gone) }, T + 1, []);
    expect(next.map((d) => d.fingerprint)).to.not.include(gone.fingerprint);
    expect(next).to.have.length(L2_COUNT);
    // With a consensus, a vanguard that lost Stable is replaced too.
    const lost = next[1]!;
    const entries: ConsensusEntry[] = all.map((d) => ({
      id: d.id,
      md: descriptorMd(d),
      flags: d === lost ? Flag.FAST : Flag.FAST | Flag.STABLE,
      w: d.bw,
    }));
    const view = new DirectoryView(all, { entries, weights: FLAT_WEIGHTS } as unknown as Consensus);
    const after = await v.refresh({ relays: view.relays, weights: view }, T + 2, []);
    expect(after.map((d) => d.fingerprint)).to.not.include(lost.fingerprint);
    expect(after).to.have.length(L2_COUNT);
  });

  it('is stored: a restart loads the same vanguards and lifetimes, and saves only on change', async () => {
    const all = relays(40);
    const storage = memoryStorage();
    const a = new VanguardSet(storage, uniform('persist/a'));
    await a.load();
    const chosen = await a.refresh({ relays: all }, T, []);
    expect(storage.saves).to.equal(1);
    const b = new VanguardSet(storage, uniform('persist/b'));
    await b.load();
    const again = await b.refresh({ relays: all }, T + DAY / 2, []);
    expect(again.map((d) => d.fingerprint)).to.deep.equal(chosen.map((d) => d.fingerprint));
    expect(b.all).to.deep.equal(a.all);
    expect(storage.saves).to.equal(1);
    // A corrupt record loads as nothing, and is replaced.
    storage.records = [{ fingerprint: 'x', addedAt: 5, expiresAt: 1 } as VanguardRecord, ...storage.records!.slice(1)];
    const c = new VanguardSet(storage, uniform('persist/c'));
    await c.load();
    expect(c.all).to.have.length(L2_COUNT - 1);
  });

  it('keeps vanguards apart from each other and from the guards (family and network)', async () => {
    // 6 networks of 8 relays each, and one family spanning several networks: whatever is drawn, one per network,
    // at most one of the family, none in a guard's network.
    const keys = Array.from({ length: 6 }, () => IdentityKey.generate());
    const famRelays = keys.map((k, i) => relay(100 + i, { net: `10.${200 + i}`, family: keys.filter((x) => x !== k).map((x) => x.publicKey) }, k).d);
    const crowd = Array.from({ length: 48 }, (_, i) => relay(i, { net: `10.${i % 6}` }).d);
    const all = [...crowd, ...famRelays];
    const guards = [crowd[0]!, crowd[1]!];
    for (let k = 0; k < 50; k++) {
      const v = await new VanguardSet(null, uniform(`diversity/${k}`)).refresh({ relays: all }, T, guards);
      expect(v).to.have.length(L2_COUNT);
      for (let i = 0; i < v.length; i++) {
        for (const g of guards) expect(related(v[i]!, g)).to.equal(false);
        for (let j = i + 1; j < v.length; j++) expect(related(v[i]!, v[j]!)).to.equal(false);
      }
    }
  });

  it('draws only Fast and Stable relays, by middle weight, never by count', async () => {
    const honest = [relay(0, { bw: 4000 }).d, relay(1, { bw: 3000 }).d, relay(2, { bw: 2000 }).d, relay(3, { bw: 2000 }).d, relay(4, { bw: 1000 }).d];
    const slow = Array.from({ length: 100 }, (_, i) => relay(10 + i).d); // Stable only
    const young = Array.from({ length: 100 }, (_, i) => relay(120 + i).d); // Fast only
    const tiny = Array.from({ length: 100 }, (_, i) => relay(230 + i).d); // both, weight 1
    const all = [...honest, ...slow, ...young, ...tiny];
    const entries: ConsensusEntry[] = all.map((d) => ({
      id: d.id,
      md: descriptorMd(d),
      flags: slow.includes(d) ? Flag.STABLE : young.includes(d) ? Flag.FAST : Flag.FAST | Flag.STABLE,
      w: tiny.includes(d) ? 1 : honest.includes(d) ? d.bw : 3000,
    }));
    const view = new DirectoryView(all, { entries, weights: FLAT_WEIGHTS } as unknown as Consensus);
    let fromTiny = 0;
    for (let k = 0; k < 100; k++) {
      const v = await new VanguardSet(null, uniform(`flags/${k}`)).refresh({ relays: view.relays, weights: view }, T, []);
      for (const d of v) {
        expect(slow.includes(d) || young.includes(d)).to.equal(false);
        if (tiny.includes(d)) fromTiny++;
      }
    }
    // 100 weight-1 relays hold 100 / 12100 of the eligible weight: a count-based draw would take nearly all 400.
    expect(fromTiny).to.be.below(40);
  });
});

describe('endpoint circuits take their second hop from the vanguards (specs/path.md §2.3, §3.2)', () => {
  let all: Descriptor[];
  let guard: Descriptor;
  before(() => {
    all = relays(40);
    guard = all[0]!;
  });

  it('guard, a vanguard, a fresh middle, then the last hop: 4 hops at hops = 3', async () => {
    const v = await new VanguardSet(null, uniform('paths')).refresh({ relays: all }, T, [guard]);
    const random = uniform('paths/choose');
    const seconds = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const last = all[1 + Math.floor(random() * 39)]!;
      const path = choosePath(all, { hops: 3, exitPort: null, guards: [guard], last, vanguards: v, enforceDistinctSubnets: true, random });
      expect(path).to.have.length(4);
      expect(path[0]).to.equal(guard);
      expect(v).to.include(path[1]);
      expect(path[2]).to.not.equal(path[1]);
      expect(path[3]).to.equal(last);
      seconds.add(path[1]!.fingerprint);
    }
    // Each of the four is used.
    expect(seconds.size).to.equal(L2_COUNT);
    // Without vanguards (ordinary circuits) nothing changes: 3 hops, a fresh middle.
    expect(choosePath(all, { hops: 3, exitPort: null, guards: [guard], last: all[5]!, enforceDistinctSubnets: true })).to.have.length(3);
  });

  it('a last hop that declares a vanguard its family does not push the circuit off it; none usable: no circuit', async () => {
    const v = await new VanguardSet(null, uniform('family')).refresh({ relays: all }, T, [guard]);
    // A last hop declaring every vanguard as family (families count when either side lists the other).
    const liar = relay(77, { family: v.map((d) => d.id) }).d;
    const path = choosePath([...all, liar], { hops: 3, exitPort: null, guards: [guard], last: liar, vanguards: v, enforceDistinctSubnets: true });
    expect(v).to.include(path[1]);
    // Every vanguard excluded (failed lately): the build fails rather than take a fresh second hop.
    expect(() =>
      choosePath(all, {
        hops: 3,
        exitPort: null,
        guards: [guard],
        last: all[9]!,
        vanguards: v,
        exclude: new Set(v.map((d) => d.fingerprint)),
        enforceDistinctSubnets: true,
      }),
    )
      .to.throw()
      .with.property('code', 'ERR_ONION_PATH');
  });
});
