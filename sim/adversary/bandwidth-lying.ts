/**
 * Adversary 1, bandwidth lying: two relays that claim 2^40 bytes per second (the most a descriptor allows) among
 * the honest network, each with the real capacity of a typical (median) honest relay, both exits allowing every
 * port, running for a month (established: they could have earned any flag). Three authorities vote on the network
 * with the real consensus code (sim/adversary/authorities.ts: measurements find real capacity within ±10 %); the
 * client's view is the real DirectoryView of that consensus. Measured with the client's own code: fresh clients
 * sample guards with the real GuardSet, and circuits are chosen by the real choosePath with the view's weights (no
 * guards: a fresh entry per circuit, so the figure is per circuit).
 *
 * The goal: the adversary's share of any position at most 1.2 × its share of the measured capacity of the relays
 * eligible for that position.
 */
import { crossCheck } from '../../client/directory.js';
import { GuardSet } from '../../client/guards.js';
import { allowsExit, choosePath } from '../../client/path.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { isExitPolicy, parseExitPolicy } from '../../protocol/exit-policy.js';
import { DirectoryView } from '../../protocol/view.js';
import { signSpecs, T0, UPTIME, uniform, type RelaySpec } from '../anonymity.js';
import { authorities, runConsensus, type Observed } from './authorities.js';
import { honestNetwork, median, pct, type AuditOptions, type AuditRow } from './common.js';

const CLAIM = 2 ** 40;
const PORT = 443;

