/**
 * Adversary 5, selective denial of service: the client's first guard is the adversary's (a fast relay that earned
 * Guard), and it destroys every circuit whose last hop is not one of the adversary's exits, which hold a tenth of
 * the exit capacity. The client asks for a circuit every ten seconds.
 *
 * Paths come from the real choosePath with the real view of a consensus (sim/adversary/authorities.ts); guards from
 * the real GuardSet, with its path-bias accounting (client/guards.ts, client/path-bias.ts). The client's rules for a
 * failed build — up to three attempts, exclusions for 60 s only of relays a hop past the entry reports unreachable,
 * a failure through a guard counted against it (client/client.ts newCircuit, specs/path.md §5) — are restated here
 * as the simulator's circuit experiment restates them (sim/experiments/circuits.ts), since newCircuit needs links.
 */
import { crossCheck } from '../../client/directory.js';
import { GuardSet, type GuardRecord, type PathBiasEvent } from '../../client/guards.js';
import { allowsExit, choosePath } from '../../client/path.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { AlliumError } from '../../protocol/errors.js';
import { isExitPolicy, parseExitPolicy } from '../../protocol/exit-policy.js';
import { DirectoryView } from '../../protocol/view.js';
import { signSpecs, T0, uniform, type RelaySpec } from '../anonymity.js';
import { authorities, runConsensus, type Observed } from './authorities.js';
import { honestNetwork, pct, type AuditOptions, type AuditRow } from './common.js';

const PORT = 443;

export async function selectiveDos(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const exitCapacity = net.descriptors
    .filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, PORT))
    .reduce((s, d) => s + net.capacity.get(d.fingerprint)!, 0);
  const advExitTotal = exitCapacity / 9; // a tenth of all exit capacity once added
  const adv: RelaySpec[] = [
    { label: 'guard', bw: 20_000_000, exit: ['reject *:*'], net: [203, 20], family: null, availability: 1 },
    ...Array.from({ length: 4 }, (_, i) => ({
      label: `exit${i}`,
      bw: Math.round(advExitTotal / 4),
      exit: ['accept *:*'],
      net: [203, 21 + i] as [number, number],
      family: null,
      availability: 1,
    })),
  ];
  const advRaws = signSpecs(adv, o.seed, 'sd-');
  const all = [...net.raws, ...advRaws];
  const relays = [...crossCheck([all, all, all], T0).accepted].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  const adversary = new Set(relays.filter((d) => d.nick.startsWith('sd-')).map((d) => d.fingerprint));
  const guard = relays.find((d) => d.nick === 'sd-guard')!;
  const capacity = (d: Descriptor): number => net.capacity.get(d.fingerprint) ?? d.bw;
  const obs: Observed[] = relays.map((d) => {
    const a = net.availability.get(d.fingerprint) ?? 1;
    return {
      d,
      capacity: capacity(d),
      knownDays: adversary.has(d.fingerprint) ? 30 : 60,
      availability: a,
      up: true,
      uptimeDays: a >= 0.99 ? 30 : Math.min(30, 1 / (1 - a)),
    };
  });
  const view = new DirectoryView(relays, runConsensus(authorities(o.seed), obs, T0, null, `${o.seed}/sdos`));
  const random = uniform(`${o.seed}/sdos`);
  // The client's sample: the adversary's guard confirmed first, an honest Guard relay second.
  const honestGuard = view.relays.find((d) => !adversary.has(d.fingerprint) && view.weight(d, 'guard') > 0)!;
  const records: GuardRecord[] = [guard, honestGuard].map((d, i) => ({
    fingerprint: d.fingerprint,
    addedAt: T0 - 30 * 86_400_000,
    expiresAt: T0 + 200 * 86_400_000,
    confirmedAt: T0 - (30 - i) * 86_400_000,
    unlistedSince: null,
    failedAt: null,
    disabledAt: null,
  }));
  const warnings: PathBiasEvent[] = [];
  const guards = new GuardSet({ load: async () => records, save: async () => undefined }, random, { onPathBias: (e) => warnings.push(e) });
  await guards.load();
  await guards.refresh({ relays: view.relays, weights: view }, T0);

  const exits = view.relays.filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, PORT));
  let advW = 0;
  let allW = 0;
  for (const d of exits) {
    const w = view.weight(d, 'exit');
    allW += w;
    if (adversary.has(d.fingerprint)) advW += w;
  }
  const fair = advW / allW;

  const requests = o.quick ? 300 : 8640;
  const failed = new Map<string, number>();
  let built = 0;
  let advLast = 0;
  let gaveUp = 0;
  for (let r = 0; r < requests; r++) {
    const now = T0 + r * 10_000;
    let ok = false;
    for (let attempt = 0; attempt < 3 && !ok; attempt++) {
      const exclude = new Set([...failed].filter(([, t]) => now - t < 60_000).map(([fp]) => fp));
      const usable = guards.usable({ relays: view.relays, weights: view }, now);
      let path: Descriptor[];
      try {
        path = choosePath(view.relays, { hops: 3, exitPort: PORT, guards: usable, enforceDistinctSubnets: true, exclude, random, weights: view });
      } catch (e) {
        if (!(e instanceof AlliumError) || e.code !== 'ERR_ONION_PATH' || exclude.size === 0) throw e;
        path = choosePath(view.relays, { hops: 3, exitPort: PORT, guards: usable, enforceDistinctSubnets: true, exclude: new Set(), random, weights: view });
      }
      const entry = path[0]!;
      const last = path[2]!;
      if (entry.fingerprint === guard.fingerprint && !adversary.has(last.fingerprint)) {
        // DESTROY from the entry: nobody excluded; a failed attempt of the guard.
        await guards.recordBuild(entry.fingerprint, false, now);
        continue;
      }
      ok = true;
      built++;
      await guards.markSucceeded(entry.fingerprint, now);
      await guards.recordBuild(entry.fingerprint, true, now);
      if (adversary.has(last.fingerprint)) advLast++;
    }
    if (!ok) gaveUp++;
    void failed;
  }
  const share = advLast / built;
  const warned = warnings.find((w) => w.fingerprint === guard.fingerprint && (w.level === 'warn' || w.level === 'extreme'));
  const disabled = warnings.find((w) => w.fingerprint === guard.fingerprint && w.disabled);
  const base = {
    adversary: '5. Selective denial of service',
    resources: `the client's first guard (a fast relay with Guard), and exits with ${pct(fair)} of the exit weight; a circuit asked for every 10 s for ${((requests * 10) / 3600).toFixed(1)} h`,
    anchor: 'Tor path bias: notice below 70 %, warning below 50 %, extreme below 30 % circuit success after 150 circuits (pb_dropguards off by default)',
  };
  return [
    {
      ...base,
      id: 'sdos/last-hop',
      metric: "built circuits whose last hop is the adversary's",
      value: share,
      display: `${pct(share)} (${built} built, ${gaveUp} requests failed)`,
      goal: `≤ 1.2 × its fair share ${pct(fair)}`,
      met: share <= 1.2 * fair,
    },
    {
      ...base,
      id: 'sdos/warned',
      metric: 'the client warns of its guard (path bias)',
      value: warned ? 1 : 0,
      display: warned
        ? `warned after ${warned.attempts} attempts (${warned.successes} built)${disabled ? `; stopped using it after ${disabled.attempts}` : ''}`
        : 'no warning',
      goal: 'warns',
      met: !!warned,
    },
  ];
}
