/**
 * Experiment (e): circuit builds when relays have failed.
 *
 * Real part: full relays and real clients (client/client.ts) over real links. The clients fetch the directory,
 * then a fraction of the relays goes down at once (dials to them fail after the 10 s connection deadline). Each
 * client builds circuits to an exit port; newCircuit() makes up to three attempts, avoiding relays that failed in
 * the last minute and moving off a failed guard. Measured right after the failures (every directory, the relays'
 * included, still lists the dead relays: descriptors are only dropped when they expire) and again 3.5 hours later,
 * when the dead relays' descriptors have expired and the clients have refreshed.
 *
 * Scale part: 10,000 relays and 50,000 clients as path-selection leaves (sim/fast-path.ts: the choices of the real
 * GuardSet and choosePath, checked identical on a sample) and newCircuit()'s retry rules restated (three attempts; the first dead relay on a path is its culprit, excluded for
 * a minute, and marked failed when it is the guard): the share of circuits built within three attempts and the
 * attempts they took, against the (1 − f)³ chance that a random three-relay path avoids a fraction f of dead relays.
 */
import { AlliumClient } from '../../client/client.js';
import { GuardSet, type GuardRecord } from '../../client/guards.js';
import { choosePath } from '../../client/path.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { FastPaths } from '../fast-path.js';
import { lineChart } from '../plot.js';
import { Rng } from '../random.js';
import type { ExperimentResult, Table } from '../report.js';
import { FullRelay, MessageRelay } from '../relay-node.js';
import { mean, quantile } from '../stats.js';
import { simulate } from '../world.js';

export interface CircuitsOptions {
  seed: number;
  quick: boolean;
  log?: (line: string) => void;
}

interface RealRow {
  dead: number;
  requested: number;
  built: number;
  meanSeconds: number;
  p95Seconds: number;
  builtAfter: number;
  meanSecondsAfter: number;
}

async function realBuilds(seed: number, n: number, clients: number, perClient: number, deadFraction: number): Promise<RealRow> {
  return simulate({ seed }, async (w) => {
    const relays: FullRelay[] = [];
    for (let i = 0; i < n; i++) {
      const r = new FullRelay(w, w.network.addHost(), i, { exit: i % 5 === 0 });
      relays.push(r);
      r.start(i === 0 ? [] : [relays[w.rng.int(i)]!, relays[w.rng.int(i)]!]);
      await w.run(500);
    }
    await w.run(60_000);
    const cs: AlliumClient[] = [];
    for (let c = 0; c < clients; c++) {
      const boot = [0, 1, 2].map(() => w.rng.pick(relays).bootstrapLine);
      const client = new AlliumClient({ bootstrap: boot, socketFactory: w.network.socketFactory(w.network.addHost()), poolSize: 0 });
      await w.wait(client.start());
      cs.push(client);
    }
    const victims = w.rng.shuffle([...relays]).slice(0, Math.round(deadFraction * n));
    for (const v of victims) v.down('crash');
    const round = async (): Promise<{ built: number; times: number[] }> => {
      let built = 0;
      const times: number[] = [];
      // Clients build side by side, each its circuits one after the other.
      await w.wait(
        Promise.all(
          cs.map(async (client) => {
            for (let i = 0; i < perClient; i++) {
              const t = w.now;
              try {
                const c = await client.newCircuit({ exitPort: 443 });
                built++;
                times.push((w.now - t) / 1000);
                c.close();
              } catch {
                /* three attempts failed */
              }
            }
          }),
        ),
      );
      return { built, times };
    };
    const now = await round();
    await w.run(3.5 * 3_600_000);
    const later = await round();
    for (const c of cs) await w.wait(c.stop());
    for (const r of relays) r.dispose();
    return {
      dead: deadFraction,
      requested: clients * perClient,
      built: now.built,
      meanSeconds: mean(now.times),
      p95Seconds: quantile(now.times, 0.95),
      builtAfter: later.built,
      meanSecondsAfter: mean(later.times),
    };
  });
}

interface ScaleRow {
  dead: number;
  built: number;
  attempts: number;
  firstTry: number;
  /** Circuits that failed because choosePath found no usable guard compatible with the chosen exit. */
  pathErrors: number;
}

