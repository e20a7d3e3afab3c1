/**
 * npm run audit:paths — the path-selection audit (docs/anonymity-audit.md): how often an adversary holding a
 * fraction f of the relays or of the bandwidth is both first and last hop of a circuit, against f², and how many
 * clients it catches at least once over simulated months with Allium's guards and without guards.
 *
 *   --quick            smaller run (200 honest relays, 2,000 circuits, 150 + 20 clients, 60 days); writes no docs
 *   --honest N         honest relays (default 800)
 *   --circuits N       circuits per adversary configuration, no guards (default 10000)
 *   --clients N        clients with guards per configuration (default 1000)
 *   --clients-ng N     clients without guards per configuration (default 40)
 *   --days N           simulated days (default 180)
 *   --per-day N        circuits a client builds per day (default 6)
 *   --seed S           seed (default "allium-audit-1"); the same seed gives the same tables
 *   --no-write         print only: no plots, no docs, no JSON
 *   --tsx              run the sources through tsx (default: compile with tsc first and run the build, which chooses
 *                      paths about twice as fast: tsx wraps every named closure of the hot path)
 *
 * Uses the client's own code (client/path.ts, client/guards.ts, client/directory.ts) on real signed descriptors;
 * sim/anonymity.ts builds the network and the adversary. Writes docs/plots/anonymity-*.svg and the tables between
 * the audit markers of docs/anonymity-audit.md (full runs only), and bench/results/audit-paths-<time>.json.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { initCrypto } from '../crypto/index.js';
import { table } from './harness.js';
import { parseFlags } from './lib/options.js';
import { progress } from './lib/results.js';
import {
  ADVERSARY_KINDS,
  BW,
  EXIT_SHARE,
  dailyDirectories,
  honestSpecs,
  HONEST_PREFIX,
  measureCircuits,
  population,
  predictedEndToEnd,
  signSpecs,
  simulateClients,
  topDecileShare,
  UPTIME,
  wilson,
  type AdversaryKind,
  type ClientRunResult,
} from '../sim/anonymity.js';
import { lineChart, type Series } from '../sim/plot.js';

const USAGE =
  'usage: npm run audit:paths -- [--quick] [--honest N] [--circuits N] [--clients N] [--clients-ng N] [--days N] [--per-day N] [--seed S] [--no-write] [--tsx]';
const flags = parseFlags(
  process.argv.slice(2),
  {
    quick: 'boolean',
    honest: 'number',
    circuits: 'number',
    clients: 'number',
    'clients-ng': 'number',
    days: 'number',
    'per-day': 'number',
    seed: 'string',
    'no-write': 'boolean',
    tsx: 'boolean',
  },
  USAGE,
);
const quick = flags.quick ?? false;
const opts = {
  honest: flags.honest ?? (quick ? 200 : 800),
  circuits: flags.circuits ?? (quick ? 2000 : 10_000),
  clients: flags.clients ?? (quick ? 150 : 1000),
  clientsNoGuards: flags['clients-ng'] ?? (quick ? 20 : 40),
  days: flags.days ?? (quick ? 60 : 180),
  perDay: flags['per-day'] ?? 6,
  seed: flags.seed ?? 'allium-audit-1',
  port: 443,
};
const write = !(flags['no-write'] ?? false);
const writeDocs = write && !quick;
const FRACTIONS = [0.01, 0.05, 0.1, 0.2];
/** Client-level runs: the adversaries that matter for guards (the one-network Sybil never holds both ends). */
const CLIENT_KINDS: readonly AdversaryKind[] = ['relays', 'bandwidth', 'sybil'];
/** The checkout (the compiled build runs from a temporary directory and is told where the checkout is). */
const ROOT = process.env['ALLIUM_AUDIT_ROOT'] ?? path.resolve(import.meta.dirname, '..');
const COMPILED = process.env['ALLIUM_AUDIT_ROOT'] !== undefined;

const pct = (x: number, digits = 2): string => `${(x * 100).toFixed(digits)}%`;

interface CircuitRow {
  kind: AdversaryKind;
  f: number;
  advRelays: number;
  relays: number;
  share: { relays: number; bandwidth: number; exitBandwidth: number };
  measured: { circuits: number; both: number; entry: number; exit: number };
  ci: [number, number];
  predicted: { both: number; entry: number; exit: number };
}

