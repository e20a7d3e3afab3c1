/**
 * Adversary 3, Sybil flood: ten adversary relays, each linked to honest relays as a neighbour, push 100,000 valid
 * self-signed descriptors of fresh identities (addresses that lead nowhere) into a converged network of honest
 * relays running the real overlay (relay/overlay.ts) and directory store over the simulator's message-level links
 * (sim/relay-node.ts MessageRelay). Then an honest relay joins, and every honest relay renews its descriptor.
 *
 * Measured: whether the join is admitted everywhere, the directory entries and gossip bytes an honest relay takes
 * on, and whether any honest relay is missing from an honest directory afterwards.
 */
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { MAX_DESCRIPTORS_PER_MESSAGE } from '../../protocol/control.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import type { Link } from '../../net/link.js';
import { messageSize } from '../cbor-size.js';
import { MessageLink, Traffic } from '../message-link.js';
import { MessageRelay } from '../relay-node.js';
import { simulate, type World } from '../world.js';
import type { AuditOptions, AuditRow } from './common.js';

const SYBIL_PEERS = 10;
/** Fake descriptors pushed: 100,000 in the full run, 10,000 in the quick one. */
const fakesFor = (quick: boolean): number => (quick ? 10_000 : 100_000);

/** One adversary relay: an identity and links into honest relays, on which it pushes what it likes. */
function adversaryPeer(w: World, targets: readonly MessageRelay[]): { links: MessageLink[]; targets: readonly MessageRelay[] } {
  const key = IdentityKey.fromSeed(crypto().random(32));
  const links: MessageLink[] = [];
  for (const t of targets) {
    const [mine, theirs] = MessageLink.pair(w.clock, { latencyMs: 30, bandwidth: 12_500_000, loss: 0 }, w.rng.random, messageSize as (m: unknown) => number, [
      new Traffic(),
      new Traffic(),
    ]);
    mine.peer = { role: LinkRole.RELAY, identity: t.identity.publicKey, version: 1 };
    theirs.peer = { role: LinkRole.RELAY, identity: key.publicKey, version: 1 };
    t.overlay.attach(theirs as unknown as Link);
    links.push(mine);
  }
  return { links, targets };
}

function fakeDescriptors(w: World, n: number): Descriptor[] {
  const out: Descriptor[] = [];
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const key = IdentityKey.fromSeed(crypto().random(32));
    const d = signDescriptor(
      {
        id: key.publicKey,
        onion: crypto().random(32),
        addr: `ws://100.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}:9001/allium`,
        nick: `s${i}`,
        contact: '',
        family: [],
        bw: 2 ** 40,
        exit: ['accept *:*'],
        caps: ['store', 'intro', 'rendezvous'],
        pub: now,
        exp: now + 3 * 3_600_000,
      },
      key.secretKey,
    );
    w.verifyCache.add(d);
    out.push(d);
  }
  return out;
}