export async function bandwidthLying(o: AuditOptions): Promise<AuditRow[]> {
  const net = honestNetwork(1000, o.seed);
  const typical = median([...net.capacity.values()]);
  const adv: RelaySpec[] = [0, 1].map((i) => ({
    label: `liar${i}`,
    bw: CLAIM,
    exit: ['accept *:*'],
    net: [203, 10 + i] as [number, number],
    family: null,
    availability: 1,
  }));
  const advRaws = signSpecs(adv, o.seed, 'bw-');
  const { accepted } = crossCheck(
    [
      [...net.raws, ...advRaws],
      [...net.raws, ...advRaws],
      [...net.raws, ...advRaws],
    ],
    T0,
  );
  const relays = [...accepted].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  const adversary = new Set(relays.filter((d) => d.nick.startsWith('bw-')).map((d) => d.fingerprint));
  const capacity = (d: Descriptor): number => net.capacity.get(d.fingerprint) ?? typical;
  const isExit = (d: Descriptor): boolean => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, PORT);
  const share = (list: readonly Descriptor[]): number => {
    let a = 0;
    let t = 0;
    for (const d of list) {
      t += capacity(d);
      if (adversary.has(d.fingerprint)) a += capacity(d);
    }
    return a / t;
  };
  const capShare = { any: share(relays), exit: share(relays.filter(isExit)) };
  // The authorities' view: honest relays known for two months with their availability; the liars for one, always up.
  const spec = new Map(net.specs.map((x) => [`h-${x.label}`, x]));
  const observed: Observed[] = relays.map((d) => {
    const h = spec.get(d.nick);
    const a = h ? h.availability : 1;
    return { d, capacity: capacity(d), knownDays: h ? 60 : 30, availability: a, up: true, uptimeDays: a >= UPTIME.stable ? 30 : Math.min(30, 1 / (1 - a)) };
  });
  const consensus = runConsensus(authorities(o.seed), observed, T0, null, `${o.seed}/bw`);
  const view = new DirectoryView(relays, consensus);

  const clients = o.quick ? 200 : 5000;
  o.progress?.(`bandwidth lying: ${clients} fresh clients sample guards`);
  let firstGuard = 0;
  for (let c = 0; c < clients; c++) {
    const g = new GuardSet(null, uniform(`${o.seed}/bw/client/${c}`));
    const usable = await g.refresh({ relays: view.relays, weights: view }, T0);
    if (adversary.has(usable[0]!.fingerprint)) firstGuard++;
  }
  const circuits = o.quick ? 300 : 20_000;
  o.progress?.(`bandwidth lying: ${circuits} circuits`);
  const random = uniform(`${o.seed}/bw/circuits`);
  let entry = 0;
  let middle = 0;
  let exit = 0;
  let both = 0;
  for (let i = 0; i < circuits; i++) {
    const p = choosePath(view.relays, { hops: 3, exitPort: PORT, guards: [], enforceDistinctSubnets: true, random, weights: view });
    const e = adversary.has(p[0]!.fingerprint);
    const x = adversary.has(p[2]!.fingerprint);
    if (e) entry++;
    if (adversary.has(p[1]!.fingerprint)) middle++;
    if (x) exit++;
    if (e && x) both++;
  }
  // The probability of each position, from the weights the real code draws with (view.weight): the figure checked
  // against the goal, since a few thousand sampled circuits cannot resolve shares below a percent. The sampled
  // shares are shown beside it.
  const exact = (list: readonly Descriptor[], position: 'guard' | 'middle' | 'exit'): number => {
    let a = 0;
    let t = 0;
    for (const d of list) {
      const w = view.weight(d, position);
      t += w;
      if (adversary.has(d.fingerprint)) a += w;
    }
    return t > 0 ? a / t : 0;
  };
  const p = { guard: exact(view.relays, 'guard'), middle: exact(view.relays, 'middle'), exit: exact(view.relays.filter(isExit), 'exit') };
  const liar = consensus.entries.find((e) => adversary.has(Buffer.from(e.id).toString('hex')));
  o.progress?.(`bandwidth lying: the consensus weighs each liar at ${liar?.w ?? 0} B/s (flags ${liar?.flags ?? 0})`);
  const resources = `2 relays running for a month, claiming 2^40 B/s, each with the capacity of a median honest relay (${(typical / 1e3).toFixed(0)} kB/s), among 1,000 honest relays (${(net.descriptors.reduce((s, d) => s + capacity(d), 0) / 1e9).toFixed(2)} GB/s)`;
  const row = (id: string, metric: string, value: number, sampled: number, limit: number, goal: string): AuditRow => ({
    id: `bandwidth/${id}`,
    adversary: '1. Bandwidth lying',
    resources,
    metric,
    value,
    display: `${pct(value, 2)} (sampled ${pct(sampled, 2)})`,
    goal: `≤ ${pct(limit, 2)} (${goal})`,
    met: value <= limit,
    anchor: 'Tor: unmeasured relays weighted at most 20 kB/s; FlashFlow bounds inflation to 1.33×',
  });
  // Without authorities: the same relays and claims, weighed by claims capped at 8 × the median claim.
  const free = new DirectoryView(relays, null);
  const freeShare = (list: readonly Descriptor[], position: 'guard' | 'exit'): number => {
    let a = 0;
    let t = 0;
    for (const d of list) {
      const w = free.weight(d, position);
      t += w;
      if (adversary.has(d.fingerprint)) a += w;
    }
    return a / t;
  };
  const fg = freeShare(free.relays, 'guard');
  const fe = freeShare(free.relays.filter(isExit), 'exit');
  const freeRow: AuditRow = {
    id: 'bandwidth/free',
    adversary: '1. Bandwidth lying',
    resources: `the same relays in a network without authorities (claims capped at 8 × the median claim)`,
    metric: "without authorities: the liars' share of guard draws and of exits (port 443)",
    value: fg,
    display: `guard ${pct(fg, 2)}, exit ${pct(fe, 2)} (capacity shares ${pct(capShare.any, 2)}, ${pct(capShare.exit, 2)})`,
    goal: 'none: what a network without authorities loses',
    met: true,
    informational: true,
    anchor: 'Tor has no authority-free mode',
  };
  return [
    row(
      'first-guard',
      "fresh clients whose first guard is the adversary's",
      p.guard,
      firstGuard / clients,
      1.2 * capShare.any,
      `1.2 × its capacity share ${pct(capShare.any, 2)}`,
    ),
    row(
      'entry',
      'circuits with the adversary as entry (no guards)',
      p.guard,
      entry / circuits,
      1.2 * capShare.any,
      `1.2 × its capacity share ${pct(capShare.any, 2)}`,
    ),
    row('middle', 'circuits with the adversary as middle', p.middle, middle / circuits, 1.2 * capShare.any, `1.2 × its capacity share ${pct(capShare.any, 2)}`),
    row(
      'exit',
      'circuits with the adversary as exit (port 443)',
      p.exit,
      exit / circuits,
      1.2 * capShare.exit,
      `1.2 × its share of exit capacity ${pct(capShare.exit, 2)}`,
    ),
    row(
      'first-last',
      'circuits with the adversary as entry and exit',
      p.guard * p.exit,
      both / circuits,
      1.44 * capShare.any * capShare.exit,
      '1.2² × the product of those shares',
    ),
    freeRow,
  ];
}
