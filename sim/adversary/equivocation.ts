/**
 * Adversary 4, equivocation: two colluding directory sources give one client a tailored view — half of the honest
 * relays left out, 50 of the adversary's relays added — while the third source is honest. The sources are played
 * here (they answer the real CONTROL messages a client sends: dir-get, consensus-head-get, consensus-entries-get,
 * view-get) and the client is the real ClientDirectory (client/directory.ts):
 *
 * - with authorities (the public network): the colluders serve the real consensus — they cannot forge one — and
 *   their tailored descriptor pages;
 * - without authorities: the cross-check, the comparison of the sources' views and their signed statements; the
 *   client's reaction to a divergence (three more fresh sources, client/client.ts checkedRefresh) is replayed with
 *   three honest sources.
 *
 * A third row runs the real client (client/client.ts) against real relays in the simulator for two hours and
 * records which relays its directory refreshes ask.
 */
import { ClientDirectory } from '../../client/directory.js';
import { AlliumClient } from '../../client/client.js';
import { encodeControl, type ControlMessage } from '../../protocol/control.js';
import { CONSENSUS_PAGE_ENTRIES, entryToTuple, type Consensus } from '../../protocol/consensus.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { directoryDigest } from '../../protocol/directory-store.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import { signViewStatement } from '../../protocol/view-statement.js';
import { Emitter } from '../../net/emitter.js';
import type { Link, LinkEvents } from '../../net/link.js';
import { IdentityKey } from '../../crypto/keys.js';
import { seededRandom } from '../../crypto/drbg.js';
import { signSpecs, T0, type RelaySpec } from '../anonymity.js';
import { FullRelay } from '../relay-node.js';
import { simulate } from '../world.js';
import { authorities, runConsensus, type Observed } from './authorities.js';
import { honestNetwork, type AuditOptions, type AuditRow } from './common.js';

/** A directory source played by the audit: answers what a relay answers, from the descriptors it chooses to show. */
class PlayedSource extends Emitter<LinkEvents> {
  readonly key: IdentityKey;
  readonly peer;
  readonly isOpen = true;
  private readonly sorted: { raw: Uint8Array; fp: string }[];

  constructor(
    seed: string,
    private readonly raws: readonly Uint8Array[],
    private readonly consensus: Consensus | null,
  ) {
    super();
    this.sorted = raws.map((raw) => ({ raw, fp: verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER).fingerprint })).sort((a, b) => (a.fp < b.fp ? -1 : 1));
    this.key = IdentityKey.fromSeed(seededRandom(seed)(32));
    this.peer = { role: LinkRole.RELAY, identity: this.key.publicKey, version: 1 };
  }

  sendControl(m: ControlMessage): void {
    queueMicrotask(() => this.answer(m));
  }

  private answer(m: ControlMessage): void {
    const reply = (r: ControlMessage): void => this.emit('link:control', r, encodeControl(r).length);
    const c = this.consensus;
    switch (m.t) {
      case 'dir-get': {
        const after = m.after ? Buffer.from(m.after).toString('hex') : '';
        const rest = this.sorted.filter((x) => x.fp > after);
        return reply({ t: 'dir', at: T0, ds: rest.slice(0, 100).map((x) => x.raw), more: rest.length > 100 });
      }
      case 'dir-want': {
        const want = new Set(m.ids.map((id) => Buffer.from(id).toString('hex')));
        return reply({ t: 'dir-found', ds: this.sorted.filter((x) => want.has(x.fp)).map((x) => x.raw) });
      }
      case 'consensus-head-get':
        return reply({ t: 'consensus-head', c: c?.raw ?? null });
      case 'consensus-entries-get': {
        const e = c ? c.entries.slice(m.from, m.from + CONSENSUS_PAGE_ENTRIES).map(entryToTuple) : [];
        return reply({ t: 'consensus-entries', d: m.d, from: m.from, e, more: !!c && m.from + CONSENSUS_PAGE_ENTRIES < c.entries.length, ok: !!c });
      }
      case 'consensus-diff-get':
        return reply({ t: 'consensus-diff', from: m.from, to: m.to, ch: [], more: false, ok: false });
      case 'view-get': {
        const ds = this.raws.map((raw) => verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER));
        const fields = { at: T0, d: directoryDigest(ds), n: ds.length, c: c?.digest ?? null };
        return reply({ t: 'view', ...fields, s: signViewStatement(fields, this.key.secretKey) });
      }
      default:
        return;
    }
  }

  close(): void {}
}

const asLinks = (xs: readonly PlayedSource[]): Link[] => xs as unknown as Link[];

