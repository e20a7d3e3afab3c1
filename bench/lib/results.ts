/**
 * Where benchmark results go: bench/results/<name>-<timestamp>.json (gitignored), with the machine and options
 * that produced them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DIR = path.resolve(import.meta.dirname, '..', 'results');

export function writeResults(name: string, options: unknown, results: unknown): string {
  mkdirSync(DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(DIR, `${name}-${stamp}.json`);
  const doc = {
    bench: name,
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model.trim(),
    cpus: os.cpus().length,
    options,
    results,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  return path.relative(process.cwd(), file);
}

/** Progress on stderr (so the table on stdout stays clean). */
export function progress(msg: string): void {
  process.stderr.write(`  … ${msg}\n`);
}