export async function sybilFlood(o: AuditOptions): Promise<AuditRow[]> {
  const honestCount = o.quick ? 4 : 8;
  const FAKES = fakesFor(o.quick);
  return simulate({ seed: 15_003 }, async (w) => {
    const relays: MessageRelay[] = [];
    for (let i = 0; i < honestCount; i++) relays.push(new MessageRelay(w, w.network.addHost(), i, { store: true }));
    relays[0]!.start();
    for (const r of relays.slice(1)) r.start([relays[0]!]);
    const converged = (): boolean => relays.every((r) => r.directory.size >= honestCount);
    await w.run(10 * 60_000, converged);
    const honestFps = new Set(relays.map((r) => r.fingerprint));
    o.progress?.(`sybil flood: signing ${FAKES.toLocaleString('en-US')} descriptors`);
    const fakes = fakeDescriptors(w, FAKES);
    const gossipBefore = relays.map((r) => r.metrics.gossipBytes.get('in'));
    const forwardedBefore = relays.reduce((s, r) => s + r.host.traffic.payloadOut, 0);
    const pushedTo = new Map<MessageRelay, number>();
    o.progress?.(`sybil flood: ${SYBIL_PEERS} adversary relays push them into ${honestCount} honest relays`);
    const peers = Array.from({ length: SYBIL_PEERS }, (_, i) => adversaryPeer(w, [relays[i % honestCount]!, relays[(i + 1) % honestCount]!]));
    const per = Math.ceil(FAKES / SYBIL_PEERS);
    peers.forEach((p, i) => {
      const mine = fakes.slice(i * per, (i + 1) * per);
      for (let j = 0; j < mine.length; j += MAX_DESCRIPTORS_PER_MESSAGE) {
        const ds = mine.slice(j, j + MAX_DESCRIPTORS_PER_MESSAGE).map((d) => d.raw);
        p.links.forEach((l, k) => {
          if (!l.isOpen) return;
          l.sendControl({ t: 'gossip-push', ds });
          const t = p.targets[k]!;
          pushedTo.set(t, (pushedTo.get(t) ?? 0) + messageSize({ t: 'gossip-push', ds }));
        });
      }
    });
    await w.run(10 * 60_000);
    const forwarded = relays.reduce((s, r) => s + r.host.traffic.payloadOut, 0) - forwardedBefore;
    o.progress?.('sybil flood: an honest relay joins; every relay renews its descriptor');
    const joiner = new MessageRelay(w, w.network.addHost(), honestCount, { store: true });
    joiner.start([relays[0]!, relays[1]!]);
    for (const r of relays) r.publishDescriptor();
    await w.run(15 * 60_000);
    const admitted = relays.filter((r) => r.directory.get(joiner.fingerprint)).length;
    const maxEntries = Math.max(...relays.map((r) => r.directory.size));
    const gossipIn = Math.max(...relays.map((r, i) => r.metrics.gossipBytes.get('in') - gossipBefore[i]!));
    const ownPushes = Math.max(...relays.map((r) => pushedTo.get(r) ?? 0));
    let missing = 0;
    for (const r of relays) for (const fp of honestFps) if (!r.directory.get(fp)) missing++;
    // Every honest relay renewed its descriptor after the flood: the renewal reached every honest directory.
    const renewed = relays.map((r) => r.descriptor!.pub);
    let stale = 0;
    for (const r of relays) relays.forEach((x, i) => ((r.directory.get(x.fingerprint)?.pub ?? 0) < renewed[i]! ? stale++ : 0));
    for (const r of [...relays, joiner]) r.down('vanish');
    const resources = `${SYBIL_PEERS} adversary relays linked to honest relays, pushing ${FAKES.toLocaleString('en-US')} valid descriptors of fresh identities (${honestCount} honest relays)`;
    const base = {
      adversary: '3. Sybil flood',
      resources,
      anchor: 'Tor: authorities list at most 2 relays per IP address (AuthDirMaxServersPerAddr); relays only fetch what the consensus lists',
    };
    return [
      {
        ...base,
        id: 'sybil/join',
        metric: 'honest relays that admitted an honest join after the flood',
        value: admitted / honestCount,
        display: `${admitted} of ${honestCount}`,
        goal: 'all',
        met: admitted === honestCount,
      },
      {
        ...base,
        id: 'sybil/entries',
        metric: 'directory entries at the fullest honest relay',
        value: maxEntries,
        display: maxEntries.toLocaleString('en-US'),
        goal: `≤ ${honestCount + 1}: the honest relays and the joiner (unproven entries take none)`,
        met: maxEntries <= honestCount + 1,
      },
      {
        ...base,
        id: 'sybil/gossip',
        metric: 'gossip bytes received by the busiest honest relay during the flood',
        value: gossipIn,
        display: `${(gossipIn / 1e6).toFixed(1)} MB (the adversary pushed ${(ownPushes / 1e6).toFixed(1)} MB to it)`,
        goal: 'no more than the adversary pushes itself (+ 10 %): honest relays pass none of it on',
        met: gossipIn <= 1.1 * ownPushes,
      },
      {
        ...base,
        id: 'sybil/forwarded',
        metric: 'gossip bytes honest relays sent each other during the flood',
        value: forwarded,
        display: `${(forwarded / 1e6).toFixed(2)} MB`,
        goal: '≤ 0.5 MB (digests and renewals, none of the flood)',
        met: forwarded <= 500_000,
      },
      {
        ...base,
        id: 'sybil/evicted',
        metric: 'honest relays missing from honest directories afterwards',
        value: missing,
        display: `${missing}${stale ? ` (${stale} renewals missing)` : ''}`,
        goal: '0',
        met: missing === 0 && stale === 0,
      },
    ];
  });
}
