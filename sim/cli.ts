/**
 * The simulator's command line: `npm run sim -- <experiment> [--seed N] [--quick]` (which compiles the simulator
 * and the code it runs to plain JavaScript first, tsconfig.sim.json: about twice as fast as running the TypeScript
 * through a loader).
 *
 *   convergence   (a) directory convergence and gossip cost versus N
 *   lookup        (b) content lookups: hops and work per lookup versus N
 *   churn         (c) content availability under churn, replication and erasure coding
 *   load          (d) load balance: blocks and traffic per relay, Gini coefficients
 *   circuits      (e) circuit build success under relay failures
 *   all           every experiment, one process each, one after the other
 *
 * Each prints its tables (Markdown), writes its plots to docs/plots/ and its result (JSON and Markdown) to
 * sim/results/, and reports the wall time, CPU time and peak resident memory it took. `--quick` runs small sizes
 * (seconds to a minute); the default sizes are the ones in docs/simulation.md.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Command } from 'commander';
import { initCrypto } from '../crypto/index.js';
import { renderResult, writeResult, type ExperimentResult } from './report.js';

/** The repository: npm runs scripts there. */
const root = process.cwd();

type Runner = (o: { seed: number; quick: boolean; log: (s: string) => void }) => Promise<ExperimentResult>;

const EXPERIMENTS: Record<string, () => Promise<Runner>> = {
  convergence: async () => (await import('./experiments/convergence.js')).convergence,
  lookup: async () => (await import('./experiments/lookup.js')).lookup,
  churn: async () => (await import('./experiments/churn.js')).churn,
  load: async () => (await import('./experiments/load.js')).load,
  circuits: async () => (await import('./experiments/circuits.js')).circuits,
};

async function runOne(name: string, seed: number, quick: boolean, outDir: string, resultDir: string): Promise<void> {
  const load = EXPERIMENTS[name];
  if (!load) throw new Error(`unknown experiment "${name}" (one of: ${Object.keys(EXPERIMENTS).join(', ')}, all)`);
  const run = await load();
  await initCrypto();
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const log = (s: string): void => void process.stderr.write(`[${((Number(process.hrtime.bigint() - t0) / 1e9) | 0).toString().padStart(5)} s] ${s}\n`);
  const result = await run({ seed, quick, log });
  const cpu = process.cpuUsage(c0);
  result.cost = {
    wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(renderResult(result) + '\n');
  for (const p of writeResult(result, outDir, resultDir)) log(`wrote ${p}`);
}

const program = new Command()
  .name('sim')
  .argument('<experiment>', `${Object.keys(EXPERIMENTS).join(' | ')} | all`)
  .option('--seed <n>', 'seed of every random choice', '1')
  .option('--quick', 'small sizes, for a first look or CI')
  .option('--plots <dir>', 'where the SVG plots go', join(root, 'docs', 'plots'))
  .option('--results <dir>', 'where the JSON and Markdown results go', join(root, 'sim', 'results'))
  .action(async (experiment: string, opts: { seed: string; quick?: boolean; plots: string; results: string }) => {
    const seed = Number(opts.seed);
    if (!Number.isSafeInteger(seed)) throw new Error('--seed must be an integer');
    if (experiment !== 'all') return runOne(experiment, seed, !!opts.quick, opts.plots, opts.results);
    for (const name of Object.keys(EXPERIMENTS)) {
      // One process each: the peak memory reported is the experiment's own.
      const args = [...process.execArgv, fileURLToPath(import.meta.url), name, '--seed', String(seed), '--plots', opts.plots, '--results', opts.results];
      if (opts.quick) args.push('--quick');
      const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
      if (r.status !== 0) process.exitCode = 1;
    }
  });

await program.parseAsync();
