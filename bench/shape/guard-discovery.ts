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
 *
 * With vanguards (specs/path.md §3.2, the shipped behaviour) the relay next to the guard is always one of the
 * endpoint's four vanguards, which change only when their lifetimes end, so introductions alone no longer bring the
 * adversary there: it must wait until one of its relays is drawn into the set (or compromise a vanguard, which is
 * outside the simulation). Time therefore matters: the adversary introduces itself at a steady RATE, the endpoint's
 * VanguardSet (client/vanguards.ts) and GuardSet run on the simulated clock, and between two changes of the set the
 * count of introductions is the rate times the time (checked with one real choosePath per interval: the second hop
 * is a vanguard); while the set holds an adversary relay every introduction is a real choosePath. Also measured:
 * the introductions until an adversary relay is next to a vanguard (the fresh middle after it), which tells the
 * adversary which relay to compromise.
 */
import { choosePath } from '../../client/path.js';
import { GuardSet } from '../../client/guards.js';
import { VanguardSet } from '../../client/vanguards.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { Flag, hasFlag } from '../../protocol/flags.js';
import { DirectoryView } from '../../protocol/view.js';
import { DAY_MS, T0, population, uniform } from '../../sim/anonymity.js';
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
/** Introductions tried per endpoint at most without vanguards (today's code needs about 1/f). */
const CAP = 100_000;
/** The adversary's introductions: one a minute (the introduction points would pass 25 a second). */
export const RATE_PER_DAY = 1440;
const INTRO_MS = DAY_MS / RATE_PER_DAY;
/** How long the adversary keeps trying with vanguards on (endpoints not discovered by then are counted as such). */
const HORIZON_DAYS = 365;

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

export interface VanguardOutcome {
  /** Introductions until an adversary relay was next to the guard (null: not within the horizon). */
  readonly introductions: number | null;
  /** Days until then. */
  readonly days: number | null;
  /** The relay next to the guard was then one of the endpoint's vanguards, drawn from the adversary's relays. */
  readonly throughVanguard: boolean;
  /** The set held an adversary relay from the start. */
  readonly atStart: boolean;
  /** Introductions until an adversary relay was next to one of the endpoint's vanguards (it learns the vanguard). */
  readonly learnVanguard: number;
}

/** One endpoint with vanguards (the shipped path code), the adversary introducing at RATE_PER_DAY. */
export async function withVanguards(w: DiscoveryWorld, seed: string): Promise<VanguardOutcome | null> {
  const random = uniform(seed);
  const guards = new GuardSet(null, random);
  const vanguards = new VanguardSet(null, random);
  const view = { relays: w.view.relays, weights: w.view };
  let usable = await guards.refresh(view, T0);
  if (usable[0] && w.adversary.has(usable[0].fingerprint)) return null;
  const rp = w.rps[Math.floor(random() * w.rps.length)]!;
  const choose = (v: readonly Descriptor[]): Descriptor[] =>
    choosePath(w.view.relays, { hops: 3, exitPort: null, guards: usable, last: rp, weights: w.view, enforceDistinctSubnets: true, vanguards: v, random });
  let learnVanguard = 0;
  for (let i = 1; i <= CAP && learnVanguard === 0; i++)
    if (w.adversary.has(choose(await vanguards.refresh(view, T0, usable))[2]!.fingerprint)) learnVanguard = i;
  const fresh = new VanguardSet(null, random);
  let t = T0;
  let count = 0;
  let atStart: boolean | null = null;
  while (t < T0 + HORIZON_DAYS * DAY_MS) {
    usable = await guards.refresh(view, t);
    const v = await fresh.refresh(view, t, usable);
    const hostile = v.some((d) => w.adversary.has(d.fingerprint));
    atStart ??= hostile;
    const next = Math.min(...fresh.all.map((r) => r.expiresAt));
    if (!hostile) {
      // No adversary relay among the vanguards until the next one expires: every introduction until then has a
      // vanguard of its own as the second hop (one real path checks it), and each costs the adversary INTRO_MS.
      const path = choose(v);
      if (w.adversary.has(path[1]!.fingerprint) || !v.includes(path[1]!)) throw new Error('second hop is not an honest vanguard');
      const n = Math.ceil((next - t) / INTRO_MS);
      count += n;
      t += n * INTRO_MS;
      continue;
    }
    for (; t < next; t += INTRO_MS) {
      count++;
      const path = choose(v);
      if (w.adversary.has(path[1]!.fingerprint)) {
        return { introductions: count, days: (t - T0) / DAY_MS, throughVanguard: v.includes(path[1]!), atStart: atStart === true, learnVanguard };
      }
    }
  }
  return { introductions: null, days: null, throughVanguard: false, atStart: atStart === true, learnVanguard };
}

