/**
 * Experiment (c): content availability over time under churn, with k = 2, 3, 5 copies of every block and with and
 * without the Reed-Solomon parity blocks files carry.
 *
 * The grid runs the repair policy's model (sim/churn-model.ts) with hundreds of relays for a day. A cross-check
 * runs the real code at small N under the same churn — full relays with SQLite stores and their real Replicator
 * passes over one-hop circuits, files put by a real client — and compares blocks lost and blocks retrievable with
 * the model's for the same parameters (several seeds), then fetches every file back with a real client.
 */
import { encodeFile } from '../../protocol/file-codec.js';
import { PlacementIndex } from '../../protocol/placement-index.js';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { runChurn, type ChurnResult } from '../churn-model.js';
import { lineChart } from '../plot.js';
import type { ExperimentResult, Table } from '../report.js';
import { FullRelay, type SimRelayOptions } from '../relay-node.js';
import { mean, quantile } from '../stats.js';
import { simulate } from '../world.js';

export interface ChurnExperimentOptions {
  seed: number;
  quick: boolean;
  log?: (line: string) => void;
}

const HOUR = 3_600_000;

export interface RealChurnResult {
  relays: number;
  k: number;
  churnPerHour: number;
  hours: number;
  blocks: number;
  files: number;
  samples: { hour: number; durable: number; retrievable: number }[];
  lostBlocks: number;
  departures: number;
  filesFetched: number;
}

