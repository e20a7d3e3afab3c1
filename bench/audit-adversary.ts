/**
 * npm run audit:adversary — the adversary audit (docs/adversary-audit.md): six adversaries against the shipped
 * path, guard, placement, directory and consensus code, each figure printed next to the one recorded before the
 * defences (docs/adversary-baseline.json), with its goal and the anchor's published figure.
 *
 *   --quick             smaller populations and fewer trials (the CI run, about a minute)
 *   --json              print the result as JSON (rows, before, seconds) instead of the table
 *   --only a,b          run only these scenarios (bandwidth, grinding, sybil, equivocation, sdos, exposure)
 *   --seed S            seed (default "allium-adversary-1")
 *   --record-baseline   store this run's figures as the recorded "before" for its mode (done once, on the old code)
 *   --write-docs        full runs: write the table into docs/adversary-audit.md
 *
 * Exits 0 whether or not the goals are met (the CI test reads --json and checks them).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseFlags } from './lib/options.js';
import { progress } from './lib/results.js';
import { runAudit, type AuditRow } from '../sim/adversary/index.js';

const USAGE = 'usage: npm run audit:adversary -- [--quick] [--json] [--only a,b] [--seed S] [--record-baseline] [--write-docs]';
const ROOT = path.resolve(import.meta.dirname, '..');
const BASELINE = path.join(ROOT, 'docs', 'adversary-baseline.json');
const DOC = path.join(ROOT, 'docs', 'adversary-audit.md');

interface Baseline {
  note: string;
  commit: string;
  quick: AuditRow[];
  full: AuditRow[];
}

function readBaseline(): Baseline | null {
  return existsSync(BASELINE) ? (JSON.parse(readFileSync(BASELINE, 'utf8')) as Baseline) : null;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function renderText(rows: readonly AuditRow[], before: ReadonlyMap<string, AuditRow>): string {
  const out: string[] = [];
  let group = '';
  let lines: string[][] = [];
  const flush = (): void => {
    if (lines.length) out.push(table([['figure', 'before (recorded)', 'after (measured now)', 'goal', 'met'], ...lines]), '');
    lines = [];
  };
  for (const r of rows) {
    if (r.adversary !== group) {
      flush();
      group = r.adversary;
      out.push(`${r.adversary}`, `  anchor: ${r.anchor}`);
    }
    out.push(`  ${r.metric} — ${r.resources}`);
    lines.push([`  ${r.id}`, before.get(r.id)?.display ?? '—', r.display, r.goal, r.informational ? '(no goal)' : r.met ? 'yes' : 'NO']);
  }
  flush();
  const goals = rows.filter((r) => !r.informational);
  out.push(
    `${goals.filter((r) => r.met).length} of ${goals.length} goals met (${rows.length - goals.length} figures without a goal: networks without authorities)`,
  );
  return out.join('\n');
}

export function renderMarkdown(rows: readonly AuditRow[], before: ReadonlyMap<string, AuditRow>): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const head =
    '| adversary | resources | figure | before (recorded) | after (measured) | goal | met | anchor |\n| --- | --- | --- | --- | --- | --- | --- | --- |';
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${esc(r.adversary)} | ${esc(r.resources)} | ${esc(r.metric)} | ${esc(before.get(r.id)?.display ?? '—')} | ${esc(r.display)} | ${esc(r.goal)} | ${r.informational ? '(no goal)' : r.met ? 'yes' : '**no**'} | ${esc(r.anchor)} |`,
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  const flags = parseFlags(
    process.argv.slice(2),
    { quick: 'boolean', json: 'boolean', only: 'string', seed: 'string', 'record-baseline': 'boolean', 'write-docs': 'boolean' },
    USAGE,
  );
  const quick = flags.quick ?? false;
  const seed = flags.seed ?? 'allium-adversary-1';
  const only = flags.only ? flags.only.split(',').map((s) => s.trim()) : undefined;
  const started = performance.now();
  const { rows, seconds } = await runAudit({ quick, seed, progress }, only);
  const total = (performance.now() - started) / 1000;
  const baseline = readBaseline();
  const mode = quick ? 'quick' : 'full';
  const before = new Map((baseline?.[mode] ?? []).map((r) => [r.id, r]));
  if (flags['record-baseline']) {
    const next: Baseline = baseline ?? {
      note: 'Figures of the adversary audit on the code before its defences (recorded once).',
      commit: '',
      quick: [],
      full: [],
    };
    const keep = next[mode].filter((r) => !rows.some((x) => x.id === r.id));
    next[mode] = [...keep, ...rows];
    next.commit = process.env['ALLIUM_BASELINE_COMMIT'] ?? next.commit;
    writeFileSync(BASELINE, JSON.stringify(next, null, 2) + '\n');
    progress(`recorded ${rows.length} figures as the ${mode} baseline in docs/adversary-baseline.json`);
  }
  if (flags.json) {
    console.log(JSON.stringify({ mode, seed, seconds: { ...seconds, total }, rows, before: [...before.values()] }, null, 2));
  } else {
    console.log(renderText(rows, before));
    console.log(
      `\n${mode} run, seed ${seed}, ${total.toFixed(0)} s (${Object.entries(seconds)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(', ')})`,
    );
  }
  if (flags['write-docs'] && !quick && existsSync(DOC)) {
    const doc = readFileSync(DOC, 'utf8');
    const md = `${renderMarkdown(rows, before)}\n\nFull run, seed ${seed}, ${total.toFixed(0)} s on the shared 2-core machine.`;
    const next = doc.replace(
      /<!-- audit:adversary:begin[^>]*-->[\s\S]*<!-- audit:adversary:end -->/,
      `<!-- audit:adversary:begin (npm run audit:adversary -- --write-docs writes this section) -->\n${md}\n<!-- audit:adversary:end -->`,
    );
    writeFileSync(DOC, next);
    progress('wrote the table in docs/adversary-audit.md');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