/** How a client picks: the real GuardSet and choosePath, or sim/fast-path.ts (the same choices, faster). */
interface Selector {
  usable(records: GuardRecord[], now: number): Promise<Descriptor[]>;
  choose(o: { guards: Descriptor[]; exclude: Set<string> }): Descriptor[];
}

/** newCircuit()'s loop (client/client.ts) over path selection: the relays each attempt tries, and its outcome. */
async function attempt(
  records: GuardRecord[],
  select: Selector,
  dead: ReadonlySet<string>,
  now: number,
): Promise<{ built: boolean; attempts: number; pathError: boolean; tried: string[] }> {
  const failed = new Map<string, number>();
  const tried: string[] = [];
  for (let a = 0; a < 3; a++) {
    const exclude = new Set([...failed].filter(([, t]) => now - t < 60_000).map(([fp]) => fp));
    let path: Descriptor[];
    const guards = await select.usable(records, now);
    try {
      try {
        path = select.choose({ guards, exclude });
      } catch (e) {
        // As newCircuit(): no path while avoiding recent failures, so one without avoiding them.
        if (exclude.size === 0) throw e;
        path = select.choose({ guards, exclude: new Set() });
      }
    } catch {
      return { built: false, attempts: a + 1, pathError: true, tried };
    }
    tried.push(path.map((d) => d.fingerprint.slice(0, 8)).join('-'));
    const culprit = path.find((d) => dead.has(d.fingerprint));
    if (!culprit) return { built: true, attempts: a + 1, pathError: false, tried };
    failed.set(culprit.fingerprint, now);
    // guards.markFailed(): the guard is skipped for the next minute.
    if (culprit === path[0]) for (const r of records) if (r.fingerprint === culprit.fingerprint) r.failedAt = now;
  }
  return { built: false, attempts: 3, pathError: false, tried };
}

/** newCircuit()'s retries over path selection alone, for many clients: which relays they try, and whether those are up. */
async function scaleBuilds(
  seed: number,
  relays: number,
  clients: number,
  fractions: number[],
  log: (s: string) => void,
): Promise<{ rows: ScaleRow[]; identical: number; compared: number }> {
  return simulate({ seed }, async (w) => {
    const descriptors: Descriptor[] = [];
    for (let i = 0; i < relays; i++) descriptors.push(new MessageRelay(w, w.network.addHost(), i, { exit: w.rng.next() < 0.2 }).signDescriptor(w.now));
    const fast = new FastPaths(descriptors);
    const random = w.rng.fork().random;
    // Guards sampled before the failures, as clients that have been running a while hold them.
    const saved = Array.from({ length: clients }, () => fast.sampleGuards(random, w.now));
    const fastSelector = (rnd: () => number): Selector => ({
      usable: async (records, now) => fast.usable(records, now),
      choose: (o) => fast.choose({ exitPort: 443, guards: o.guards, exclude: o.exclude }, rnd),
    });
    const realSelector = (rnd: () => number): Selector => ({
      usable: async (records, now) => {
        const g = new GuardSet({ load: async () => records, save: async () => undefined }, rnd);
        await g.load();
        return g.usable(descriptors, now);
      },
      choose: (o) => choosePath(descriptors, { hops: 3, exitPort: 443, guards: o.guards, enforceDistinctSubnets: false, exclude: o.exclude, random: rnd }),
    });
    const rows: ScaleRow[] = [];
    let identical = 0;
    let compared = 0;
    for (const f of fractions) {
      const dead = new Set(w.rng.shuffle(descriptors.map((d) => d.fingerprint)).slice(0, Math.round(f * relays)));
      let built = 0;
      let attempts = 0;
      let first = 0;
      let pathErrors = 0;
      const streamSeed = w.rng.int(2 ** 31);
      const streamFast = new Rng(streamSeed).random;
      const streamReal = new Rng(streamSeed).random;
      for (let c = 0; c < clients; c++) {
        const r = await attempt(
          saved[c]!.map((x) => ({ ...x })),
          fastSelector(streamFast),
          dead,
          w.now,
        );
        if (c < 200 && f > 0) {
          // The same client with the real GuardSet and choosePath, on a twin random stream.
          const check = await attempt(
            saved[c]!.map((x) => ({ ...x })),
            realSelector(streamReal),
            dead,
            w.now,
          );
          compared++;
          if (JSON.stringify(check) === JSON.stringify(r)) identical++;
        }
        attempts += r.attempts;
        if (r.built) built++;
        if (r.built && r.attempts === 1) first++;
        if (r.pathError) pathErrors++;
      }
      log(`  ${Math.round(100 * f)}% dead: ${((100 * built) / clients).toFixed(1)}% built`);
      rows.push({ dead: f, built: built / clients, attempts: attempts / clients, firstTry: first / clients, pathErrors: pathErrors / clients });
    }
    return { rows, identical, compared };
  });
}