export async function equivocation(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const sybils: RelaySpec[] = Array.from({ length: 50 }, (_, i) => ({
    label: `eq${i}`,
    bw: 10_000_000,
    exit: ['accept *:*'],
    net: [198, 18 + (i % 2)] as [number, number],
    family: null,
    availability: 1,
  }));
  const sybilRaws = signSpecs(sybils, o.seed, 'eq-');
  const sybilFps = new Set(sybilRaws.map((r) => verifyDescriptor(r, T0).fingerprint));
  const honestFps = new Set(net.descriptors.map((d) => d.fingerprint));
  const tailored = [...net.raws.filter((_, i) => i % 2 === 0), ...sybilRaws];
  const count = (fps: readonly string[]): { sybils: number; hidden: number } => ({
    sybils: fps.filter((fp) => sybilFps.has(fp)).length,
    hidden: [...honestFps].filter((fp) => !fps.includes(fp)).length,
  });

  // With authorities: the consensus of the honest network (the authorities never saw the Sybils answer).
  const obs: Observed[] = net.descriptors.map((d) => ({
    d,
    capacity: net.capacity.get(d.fingerprint)!,
    knownDays: 60,
    availability: net.availability.get(d.fingerprint)!,
    up: true,
    uptimeDays: 10,
  }));
  const a = authorities(o.seed);
  const consensus = runConsensus(a, obs, T0, null, `${o.seed}/eq`);
  const withAuth = new ClientDirectory(undefined, a.fingerprints);
  await withAuth.refresh(
    asLinks([
      new PlayedSource(`${o.seed}/eq/c1`, tailored, consensus),
      new PlayedSource(`${o.seed}/eq/c2`, tailored, consensus),
      new PlayedSource(`${o.seed}/eq/h`, net.raws, consensus),
    ]),
    () => T0,
  );
  const auth = count(withAuth.all().map((d) => d.fingerprint));

  // Without authorities: the cross-check, the comparison, and three fresh sources when they disagree.
  const free = new ClientDirectory();
  const first = await free.refresh(
    asLinks([
      new PlayedSource(`${o.seed}/eq/c1`, tailored, null),
      new PlayedSource(`${o.seed}/eq/c2`, tailored, null),
      new PlayedSource(`${o.seed}/eq/h`, net.raws, null),
    ]),
    () => T0,
  );
  const detected = first.divergent.length > 0 && (first.conflict?.statements.length ?? 0) === 3;
  const sources = [
    new PlayedSource(`${o.seed}/eq/c1`, tailored, null),
    new PlayedSource(`${o.seed}/eq/c2`, tailored, null),
    new PlayedSource(`${o.seed}/eq/h`, net.raws, null),
    ...[1, 2, 3].map((i) => new PlayedSource(`${o.seed}/eq/fresh${i}`, net.raws, null)),
  ];
  const freeAfter = new ClientDirectory();
  await freeAfter.refresh(asLinks(sources), () => T0);
  const freeCount = count(freeAfter.all().map((d) => d.fingerprint));

  o.progress?.(`equivocation: a client runs ${o.quick ? 'an hour' : 'two hours'} against relays in the simulator`);
  const refreshes = await simulate({ seed: 15_004 }, async (w) => {
    const relays: FullRelay[] = [];
    for (let i = 0; i < 8; i++) {
      const r = new FullRelay(w, w.network.addHost(), i, { exit: i < 2 });
      relays.push(r);
      r.start(relays.slice(0, 1));
      await w.run(1000);
    }
    await w.run(30_000);
    const client = new AlliumClient({
      bootstrap: relays.slice(0, 3).map((r) => r.bootstrapLine),
      socketFactory: w.network.socketFactory(w.network.addHost()),
      poolSize: 1,
      enforceDistinctSubnets: false,
    });
    const seen: string[][] = [];
    const refresh = client.directory.refresh.bind(client.directory);
    client.directory.refresh = (links: readonly Link[], now: () => number, options?: { signal?: AbortSignal }) => {
      seen.push(links.map((l) => (l.peer?.identity ? Buffer.from(l.peer.identity).toString('hex') : '?')));
      return refresh(links, now, options);
    };
    await w.wait(client.start());
    await w.run((o.quick ? 1 : 2) * 3_600_000);
    const distinct = new Set(seen.flat());
    const firstSet = new Set(seen[0] ?? []);
    const sameAsFirst = seen.every((s) => s.every((fp) => firstSet.has(fp)));
    await w.wait(client.stop());
    for (const r of relays) r.dispose();
    return { distinct: distinct.size, sameAsFirst, refreshes: seen.length };
  });

  const base = { adversary: '4. Equivocation', anchor: 'Tor: clients accept only a consensus signed by a majority of the directory authorities' };
  return [
    {
      ...base,
      id: 'equivocation/accepted',
      resources: "2 of a client's 3 directory sources collude; 50 adversary relays (with authorities)",
      metric: 'tailored view accepted by the client (adversary relays added, honest relays hidden)',
      value: auth.sybils + auth.hidden,
      display: `refused: ${auth.sybils} adversary relays added, ${auth.hidden} of ${honestFps.size} honest relays hidden (the consensus decides; its head needs a majority of the authorities' signatures)`,
      goal: 'refused, or detected within one refresh',
      met: auth.sybils === 0 && auth.hidden === 0,
    },
    {
      ...base,
      id: 'equivocation/free',
      resources: "2 of a client's 3 directory sources collude; 50 adversary relays (no authorities)",
      metric: "tailored view without authorities: detected, and the view after the client's reaction",
      value: freeCount.sybils + freeCount.hidden,
      display: `${detected ? 'detected in the first refresh (3 signed view statements kept)' : 'NOT detected'}; after 3 fresh sources: ${freeCount.sybils} adversary relays added, ${freeCount.hidden} honest relays hidden`,
      goal: 'detected within one refresh',
      met: detected && freeCount.sybils === 0 && freeCount.hidden === 0,
    },
    {
      ...base,
      id: 'equivocation/sources',
      resources: `a client running for ${o.quick ? '1 hour' : '2 hours'} (8 relays, simulator)`,
      metric: "distinct relays asked for the directory over the client's refreshes",
      value: refreshes.distinct,
      display: `${refreshes.distinct} relays in ${refreshes.refreshes} refreshes${refreshes.sameAsFirst ? ', always those of the first' : ''}`,
      goal: 'fresh sources at each refresh (more than the first 3)',
      met: refreshes.distinct > 3 && !refreshes.sameAsFirst,
    },
  ];
}
