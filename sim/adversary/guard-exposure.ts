/**
 * Adversary 6, guard exposure over 180 days: an adversary runs a fraction f of the relays (typical ones, at evenly
 * spaced quantiles of the honest capacities, always up and known to the authorities for a month:
 * sim/anonymity.ts "relays"); honest relays, known for two months, come and go with their availability. Three
 * authorities vote on what they observed (sim/adversary/authorities.ts: flags earned from age, uptime and measured
 * capacity, with the real flag and consensus code), every 15 days; each day's view is that consensus with the
 * relays up that day (a relay down is in no consensus of that day). Each client keeps its guards with the real
 * GuardSet (client/guards.ts) against each day's view. Measured: the share of clients that ever had one of the
 * adversary's relays as the guard they use (their first usable guard) on some day.
 */
import { GuardSet } from '../../client/guards.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { DirectoryView } from '../../protocol/view.js';
import { dailyDirectories, DAY_MS, population, T0, uniform, wilson } from '../anonymity.js';
import { authorities, runConsensus, type Observed } from './authorities.js';
import { honestNetwork, pct, type AuditOptions, type AuditRow } from './common.js';

const DAYS = 180;
const FRACTIONS = [0.01, 0.05, 0.1];
/** A new consensus every this many days (flags change slowly once a relay is older than a week or two). */
const consensusEvery = (quick: boolean): number => (quick ? 60 : 15);

export async function guardExposure(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const clients = o.quick ? 100 : 1000;
  const a = authorities(o.seed);
  const rows: AuditRow[] = [];
  for (const f of FRACTIONS) {
    o.progress?.(`guard exposure: f = ${f}, ${clients} clients, ${DAYS} days`);
    const pop = population('relays', f, net.specs, net.raws, o.seed, 443);
    const dirs = dailyDirectories(pop, DAYS, o.seed);
    const capacity = (d: Descriptor): number => net.capacity.get(d.fingerprint) ?? Math.max(1, d.bw);
    // The authorities' consensus of each 15-day stretch (ages grow; availability is each relay's).
    const every = consensusEvery(o.quick);
    const consensuses = Array.from({ length: Math.ceil(DAYS / every) }, (_, k) => {
      const day = k * every;
      const obs: Observed[] = pop.relays.map((d) => {
        const adv = pop.adversary.has(d.fingerprint);
        const av = pop.availability.get(d.fingerprint) ?? 1;
        return {
          d,
          capacity: capacity(d),
          knownDays: (adv ? 30 : 60) + day,
          availability: av,
          up: true,
          uptimeDays: av >= 0.99 ? 30 : Math.min(30, 1 / (1 - av)),
        };
      });
      return runConsensus(a, obs, T0 + day * DAY_MS, null, `${o.seed}/exposure/${f}/${k}`);
    });
    const views = dirs.map((dir, day) => new DirectoryView(dir, consensuses[Math.floor(day / every)]!));
    // The adversary's share of the guard position: what its relays earned (always up, so every one fast enough is
    // a Guard, while a quarter of the honest relays are too often down), from the weights guards are drawn with.
    const full = new DirectoryView(pop.relays, consensuses[0]!);
    let advG = 0;
    let allG = 0;
    for (const d of full.relays) {
      const w = full.weight(d, 'guard');
      allG += w;
      if (pop.adversary.has(d.fingerprint)) advG += w;
    }
    const guardShare = advG / allG;
    let exposed = 0;
    let listed = 0;
    for (let c = 0; c < clients; c++) {
      const random = uniform(`${o.seed}/exposure/${f}/${c}`);
      const g = new GuardSet(null, random);
      const ever = new Set<string>();
      let hit = false;
      for (let day = 0; day < DAYS; day++) {
        const view = views[day]!;
        const usable = await g.refresh({ relays: view.relays, weights: view }, T0 + day * DAY_MS);
        for (const r of g.all) ever.add(r.fingerprint);
        if (usable[0] && pop.adversary.has(usable[0].fingerprint)) hit = true;
      }
      if (hit) exposed++;
      listed += ever.size;
    }
    const share = exposed / clients;
    const [lo, hi] = wilson(exposed, clients);
    rows.push({
      id: `exposure/${f}`,
      adversary: '6. Guard exposure over 180 days',
      resources: `${pct(f, 0)} of the relays (typical capacity, always up), with honest churn; ${pct(guardShare)} of the guard weight`,
      metric: 'clients that ever used an adversary guard',
      value: share,
      display: `${pct(share)}, 95 % interval ${pct(lo)}–${pct(hi)} (${(listed / clients).toFixed(1)} guards listed per client)`,
      goal: `≤ ${pct(2 * guardShare)} (2 × its share of the guard weight: at most two draws in 180 days; met when the interval reaches it)`,
      met: lo <= 2 * guardShare,
      anchor: 'Tor guard-spec: 3 primary guards from a bounded sample, confirmed guards kept 60 days, unlisted guards kept 20 days',
    });
  }
  return rows;
}