interface ClientRow {
  kind: AdversaryKind;
  f: number;
  guards: ClientRunResult;
  /** Guards with every relay up every day. */
  guardsStable: ClientRunResult;
  none: ClientRunResult;
  /** 1 − (1 − p)^(circuits by day d), p the measured per-circuit rate: the no-guard curve for many clients. */
  noneFromRate: number[];
}

/** Builds this script and what it imports with tsc into a directory outside the checkout, and runs the build. */
async function runCompiled(): Promise<number> {
  const out = path.join(os.tmpdir(), `allium-audit-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`);
  mkdirSync(out, { recursive: true });
  const nm = path.join(out, 'node_modules');
  if (!existsSync(nm)) symlinkSync(path.join(ROOT, 'node_modules'), nm, 'dir');
  writeFileSync(path.join(out, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const tsconfig = path.join(out, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(ROOT, 'tsconfig.json'),
      compilerOptions: {
        rootDir: ROOT,
        outDir: path.join(out, 'dist'),
        declaration: false,
        sourceMap: false,
        incremental: true,
        tsBuildInfoFile: path.join(out, 'tsbuildinfo'),
        noEmit: false,
      },
      files: [path.join(ROOT, 'bench', 'audit-paths.ts')],
      include: [],
    }),
  );
  progress('building path selection with tsc');
  const script = path.join(out, 'dist', 'bench', 'audit-paths.js');
  try {
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { maxBuffer: 16 << 20 });
  } catch (e) {
    // tsc exits non-zero on type errors (perhaps in files being edited) but still emits.
    if (!existsSync(script)) throw e;
  }
  const child = spawn(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, ALLIUM_AUDIT_ROOT: ROOT } });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

