/**
 * Announce-and-pull gossip (specs/directory.md §5.2) and cut summaries (§5.3), in virtual time:
 *
 * - one overlay (relay/overlay.ts) with message-level links to neighbours the test plays: whom it asks for an
 *   announced descriptor, how it falls back to another announcer when the first never answers or goes away, whom it
 *   announces to afterwards, and what it gives and sends for summaries cut at MAX_SUMMARY_ENTRIES;
 * - networks of simulated relays running the real overlay: every relay receives each renewed descriptor whole
 *   about once, and relays that announce but never answer wants do not stop renewals from reaching everyone.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { MAX_SUMMARY_ENTRIES, type ControlMessage } from '../../protocol/control.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { DirectoryStore } from '../../protocol/directory-store.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import type { Link } from '../../net/link.js';
import { ANNOUNCE_BATCH_MS, Overlay, PULL_TIMEOUT_MS } from '../../relay/overlay.js';
import { messageSize } from '../../sim/cbor-size.js';
import { MessageLink, Traffic } from '../../sim/message-link.js';
import { MessageRelay, SimRelayMetrics } from '../../sim/relay-node.js';
import { simulate, type World } from '../../sim/world.js';

function descriptorOf(key: IdentityKey, pub: number, i = 0): Descriptor {
  return signDescriptor(
    {
      id: key.publicKey,
      onion: crypto().random(32),
      addr: `ws://10.1.${(i >> 8) & 255}.${i & 255}:9001/allium`,
      nick: `n${i}`,
      contact: '',
      family: [],
      bw: 1000,
      exit: ['reject *:*'],
      caps: ['store'],
      pub,
      exp: pub + 3 * 3_600_000,
    },
    key.secretKey,
  );
}

/** A neighbour played by the test: its end of a message-level link and what the overlay sent it. */
interface Neighbour {
  readonly key: IdentityKey;
  readonly link: MessageLink;
  readonly got: ControlMessage[];
  send(m: ControlMessage): void;
  /** Messages of type `t` received so far. */
  of<T extends ControlMessage['t']>(t: T): Extract<ControlMessage, { t: T }>[];
}

function harness(
  w: World,
  gossipIntervalMs = 24 * 3_600_000,
): { overlay: Overlay; directory: DirectoryStore; metrics: SimRelayMetrics; neighbour(latencyMs?: number): Neighbour } {
  const identity = IdentityKey.fromSeed(crypto().random(32));
  const directory = new DirectoryStore();
  const metrics = new SimRelayMetrics();
  const overlay = new Overlay({
    identity,
    directory,
    metrics: metrics.asRelayMetrics,
    log: w.log,
    dial: () => Promise.reject(new Error('the harness dials nothing')),
    onLink: () => undefined,
    degree: 0,
    gossipIntervalMs,
    now: () => Date.now(),
    random: w.rng.fork().random,
    // The neighbours are played by the test and dial nothing: no reachability proofs (test/sim/admission.test.ts).
    admission: false,
  });
  const neighbour = (latencyMs = 20): Neighbour => {
    const key = IdentityKey.fromSeed(crypto().random(32));
    const [mine, theirs] = MessageLink.pair(w.clock, { latencyMs, bandwidth: 0, loss: 0 }, w.rng.random, messageSize as (m: unknown) => number, [
      new Traffic(),
      new Traffic(),
    ]);
    mine.peer = { role: LinkRole.RELAY, identity: identity.publicKey, version: 1 };
    theirs.peer = { role: LinkRole.RELAY, identity: key.publicKey, version: 1 };
    const got: ControlMessage[] = [];
    mine.on('link:control', (m) => got.push(m));
    overlay.attach(theirs as unknown as Link);
    return {
      key,
      link: mine,
      got,
      send: (m) => mine.sendControl(m),
      of: <T extends ControlMessage['t']>(t: T) => got.filter((m): m is Extract<ControlMessage, { t: T }> => m.t === t),
    };
  };
  return { overlay, directory, metrics, neighbour };
}

const wantsFor = (n: Neighbour, d: Descriptor): number => n.of('gossip-want').filter((m) => m.ids.some((id) => crypto().equal(id, d.id))).length;
const announcedTo = (n: Neighbour, d: Descriptor): boolean =>
  n.of('gossip-announce').some((m) => m.e.some(([id, pub]) => crypto().equal(id, d.id) && pub === d.pub));

