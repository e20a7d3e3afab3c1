/**
 * The overlay's tables that a remote peer can make grow (relay/overlay.ts), driven in process over real links on
 * memory sockets with an injected clock: each is bounded per peer and per address block and cleaned when its owner
 * goes (specs/directory.md §5, specs/limits.md).
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { isAlliumError } from '../../protocol/errors.js';
import { closed, descriptorFor, nextControl, OverlayHarness } from '../helpers/overlay.js';

const newIdentity = (): IdentityKey => IdentityKey.fromSeed(crypto().random(32));

/** The error code a promise rejects with, or 'resolved'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return isAlliumError(e) ? e.code : String(e);
  }
}

describe('overlay tables a peer can fill', () => {
  let h: OverlayHarness;
  afterEach(() => h?.stop());

  describe('addresses (specs/directory.md §5.1)', () => {
    it('a gossiped address is not kept: once its descriptor expires the relay dials neither it nor any other gossiped URL', async () => {
      h = new OverlayHarness();
      const { peer, mine } = await h.inbound({ identity: newIdentity() });
      // A neighbour pushes 50 short-lived descriptors, each naming an address of its choice.
      const junk = Array.from({ length: 50 }, (_, i) => descriptorFor({ pub: h.now, lifetimeMs: 60_000, addr: `ws://198.51.100.${i + 1}:80/admin` }));
      const pushed = nextControl(mine, 'gossip-push');
      peer.sendControl({ t: 'gossip-push', ds: junk.map((d) => d.raw) });
      await pushed;
      const held = h.directory.size;
      // They expire, and maintenance sweeps the directory as relay.ts does.
      h.now += 61_000;
      h.directory.expire(h.now);
      const results = junk.map((d) => outcome(h.overlay.linkTo(d.id)));
      // A relay with no neighbours dials its bootstrap relays; none was configured, so nothing is dialed.
      peer.close();
      await new Promise((r) => setImmediate(r));
      h.overlay.maintain();
      const dialed = h.dials.map((d) => d.url);
      h.failDials();
      expect({
        held,
        left: h.directory.size,
        results: [...new Set(await Promise.all(results))],
        dialed: dialed.length,
        sample: dialed.slice(0, 2),
      }).to.deep.equal({
        held: 50,
        left: 0,
        results: ['ERR_UNREACHABLE'],
        dialed: 0,
        sample: [],
      });
    });

    it('an unexpired directory entry is dialed at its address, and a bootstrap relay at its line', async () => {
      h = new OverlayHarness();
      const listed = descriptorFor({ pub: h.now, addr: 'ws://203.0.113.5:9001/allium' });
      h.directory.add(listed, h.now);
      const boot = newIdentity();
      h.overlay.learnAddress(boot.publicKey, 'ws://203.0.113.6:9001/allium');
      void h.overlay.linkTo(listed.id).catch(() => undefined);
      void h.overlay.linkTo(boot.publicKey).catch(() => undefined);
      // An entry past its expiry that maintenance has not swept yet is not dialed either.
      const stale = descriptorFor({ pub: h.now, lifetimeMs: 10_000, addr: 'ws://203.0.113.7:9001/allium' });
      h.directory.add(stale, h.now);
      h.now += 10_001;
      const staleDial = outcome(h.overlay.linkTo(stale.id));
      const dialed = h.dials.map((d) => d.url);
      h.failDials();
      expect(await staleDial).to.equal('ERR_UNREACHABLE');
      expect(dialed).to.deep.equal(['ws://203.0.113.5:9001/allium', 'ws://203.0.113.6:9001/allium']);
    });

    it('a descriptor that lives less than MIN_DESCRIPTOR_LIFETIME (5 s) is refused', () => {
      const now = 1_750_000_000_000;
      const code = (lifetimeMs: number): string => {
        try {
          verifyDescriptor(descriptorFor({ pub: now, lifetimeMs }).raw, now);
          return 'ok';
        } catch (e) {
          return isAlliumError(e) ? e.code : String(e);
        }
      };
      expect([code(1), code(4_999), code(5_000)]).to.deep.equal(['ERR_DESCRIPTOR', 'ERR_DESCRIPTOR', 'ok']);
    });
  });

  describe('dials in progress (specs/directory.md §5.1)', () => {
    it('at most MAX_PENDING_DIALS (64) dials at once: the rest fail at once with ERR_LIMIT, and a finished dial makes room', async () => {
      h = new OverlayHarness();
      const relays = Array.from({ length: 100 }, (_, i) => descriptorFor({ pub: h.now, addr: `ws://203.0.113.${i + 1}:9001/allium` }));
      for (const d of relays) h.directory.add(d, h.now);
      const results = relays.map((d) => outcome(h.overlay.linkTo(d.id)));
      const dialedAtOnce = h.dials.length;
      // Asking again for a relay being dialed joins that dial; it starts no other.
      void h.overlay.linkTo(relays[0]!.id).catch(() => undefined);
      const afterRepeat = h.dials.length;
      // One dial ends: the next relay can be dialed.
      h.dials[0]!.reject(new Error('unreachable (test)'));
      await new Promise((r) => setImmediate(r));
      void h.overlay.linkTo(relays[99]!.id).catch(() => undefined);
      const afterOneEnded = h.dials.length;
      h.failDials();
      const codes = await Promise.all(results);
      expect({
        dialedAtOnce,
        afterRepeat,
        afterOneEnded,
        refused: codes.slice(64).every((c) => c === 'ERR_LIMIT'),
        failed: codes.slice(0, 64).every((c) => c === 'ERR_UNREACHABLE'),
      }).to.deep.equal({ dialedAtOnce: 64, afterRepeat: 64, afterOneEnded: 65, refused: true, failed: true });
    });
  });

  describe('pulls (specs/directory.md §5.2)', () => {
    /** `n` random identities in ascending order, each announced as published at `pub`. */
    const announcement = (n: number, pub: number): [Uint8Array, number][] =>
      Array.from({ length: n }, () => crypto().random(32))
        .sort((a, b) => Buffer.compare(a, b))
        .map((id): [Uint8Array, number] => [id, pub]);

    async function pullCounts(h: OverlayHarness): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      for (const v of (await h.metrics.gossipPulls.get()).values) out[String(v.labels['event'])] = v.value;
      return out;
    }

    for (const spread of ['one /24', 'ten /24s'] as const) {
      it(`ten Sybil neighbours from ${spread} announcing 1000 identities each cannot keep an honest announcement from being asked for`, async () => {
        // All ten are neighbours here (the inbound cap per block is tested below), so the pull limits alone decide.
        h = new OverlayHarness({ maxInboundPerBlock: 10 });
        const sybils = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            h.inbound({ identity: newIdentity(), address: spread === 'one /24' ? `198.51.100.${i + 1}` : `198.51.${100 + i}.1` }),
          ),
        );
        for (const s of sybils) {
          const done = nextControl(s.mine, 'gossip-announce');
          s.peer.sendControl({ t: 'gossip-announce', e: announcement(1000, h.now) });
          await done;
        }
        const honest = await h.inbound({ identity: newIdentity(), address: '203.0.113.9' });
        const wanted = nextControl(honest.peer, 'gossip-want');
        const before = await pullCounts(h);
        const e = announcement(1, h.now);
        const done = nextControl(honest.mine, 'gossip-announce');
        honest.peer.sendControl({ t: 'gossip-announce', e });
        await done;
        const after = await pullCounts(h);
        // From one /24 the Sybils get MAX_PULLS_PER_BLOCK (2000) pulls in all; from ten they fill the table and the
        // honest neighbour, below its fair share, takes the place of a pull of the one holding the most.
        expect({ sybilsDropped: before['dropped'] ?? 0, evicted: (after['evicted'] ?? 0) - (before['evicted'] ?? 0) }).to.deep.equal(
          spread === 'one /24' ? { sybilsDropped: 8000, evicted: 0 } : { sybilsDropped: 0, evicted: 1 },
        );
        expect({ asked: (after['asked'] ?? 0) - (before['asked'] ?? 0), dropped: (after['dropped'] ?? 0) - (before['dropped'] ?? 0) }).to.deep.equal({
          asked: 1,
          dropped: 0,
        });
        expect((await wanted).ids).to.deep.equal([e[0]![0]]);
      });
    }
  });

  describe('neighbours (specs/directory.md §5.1)', () => {
    it('eight relays that dial in do not count towards overlay_degree: maintain() still dials eight relays of its directory', async () => {
      h = new OverlayHarness({ degree: 8 });
      const listed = Array.from({ length: 20 }, (_, i) => descriptorFor({ pub: h.now, addr: `ws://203.0.113.${i + 1}:9001/allium` }));
      for (const d of listed) h.directory.add(d, h.now);
      for (let i = 0; i < 8; i++) await h.inbound({ identity: newIdentity(), address: `198.51.100.${i + 1}` });
      const neighbours = h.overlay.neighbourCount;
      h.overlay.maintain();
      const dialed = new Set(h.dials.map((d) => d.fingerprint));
      expect({ neighbours, dials: h.dials.length, allListed: [...dialed].every((fp) => listed.some((d) => d.fingerprint === fp)) }).to.deep.equal({
        neighbours: 8,
        dials: 8,
        allListed: true,
      });
    });

    it('at most MAX_INBOUND_NEIGHBOURS_PER_BLOCK (8) inbound relay links of one /24 are neighbours; what the ninth offers is ignored, what it asks is answered', async () => {
      h = new OverlayHarness();
      for (let i = 0; i < 8; i++) await h.inbound({ identity: newIdentity(), address: `198.51.100.${i + 1}` });
      const ninth = await h.inbound({ identity: newIdentity(), address: '198.51.100.9' });
      const other = await h.inbound({ identity: newIdentity(), address: '203.0.113.9' });
      const d = descriptorFor({ pub: h.now });
      const ignored = nextControl(ninth.mine, 'gossip-push');
      ninth.peer.sendControl({ t: 'gossip-push', ds: [d.raw] });
      await ignored;
      const afterNinth = h.directory.size;
      const taken = nextControl(other.mine, 'gossip-push');
      other.peer.sendControl({ t: 'gossip-push', ds: [d.raw] });
      await taken;
      expect({ neighbours: h.overlay.neighbourCount, afterNinth, afterOther: h.directory.size, ninthOpen: ninth.mine.isOpen }).to.deep.equal({
        neighbours: 9,
        afterNinth: 0,
        afterOther: 1,
        ninthOpen: true,
      });
      // Its requests are still answered, as a client's are: it can learn the directory from this relay.
      const summary = nextControl(ninth.peer, 'gossip-summary');
      ninth.peer.sendControl({ t: 'gossip-digest', d: crypto().random(32), n: 0 });
      expect((await summary).e.length).to.equal(1);
    });
  });

  describe('requests and their answers (specs/directory.md §5.3, specs/link.md §4.2)', () => {
    async function drops(h: OverlayHarness, reason: string): Promise<number> {
      return (await h.metrics.drops.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
    }

    it('a gossip-want naming one identity 5000 times is a schema violation that closes the link, not 5000 descriptors', async () => {
      h = new OverlayHarness();
      const d = descriptorFor({ pub: h.now });
      h.directory.add(d, h.now);
      const { peer } = await h.inbound({ identity: newIdentity() });
      peer.sendControl({ t: 'gossip-want', ids: Array.from({ length: 5_000 }, () => d.id) } as never);
      const first = await Promise.race([nextControl(peer, 'gossip-push').then((m) => `push of ${m.ds.length}`), closed(peer).then(() => 'closed')]);
      expect(first).to.equal('closed');
    });

    it('a summary is answered only after this relay sent its digest, once per digest, and gives at most MAX_SUMMARY_GIVE (5000)', async () => {
      h = new OverlayHarness();
      for (let i = 0; i < 5_100; i++) h.directory.add(descriptorFor({ pub: h.now }), h.now);
      // The relay sends its digest when the link opens; the neighbour answers with an empty summary.
      const { peer, mine } = await h.inbound({ identity: newIdentity() });
      const pushed: number[] = [];
      peer.on('link:control', (m) => {
        if (m.t === 'gossip-push') pushed.push(m.ds.length);
      });
      const answered = nextControl(mine, 'gossip-summary');
      peer.sendControl({ t: 'gossip-summary', e: [], after: null, more: false });
      await answered;
      // A second summary, unasked: nothing more is given. (A digest after it marks the end of what was sent.)
      const unasked = nextControl(mine, 'gossip-summary');
      peer.sendControl({ t: 'gossip-summary', e: [], after: null, more: false });
      await unasked;
      const marker = nextControl(peer, 'gossip-summary');
      peer.sendControl({ t: 'gossip-digest', d: crypto().random(32), n: 0 });
      await marker;
      const given = pushed.reduce((a, b) => a + b, 0);
      expect({ given, unsolicited: await drops(h, 'gossip_summary_unsolicited') }).to.deep.equal({ given: 5_000, unsolicited: 1 });
    });

    it('a peer asking faster than CONTROL_REQUESTS_PER_MINUTE gets the burst (120), then one answer per 100 ms', async () => {
      h = new OverlayHarness();
      const { peer, mine } = await h.inbound({ options: { now: () => h.now } });
      let answers = 0;
      let resolveAt: { n: number; fn: () => void } | null = null;
      peer.on('link:control', (m) => {
        if (m.t !== 'dir') return;
        answers++;
        if (resolveAt && answers >= resolveAt.n) resolveAt.fn();
      });
      const answersReach = (n: number): Promise<void> => new Promise((r) => (answers >= n ? r() : (resolveAt = { n, fn: r })));
      let processed = 0;
      const allProcessed = new Promise<void>((r) => mine.on('link:control', (m) => m.t === 'dir-get' && ++processed === 300 && r()));
      for (let i = 0; i < 300; i++) peer.sendControl({ t: 'dir-get', since: 0, after: null });
      await allProcessed;
      await answersReach(120);
      // The clock stands still: one request waits for a token, the other 179 were ignored.
      const ignored = await drops(h, 'answer_deferred_dropped');
      const atBurst = answers;
      h.now += 100; // one token at 600 a minute
      await answersReach(121);
      expect({ atBurst, ignored, after100ms: answers }).to.deep.equal({ atBurst: 120, ignored: 179, after100ms: 121 });
    });
  });
});