function writeJson(results: unknown): string {
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `audit-paths-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ bench: 'audit-paths', date: new Date().toISOString(), node: process.version, options: opts, results }, null, 2) + '\n');
  return path.relative(ROOT, file);
}

async function main(): Promise<void> {
  if (!COMPILED && !flags.tsx) process.exit(await runCompiled());
  await initCrypto();
  const started = Date.now();
  progress(`signing ${opts.honest} honest relay descriptors (seed ${opts.seed})`);
  const honest = honestSpecs({ honest: opts.honest, seed: opts.seed });
  const honestRaws = signSpecs(honest, opts.seed, HONEST_PREFIX);

  const circuitRows: CircuitRow[] = [];
  const clientRows: ClientRow[] = [];
  for (const kind of ADVERSARY_KINDS) {
    for (const f of FRACTIONS) {
      const pop = population(kind, f, honest, honestRaws, opts.seed, opts.port);
      progress(`${kind} f=${pct(f, 0)}: ${pop.adversary.size} adversary relays of ${pop.relays.length}; ${opts.circuits} circuits`);
      let t = Date.now();
      const measured = measureCircuits(pop, opts.circuits, opts.port, opts.seed);
      const lap = (what: string, paths: number): void => {
        progress(`  ${what}: ${paths} paths in ${((Date.now() - t) / 1000).toFixed(1)} s`);
        t = Date.now();
      };
      lap('circuits', opts.circuits);
      const row: CircuitRow = {
        kind,
        f,
        advRelays: pop.adversary.size,
        relays: pop.relays.length,
        share: pop.share,
        measured,
        ci: wilson(measured.both, measured.circuits),
        predicted: predictedEndToEnd(pop, opts.port),
      };
      circuitRows.push(row);
      if (!CLIENT_KINDS.includes(kind)) continue;
      const dirs = dailyDirectories(pop, opts.days, opts.seed);
      const base = { days: opts.days, circuitsPerDay: opts.perDay, port: opts.port, seed: opts.seed };
      progress(`${kind} f=${pct(f, 0)}: ${opts.clients} clients with guards (with and without churn), ${opts.clientsNoGuards} without, ${opts.days} days`);
      const guards = await simulateClients(pop, dirs, { ...base, clients: opts.clients, guards: true });
      lap('guards', guards.pathsRun);
      const guardsStable = await simulateClients(pop, dailyDirectories(pop, opts.days, opts.seed, false), {
        ...base,
        clients: opts.clients,
        guards: true,
        label: 'stable',
      });
      lap('guards, no churn', guardsStable.pathsRun);
      const none = await simulateClients(pop, dirs, { ...base, clients: opts.clientsNoGuards, guards: false });
      lap('no guards', none.pathsRun);
      const p = measured.both / measured.circuits;
      clientRows.push({
        kind,
        f,
        guards,
        guardsStable,
        none,
        noneFromRate: Array.from({ length: opts.days }, (_, d) => 1 - Math.pow(1 - p, opts.perDay * (d + 1))),
      });
    }
  }
  const seconds = (Date.now() - started) / 1000;

  const md = render(circuitRows, clientRows, honest, seconds);
  console.log(md.text);
  if (write) {
    const file = writeJson({ circuits: circuitRows, clients: clientRows });
    console.log(`\nresults: ${file}`);
  }
  if (writeDocs) {
    const plots = path.join(ROOT, 'docs', 'plots');
    mkdirSync(plots, { recursive: true });
    writeFileSync(path.join(plots, 'anonymity-circuits.svg'), circuitsChart(circuitRows));
    for (const kind of CLIENT_KINDS) writeFileSync(path.join(plots, `anonymity-clients-${kind}.svg`), clientsChart(kind, clientRows));
    updateDoc(md.markdown);
    console.log('wrote docs/plots/anonymity-*.svg and the tables in docs/anonymity-audit.md');
  }
}

const DAYS_SHOWN = [1, 30, 90, 180];

function render(
  circuits: readonly CircuitRow[],
  clients: readonly ClientRow[],
  honest: ReturnType<typeof honestSpecs>,
  seconds: number,
): { text: string; markdown: string } {
  const head1 = [
    'adversary',
    'f',
    'adv relays',
    'relay share',
    'bw share',
    'exit-bw share',
    'circuits',
    'first+last measured',
    '95% interval',
    'predicted',
    'f²',
    'measured/f²',
  ];
  const rows1 = circuits.map((r) => [
    r.kind,
    pct(r.f, 0),
    `${r.advRelays}/${r.relays}`,
    pct(r.share.relays, 1),
    pct(r.share.bandwidth, 1),
    pct(r.share.exitBandwidth, 1),
    String(r.measured.circuits),
    `${pct(r.measured.both / r.measured.circuits, 3)} (${r.measured.both})`,
    `${pct(r.ci[0], 3)}–${pct(r.ci[1], 3)}`,
    pct(r.predicted.both, 3),
    pct(r.f * r.f, 2),
    (r.measured.both / r.measured.circuits / (r.f * r.f)).toFixed(2),
  ]);
  const days = [...new Set([...DAYS_SHOWN.filter((d) => d < opts.days), opts.days])];
  const last = opts.days;
  const head2 = [
    'adversary',
    'f',
    ...days.map((d) => `guards d${d}`),
    `guards, no churn d${last}`,
    ...days.map((d) => `no guards d${d}`),
    `no guards (rate) d${last}`,
    'guards listed',
    'listed, no churn',
  ];
  const rows2 = clients.map((r) => [
    r.kind,
    pct(r.f, 0),
    ...days.map((d) => pct(r.guards.compromised[d - 1]!, 1)),
    pct(r.guardsStable.compromised[last - 1]!, 1),
    ...days.map((d) => pct(r.none.compromised[d - 1]!, 1)),
    pct(r.noneFromRate[last - 1]!, 1),
    r.guards.meanGuardsListed.toFixed(1),
    r.guardsStable.meanGuardsListed.toFixed(1),
  ]);
  const runs = clients.flatMap((r) => [r.guards, r.guardsStable, r.none]);
  const shortcut = runs.reduce((s, r) => s + r.shortcutChecks, 0);
  const paths = runs.reduce((s, r) => s + r.pathsRun, 0);
  const failures = runs.reduce((s, r) => s + r.pathFailures, 0);
  const setting = [
    `seed ${opts.seed}; ${opts.honest} honest relays (bandwidth Pareto x_m ${BW.xm / 1000} kB/s, alpha ${BW.alpha}: the top 10% hold ${pct(topDecileShare(honest), 0)} of it;`,
    `${pct(EXIT_SHARE, 0)} exits, not all allowing port 443; relays clustered in hosting /16s; some declared families); circuits to port 443,`,
    `3 hops, distinct /16s enforced. Clients: ${opts.clients} with guards and ${opts.clientsNoGuards} without per adversary, ${opts.days} days,`,
    `${opts.perDay} circuits a day; with churn, honest relays present on a given day with their availability (${pct(UPTIME.stableShare, 0)} at ${pct(UPTIME.stable, 1)},`,
    `the rest between ${pct(UPTIME.flakyMin, 0)} and ${pct(UPTIME.flakyMax, 0)}),`,
    `adversary relays always. ${paths} client paths built, ${failures} found no path, ${shortcut} honest-guard days checked; ${seconds.toFixed(0)} s.`,
  ].join('\n');
  const text = [
    'Per circuit, no guards (a fresh entry for every circuit):',
    table([head1, ...rows1], new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11])),
    '',
    "Clients with at least one circuit whose first and last hops were the adversary's, by day:",
    table([head2, ...rows2], new Set(head2.map((_, i) => i).filter((i) => i > 1))),
    '',
    setting,
  ].join('\n');
  const mdTable = (head: string[], rows: string[][]): string =>
    [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const markdown = [
    '`npm run audit:paths`: ' + setting.split('\n').join(' '),
    '',
    '**Per circuit, no guards** (a fresh bandwidth-weighted entry for every circuit). *predicted* is the same',
    'probability computed from the weights path selection uses; *measured* is what the real `choosePath` chose.',
    '',
    mdTable(head1, rows1),
    '',
    "**Clients caught at least once** (a circuit whose first and last hops were both the adversary's), by day,",
    "with Allium's guards (with relay churn, and with every relay up every day) and with a fresh entry per circuit.",
    '*no guards (rate)* is 1 − (1 − p)^n from the measured per-circuit rate p above, n the circuits built by then: the',
    'curve for a large population, next to the smaller simulated one. *guards listed* is the mean number of distinct',
    'relays a client held as a guard over the run.',
    '',
    mdTable(head2, rows2),
  ].join('\n');
  return { text, markdown };
}

function circuitsChart(rows: readonly CircuitRow[]): string {
  // A measured zero has no place on a log axis: the chart leaves those points out (the table has them).
  const series: Series[] = ADVERSARY_KINDS.map((kind) => ({
    name: kind,
    points: rows.filter((r) => r.kind === kind).map((r) => [r.f * 100, r.measured.both / r.measured.circuits] as [number, number]),
  }));
  series.push({ name: 'f²', dashed: true, points: FRACTIONS.map((f) => [f * 100, f * f] as [number, number]) });
  return lineChart({
    title: 'Circuits with first and last hop at the adversary (no guards)',
    xLabel: 'adversary fraction f (%), of relays or of bandwidth; zeros not drawn',
    yLabel: 'fraction of circuits',
    logY: true,
    yMin: 1e-5,
    yMax: 1,
    markers: true,
    series,
  });
}

function clientsChart(kind: AdversaryKind, rows: readonly ClientRow[]): string {
  const pts = (ys: readonly number[]): [number, number][] => ys.map((y, d) => [d + 1, y] as [number, number]);
  const series: Series[] = rows
    .filter((r) => r.kind === kind)
    .flatMap((r) => [
      { name: `f=${pct(r.f, 0)} guards`, points: pts(r.guards.compromised) },
      { name: `f=${pct(r.f, 0)} no guards`, dashed: true, points: pts(r.noneFromRate) },
    ]);
  return lineChart({
    title: `Clients caught at least once, adversary: ${kind}`,
    xLabel: 'days (no guards: from the measured per-circuit rate)',
    yLabel: 'fraction of clients',
    yMin: 0,
    yMax: 1,
    markers: false,
    series,
  });
}

const BEGIN = '<!-- audit:paths:begin (npm run audit:paths writes this section) -->';
const END = '<!-- audit:paths:end -->';

function updateDoc(markdown: string): void {
  const file = path.join(ROOT, 'docs', 'anonymity-audit.md');
  if (!existsSync(file)) {
    writeFileSync(file, `# Anonymity audit\n\n${BEGIN}\n${markdown}\n${END}\n`);
    return;
  }
  const doc = readFileSync(file, 'utf8');
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) {
    console.error('docs/anonymity-audit.md has no audit markers: tables not written');
    return;
  }
  writeFileSync(file, `${doc.slice(0, a + BEGIN.length)}\n${markdown}\n${doc.slice(b)}`);
}

await main();