describe('sim: announce-and-pull gossip', function () {
  this.timeout(120_000);

  it('asks one announcer, falls back to another when it never answers, then announces only where needed', async () => {
    await simulate({ seed: 11 }, async (w) => {
      const h = harness(w);
      const silent = h.neighbour(10);
      const honest = h.neighbour(30);
      const other = h.neighbour(20);
      await w.run(1000);
      const d = descriptorOf(IdentityKey.fromSeed(crypto().random(32)), Date.now());
      silent.send({ t: 'gossip-announce', e: [[d.id, d.pub]] });
      await w.run(5);
      honest.send({ t: 'gossip-announce', e: [[d.id, d.pub]] });
      await w.run(200);
      // One want, to the first announcer only.
      expect(wantsFor(silent, d)).to.equal(1);
      expect(wantsFor(honest, d)).to.equal(0);
      await w.run(PULL_TIMEOUT_MS - 500);
      expect(h.directory.get(d.fingerprint)).to.equal(undefined);
      expect(wantsFor(honest, d)).to.equal(0);
      // The silent announcer's time is up: the other one is asked and delivers.
      await w.run(1000);
      expect(wantsFor(honest, d)).to.equal(1);
      honest.send({ t: 'gossip-push', ds: [d.raw] });
      await w.run(ANNOUNCE_BATCH_MS + 50);
      expect(h.directory.get(d.fingerprint)?.pub).to.equal(d.pub);
      expect(h.metrics.gossipPulls.get('retried')).to.equal(1);
      expect(h.metrics.gossipDescriptors.get('new')).to.equal(1);
      // Announced to the neighbour that did not announce it, to neither announcer, and pushed whole to nobody.
      expect(announcedTo(other, d)).to.equal(true);
      expect(announcedTo(silent, d)).to.equal(false);
      expect(announcedTo(honest, d)).to.equal(false);
      for (const n of [silent, honest, other]) expect(n.of('gossip-push')).to.have.length(0);
      // A later announcement of the edition held costs no want.
      other.send({ t: 'gossip-announce', e: [[d.id, d.pub]] });
      await w.run(200);
      expect(wantsFor(other, d)).to.equal(0);
      // Next time the neighbour that let its ask time out announces first, it is passed over as soon as one that
      // delivered announces too.
      const d2 = descriptorOf(IdentityKey.fromSeed(crypto().random(32)), Date.now());
      silent.send({ t: 'gossip-announce', e: [[d2.id, d2.pub]] });
      await w.run(5);
      honest.send({ t: 'gossip-announce', e: [[d2.id, d2.pub]] });
      await w.run(100);
      expect(wantsFor(silent, d2)).to.equal(1);
      expect(wantsFor(honest, d2)).to.equal(1);
      honest.send({ t: 'gossip-push', ds: [d2.raw] });
      await w.run(100);
      expect(h.directory.get(d2.fingerprint)?.pub).to.equal(d2.pub);
      h.overlay.stop();
    });
  });

  it('asks another announcer at once when the one asked goes away, and gives up when none is left', async () => {
    await simulate({ seed: 12 }, async (w) => {
      const h = harness(w);
      const a = h.neighbour();
      const b = h.neighbour();
      await w.run(1000);
      const d = descriptorOf(IdentityKey.fromSeed(crypto().random(32)), Date.now());
      a.send({ t: 'gossip-announce', e: [[d.id, d.pub]] });
      await w.run(5);
      b.send({ t: 'gossip-announce', e: [[d.id, d.pub]] });
      await w.run(100);
      expect(wantsFor(a, d)).to.equal(1);
      a.link.close();
      await w.run(100);
      expect(wantsFor(b, d)).to.equal(1);
      // b never answers either: after its timeout nobody is left to ask.
      await w.run(PULL_TIMEOUT_MS + 100);
      expect(h.metrics.gossipPulls.get('abandoned')).to.equal(1);
      expect(h.directory.get(d.fingerprint)).to.equal(undefined);
      // A newer edition announced later starts a new pull.
      const newer = descriptorOf(IdentityKey.fromSeed(crypto().random(32)), Date.now());
      b.send({ t: 'gossip-announce', e: [[newer.id, newer.pub]] });
      await w.run(100);
      expect(wantsFor(b, newer)).to.equal(1);
      h.overlay.stop();
    });
  });

  it('pushes its own new descriptor whole, once to each neighbour', async () => {
    await simulate({ seed: 13 }, async (w) => {
      const h = harness(w);
      const ns = [h.neighbour(), h.neighbour(), h.neighbour()];
      await w.run(1000);
      const key = IdentityKey.fromSeed(crypto().random(32));
      const own = descriptorOf(key, Date.now());
      h.overlay.publish(own);
      await w.run(200);
      for (const n of ns) {
        expect(n.of('gossip-push').flatMap((m) => m.ds)).to.have.length(1);
        expect(n.of('gossip-announce')).to.have.length(0);
      }
      h.overlay.stop();
    });
  });

  describe('summaries larger than MAX_SUMMARY_ENTRIES', () => {
    const total = MAX_SUMMARY_ENTRIES + 1000;

    it('a cut summary is not read as a list of what its sender lacks', async () => {
      await simulate({ seed: 14 }, async (w) => {
        // Anti-entropy every 10 s: each page answers a digest of the overlay's (one summary per digest, §5.3).
        const h = harness(w, 10_000);
        const now = Date.now();
        const ds = Array.from({ length: total }, (_, i) => descriptorOf(IdentityKey.fromSeed(crypto().random(32)), now - 1000, i));
        for (const d of ds) h.directory.add(d, now);
        const sorted = [...ds].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
        const peer = h.neighbour();
        await w.run(1000);
        const pairs = (list: Descriptor[]): [Uint8Array, number][] => list.map((d) => [d.id, d.pub]);
        // A neighbour holding the same view sends its first page, cut at MAX_SUMMARY_ENTRIES.
        const first = sorted.slice(0, MAX_SUMMARY_ENTRIES);
        peer.send({ t: 'gossip-summary', e: pairs(first), after: null, more: true });
        await w.run(1000);
        expect(peer.of('gossip-push')).to.have.length(0);
        expect(peer.of('gossip-want')).to.have.length(0);
        // (Read as a whole summary, that page would have named 1000 descriptors as missing.)
        expect(h.directory.diff(pairs(first)).give).to.have.length(1000);
        // At the next round (the overlay's next digest) its second page lacks one descriptor: exactly that one is given.
        const digests = peer.of('gossip-digest').length;
        h.overlay.start();
        for (let i = 0; i < 30 && peer.of('gossip-digest').length === digests; i++) await w.run(1000);
        const rest = sorted.slice(MAX_SUMMARY_ENTRIES);
        const missing = rest[500]!;
        peer.send({ t: 'gossip-summary', e: pairs(rest.filter((d) => d !== missing)), after: first[first.length - 1]!.id, more: false });
        await w.run(1000);
        const pushed = peer.of('gossip-push').flatMap((m) => m.ds);
        expect(pushed).to.have.length(1);
        expect(crypto().equal(pushed[0]!, missing.raw)).to.equal(true);
        h.overlay.stop();
      });
    });

    it('a large view is summarised a page at a time, each page marked', async () => {
      await simulate({ seed: 15 }, async (w) => {
        const h = harness(w);
        const now = Date.now();
        const ds = Array.from({ length: total }, (_, i) => descriptorOf(IdentityKey.fromSeed(crypto().random(32)), now - 1000, i));
        for (const d of ds) h.directory.add(d, now);
        const sorted = [...ds].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
        const peer = h.neighbour();
        await w.run(1000);
        const pages: Extract<ControlMessage, { t: 'gossip-summary' }>[] = [];
        for (let i = 0; i < 3; i++) {
          peer.send({ t: 'gossip-digest', d: crypto().random(32), n: 1 });
          await w.run(1000);
          pages.push(peer.of('gossip-summary').at(-1)!);
        }
        expect(peer.of('gossip-summary')).to.have.length(3);
        const [p1, p2, p3] = pages as [(typeof pages)[0], (typeof pages)[0], (typeof pages)[0]];
        expect(p1.after).to.equal(null);
        expect(p1.more).to.equal(true);
        expect(p1.e).to.have.length(MAX_SUMMARY_ENTRIES);
        expect(p1.e.map(([id]) => Buffer.from(id).toString('hex'))).to.deep.equal(sorted.slice(0, MAX_SUMMARY_ENTRIES).map((d) => d.fingerprint));
        expect(crypto().equal(p2.after!, p1.e[p1.e.length - 1]![0])).to.equal(true);
        expect(p2.more).to.equal(false);
        expect(p2.e).to.have.length(total - MAX_SUMMARY_ENTRIES);
        // The next round starts over.
        expect(p3.after).to.equal(null);
        expect(p3.more).to.equal(true);
        h.overlay.stop();
      });
    });
  });

  /** A converged network of message-level relays (default timing: renewals hourly, anti-entropy every 5 minutes). */
  async function network(w: World, n: number, config: ConstructorParameters<typeof MessageRelay>[3] = {}): Promise<MessageRelay[]> {
    const relays: MessageRelay[] = [];
    for (let i = 0; i < n; i++) {
      const r = new MessageRelay(w, w.network.addHost(), i, config);
      relays.push(r);
      r.start(i === 0 ? [] : [relays[w.rng.int(i)]!, relays[w.rng.int(i)]!]);
      await w.run(1000);
    }
    await w.run(30_000);
    for (const r of relays) expect(r.directory.size).to.equal(n);
    return relays;
  }

  it('a renewed descriptor reaches every relay, each receiving it whole about once', async () => {
    await simulate({ seed: 16 }, async (w) => {
      const n = 60;
      const relays = await network(w, n);
      const meanLinks = relays.reduce((s, r) => s + r.overlay.neighbourCount, 0) / n;
      const count = (label: string): number => relays.reduce((s, r) => s + r.metrics.gossipDescriptors.get(label), 0);
      const before = { new: count('new'), known: count('known') };
      const renewed: Descriptor[] = [];
      for (let i = 0; i < 20; i++) {
        renewed.push(relays[(i * 7) % n]!.publishDescriptor());
        await w.run(1500);
      }
      await w.run(10_000);
      for (const d of renewed) for (const r of relays) expect(r.directory.get(d.fingerprint)?.pub).to.equal(d.pub);
      const fresh = count('new') - before.new;
      const duplicates = count('known') - before.known;
      // Every relay but the publisher added each renewal once; a flood would have sent each about once per link.
      expect(fresh).to.equal(renewed.length * (n - 1));
      expect(meanLinks).to.be.at.least(8);
      expect(duplicates / fresh).to.be.below(0.1);
      for (const r of relays) r.down();
    });
  });

  it('neighbours that announce but never answer wants do not stop propagation', async () => {
    await simulate({ seed: 17 }, async (w) => {
      const n = 60;
      // Anti-entropy only once an hour: what arrives in the window came by announcements and pulls.
      const relays = await network(w, n, { config: { timing: { gossip_interval: 3_600_000 } } });
      const silent = relays.filter((_, i) => i % 4 === 1);
      for (const r of silent) {
        const handle = r.overlay.onControl.bind(r.overlay);
        r.overlay.onControl = (link, m) => {
          if (m.t !== 'gossip-want') handle(link, m);
        };
      }
      const honest = relays.filter((r) => !silent.includes(r));
      const retried = (): number => honest.reduce((s, r) => s + r.metrics.gossipPulls.get('retried'), 0);
      // Two rounds of renewals from honest and silent relays alike. In the first, relays learn which neighbours
      // let asks time out; in the second, they ask those last. A relay has overlay_degree neighbours it dialed plus
      // those that dialed it (about twice overlay_degree), so the first round renews enough descriptors for every
      // relay to have asked most of them.
      for (const [round, within, count] of [
        [0, 4 * PULL_TIMEOUT_MS, 32],
        [1, PULL_TIMEOUT_MS, 16],
      ] as const) {
        const renewed: Descriptor[] = [];
        for (let i = 0; i < count; i++) {
          renewed.push(relays[(i * 7 + round) % n]!.publishDescriptor());
          await w.run(1000);
        }
        await w.run(within);
        for (const d of renewed)
          for (const r of honest) expect(r.directory.get(d.fingerprint)?.pub, `round ${round}: relay ${r.index} holds the renewal`).to.equal(d.pub);
        expect(retried()).to.be.above(0);
      }
      for (const r of relays) r.down();
    });
  });
});
