/**
 * Entry guards (specs/path.md §3, §3.1): two primary guards from a bounded sample, a grace period before an unlisted
 * primary is replaced, confirmed guards first, and path bias that reports a guard failing circuits and (by default)
 * stops using it.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { GRACE_MS, GuardSet, N_PRIMARY, REMOVE_UNLISTED_AFTER_MS, SAMPLE_MAX, type PathBiasEvent } from '../../client/guards.js';
import { PB_MIN_ATTEMPTS } from '../../client/path-bias.js';

const DAY = 24 * 3600_000;
const T = Date.UTC(2026, 0, 1);

function relays(n: number): Descriptor[] {
  return Array.from({ length: n }, (_, i) => {
    const k = IdentityKey.generate();
    return signDescriptor(
      {
        id: k.publicKey,
        onion: crypto().random(32),
        addr: `ws://10.${i}.0.1:9001/allium`,
        nick: `g${i}`,
        contact: '',
        family: [],
        bw: 1000 + i,
        exit: ['reject *:*'],
        caps: [],
        pub: T,
        exp: T + 3600_000,
      },
      k.secretKey,
    );
  });
}

describe('guards', () => {
  it('keeps two primary guards; an absence shorter than the grace period adds none; a long one does', async () => {
    const all = relays(40);
    const g = new GuardSet(null);
    const first = await g.refresh(all, T);
    expect(g.all).to.have.length(N_PRIMARY);
    const [a] = first;
    // The first primary misses a day's directory: the second is used, nothing is sampled.
    const without = all.filter((d) => d.fingerprint !== a!.fingerprint);
    const during = await g.refresh(without, T + DAY / 2);
    expect(g.all).to.have.length(N_PRIMARY);
    expect(during[0]!.fingerprint).to.equal(first[1]!.fingerprint);
    // Back within the grace period: first again.
    expect((await g.refresh(all, T + DAY - 1))[0]!.fingerprint).to.equal(a!.fingerprint);
    // Gone beyond the grace period: a third guard is sampled; the first stays in the sample for 20 days.
    await g.refresh(without, T + 2 * DAY);
    await g.refresh(without, T + 2 * DAY + GRACE_MS + 1);
    expect(g.all).to.have.length(N_PRIMARY + 1);
    expect(g.all.some((r) => r.fingerprint === a!.fingerprint)).to.equal(true);
    await g.refresh(without, T + 2 * DAY + REMOVE_UNLISTED_AFTER_MS + 1);
    expect(g.all.some((r) => r.fingerprint === a!.fingerprint)).to.equal(false);
  });

  it('never samples more than SAMPLE_MAX guards however often relays vanish', async () => {
    const all = relays(200);
    const g = new GuardSet(null);
    let t = T;
    await g.refresh(all, t);
    for (let day = 0; day < 100; day++) {
      t += 2 * DAY;
      const used = new Set(g.all.map((r) => r.fingerprint));
      await g.refresh(
        all.filter((d) => !used.has(d.fingerprint)),
        t,
      ); // every guard vanishes at once
      expect(g.all.length).to.be.at.most(SAMPLE_MAX);
    }
  });

  it('a guard sampled for an imposed last hop fits it, and the sample never passes SAMPLE_MAX', async () => {
    const all = relays(60);
    const g = new GuardSet(null);
    await g.refresh(all, T);
    const [a, b] = g.all.map((r) => r.fingerprint);
    // Every usable guard is unfit (the last hop is b, and a has failed): one more is sampled, neither a nor b.
    const added = await g.sampleFitting(all, T, (d) => d.fingerprint !== a && d.fingerprint !== b);
    expect(added).to.not.equal(null);
    expect([a, b]).to.not.include(added!.fingerprint);
    expect(g.all.map((r) => r.fingerprint)).to.include(added!.fingerprint);
    // Asked again and again (an adversary imposing last hops): the sample stops at SAMPLE_MAX, all listed.
    for (let i = 0; i < 100; i++) await g.sampleFitting(all, T, () => true);
    expect(g.all).to.have.length(SAMPLE_MAX);
    expect(await g.sampleFitting(all, T, () => true)).to.equal(null);
    // Nothing fits: nothing is added.
    const g2 = new GuardSet(null);
    await g2.refresh(all, T);
    expect(await g2.sampleFitting(all, T, () => false)).to.equal(null);
    expect(g2.all).to.have.length(N_PRIMARY);
  });

  it('confirmed guards come first', async () => {
    const all = relays(10);
    const g = new GuardSet(null);
    const [a, b] = await g.refresh(all, T);
    await g.markSucceeded(b!.fingerprint, T + 1);
    const usable = g.usable(all, T + 2);
    expect(usable[0]!.fingerprint).to.equal(b!.fingerprint);
    expect(usable[1]!.fingerprint).to.equal(a!.fingerprint);
  });

  it('path bias: a guard that fails most builds is reported and, by default, no longer used; "warn" only reports', async () => {
    for (const reaction of ['avoid', 'warn'] as const) {
      const all = relays(10);
      const events: PathBiasEvent[] = [];
      const g = new GuardSet(null, undefined, { pathBiasReaction: reaction, onPathBias: (e) => events.push(e) });
      const [bad] = await g.refresh(all, T);
      for (let i = 0; i < PB_MIN_ATTEMPTS; i++) await g.recordBuild(bad!.fingerprint, i % 10 === 0, T + i);
      expect(events.map((e) => e.level)).to.include('extreme');
      const usable = await g.refresh(all, T + 100);
      if (reaction === 'avoid') {
        expect(usable.map((d) => d.fingerprint)).to.not.include(bad!.fingerprint);
        expect(events.at(-1)!.disabled).to.equal(true);
      } else expect(usable[0]!.fingerprint).to.equal(bad!.fingerprint);
    }
  });

  it('a guard whose builds mostly succeed is never reported', async () => {
    const all = relays(10);
    const events: PathBiasEvent[] = [];
    const g = new GuardSet(null, undefined, { onPathBias: (e) => events.push(e) });
    const [good] = await g.refresh(all, T);
    for (let i = 0; i < 500; i++) await g.recordBuild(good!.fingerprint, i % 5 !== 0, T + i); // 80 % succeed
    expect(events).to.deep.equal([]);
  });

  it('loads guard files of the earlier format as unconfirmed guards', async () => {
    const all = relays(5);
    const old = [{ fingerprint: all[3]!.fingerprint, addedAt: T, expiresAt: T + 100 * DAY, failedAt: null }];
    const g = new GuardSet({ load: async () => old, save: async () => undefined });
    await g.load();
    const usable = await g.refresh(all, T + 1);
    expect(usable[0]!.fingerprint).to.equal(all[3]!.fingerprint);
    expect(g.all[0]!.confirmedAt).to.equal(null);
  });
});
