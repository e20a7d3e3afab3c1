/**
 * Experiment (d): load balance — how evenly blocks, fetches and circuits spread over the relays.
 *
 * 10,000 relays (advertised bandwidths from the network's distribution, one in five an exit, all storing content)
 * and 50,000 clients in one process. Clients are path-selection leaves: each samples its guards and picks an exit
 * circuit and a content circuit over the shared directory, as GuardSet (client/guards.ts) and choosePath
 * (client/path.ts) do — through sim/fast-path.ts, checked identical to them on the first clients; no links open. Blocks are placed at their k = 3 holders
 * (protocol/placement.ts, via the equivalent sim/placement-index.ts, checked against holdersOf here), and fetches
 * of Zipf-popular blocks go where client/content.ts sends them: the nearest holder first.
 *
 * Reported for each quantity: its Gini coefficient over relays (0: all equal; 1: one relay has everything), the
 * largest relay's share relative to the mean, and the share of the busiest 1% of relays. Circuit load is also shown
 * per unit of advertised bandwidth, which is what path selection aims to equalise.
 */
import { GuardSet } from '../../client/guards.js';
import { choosePath } from '../../client/path.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { holdersOf, positionOf } from '../../protocol/placement.js';
import { FastPaths } from '../fast-path.js';
import { PlacementIndex } from '../placement-index.js';
import { Rng } from '../random.js';
import { lineChart } from '../plot.js';
import type { ExperimentResult, Table } from '../report.js';
import { MessageRelay } from '../relay-node.js';
import { gini, lorenz, mean } from '../stats.js';
import { simulate } from '../world.js';

export interface LoadOptions {
  seed: number;
  quick: boolean;
  log?: (line: string) => void;
}

interface Spread {
  name: string;
  values: number[];
}

function summary(s: Spread): (string | number)[] {
  const sorted = [...s.values].sort((a, b) => b - a);
  const total = sorted.reduce((a, b) => a + b, 0) || 1;
  const top = sorted.slice(0, Math.max(1, Math.round(sorted.length / 100))).reduce((a, b) => a + b, 0);
  return [s.name, gini(s.values), sorted[0]! / (mean(s.values) || 1), (100 * top) / total, (100 * sorted.filter((v) => v === 0).length) / sorted.length];
}

