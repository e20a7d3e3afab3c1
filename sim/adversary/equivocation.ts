/**
 * Adversary 4, equivocation: two colluding directory sources give one client a tailored view — half of the honest
 * relays left out, 50 of the adversary's relays added — while the third source is honest. Measured with the
 * client's own cross-check (client/directory.ts) on real signed descriptors: what the client accepts, and whether
 * and when it notices. A second row runs the real client (client/client.ts) against real relays in the simulator
 * for two hours and records which relays its directory refreshes ask: a long-running client's sources.
 */
import { crossCheck } from '../../client/directory.js';
import { AlliumClient } from '../../client/client.js';
import type { Link } from '../../net/link.js';
import { signSpecs, T0, type RelaySpec } from '../anonymity.js';
import { FullRelay } from '../relay-node.js';
import { simulate } from '../world.js';
import { honestNetwork, type AuditOptions, type AuditRow } from './common.js';

export async function equivocation(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const sybils: RelaySpec[] = Array.from({ length: 50 }, (_, i) => ({ label: `eq${i}`, bw: 10_000_000, exit: ['accept *:*'], net: [198, 18 + (i % 2)] as [number, number], family: null, availability: 1 }));
  const sybilRaws = signSpecs(sybils, o.seed, 'eq-');
  const honestHalf = net.raws.filter((_, i) => i % 2 === 0);
  const tailored = [...honestHalf, ...sybilRaws];
  const { accepted } = crossCheck([tailored, tailored, net.raws], T0);
  const sybilsIn = accepted.filter((d) => d.nick.startsWith('eq-')).length;
  const hidden = net.descriptors.length - accepted.filter((d) => !d.nick.startsWith('eq-')).length;

  o.progress?.('equivocation: a client runs two hours against relays in the simulator');
  const sources = await simulate({ seed: 15_004 }, async (w) => {
    const relays: FullRelay[] = [];
    for (let i = 0; i < 8; i++) {
      const r = new FullRelay(w, w.network.addHost(), i, { exit: i < 2 });
      relays.push(r);
      r.start(relays.slice(0, 1));
      await w.run(1000);
    }
    await w.run(30_000);
    const client = new AlliumClient({ bootstrap: relays.slice(0, 3).map((r) => r.bootstrapLine), socketFactory: w.network.socketFactory(w.network.addHost()), poolSize: 1 });
    const seen: string[][] = [];
    const refresh = client.directory.refresh.bind(client.directory);
    client.directory.refresh = (links: readonly Link[], now: () => number, signal?: AbortSignal) => {
      seen.push(links.map((l) => (l.peer?.identity ? Buffer.from(l.peer.identity).toString('hex') : '?')));
      return refresh(links, now, signal);
    };
    await w.wait(client.start());
    await w.run(2 * 3_600_000);
    const distinct = new Set(seen.flat());
    const first = new Set(seen[0] ?? []);
    const sameAsFirst = seen.every((s) => s.every((fp) => first.has(fp)));
    await w.wait(client.stop());
    for (const r of relays) r.dispose();
    return { distinct: distinct.size, sameAsFirst, refreshes: seen.length };
  });

  const base = { adversary: '4. Equivocation', anchor: 'Tor: clients accept only a consensus signed by a majority of the directory authorities' };
  return [
    {
      ...base,
      id: 'equivocation/accepted',
      resources: '2 of a client\'s 3 directory sources collude; 50 adversary relays',
      metric: 'tailored view accepted by the client (adversary relays added, honest relays hidden)',
      value: sybilsIn,
      display: `accepted: ${sybilsIn} adversary relays added, ${hidden} of ${net.descriptors.length} honest relays hidden; never detected`,
      goal: 'refused, or detected within one refresh',
      met: sybilsIn === 0 && hidden === 0,
    },
    {
      ...base,
      id: 'equivocation/sources',
      resources: 'a client running for 2 hours (8 relays, simulator)',
      metric: 'distinct relays asked for the directory over the client\'s refreshes',
      value: sources.distinct,
      display: `${sources.distinct} relays in ${sources.refreshes} refreshes${sources.sameAsFirst ? ', always those of the first' : ''}`,
      goal: 'fresh sources at each refresh (more than the first 3)',
      met: sources.distinct > 3 && !sources.sameAsFirst,
    },
  ];
}