export async function circuits(o: CircuitsOptions): Promise<ExperimentResult> {
  const log = o.log ?? (() => undefined);
  const n = o.quick ? 30 : 100;
  const clients = o.quick ? 4 : 20;
  const perClient = o.quick ? 3 : 10;
  const realFractions = o.quick ? [0, 0.2, 0.5] : [0, 0.1, 0.2, 0.3, 0.5];
  const reals: RealRow[] = [];
  for (const f of realFractions) {
    log(`real: ${n} relays, ${clients} clients, ${Math.round(100 * f)}% of relays down`);
    reals.push(await realBuilds(o.seed, n, clients, perClient, f));
  }
  const scaleRelays = o.quick ? 1000 : 10_000;
  const scaleClients = o.quick ? 1000 : 50_000;
  const fractions = [0, 0.05, 0.1, 0.2, 0.3, 0.5];
  log(`scale: ${scaleRelays} relays, ${scaleClients} clients`);
  const { rows: scale, identical, compared } = await scaleBuilds(o.seed, scaleRelays, scaleClients, fractions, log);
  const realTable: Table = {
    title: `Real relays and clients: ${n} relays (one in five an exit), ${clients} clients building ${perClient} exit circuits each`,
    columns: [
      'relays down (%)',
      'circuits asked for',
      'built at once (%)',
      'time to build, mean (s)',
      'p95 (s)',
      'built 3.5 h later (%)',
      'time then, mean (s)',
    ],
    rows: reals.map((r) => [
      100 * r.dead,
      r.requested,
      (100 * r.built) / r.requested,
      r.meanSeconds,
      r.p95Seconds,
      (100 * r.builtAfter) / r.requested,
      r.meanSecondsAfter,
    ]),
  };
  const scaleTable: Table = {
    title: `Path selection with newCircuit()'s retries: ${scaleRelays.toLocaleString('en-US')} relays, ${scaleClients.toLocaleString('en-US')} clients, dead relays still listed`,
    columns: [
      'relays down (%)',
      'built within 3 attempts (%)',
      'built at the first attempt (%)',
      '(1 − f)³ (%)',
      'attempts per circuit',
      'failed with ERR_ONION_PATH (%)',
    ],
    rows: scale.map((r) => [100 * r.dead, 100 * r.built, 100 * r.firstTry, 100 * (1 - r.dead) ** 3, r.attempts, 100 * r.pathErrors]),
  };
  const plots = {
    'circuits-success.svg': lineChart({
      title: 'Circuit builds with a fraction of relays down (directories still list them)',
      xLabel: '% of relays down',
      yLabel: '% of circuits built',
      yMin: 0,
      yMax: 100,
      series: [
        { name: 'real clients: built (3 tries)', points: reals.map((r) => [100 * r.dead, (100 * r.built) / r.requested]) },
        { name: 'real, 3.5 h later', points: reals.map((r) => [100 * r.dead, (100 * r.builtAfter) / r.requested]) },
        { name: `${scaleRelays / 1000}k relays: 3 tries`, points: scale.map((r) => [100 * r.dead, 100 * r.built]) },
        { name: `${scaleRelays / 1000}k relays: first try`, points: scale.map((r) => [100 * r.dead, 100 * r.firstTry]) },
        { name: '(1 − f)³', points: scale.map((r) => [100 * r.dead, 100 * (1 - r.dead) ** 3]), dashed: true },
      ],
    }),
  };
  return {
    name: 'circuits',
    title: '(e) Circuit build success under relay failures',
    seed: o.seed,
    quick: o.quick,
    params: { n, clients, perClient, realFractions, scaleRelays, scaleClients, fractions },
    tables: [realTable, scaleTable],
    plots,
    notes: [
      `The scale part's guards and paths come from sim/fast-path.ts; on ${compared} clients replayed with the real GuardSet and choosePath on twin random streams, ${identical} tried exactly the same relays.`,
    ],
  };
}
