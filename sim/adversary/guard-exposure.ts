/**
 * Adversary 6, guard exposure over 180 days: an adversary runs a fraction f of the relays (typical ones, always
 * up: sim/anonymity.ts "relays"), honest relays come and go with their availability, and each client keeps its
 * guards with the real GuardSet (client/guards.ts) against each day's directory. Measured: the share of clients
 * that ever had one of the adversary's relays as the guard they use (their first usable guard) on some day.
 */
import { GuardSet } from '../../client/guards.js';
import { dailyDirectories, DAY_MS, population, T0, uniform } from '../anonymity.js';
import { honestNetwork, pct, type AuditOptions, type AuditRow } from './common.js';

const DAYS = 180;
const FRACTIONS = [0.01, 0.05, 0.1];

export async function guardExposure(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const clients = o.quick ? 100 : 1000;
  const rows: AuditRow[] = [];
  for (const f of FRACTIONS) {
    o.progress?.(`guard exposure: f = ${f}, ${clients} clients, ${DAYS} days`);
    const pop = population('relays', f, net.specs, net.raws, o.seed, 443);
    const dirs = dailyDirectories(pop, DAYS, o.seed);
    let exposed = 0;
    let listed = 0;
    for (let c = 0; c < clients; c++) {
      const random = uniform(`${o.seed}/exposure/${f}/${c}`);
      const g = new GuardSet(null, random);
      const ever = new Set<string>();
      let hit = false;
      for (let day = 0; day < DAYS; day++) {
        const usable = await g.refresh(dirs[day]!, T0 + day * DAY_MS);
        for (const r of g.all) ever.add(r.fingerprint);
        if (usable[0] && pop.adversary.has(usable[0].fingerprint)) hit = true;
      }
      if (hit) exposed++;
      listed += ever.size;
    }
    const share = exposed / clients;
    rows.push({
      id: `exposure/${f}`,
      adversary: '6. Guard exposure over 180 days',
      resources: `${pct(f, 0)} of the relays (typical capacity, always up), with honest churn`,
      metric: 'clients that ever used an adversary guard',
      value: share,
      display: `${pct(share)} (${(listed / clients).toFixed(1)} guards listed per client)`,
      goal: `≤ ${pct(2 * f)} (2 × f: at most two draws of a guard in 180 days)`,
      met: share <= 2 * f,
      anchor: 'Tor guard-spec: 3 primary guards from a bounded sample, confirmed guards kept 60 days, unlisted guards kept 20 days',
    });
  }
  return rows;
}
