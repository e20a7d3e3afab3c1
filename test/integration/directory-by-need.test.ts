/**
 * A client's directory refresh with authorities (specs/directory.md §6.2, §7.3) against relay processes: the consensus
 * comes as a diff, and only the descriptors the client lacks come at all, by identity (`dir-want`), from one source.
 * A source in front of a relay that corrupts what passes through — a consensus diff with an entry added, a descriptor
 * whose signature does not verify — is refused, and the refresh recovers: the whole consensus instead of the diff, the
 * descriptors from the next source. The client's links are real links (handshake, frame encryption) to the relays.
 *
 * Descriptors here live 8 s and are renewed every 4 s, so they expire at the client between two refreshes: a descriptor
 * whose md the consensus in use lists stays usable after its exp (§6.6) and is not downloaded again; a client builds
 * circuits through it; after a restart its cache spares the download; and a consensus that lapsed, is old or is
 * forged vouches for nothing.
 */
import { expect } from 'chai';
import { IdentityKey } from '../../crypto/keys.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { buildCircuit, CircuitTable } from '../../client/circuit.js';
import { ClientDirectory, type DirectoryCache, type RefreshResult } from '../../client/directory.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import type { ControlMessage } from '../../protocol/control.js';
import { HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { openLink } from '../../net/dial.js';
import { Link } from '../../net/link.js';
import { memorySocketPair } from '../../net/memory-socket.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, startRelay, waitFor, type RelayProcess } from '../helpers/network.js';
import type { LocalNetwork } from '../../cli/local-network.js';

/** Descriptors that live 8 s, renewed every 4 s (so they expire between refreshes); a consensus every 3 s. */
const TIMING = { descriptor_lifetime: 8000, descriptor_renew: 4000, consensus_interval: 3000 };

function linkTo(r: RelayProcess): Promise<Link> {
  const b = parseBootstrap(r.bootstrap);
  return openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
}

/**
 * A directory source in front of `upstream`: every CONTROL message the client sends goes to the relay, and every
 * answer comes back through `alter`. Its own link to the client is a real one over in-memory sockets.
 */
async function tamperingSource(upstream: Link, alter: (m: ControlMessage) => ControlMessage): Promise<{ link: Link; altered: () => number }> {
  const identity = IdentityKey.generate();
  const [a, b] = memorySocketPair();
  const front = new Link(b, { role: 'responder', identity, replay: new HandshakeReplayCache(60_000, 100), maxClockSkewMs: 60_000 });
  const link = new Link(a, { role: 'initiator', responder: identity.publicKey });
  let altered = 0;
  front.on('link:control', (m) => upstream.sendControl(m));
  upstream.on('link:control', (m) => {
    const out = alter(m);
    if (out !== m) altered++;
    if (front.isOpen) front.sendControl(out);
  });
  await new Promise<void>((resolve, reject) => {
    link.once('link:open', () => resolve());
    link.once('link:close', (e) => reject(e ?? new Error('closed')));
  });
  return { link, altered: () => altered };
}

describe('directory refresh by need (relay processes with authorities)', function () {
  this.timeout(180_000);
  let net: LocalNetwork;
  const links: Link[] = [];

  before(async () => {
    net = await startNetwork(5, { timing: TIMING });
  });
  after(async () => {
    for (const l of links) l.close();
    await net?.stop();
  });

  /** Refreshes until `done` holds of the directory (each refresh's result kept), within 60 s. */
  async function refreshUntil(dir: ClientDirectory, sources: readonly Link[], done: (r: RefreshResult) => boolean, what: string): Promise<RefreshResult> {
    let last: RefreshResult | null = null;
    await waitFor(
      async () => {
        last = await dir.refresh(sources, Date.now);
        return done(last);
      },
      60_000,
      what,
    );
    return last!;
  }

  it('after one relay changed, a refresh downloads the consensus as a diff and that relay’s descriptor only', async () => {
    const sources = await Promise.all(net.relays.slice(0, 3).map(linkTo));
    links.push(...sources);
    const dir = new ClientDirectory(undefined, new Set(net.authorities));
    const first = await dir.refresh(sources, Date.now);
    expect(first.downloaded.consensus).to.equal('whole');
    expect(dir.all().length).to.equal(5);
    // Every descriptor once, from the first source (before: each of them from each of the three sources).
    expect(first.downloaded.descriptors).to.equal(5);

    // A newer consensus with nothing changed: a diff, and no descriptor.
    const quiet = await refreshUntil(dir, sources, (r) => r.downloaded.consensus !== 'kept', 'a newer consensus');
    expect({ consensus: quiet.downloaded.consensus, descriptors: quiet.downloaded.descriptors }).to.deep.equal({ consensus: 'diff', descriptors: 0 });

    // Relay 4 restarts with another exit policy (and port): its md changes.
    const old = net.relays[4]!;
    await old.kill('SIGTERM');
    const again = await startRelay({
      dataDir: old.dataDir,
      nickname: 'r4',
      bootstrap: [net.bootstrap],
      exitPolicy: ['accept 127.0.0.1:9', 'reject *:*'],
      timing: TIMING,
      extra: { directory_authorities: net.authorities },
    });
    net.relays[4] = again;
    const changed = await refreshUntil(
      dir,
      sources,
      (r) => r.accepted.some((d) => d.fingerprint === again.fingerprint && d.exit.includes('accept 127.0.0.1:9')),
      'the changed relay in a consensus and at the client',
    );
    // The new descriptor, and nothing else (a source that had not heard of it yet gives the old one, asked again of
    // the next source: at most one per source).
    expect({ consensus: changed.downloaded.consensus, accepted: changed.accepted.map((d) => d.fingerprint) }).to.deep.equal({
      consensus: 'diff',
      accepted: [again.fingerprint],
    });
    expect(changed.downloaded.descriptors).to.be.within(1, sources.length);
    expect(dir.all().length).to.equal(5);
  });

  it('a corrupted consensus diff is refused for the whole consensus, and a corrupted descriptor for the next source', async () => {
    const upstream = await linkTo(net.relays[1]!);
    const honest = await linkTo(net.relays[2]!);
    links.push(upstream, honest);
    const bad = await tamperingSource(upstream, (m) => {
      // One more change than the relay sent (an identity above every other, so the order still holds).
      if (m.t === 'consensus-diff' && m.ok && !m.more)
        return { ...m, ch: [...m.ch, [new Uint8Array(32).fill(0xff), [new Uint8Array(32).fill(0xff), new Uint8Array(16), 0, 1]]] };
      // The signature of the first descriptor found no longer verifies.
      if (m.t === 'dir-found' && m.ds.length > 0) {
        const raw = Uint8Array.from(m.ds[0]!);
        raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
        return { ...m, ds: [raw, ...m.ds.slice(1)] };
      }
      return m;
    });
    links.push(bad.link);
    const dir = new ClientDirectory(undefined, new Set(net.authorities));

    // The tampering source is asked first: its descriptors are refused, the honest source gives them all.
    const first = await dir.refresh([bad.link, honest], Date.now);
    expect(bad.altered()).to.equal(1);
    expect(dir.all().length).to.equal(5);
    expect(first.downloaded.descriptors).to.equal(5);

    // The next consensus from the tampering source alone: its diff is refused, its whole consensus (which it passes
    // on untouched) checks against the signed head and is adopted.
    const before = dir.consensus!.validAfter;
    const next = await refreshUntil(dir, [bad.link], (r) => r.downloaded.consensus !== 'kept', 'a newer consensus');
    expect({ consensus: next.downloaded.consensus, diffFailed: next.downloaded.diffFailed }).to.deep.equal({ consensus: 'whole', diffFailed: true });
    expect(bad.altered()).to.equal(2);
    expect(dir.consensus!.validAfter).to.be.greaterThan(before);
    expect(dir.all().length).to.equal(5);
  });
  /** Waits until every descriptor the directory holds has passed its exp (real time: they live 8 s). */
  async function untilExpired(ds: readonly Descriptor[]): Promise<void> {
    const last = Math.max(...ds.map((d) => d.exp));
    await waitFor(() => Date.now() > last, 30_000, 'the held descriptors to expire');
  }

  it('a descriptor past its exp that the consensus lists is kept, not downloaded again, and built through', async () => {
    const sources = await Promise.all(net.relays.slice(0, 3).map(linkTo));
    links.push(...sources);
    const saved: { raws: Uint8Array[] | null } = { raws: null };
    const cache: DirectoryCache = { load: () => Promise.resolve(saved.raws), save: (raws) => Promise.resolve(void (saved.raws = raws)) };
    const dir = new ClientDirectory(cache, new Set(net.authorities));
    await dir.refresh(sources, Date.now);
    const held = dir.all();
    expect(held.length).to.equal(5);
    await untilExpired(held);

    // A newer consensus, the same mds: nothing downloaded, and the expired descriptors are still the usable view.
    const next = await refreshUntil(dir, sources, (r) => r.downloaded.consensus !== 'kept', 'a newer consensus');
    expect(next.downloaded.descriptors).to.equal(0);
    const byFp = new Map(dir.all().map((d) => [d.fingerprint, d]));
    expect(byFp.size).to.equal(5);
    for (const d of held) expect(byFp.get(d.fingerprint)?.pub, 'the same edition').to.equal(d.pub);
    const now = Date.now();
    expect(
      [...byFp.values()].every((d) => d.exp <= now),
      'every descriptor in use is past its exp',
    ).to.equal(true);

    // A circuit through three of them: their onion keys are the relays' current ones.
    const path = [0, 1, 2].map((i) => byFp.get(net.relays[i]!.fingerprint)!);
    const circuit = await buildCircuit(sources[0]!, new CircuitTable(), path, { timeoutMs: 20_000 });
    circuit.close();

    // After a restart the cache gives them back, and a refresh with the fetched consensus vouches for them again.
    const again = new ClientDirectory(cache, new Set(net.authorities));
    await again.loadCache(Date.now());
    expect(again.all().length, 'unusable before a consensus vouches for them').to.equal(0);
    const restarted = await again.refresh(sources, Date.now);
    expect({ descriptors: restarted.downloaded.descriptors, usable: again.all().length }).to.deep.equal({ descriptors: 0, usable: 5 });
  });

  it('a consensus that lapsed, an old one or a forged one keeps no descriptor past its exp', async () => {
    const honest = await Promise.all(net.relays.slice(0, 2).map(linkTo));
    links.push(...honest);
    const dir = new ClientDirectory(undefined, new Set(net.authorities));
    await dir.refresh(honest, Date.now);
    const old = dir.consensus!.raw;
    await untilExpired(dir.all());
    await refreshUntil(dir, honest, (r) => r.downloaded.consensus !== 'kept', 'a newer consensus');
    expect(dir.all().length).to.equal(5);

    // From now on the sources give an old head (its vu has passed) or a forged one (the head altered under its
    // signatures). The consensus held stays in use until its vu, then nothing vouches for the expired descriptors.
    const stale = await tamperingSource(honest[0]!, (m) => (m.t === 'consensus-head' ? { ...m, c: old } : m));
    const forged = await tamperingSource(honest[1]!, (m) => {
      if (m.t !== 'consensus-head' || !m.c) return m;
      const c = Uint8Array.from(m.c);
      c[12] = c[12]! ^ 1;
      return { ...m, c };
    });
    links.push(stale.link, forged.link);
    let code = '';
    await waitFor(
      async () => {
        try {
          await dir.refresh([stale.link, forged.link], Date.now);
          return false;
        } catch (e) {
          code = (e as { code?: string }).code ?? String(e);
          return true;
        }
      },
      30_000,
      'the held consensus to lapse',
    );
    expect(code).to.equal('ERR_DIRECTORY');
    expect(stale.altered() > 0 && forged.altered() > 0).to.equal(true);
    expect(dir.consensus).to.equal(null);
    expect({ usable: dir.all().length, held: dir.store.size }).to.deep.equal({ usable: 0, held: 0 });
  });
});
