/**
 * npm run audit:shape — what the shape of an endpoint's and a circuit's traffic gives away (issue 17,
 * docs/shape-audit.md). Each section is a module of bench/shape/ returning its figures; the sections run here are:
 *
 *   1. purpose           how well a classifier at the guard tells a circuit's purpose, circuit padding off and on
 *   2. guard-discovery   introductions an adversary needs before one of its relays is next to an endpoint's guard
 *   3. intro-flood       an honest first message's time to an endpoint under 1,000 INTRODUCE1/s (relay processes)
 *   4. mix               message mode: a global observer matching senders to receivers, cover off and on; latency
 *   5. padding           what link padding costs on a client's guard link, idle and busy
 *
 * Every section of issue 17 is here.
 *
 *   --quick             smaller populations and fewer trials (the CI run)
 *   --json              print the result as JSON instead of the table
 *   --only a,b          run only these sections (by name)
 *   --seed S            seed of the simulated networks (default "allium-shape-1")
 *   --record-baseline   store this run's figures as the recorded "before" for its mode (docs/shape-baseline.json)
 *
 * Prints figures, never pass/fail timing; exits 0 whether or not the goals are met.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initCrypto } from '../crypto/index.js';
import { parseFlags } from './lib/options.js';
import { progress } from './lib/results.js';
import type { ShapeRow, ShapeSection } from './shape/common.js';
import { guardDiscovery } from './shape/guard-discovery.js';
import { introFlood } from './shape/intro-flood.js';
import { messageMode } from './shape/mix.js';
import { paddingOverhead } from './shape/padding.js';
import { purposeClassifier } from './shape/purpose.js';

const USAGE = 'usage: npm run audit:shape -- [--quick] [--json] [--only a,b] [--seed S] [--record-baseline]';
const BASELINE = path.resolve(import.meta.dirname, '..', 'docs', 'shape-baseline.json');

export const SECTIONS: readonly ShapeSection[] = [
  { name: 'purpose', run: purposeClassifier },
  { name: 'guard-discovery', run: guardDiscovery },
  { name: 'intro-flood', run: introFlood },
  { name: 'mix', run: messageMode },
  { name: 'padding', run: paddingOverhead },
];

interface Baseline {
  note: string;
  /** The commit whose code the figures were measured on. */
  commit: string;
  quick: ShapeRow[];
  full: ShapeRow[];
}

function readBaseline(): Baseline | null {
  return existsSync(BASELINE) ? (JSON.parse(readFileSync(BASELINE, 'utf8')) as Baseline) : null;
}

export function renderText(rows: readonly ShapeRow[], before: ReadonlyMap<string, ShapeRow>): string {
  const out: string[] = [];
  let section = '';
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      out.push('', section);
    }
    out.push(`  ${r.id}: ${r.metric}`);
    const b = before.get(r.id);
    if (b) out.push(`    before (recorded): ${b.display}`);
    out.push(`    now:               ${r.display}`, `    goal:              ${r.goal}${r.met === null ? '' : r.met ? ' — met' : ' — NOT met'}`);
  }
  return out.join('\n').trimStart();
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { quick: 'boolean', json: 'boolean', only: 'string', seed: 'string', 'record-baseline': 'boolean' }, USAGE);
  const quick = flags.quick ?? false;
  const seed = flags.seed ?? 'allium-shape-1';
  const only = flags.only?.split(',').map((s) => s.trim());
  for (const name of only ?? []) if (!SECTIONS.some((s) => s.name === name)) throw new Error(`unknown section ${name}`);
  await initCrypto();
  const rows: ShapeRow[] = [];
  const seconds: Record<string, number> = {};
  for (const s of SECTIONS) {
    if (only && !only.includes(s.name)) continue;
    const started = performance.now();
    rows.push(...(await s.run({ quick, seed, progress })));
    seconds[s.name] = (performance.now() - started) / 1000;
  }
  const mode = quick ? 'quick' : 'full';
  const baseline = readBaseline();
  const before = new Map((baseline?.[mode] ?? []).map((r) => [r.id, r]));
  if (flags['record-baseline']) {
    const next: Baseline = baseline ?? { note: 'Figures of the shape audit on the code before its defences (recorded once).', commit: '', quick: [], full: [] };
    next[mode] = [...next[mode].filter((r) => !rows.some((x) => x.id === r.id)), ...rows];
    writeFileSync(BASELINE, JSON.stringify(next, null, 2) + '\n');
    progress(`recorded ${rows.length} figures as the ${mode} baseline in docs/shape-baseline.json`);
  }
  if (flags.json) console.log(JSON.stringify({ mode, seed, seconds, rows, before: [...before.values()] }, null, 2));
  else {
    console.log(renderText(rows, before));
    console.log(
      `\n${mode} run, seed ${seed}: ${Object.entries(seconds)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(', ')}`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
