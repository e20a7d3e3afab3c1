/**
 * npm run audit:mailbox — what an observer who knows an identity's address learns about its offline mail (issue 16,
 * audit item 4; bench/traffic/mailbox-observer.ts). Prints, for the active and the idle owners, the distributions of
 * what the observer counts (slots occupied, changes, first change) with their KS distances and the permutation test,
 * next to the figure recorded on the code before per-contact inboxes (docs/mailbox-baseline.json).
 *
 *   --quick             6 + 6 owners, 3 ticks (default 16 + 16, 5 ticks)
 *   --json              print the result as JSON instead of the table
 *   --seed S            seed of the owners' behaviour and of the permutations (default "allium-mailbox-1")
 *   --record-baseline   store this run's figure as the recorded "before" for its mode
 *
 * Goal: the observer's distributions equal for active and idle owners (KS distance 0; p ≥ 0.05). Prints figures;
 * exits 0 whether or not the goal is met.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { initCrypto } from '../crypto/index.js';
import { parseFlags } from './lib/options.js';
import { progress } from './lib/results.js';
import { runMailboxObserver, type MailboxObserverResult } from './traffic/mailbox-observer.js';

const USAGE = 'usage: npm run audit:mailbox -- [--quick] [--json] [--seed S] [--record-baseline]';
const BASELINE = path.resolve(import.meta.dirname, '..', 'docs', 'mailbox-baseline.json');

interface Figure {
  readonly maxKs: number;
  readonly pMin: number;
  readonly tests: { figure: string; ks: number; p: number; active: number[]; idle: number[] }[];
}
interface Baseline {
  note: string;
  commit: string;
  quick?: Figure;
  full?: Figure;
}

function figureOf(r: MailboxObserverResult): Figure {
  return { maxKs: r.maxKs, pMin: r.pMin, tests: r.tests.map((t) => ({ figure: t.figure, ks: t.ks, p: t.p, active: t.active, idle: t.idle })) };
}

function render(f: Figure): string[] {
  const out = [`    KS distance (largest) ${f.maxKs.toFixed(3)}, p (Bonferroni over ${f.tests.length}) ${f.pMin.toFixed(4)}`];
  for (const t of f.tests)
    out.push(`      ${t.figure.padEnd(12)} KS ${t.ks.toFixed(3)}  p ${t.p.toFixed(4)}  active [${t.active.join(' ')}]  idle [${t.idle.join(' ')}]`);
  return out;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { quick: 'boolean', json: 'boolean', seed: 'string', 'record-baseline': 'boolean' }, USAGE);
  const quick = flags.quick ?? false;
  const mode = quick ? 'quick' : 'full';
  const seed = flags.seed ?? 'allium-mailbox-1';
  await initCrypto();
  const started = performance.now();
  const r = await runMailboxObserver({ quick, seed, progress });
  const seconds = (performance.now() - started) / 1000;
  const now = figureOf(r);
  const baseline: Baseline | null = existsSync(BASELINE) ? (JSON.parse(readFileSync(BASELINE, 'utf8')) as Baseline) : null;
  const before = baseline?.[mode] ?? null;
  if (flags['record-baseline']) {
    let commit = '';
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      /* not a checkout */
    }
    const next: Baseline = baseline ?? { note: 'The mailbox observer on the code before per-contact inboxes (recorded once).', commit };
    next[mode] = now;
    next.commit = commit;
    writeFileSync(BASELINE, JSON.stringify(next, null, 2) + '\n');
    progress(`recorded the ${mode} figure in docs/mailbox-baseline.json`);
  }
  const goal = now.maxKs === 0 || now.pMin >= 0.05;
  if (flags.json) {
    console.log(
      JSON.stringify(
        { mode, seed, seconds, owners: r.owners, ticks: r.ticks, deposits: r.deposits, delivered: r.delivered, now, before, goalMet: goal, views: r.views },
        null,
        2,
      ),
    );
    return;
  }
  const lines = [
    '4. Mailbox observer: what someone who knows only the address sees of an active owner (mail, collections) and an idle one',
    `  ${r.owners} owners (half active, ${r.deposits} offline messages to them, ${r.delivered} delivered by their collections), ${r.ticks} ticks`,
  ];
  if (before) lines.push('  before (recorded):', ...render(before));
  lines.push(
    '  now:',
    ...render(now),
    `  goal: equal distributions (KS 0, or p ≥ 0.05) — ${goal ? 'met' : 'NOT met'}`,
    `\n${mode} run, seed ${seed}: ${seconds.toFixed(1)} s`,
  );
  console.log(lines.join('\n'));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
