/**
 * Adversary 5, selective denial of service: the client's first guard is the adversary's, and it destroys every
 * circuit whose last hop is not one of the adversary's exits (which hold a tenth of the exit capacity). The client
 * asks for a circuit every ten seconds for a simulated day.
 *
 * Paths come from the real choosePath; the client's rules for a failed build — up to three attempts, exclusions
 * for 60 s, a DESTROY from the entry blamed on the last hop (client/client.ts newCircuit, specs/path.md §5) — are
 * restated here as the simulator's circuit experiment restates them (sim/experiments/circuits.ts), since
 * newCircuit itself needs links.
 */
import { crossCheck } from '../../client/directory.js';
import { allowsExit, choosePath } from '../../client/path.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { AlliumError } from '../../protocol/errors.js';
import { isExitPolicy, parseExitPolicy } from '../../protocol/exit-policy.js';
import { signSpecs, T0, uniform, type RelaySpec } from '../anonymity.js';
import { honestNetwork, pct, type AuditOptions, type AuditRow } from './common.js';

const PORT = 443;

export async function selectiveDos(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const exitCapacity = net.descriptors.filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, PORT)).reduce((s, d) => s + net.capacity.get(d.fingerprint)!, 0);
  const advExitTotal = exitCapacity / 9; // a tenth of all exit capacity once added
  const adv: RelaySpec[] = [
    { label: 'guard', bw: 20_000_000, exit: ['reject *:*'], net: [203, 20], family: null, availability: 1 },
    ...Array.from({ length: 4 }, (_, i) => ({ label: `exit${i}`, bw: Math.round(advExitTotal / 4), exit: ['accept *:*'], net: [203, 21 + i] as [number, number], family: null, availability: 1 })),
  ];
  const advRaws = signSpecs(adv, o.seed, 'sd-');
  const all = [...net.raws, ...advRaws];
  const relays = [...crossCheck([all, all, all], T0).accepted].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  const adversary = new Set(relays.filter((d) => d.nick.startsWith('sd-')).map((d) => d.fingerprint));
  const guard = relays.find((d) => d.nick === 'sd-guard')!;
  const random = uniform(`${o.seed}/sdos`);
  const others = relays.filter((d) => !adversary.has(d.fingerprint) && d.exit.every((l) => !l.startsWith('accept'))).slice(0, 2);
  const guards = [guard, ...others];

  const exits = relays.filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, PORT));
  const fair = exits.filter((d) => adversary.has(d.fingerprint)).reduce((s, d) => s + d.bw, 0) / exits.reduce((s, d) => s + d.bw, 0);

  const requests = o.quick ? 600 : 8640;
  const failed = new Map<string, number>();
  let built = 0;
  let advLast = 0;
  let gaveUp = 0;
  for (let r = 0; r < requests; r++) {
    const now = T0 + r * 10_000;
    let ok = false;
    for (let attempt = 0; attempt < 3 && !ok; attempt++) {
      const exclude = new Set([...failed].filter(([, t]) => now - t < 60_000).map(([fp]) => fp));
      let path: Descriptor[];
      try {
        path = choosePath(relays, { hops: 3, exitPort: PORT, guards, enforceDistinctSubnets: true, exclude, random });
      } catch (e) {
        if (!(e instanceof AlliumError) || e.code !== 'ERR_ONION_PATH' || exclude.size === 0) throw e;
        path = choosePath(relays, { hops: 3, exitPort: PORT, guards, enforceDistinctSubnets: true, exclude: new Set(), random });
      }
      const last = path[2]!;
      if (path[0] === guard && !adversary.has(last.fingerprint)) {
        failed.set(last.fingerprint, now); // DESTROY from the entry: today's rule blames the last hop
        continue;
      }
      ok = true;
      built++;
      if (adversary.has(last.fingerprint)) advLast++;
    }
    if (!ok) gaveUp++;
  }
  const share = advLast / built;
  const base = {
    adversary: '5. Selective denial of service',
    resources: `the client's first guard, and exits with ${pct(fair)} of the exit capacity; a circuit asked for every 10 s for ${((requests * 10) / 3600).toFixed(1)} h`,
    anchor: 'Tor path bias: notice below 70 %, warning below 50 %, extreme below 30 % circuit success after 150 circuits (pb_dropguards off by default)',
  };
  return [
    { ...base, id: 'sdos/last-hop', metric: 'built circuits whose last hop is the adversary\'s', value: share, display: `${pct(share)} (${built} built, ${gaveUp} requests failed)`, goal: `≤ 1.2 × its fair share ${pct(fair)}`, met: share <= 1.2 * fair },
    { ...base, id: 'sdos/warned', metric: 'the client warns of its guard (path bias)', value: 0, display: 'no warning', goal: 'warns', met: false },
  ];
}