function summary(sorted: readonly number[], digits = 0): string {
  const q = (p: number): string => quantile(sorted, p).toFixed(digits);
  return `median ${q(0.5)} (10 % ${q(0.1)}, 25 % ${q(0.25)}, 75 % ${q(0.75)}, 90 % ${q(0.9)})`;
}

export async function guardDiscovery(o: ShapeOptions): Promise<ShapeRow[]> {
  const rows = await withoutVanguards(o);
  const endpoints = o.quick ? 100 : 1000;
  const w = discoveryWorld(o.seed);
  o.progress?.(`guard discovery with vanguards: ${endpoints} endpoints, ${RATE_PER_DAY} introductions a day for up to ${HORIZON_DAYS} days`);
  const found: VanguardOutcome[] = [];
  let ownGuard = 0;
  let never = 0;
  let atStart = 0;
  const learn: number[] = [];
  for (let e = 0; e < endpoints; e++) {
    const r = await withVanguards(w, `${o.seed}/shape/discovery/${e}`);
    if (r === null) {
      ownGuard++;
      continue;
    }
    learn.push(r.learnVanguard);
    if (r.atStart) atStart++;
    if (r.introductions === null) never++;
    else found.push(r);
  }
  const n = endpoints - ownGuard;
  // Endpoints never discovered within the horizon count as above every discovered one.
  const intros = [...found.map((r) => r.introductions!), ...Array<number>(never).fill(Infinity)].sort((a, b) => a - b);
  const days = [...found.map((r) => r.days!), ...Array<number>(never).fill(Infinity)].sort((a, b) => a - b);
  learn.sort((a, b) => a - b);
  const allThrough = found.every((r) => r.throughVanguard);
  const before = rows[0]!.value;
  const medianIntros = quantile(intros, 0.5);
  return [
    {
      ...rows[0]!,
      id: 'guard-discovery/without-vanguards',
      metric: rows[0]!.metric.replace('introductions until', "without vanguards (today's path code with the option off): introductions until"),
      goal: '— (matches the recorded before)',
    },
    {
      id: 'guard-discovery/introductions',
      section: SECTION,
      metric: `introductions until an adversary relay is next to the endpoint's guard, with vanguards (adversary: ${w.adversary.size} of ${w.view.relays.length} relays, ${pct(w.middleShare)} of the middle weight; introducing once a minute for up to ${HORIZON_DAYS} days; ${n} endpoints)`,
      value: medianIntros,
      display: `${summary(intros)}; ${never} endpoints not discovered in ${HORIZON_DAYS} days; ${pct(atStart / n)} held an adversary vanguard from the start`,
      goal: `the vanguard layer must be compromised first: every discovery through an adversary relay drawn as a vanguard, median ≥ 100 × before (${before})`,
      met: allThrough && medianIntros >= 100 * before,
      detail: { rate: RATE_PER_DAY, horizonDays: HORIZON_DAYS, endpoints, ownGuard, never, atStart, allThroughVanguard: allThrough },
    },
    {
      id: 'guard-discovery/days',
      section: SECTION,
      metric: "days until an adversary relay is next to the endpoint's guard, with vanguards (as above)",
      value: quantile(days, 0.5),
      display: summary(days, 1),
      goal: '—',
      met: null,
    },
    {
      id: 'guard-discovery/learn-vanguard',
      section: SECTION,
      metric: "introductions until an adversary relay is next to one of the endpoint's vanguards (it learns a vanguard to compromise)",
      value: quantile(learn, 0.5),
      display: `${summary(learn)}; mean ${(learn.reduce((s, x) => s + x, 0) / learn.length).toFixed(1)}`,
      goal: '— (≈ 1/f: the price of the layer is one more relay to compromise)',
      met: null,
    },
  ];
}

async function withoutVanguards(o: ShapeOptions): Promise<ShapeRow[]> {
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