/** A file of `blocks` data blocks' worth of bytes, distinct per index. */
function fileBytes(index: number, dataBlocks: number): Uint8Array {
  const out = new Uint8Array(dataBlocks * 32_000);
  let x = (index + 1) * 2654435761;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** The routing keys of every block a convergent put of `data` stores. */
async function blockKeys(data: Uint8Array): Promise<Uint8Array[]> {
  const keys: Uint8Array[] = [];
  const gen = encodeFile([data], { mode: 'convergent' });
  let step = await gen.next();
  while (!step.done) {
    keys.push(step.value.ref.rk);
    step = await gen.next();
  }
  return keys;
}

/**
 * The real code under churn: `relays` store relays, `files` files put by a client, relays leaving after exponential
 * lifetimes and replaced by new ones, for `hours`; at the end a new client fetches every file.
 */
export async function realChurn(o: {
  seed: number;
  relays: number;
  k: number;
  files: number;
  dataBlocks: number;
  churnPerHour: number;
  hours: number;
  sampleEveryMs?: number;
  config?: SimRelayOptions['config'];
  /** Instead of random lifetimes: take down this many relays at once every `waveEveryMs` (the test's scenario). */
  waves?: { count: number; everyMs: number; holdersOnly?: boolean };
}): Promise<RealChurnResult> {
  return simulate({ seed: o.seed }, async (w) => {
    const config = { replication_factor: o.k, ...o.config };
    const all: FullRelay[] = [];
    const make = (): FullRelay => {
      const r = new FullRelay(w, w.network.addHost(), all.length, { store: true, config });
      all.push(r);
      return r;
    };
    const live = (): FullRelay[] => all.filter((r) => r.alive);
    for (let i = 0; i < o.relays; i++) {
      const r = make();
      r.start(i === 0 ? [] : [all[w.rng.int(i)]!]);
      await w.run(1000);
    }
    await w.run(60_000);
    // Files, put by a client through circuits.
    const datas = Array.from({ length: o.files }, (_, i) => fileBytes(i + o.seed * 1000, o.dataBlocks));
    const keys: Uint8Array[] = [];
    for (const d of datas) keys.push(...(await blockKeys(d)));
    const putter = new AlliumClient({
      bootstrap: all.slice(0, 3).map((r) => r.bootstrapLine),
      socketFactory: w.network.socketFactory(w.network.addHost()),
      poolSize: 0,
    });
    await w.wait(putter.start());
    const content = new ContentClient(putter, { replication: o.k });
    const links: string[] = [];
    // Convergent keys: the blocks are those blockKeys computed (a put uses random keys by default).
    for (const d of datas) links.push(await w.wait(content.put(d, { convergent: true })));
    content.close();
    await w.wait(putter.stop());

    const samples: RealChurnResult['samples'] = [];
    const sample = (): void => {
      const alive = live();
      let durable = 0;
      let retrievable = 0;
      // One placement index per sample (the view of one live relay): a key's holders in O(log N), as clients find them.
      const index = new PlacementIndex(alive[0]!.directory.all());
      const byFp = new Map(all.map((r) => [r.fingerprint, r]));
      for (const rk of keys) {
        if (alive.some((r) => r.store!.hasBlock(rk))) durable++;
        if (
          index.holders(rk, o.k).some((d) => {
            const r = byFp.get(d.fingerprint);
            return !!r && r.alive && r.store!.hasBlock(rk);
          })
        )
          retrievable++;
      }
      samples.push({ hour: (w.now - start) / HOUR, durable: durable / keys.length, retrievable: retrievable / keys.length });
    };
    const start = w.now;
    let departures = 0;
    const depart = (r: FullRelay): void => {
      if (!r.alive) return;
      departures++;
      r.down('crash');
      const joiner = make();
      const boot = live().filter((x) => x !== joiner);
      joiner.start([w.rng.pick(boot), w.rng.pick(boot)]);
    };
    if (o.waves) {
      const waves = o.waves;
      const wave = (): void => {
        let victims = live();
        if (waves.holdersOnly) {
          // Take down holders of one block: the worst case for that block.
          const rk = keys[w.rng.int(keys.length)]!;
          const hs = new Set(new PlacementIndex(victims[0]!.directory.all()).holders(rk, o.k).map((d) => d.fingerprint));
          victims = victims.filter((r) => hs.has(r.fingerprint));
        }
        w.rng.shuffle(victims);
        for (const r of victims.slice(0, waves.count)) depart(r);
      };
      for (let t = waves.everyMs; t <= o.hours * HOUR; t += waves.everyMs) setTimeout(wave, t);
    } else {
      const schedule = (r: FullRelay): void => {
        setTimeout(
          () => {
            const before = all.length;
            depart(r);
            for (const j of all.slice(before)) schedule(j);
          },
          w.rng.exponential(HOUR / o.churnPerHour),
        );
      };
      for (const r of live()) schedule(r);
    }
    sample();
    const every = o.sampleEveryMs ?? 10 * 60_000;
    for (let t = every; t <= o.hours * HOUR + 1; t += every) {
      await w.run(start + t - w.now);
      sample();
    }
    let lost = 0;
    for (const rk of keys) if (!live().some((r) => r.store!.hasBlock(rk))) lost++;
    // A new client fetches every file back (parity rebuilds missing blocks).
    const getter = new AlliumClient({
      bootstrap: live()
        .slice(0, 3)
        .map((r) => r.bootstrapLine),
      socketFactory: w.network.socketFactory(w.network.addHost()),
      poolSize: 0,
    });
    await w.wait(getter.start());
    const reader = new ContentClient(getter, { replication: o.k });
    let fetched = 0;
    for (let i = 0; i < links.length; i++) {
      try {
        const back = await w.wait(reader.get(links[i]!), 3_600_000);
        if (back.length === datas[i]!.length && back.every((v, j) => v === datas[i]![j])) fetched++;
      } catch {
        /* not retrievable */
      }
    }
    reader.close();
    await w.wait(getter.stop());
    for (const r of all) r.dispose();
    return {
      relays: o.relays,
      k: o.k,
      churnPerHour: o.churnPerHour,
      hours: o.hours,
      blocks: keys.length,
      files: o.files,
      samples,
      lostBlocks: lost,
      departures,
      filesFetched: fetched,
    };
  });
}

function pct(x: number): number {
  return 100 * x;
}

export async function churn(o: ChurnExperimentOptions): Promise<ExperimentResult> {
  const log = o.log ?? (() => undefined);
  const relays = o.quick ? 150 : 500;
  const files = o.quick ? 20 : 100;
  const hours = o.quick ? 12 : 24;
  const rates = [0.01, 0.03, 0.1, 0.3];
  const ks = [2, 3, 5];
  const grid: ChurnResult[] = [];
  for (const rate of rates) {
    for (const k of ks) {
      log(`model: churn ${pct(rate)}%/h, k=${k}`);
      grid.push(runChurn({ seed: o.seed, relays, k, files, churnPerHour: rate, hours }));
    }
    log(`model: churn ${pct(rate)}%/h, k=3, departures known at once`);
    grid.push(runChurn({ seed: o.seed, relays, k: 3, files, churnPerHour: rate, hours, variant: 'instant-removal' }));
  }
  const rowOf = (r: ChurnResult): (string | number)[] => {
    const s = r.samples;
    const end = s[s.length - 1]!;
    return [
      `${pct(r.options.churnPerHour)}%`,
      r.options.k,
      r.options.variant === 'as-built' ? 'as built' : r.options.variant === 'expiry-only' ? 'departures known at expiry' : 'departures known at once',
      pct(r.lostBlocks / r.blocks),
      pct(end.retrievable),
      pct(Math.min(...s.map((x) => x.retrievable))),
      pct(end.filesWithParity),
      pct(end.filesWithoutParity),
      r.storesPerRelayHour,
      pct(r.passesBlocked),
      r.meanPassSeconds,
    ];
  };
  const gridTable: Table = {
    title: `Model: ${relays} store relays, ${files} files of 32 data + 16 parity blocks + a root (${files * 49} blocks), ${hours} h`,
    columns: [
      'relays leaving per hour',
      'k',
      'directory',
      'blocks lost (%)',
      'blocks retrievable at end (%)',
      'minimum (%)',
      'files retrievable, with parity (%)',
      'without parity (%)',
      'repair STOREs per relay per hour',
      'passes meeting a departed holder (%)',
      'mean pass (s)',
    ],
    rows: grid.map(rowOf),
  };

  // What moves the result: the policy's parameters one at a time, at 10% an hour and k = 3.
  const variants: [string, Partial<Parameters<typeof runChurn>[0]>][] = [
    ['as built (departed holders noticed within about four passes; passes run for up to 45 s, 4 items at once)', {}],
    ['before: one batch of 32 blocks per pass, one at a time, departures known at expiry', { budgetMs: 0, parallel: 1, variant: 'expiry-only' }],
    ['departures noticed only when descriptors expire', { variant: 'expiry-only' }],
    ['one batch of 32 blocks per pass, one at a time', { budgetMs: 0, parallel: 1 }],
    ['dials to departed relays fail in 0.1 s, not 10 s', { deadDialMs: 100 }],
    ['descriptors live 30 min, renewed every 10 min', { descriptorLifetimeMs: 30 * 60_000, descriptorRenewMs: 10 * 60_000 }],
    ['departures known at once', { variant: 'instant-removal' }],
  ];
  const sensitivity: (string | number)[][] = [];
  for (const [name, extra] of variants) {
    log(`model: churn 10%/h, k=3, ${name}`);
    const r = runChurn({ seed: o.seed, relays, k: 3, files, churnPerHour: 0.1, hours, ...extra });
    sensitivity.push([name, pct(r.lostBlocks / r.blocks), pct(r.samples[r.samples.length - 1]!.filesWithParity), r.storesPerRelayHour, r.meanPassSeconds]);
  }
  const sensitivityTable: Table = {
    title: `What changes the outcome: the model at 10% leaving per hour, k = 3, ${relays} relays, ${hours} h, one change at a time`,
    columns: ['policy', 'blocks lost (%)', 'files retrievable, with parity (%)', 'repair STOREs per relay per hour', 'mean pass (s)'],
    rows: sensitivity,
  };

  // Cross-check against the real code at small N.
  const realN = o.quick ? 12 : 20;
  const realHours = o.quick ? 3 : 6;
  const realRate = 0.3;
  const seeds = o.quick ? [o.seed] : Array.from({ length: 6 }, (_, i) => o.seed + i);
  const reals: RealChurnResult[] = [];
  for (const s of seeds) {
    log(`real code: ${realN} relays, churn ${pct(realRate)}%/h, k=3, ${realHours} h, seed ${s}`);
    reals.push(await realChurn({ seed: s, relays: realN, k: 3, files: 2, dataBlocks: 32, churnPerHour: realRate, hours: realHours }));
  }
  const modelSeeds = Array.from({ length: 100 }, (_, i) => o.seed + i);
  const models = modelSeeds.map((s) => runChurn({ seed: s, relays: realN, k: 3, files: 2, churnPerHour: realRate, hours: realHours }));
  const realBlocks = reals[0]!.blocks;
  const lostOf = (r: { lostBlocks: number; blocks: number }): number => pct(r.lostBlocks / r.blocks);
  const endOf = (r: { samples: { retrievable: number }[] }): number => pct(r.samples[r.samples.length - 1]!.retrievable);
  const avgOf = (r: { samples: { retrievable: number }[] }): number => pct(mean(r.samples.map((x) => x.retrievable)));
  const range = (xs: number[]): string => `${quantile(xs, 0.5).toFixed(0)} (${quantile(xs, 0.1).toFixed(0)}–${quantile(xs, 0.9).toFixed(0)})`;
  const crossTable: Table = {
    title: `Real code against the model: ${realN} store relays, k = 3, ${pct(realRate)}% leaving per hour, 2 files (${realBlocks} blocks), ${realHours} h`,
    columns: ['run', 'departures', 'blocks lost (%)', 'blocks retrievable at end (%)', 'time-average retrievable (%)', 'files fetched back by a new client'],
    rows: [
      ...reals.map((r, i) => [`real relays, seed ${seeds[i]}`, r.departures, lostOf(r), endOf(r), avgOf(r), `${r.filesFetched} of ${r.files}`]),
      [
        `model, ${modelSeeds.length} seeds: median (10th–90th percentile)`,
        range(models.map((r) => r.departures)),
        range(models.map(lostOf)),
        range(models.map(endOf)),
        range(models.map(avgOf)),
        `${pct(mean(models.map((r) => r.samples[r.samples.length - 1]!.filesWithParity))).toFixed(0)}% retrievable`,
      ],
    ],
  };

  const seriesFor = (k: number, variant: string, metric: 'durable' | 'filesWithParity' | 'filesWithoutParity' | 'retrievable') =>
    rates.map((rate) => {
      const r = grid.find((g) => g.options.k === k && g.options.churnPerHour === rate && g.options.variant === variant)!;
      return { name: `${pct(rate)}%/h`, points: r.samples.map((s) => [s.hour, pct(s[metric])] as [number, number]) };
    });
  const plots: Record<string, string> = {};
  for (const k of ks) {
    plots[`churn-blocks-k${k}.svg`] = lineChart({
      title: `Blocks retrievable under churn, k = ${k} (${relays} relays)`,
      xLabel: 'hours',
      yLabel: '% of blocks retrievable',
      yMin: 0,
      yMax: 100,
      markers: false,
      series: seriesFor(k, 'as-built', 'retrievable'),
    });
  }
  plots['churn-files-k3.svg'] = lineChart({
    title: `Files retrievable under churn, k = 3: with parity (solid) and without (dashed)`,
    xLabel: 'hours',
    yLabel: '% of files retrievable',
    yMin: 0,
    yMax: 100,
    markers: false,
    series: [
      ...seriesFor(3, 'as-built', 'filesWithParity'),
      ...seriesFor(3, 'as-built', 'filesWithoutParity').map((s) => ({ ...s, name: `${s.name}, no parity`, dashed: true })),
    ],
  });
  plots['churn-loss.svg'] = lineChart({
    title: `Blocks lost after ${hours} h versus churn`,
    xLabel: '% of relays leaving per hour',
    yLabel: '% of blocks lost',
    logX: true,
    series: [
      ...ks.map((k) => ({
        name: `k = ${k}`,
        points: rates.map((rate) => {
          const r = grid.find((g) => g.options.k === k && g.options.churnPerHour === rate && g.options.variant === 'as-built')!;
          return [pct(rate), pct(r.lostBlocks / r.blocks)] as [number, number];
        }),
      })),
      {
        name: 'k = 3, departures known',
        dashed: true,
        points: rates.map((rate) => {
          const r = grid.find((g) => g.options.k === 3 && g.options.churnPerHour === rate && g.options.variant === 'instant-removal')!;
          return [pct(rate), pct(r.lostBlocks / r.blocks)] as [number, number];
        }),
      },
    ],
  });
  plots['churn-real-vs-model.svg'] = lineChart({
    title: `Real code and model: ${realN} relays, k = 3, ${pct(realRate)}%/h`,
    xLabel: 'hours',
    yLabel: '% of blocks retrievable',
    yMin: 0,
    yMax: 100,
    markers: false,
    series: [
      ...reals.map((r, i) => ({ name: `real, seed ${seeds[i]}`, points: r.samples.map((s) => [s.hour, pct(s.retrievable)] as [number, number]) })),
      {
        name: `model, mean of ${modelSeeds.length} seeds`,
        dashed: true,
        points: models[0]!.samples.map((s, i) => [s.hour, pct(mean(models.map((m) => m.samples[i]!.retrievable)))] as [number, number]),
      },
    ],
  });
  return {
    name: 'churn',
    title: '(c) Content availability under churn',
    seed: o.seed,
    quick: o.quick,
    params: { relays, files, hours, rates, ks, realN, realHours, realRate },
    tables: [gridTable, sensitivityTable, crossTable],
    plots,
    notes: [],
  };
}
