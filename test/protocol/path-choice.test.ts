/**
 * choosePath (client/path.ts, specs/path.md §2 and §5): entries come from the guards; when every guard failed
 * recently the choice fails rather than falling back to an arbitrary entry, and without guards any relay may be one.
 */
import { expect } from 'chai';
import { choosePath, choosePathWithFallbacks } from '../../client/path.js';
import { IdentityKey } from '../../crypto/keys.js';
import { crypto } from '../../crypto/index.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { DirectoryView } from '../../protocol/view.js';

function relays(n: number): Descriptor[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const id = IdentityKey.generate();
    const exit = i < 2 ? ['accept *:443', 'reject *:*'] : ['reject *:*'];
    return signDescriptor(
      {
        id: id.publicKey,
        onion: crypto().random(32),
        addr: `ws://10.${i}.0.1:9001/allium`,
        nick: `r${i}`,
        contact: '',
        family: [],
        bw: 1000,
        exit,
        caps: [],
        pub: now,
        exp: now + 3_600_000,
      },
      id.secretKey,
    );
  });
}

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return isAlliumError(e) ? `${e.code}: ${e.message}` : String(e);
  }
}

describe('path choice', () => {
  let ds: Descriptor[];
  let guards: Descriptor[];
  before(() => {
    ds = relays(10);
    guards = [ds[5]!, ds[6]!];
  });

  it('takes the entry from the guards', () => {
    for (let i = 0; i < 50; i++) {
      const p = choosePath(ds, { hops: 3, exitPort: 443, guards, enforceDistinctSubnets: true });
      expect([ds[5]!.fingerprint, ds[6]!.fingerprint]).to.include(p[0]!.fingerprint);
      expect([ds[0]!.fingerprint, ds[1]!.fingerprint]).to.include(p[2]!.fingerprint);
      expect(new Set(p.map((d) => d.fingerprint)).size).to.equal(3);
    }
  });

  it('never replaces guards that failed recently by another entry', () => {
    const exclude = new Set(guards.map((g) => g.fingerprint));
    expect(codeOf(() => choosePath(ds, { hops: 3, exitPort: 443, guards, enforceDistinctSubnets: true, exclude }))).to.equal(
      'ERR_ONION_PATH: every guard failed recently',
    );
    // One guard left: it is the entry.
    const one = new Set([ds[5]!.fingerprint]);
    for (let i = 0; i < 20; i++) expect(choosePath(ds, { hops: 3, exitPort: 443, guards, enforceDistinctSubnets: true, exclude: one })[0]).to.equal(ds[6]);
  });

  it('names the port when every exit for it is excluded, and picks any entry when there are no guards', () => {
    const exclude = new Set([ds[0]!.fingerprint, ds[1]!.fingerprint]);
    expect(codeOf(() => choosePath(ds, { hops: 3, exitPort: 443, guards, enforceDistinctSubnets: true, exclude }))).to.equal(
      'ERR_ONION_PATH: no exit allows port 443',
    );
    const entries = new Set<string>();
    for (let i = 0; i < 200; i++) entries.add(choosePath(ds, { hops: 3, exitPort: 443, guards: [], enforceDistinctSubnets: true })[0]!.fingerprint);
    expect(entries.size).to.be.greaterThan(4);
  });

  it('weights the last hop of an internal circuit as a middle: a network without exits still builds one', () => {
    // Weighted by the directory view of a network without authorities, exit weights are 0 for non-exits; an internal
    // circuit (content, rendezvous) asked for its last hop among them and failed with "no last hop is compatible".
    const noExits = ds.slice(2);
    const view = new DirectoryView(noExits, null);
    const lasts = new Set<string>();
    for (let i = 0; i < 100; i++) {
      for (const g of [[], [noExits[0]!]]) {
        const p = choosePath(noExits, { hops: 3, exitPort: null, guards: g, enforceDistinctSubnets: true, weights: view });
        expect(p).to.have.length(3);
        lasts.add(p[2]!.fingerprint);
      }
    }
    expect(lasts.size).to.be.greaterThan(4);
    expect(codeOf(() => choosePath(noExits, { hops: 3, exitPort: 443, guards: [], enforceDistinctSubnets: true, weights: view }))).to.match(/^ERR_ONION_PATH/);
  });
  it('a guard sampled for an imposed last hop gets a path that avoids the relays that failed (specs/path.md §3, §5)', async () => {
    // The client's primary guards are g1 and g2; g1 went down (excluded, and not usable as a guard), and a circuit
    // must end at g2. No entry fits, so the exclusion is cleared, which does not help; a guard is sampled. The path
    // through it must not take g1 as its middle: the exclusion was cleared for want of an entry, not of a middle.
    // (Before, it stayed cleared: about one path in three went through the relay that was down.)
    const net = relays(5);
    const [g1, g2] = [net[0]!, net[1]!];
    let middles = 0;
    for (let i = 0; i < 120; i++) {
      const exclude = new Set([g1.fingerprint]);
      const o = { hops: 3, exitPort: null, guards: [g2], last: g2, exclude, enforceDistinctSubnets: false };
      let sampled = 0;
      const path = await choosePathWithFallbacks(net, o, async () => {
        sampled++;
        o.guards = [g2, net[2 + (i % 3)]!];
        return true;
      });
      expect(sampled).to.equal(1);
      if (path instanceof AlliumError) throw path;
      expect(path.map((d) => d.fingerprint)).to.not.include(g1.fingerprint);
      expect(path[2]!.fingerprint).to.equal(g2.fingerprint);
      expect(exclude.has(g1.fingerprint), 'the exclusion holds again').to.equal(true);
      middles++;
    }
    expect(middles).to.equal(120);
  });

  it('clears the exclusion again when the new guard has no path without the relays that failed', async () => {
    // Three relays: the only middle for a path through the sampled guard is the one that failed.
    const net = relays(3);
    const [g1, g2, g3] = [net[0]!, net[1]!, net[2]!];
    const exclude = new Set([g1.fingerprint]);
    const o = { hops: 3, exitPort: null, guards: [g2], last: g2, exclude, enforceDistinctSubnets: false };
    const path = await choosePathWithFallbacks(net, o, async () => {
      o.guards = [g2, g3];
      return true;
    });
    if (path instanceof AlliumError) throw path;
    expect(path.map((d) => d.fingerprint)).to.deep.equal([g3.fingerprint, g1.fingerprint, g2.fingerprint]);
  });

  it('samples no guard when clearing the exclusion is enough', async () => {
    const net = relays(5);
    const exclude = new Set(net.slice(2).map((d) => d.fingerprint)); // every middle candidate failed
    const o = { hops: 3, exitPort: null, guards: [net[0]!], last: net[1]!, exclude, enforceDistinctSubnets: false };
    let sampled = 0;
    const path = await choosePathWithFallbacks(net, o, async () => {
      sampled++;
      return true;
    });
    expect(path).to.not.be.instanceOf(AlliumError);
    expect(sampled).to.equal(0);
  });
});
