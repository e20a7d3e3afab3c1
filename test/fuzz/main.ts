/**
 * npm run fuzz -- [--seconds N] [--jobs N] [--target NAME]… [--seed N] [--json]
 *
 * Coverage-guided fuzzing of every decoder of untrusted input (test/fuzz/), each target for N seconds (default 10),
 * N targets at once (default 2: this is a 2-core machine). Prints, per target, the cases run, cases per second,
 * the corpus size and coverage features, and every finding (written to fuzz-findings/). Exits 1 if anything was
 * found. `--target` matches a target name case-insensitively by substring; `--list` prints the names.
 */
import { decoderCases } from '../helpers/decoders.js';
import { runFuzz, type TargetReport } from './run.js';

const args = process.argv.slice(2);
const value = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const all = decoderCases().map((c) => c.name);
if (args.includes('--list')) {
  for (const n of all) console.log(n);
  process.exit(0);
}
const wanted = args.flatMap((a, i) => (args[i - 1] === '--target' ? [a.toLowerCase()] : []));
const targets = wanted.length ? all.filter((n) => wanted.some((w) => n.toLowerCase().includes(w))) : all;
if (targets.length === 0) {
  console.error(`no target matches ${wanted.join(', ')} (npm run fuzz -- --list)`);
  process.exit(2);
}
const seconds = Number(value('--seconds') ?? 10);
const jobs = Number(value('--jobs') ?? 2);
const json = args.includes('--json');
const seedArg = value('--seed');

const row = (r: TargetReport): string =>
  `${r.target.padEnd(34)} ${String(r.execs).padStart(10)} ${r.execsPerSecond.toFixed(0).padStart(9)} ${String(r.corpus).padStart(7)} ${String(r.features).padStart(9)} ${String(r.findings.length).padStart(9)}`;
if (!json) {
  console.log(`fuzzing ${targets.length} targets, ${seconds} s each, ${jobs} at once`);
  console.log(
    `${'target'.padEnd(34)} ${'cases'.padStart(10)} ${'cases/s'.padStart(9)} ${'corpus'.padStart(7)} ${'features'.padStart(9)} ${'findings'.padStart(9)}`,
  );
}
const reports = await runFuzz({
  seconds,
  targets,
  jobs,
  ...(seedArg ? { seed: Number(seedArg) } : {}),
  onReport: (r) => {
    if (json) return;
    console.log(row(r));
    for (const f of r.findings) console.log(`    ${f.kind}: ${f.message.split('\n')[0]} (${f.file})`);
  },
});
const total = reports.reduce((n, r) => n + r.execs, 0);
const found = reports.reduce((n, r) => n + r.findings.length, 0);
if (json) console.log(JSON.stringify({ seconds, targets: reports, cases: total, findings: found }, null, 2));
else console.log(`${reports.length} targets, ${total} cases, ${found} findings`);
process.exit(found ? 1 : 0);
