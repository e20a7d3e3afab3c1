/**
 * npm run chaos — chaos on relay processes (docs/chaos.md): relays killed with SIGKILL and restarted at random
 * while streams, content puts and gets and private messages run; one relay flooded with handshakes and garbage;
 * one relay whose disk fills. Prints what failed and what succeeded after a retry, blocks lost, peak RSS per relay
 * and recovery times.
 *
 *   --long          10 relays for 10 minutes (default: the short form CI runs, 7 relays for 60 s)
 *   --duration S    seconds of faults (overrides the form's)
 *   --seed N        seed of the fault schedule (default 1)
 *   --no-write      print only: no JSON in bench/results, no section in docs/chaos.md
 *
 * The engine is test/helpers/chaos.ts, which test/integration/chaos.test.ts runs in its short form. Mounting the
 * full relay's tmpfs needs root (or CAP_SYS_ADMIN); without it the relay gets a small storage quota instead and the
 * report says so. No network namespaces or netem: every process shares 127.0.0.1.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initCrypto } from '../crypto/index.js';
import { formatChaosReport, runChaos, type ChaosOptions } from '../test/helpers/chaos.js';
import { parseFlags } from './lib/options.js';
import { progress, writeResults } from './lib/results.js';

const USAGE = 'usage: npm run chaos -- [--long] [--duration S] [--seed N] [--no-write]';
const flags = parseFlags(process.argv.slice(2), { long: 'boolean', duration: 'number', seed: 'number', 'no-write': 'boolean' }, USAGE);
const long = flags.long ?? false;
const ROOT = path.resolve(import.meta.dirname, '..');

const SHORT: ChaosOptions = {
  relays: 7,
  exits: 2,
  k: 3,
  durationMs: 60_000,
  killIntervalMs: [6000, 12_000],
  downMs: [2000, 6000],
  maxDown: 2,
  flood: { startMs: 15_000, durationMs: 15_000, workers: 16, handshakesPerSecond: 50 },
  disk: { freeBytes: 256 * 1024 },
  putBytes: [20_000, 100_000],
  seed: 1,
};

const LONG: ChaosOptions = {
  relays: 10,
  exits: 3,
  k: 3,
  durationMs: 600_000,
  killIntervalMs: [5000, 15_000],
  downMs: [2000, 20_000],
  maxDown: 2,
  flood: { startMs: 60_000, durationMs: 60_000, workers: 32, handshakesPerSecond: 50 },
  disk: { freeBytes: 1024 * 1024 },
  putBytes: [20_000, 300_000],
  seed: 1,
};

async function main(): Promise<void> {
  await initCrypto();
  const base = long ? LONG : SHORT;
  const options: ChaosOptions = {
    ...base,
    ...(flags.duration ? { durationMs: flags.duration * 1000 } : {}),
    ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
    log: progress,
  };
  const report = await runChaos(options);
  const md = formatChaosReport(report);
  console.log(md);
  if (flags['no-write']) return;
  console.log(`\nresults: ${writeResults(long ? 'chaos-long' : 'chaos', report.options, report)}`);
  const form = long ? 'long' : 'short';
  const header = `\`npm run chaos${long ? ' -- --long' : ''}\`: ${options.relays} relays (${options.exits} exits), k = ${options.k}, ${options.durationMs / 1000} s of faults, a kill every ${options.killIntervalMs[0] / 1000}–${options.killIntervalMs[1] / 1000} s, down ${options.downMs[0] / 1000}–${options.downMs[1] / 1000} s, seed ${options.seed}, ${new Date().toISOString().slice(0, 10)}.`;
  if (updateSection(path.join(ROOT, 'docs', 'chaos.md'), form, `${header}\n\n${md}`)) console.log(`wrote the ${form} run into docs/chaos.md`);
}

/** Replaces the text between `<!-- chaos:NAME:begin -->` and `<!-- chaos:NAME:end -->`. */
function updateSection(file: string, name: string, markdown: string): boolean {
  const begin = `<!-- chaos:${name}:begin (npm run chaos writes this section) -->`;
  const end = `<!-- chaos:${name}:end -->`;
  mkdirSync(path.dirname(file), { recursive: true });
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Chaos runs\n';
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) {
    writeFileSync(file, `${doc.trimEnd()}\n\n${begin}\n${markdown}\n${end}\n`);
    return true;
  }
  writeFileSync(file, `${doc.slice(0, a + begin.length)}\n${markdown}\n${doc.slice(b)}`);
  return true;
}

await main();
