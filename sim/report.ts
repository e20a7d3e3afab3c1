/**
 * What an experiment returns, and how it is shown: Markdown tables on standard output (pasted into
 * docs/simulation.md), SVG plots into docs/plots/, and the whole result as JSON next to them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
}

export interface ExperimentResult {
  name: string;
  title: string;
  seed: number;
  quick: boolean;
  /** The configuration that produced the result. */
  params: Record<string, unknown>;
  tables: Table[];
  /** SVG files by name (written under the plot directory). */
  plots: Record<string, string>;
  notes: string[];
  /** Real time and memory the run took (not reproducible, unlike everything else). */
  cost?: { wallSeconds: number; peakRssMiB: number; cpuSeconds: number };
}

export function cell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function markdownTable(t: Table): string {
  const head = `| ${t.columns.join(' | ')} |`;
  const sep = `| ${t.columns.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`;
  const rows = t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`);
  return [`**${t.title}**`, '', head, sep, ...rows, ''].join('\n');
}

export function renderResult(r: ExperimentResult): string {
  const out = [`## ${r.title}`, '', `seed ${r.seed}${r.quick ? ' (quick)' : ''}`, ''];
  for (const t of r.tables) out.push(markdownTable(t));
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.cost) out.push('', `run: ${r.cost.wallSeconds.toFixed(0)} s wall, ${r.cost.cpuSeconds.toFixed(0)} s CPU, peak RSS ${r.cost.peakRssMiB.toFixed(0)} MiB`);
  return out.join('\n');
}

/** Writes the plots and the JSON result; returns the paths written. */
export function writeResult(r: ExperimentResult, plotDir: string, resultDir: string): string[] {
  mkdirSync(plotDir, { recursive: true });
  mkdirSync(resultDir, { recursive: true });
  const written: string[] = [];
  for (const [file, svg] of Object.entries(r.plots)) {
    const p = join(plotDir, file);
    writeFileSync(p, svg);
    written.push(p);
  }
  const { plots: _plots, ...rest } = r;
  const p = join(resultDir, `${r.name}${r.quick ? '.quick' : ''}.json`);
  writeFileSync(p, JSON.stringify({ ...rest, plots: Object.keys(r.plots) }, null, 2) + '\n');
  written.push(p);
  const md = join(resultDir, `${r.name}${r.quick ? '.quick' : ''}.md`);
  writeFileSync(md, renderResult(r) + '\n');
  written.push(md);
  return written;
}
