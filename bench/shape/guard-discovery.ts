/**
 * Section 2 of the shape audit: endpoint guard discovery (issue 17). Whoever has an endpoint's address can make it
 * build a circuit to a rendezvous point of their choosing, once per introduction. An adversary that runs a fraction
 * f of the relays names one of its own relays as the rendezvous point every time, and waits until one of its relays
 * is the hop next to the endpoint's guard on such a circuit: that relay then sees the guard, and the rendezvous point
 * confirms by timing that the circuit is the endpoint's (vanguards-spec assumes such a side channel always works).
 *
 * Measured with the real path code: each simulated endpoint keeps its guards with GuardSet (client/guards.ts) and
 * chooses every rendezvous circuit with choosePath (client/path.ts), against a directory of the sim's honest network
 * plus the adversary's relays (sim/anonymity.ts, kind "relays": typical capacities, always up), with flags and
 * measured weights from the real consensus code (sim/adversary/authorities.ts). Endpoints whose guard is itself the
 * adversary's are counted apart (that is guard exposure, docs/adversary-audit.md) and left out of the distribution.
 */
import { choosePath } from '../../client/path.js';
import { GuardSet } from '../../client/guards.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { Flag, hasFlag } from '../../protocol/flags.js';
import { DirectoryView } from '../../protocol/view.js';
import { T0, population, uniform } from '../../sim/anonymity.js';
import { authorities, runConsensus, type Observed } from '../../sim/adversary/authorities.js';
import { honestNetwork } from '../../sim/adversary/common.js';
import { pct, quantile, type ShapeOptions, type ShapeRow } from './common.js';

const SECTION = '2. Endpoint guard discovery';
export const F = 0.05;
/**
 * The adversary's share of the relays by count that gives it F of the middle-position weight in this network (its
 * relays are typical, not the largest): 71 relays of 1,071, 5.0 % of the middle weight (printed with the figure).
 */
const COUNT_SHARE = 0.066;
/** Introductions tried per endpoint at most (today's code needs about 1/f). */
const CAP = 100_000;

export interface DiscoveryWorld {
  readonly view: DirectoryView;
  readonly adversary: ReadonlySet<string>;
  /** The adversary's relays it names as rendezvous points (Fast and Stable, as an initiator's choice requires). */
  readonly rps: readonly Descriptor[];
  /** The adversary's share of the middle-position weight. */
  readonly middleShare: number;
}

/** The honest network of 1,000 relays with the adversary's relays added, and the consensus the authorities sign. */
export function discoveryWorld(seed: string, f = COUNT_SHARE): DiscoveryWorld {
  const net = honestNetwork(1000, seed);
  const pop = population('relays', f, net.specs, net.raws, seed, 443);
  const a = authorities(seed);
  const obs: Observed[] = pop.relays.map((d) => {
    const adv = pop.adversary.has(d.fingerprint);
    const av = pop.availability.get(d.fingerprint) ?? 1;
    return {
      d,
      capacity: net.capacity.get(d.fingerprint) ?? Math.max(1, d.bw),
      knownDays: adv ? 30 : 60,
      availability: av,
      up: true,
      uptimeDays: av >= 0.99 ? 30 : Math.min(30, 1 / (1 - av)),
    };
  });
  const consensus = runConsensus(a, obs, T0, null, `${seed}/shape/discovery/${f}`);
  const view = new DirectoryView(pop.relays, consensus);
  let adv = 0;
  let all = 0;
  for (const d of view.relays) {
    const w = view.weight(d, 'middle');
    all += w;
    if (pop.adversary.has(d.fingerprint)) adv += w;
  }
  const rps = view.relays.filter((d) => pop.adversary.has(d.fingerprint) && hasFlag(view.flags(d), Flag.FAST | Flag.STABLE));
  return { view, adversary: pop.adversary, rps, middleShare: adv / all };
}

/** One endpoint's introductions until an adversary relay is next to its guard (null: its guard is the adversary's). */
export async function introductionsUntilDiscovered(w: DiscoveryWorld, seed: string): Promise<number | null> {
  const random = uniform(seed);
  const guards = new GuardSet(null, random);
  const usable = await guards.refresh({ relays: w.view.relays, weights: w.view }, T0);
  if (usable[0] && w.adversary.has(usable[0].fingerprint)) return null;
  const rp = w.rps[Math.floor(random() * w.rps.length)]!;
  for (let i = 1; i <= CAP; i++) {
    const path = choosePath(w.view.relays, {
      hops: 3,
      exitPort: null,
      guards: usable,
      last: rp,
      weights: w.view,
      enforceDistinctSubnets: true,
      random,
    });
    if (w.adversary.has(path[1]!.fingerprint)) return i;
  }
  return CAP;
}

export async function guardDiscovery(o: ShapeOptions): Promise<ShapeRow[]> {
  const endpoints = o.quick ? 200 : 1000;
  const w = discoveryWorld(o.seed);
  o.progress?.(`guard discovery: f = ${F}, ${endpoints} endpoints, ${w.view.relays.length} relays`);
  const counts: number[] = [];
  let ownGuard = 0;
  for (let e = 0; e < endpoints; e++) {
    const n = await introductionsUntilDiscovered(w, `${o.seed}/shape/discovery/${e}`);
    if (n === null) ownGuard++;
    else counts.push(n);
  }
  counts.sort((a, b) => a - b);
  const mean = counts.reduce((s, x) => s + x, 0) / counts.length;
  const q = (p: number): number => quantile(counts, p);
  return [
    {
      id: 'guard-discovery/introductions',
      section: SECTION,
      metric: `introductions until an adversary relay is next to the endpoint's guard (adversary: ${w.adversary.size} of ${w.view.relays.length} relays, ${pct(w.middleShare)} of the middle weight; ${endpoints} endpoints)`,
      value: q(0.5),
      display: `median ${q(0.5)} (10 % ${q(0.1)}, 25 % ${q(0.25)}, 75 % ${q(0.75)}, 90 % ${q(0.9)}; mean ${mean.toFixed(1)}; ${ownGuard} endpoints had an adversary guard)`,
      goal: 'the vanguard layer must be compromised first',
      met: null,
      detail: {
        relays: w.view.relays.length,
        adversary: w.adversary.size,
        middleShare: w.middleShare,
        endpoints,
        ownGuard,
        quantiles: Object.fromEntries([0.1, 0.25, 0.5, 0.75, 0.9].map((p) => [String(p), q(p)])),
      },
    },
  ];
}