/** Zipf(s) ranks over n items by inverse CDF on a precomputed table. */
function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) cdf[i] = acc += 1 / Math.pow(i + 1, s);
  return () => {
    const u = random() * acc;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export async function load(o: LoadOptions): Promise<ExperimentResult> {
  const log = o.log ?? (() => undefined);
  const relays = o.quick ? 1000 : 10_000;
  const clients = o.quick ? 5000 : 50_000;
  const blocks = o.quick ? 100_000 : 1_000_000;
  const fetches = o.quick ? 200_000 : 1_000_000;
  const k = 3;
  return simulate({ seed: o.seed }, async (w) => {
    log(`${relays} relays: keys and descriptors`);
    const descriptors: Descriptor[] = [];
    for (let i = 0; i < relays; i++) {
      const r = new MessageRelay(w, w.network.addHost(), i, { store: true, exit: w.rng.next() < 0.2 });
      descriptors.push(r.signDescriptor(w.now));
    }
    const index = new Map(descriptors.map((d, i) => [d.fingerprint, i]));
    const bw = descriptors.map((d) => d.bw);
    const isExit = descriptors.map((d) => d.exit.some((l) => l.startsWith('accept')));

    // Blocks at their holders.
    log(`${blocks} blocks at their ${k} holders`);
    const placement = new PlacementIndex(descriptors.map((d, i) => ({ pos: positionOf(d.id, d.fingerprint), item: i })));
    let agree = 0;
    const checks = 200;
    for (let i = 0; i < checks; i++) {
      const rk = w.rng.bytes(32);
      const a = placement.nearest(rk, k);
      const b = holdersOf(rk, descriptors, k).map((d) => index.get(d.fingerprint)!);
      if (a.length === b.length && a.every((x, j) => x === b[j])) agree++;
    }
    const held = new Array<number>(relays).fill(0);
    const nearestFirst = new Array<number>(relays).fill(0);
    const anyHolder = new Array<number>(relays).fill(0);
    const first: number[] = [];
    const holderSets: number[][] = [];
    for (let b = 0; b < blocks; b++) {
      const hs = placement.nearest(w.rng.bytes(32), k);
      for (const h of hs) held[h]!++;
      first.push(hs[0]!);
      holderSets.push(hs);
    }
    log(`${fetches} fetches of Zipf-popular blocks`);
    const zipf = zipfSampler(blocks, 1, w.rng.random);
    for (let f = 0; f < fetches; f++) {
      const b = zipf();
      nearestFirst[first[b]!]!++;
      anyHolder[holderSets[b]![w.rng.int(k)]!]!++;
    }

    // Clients: guards and two circuits each. The first clients run the real GuardSet and choosePath and the fast
    // equivalent side by side on twin random streams; both must choose the same relays.
    log(`${clients} clients: guards and circuits`);
    const positions = new Array<number>(relays).fill(0);
    const guardClients = new Array<number>(relays).fill(0);
    const fast = new FastPaths(descriptors);
    const seed = w.rng.int(2 ** 31);
    const streamFast = new Rng(seed).random;
    const streamReal = new Rng(seed).random;
    const validate = Math.min(clients, o.quick ? 300 : 500);
    let identical = 0;
    let realMicros = 0;
    for (let c = 0; c < clients; c++) {
      const records = fast.sampleGuards(streamFast, w.now);
      const usable = fast.usable(records, w.now);
      const exitPath = fast.choose({ exitPort: 443, guards: usable }, streamFast);
      const holder = descriptors[holderSets[w.rng.int(blocks)]![0]!]!;
      const contentPath = fast.choose({ exitPort: null, guards: usable, last: holder }, streamFast);
      if (c < validate) {
        const t0 = process.hrtime.bigint();
        const g = new GuardSet(null, streamReal);
        const realUsable = await g.refresh(descriptors, w.now);
        const realExit = choosePath(descriptors, { hops: 3, exitPort: 443, guards: realUsable, enforceDistinctSubnets: false, random: streamReal });
        const realContent = choosePath(descriptors, {
          hops: 3,
          exitPort: null,
          guards: realUsable,
          enforceDistinctSubnets: false,
          last: holder,
          random: streamReal,
        });
        realMicros += Number(process.hrtime.bigint() - t0) / 1000;
        const same = (a: Descriptor[], b: Descriptor[]): boolean => a.length === b.length && a.every((d, i) => d.fingerprint === b[i]!.fingerprint);
        if (same(usable, realUsable) && same(exitPath, realExit) && same(contentPath, realContent)) identical++;
      }
      guardClients[index.get(usable[0]!.fingerprint)!]!++;
      for (const d of [...exitPath, ...contentPath]) positions[index.get(d.fingerprint)!]!++;
      if (c % 10_000 === 9_999) log(`  ${c + 1} clients`);
    }
    // The cost of the /16 rule at this size (turned off above: it parses every relay's address for every candidate).
    const random = w.rng.fork().random;
    const t1 = process.hrtime.bigint();
    const withSubnets = 3;
    for (let i = 0; i < withSubnets; i++) choosePath(descriptors, { hops: 3, exitPort: 443, guards: [], enforceDistinctSubnets: true, random });
    const subnetMillis = Number(process.hrtime.bigint() - t1) / 1e6 / withSubnets;

    const totalBw = bw.reduce((a, b) => a + b, 0);
    const totalPos = positions.reduce((a, b) => a + b, 0);
    const utilisation = positions.map((p, i) => p / totalPos / (bw[i]! / totalBw));
    const exitUtil = mean(utilisation.filter((_, i) => isExit[i]));
    const otherUtil = mean(utilisation.filter((_, i) => !isExit[i]));
    const spreads: (Spread & { short: string })[] = [
      { name: `blocks held (k = ${k})`, short: 'blocks held', values: held },
      { name: 'fetches served, nearest holder first (as built)', short: 'fetches, nearest holder first', values: nearestFirst },
      { name: 'fetches served if holders were picked at random', short: 'fetches, random holder', values: anyHolder },
      { name: 'circuit positions', short: 'circuit positions', values: positions },
      { name: 'circuit positions per unit of bandwidth', short: 'circuits per bandwidth', values: utilisation },
      { name: 'clients per first guard', short: 'clients per first guard', values: guardClients },
    ];
    const table: Table = {
      title: `${relays.toLocaleString('en-US')} relays, ${clients.toLocaleString('en-US')} clients, ${blocks.toLocaleString('en-US')} blocks, ${fetches.toLocaleString('en-US')} fetches (Zipf, s = 1)`,
      columns: ['quantity per relay', 'Gini', 'busiest relay / mean', 'share of the busiest 1% (%)', 'relays with none (%)'],
      rows: spreads.map(summary),
    };
    const extra: Table = {
      title: 'Circuit load per unit of bandwidth, exits against other relays (1 = the bandwidth-proportional share)',
      columns: ['relays', 'count', 'mean load / bandwidth share'],
      rows: [
        ['exits', isExit.filter(Boolean).length, exitUtil],
        ['other relays', isExit.filter((x) => !x).length, otherUtil],
      ],
    };
    const plots = {
      'load-lorenz.svg': lineChart({
        title: 'Lorenz curves over relays (the diagonal is perfect balance)',
        xLabel: 'fraction of relays, least loaded first',
        yLabel: 'fraction of the total',
        xMin: 0,
        xMax: 1,
        yMin: 0,
        yMax: 1,
        markers: false,
        series: [
          {
            name: 'equal',
            points: [
              [0, 0],
              [1, 1],
            ],
            dashed: true,
          },
          ...spreads.map((s) => ({ name: s.short, points: lorenz(s.values, 100) })),
        ],
      }),
    };
    return {
      name: 'load',
      title: '(d) Load balance: blocks and traffic per relay',
      seed: o.seed,
      quick: o.quick,
      params: { relays, clients, blocks, fetches, k, exitFraction: 0.2 },
      tables: [table, extra],
      plots,
      notes: [
        `The placement index agreed with protocol/placement.ts holdersOf on ${agree} of ${checks} random keys.`,
        `Guards and paths of all ${clients.toLocaleString('en-US')} clients come from sim/fast-path.ts; on the first ${validate}, fed the same random numbers as the real GuardSet and choosePath, they were identical for ${identical}.`,
        `The real code's cost on this machine: ${(realMicros / validate / 1000).toFixed(1)} ms per client for guards and two paths (/16 rule off); ${subnetMillis.toFixed(0)} ms for one path with the /16 rule on (it parses each candidate relay's address for every comparison).`,
      ],
    };
  });
}
