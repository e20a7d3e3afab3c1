/**
 * npm run bench:crypto — how fast Allium's crypto runs, and how close each layer comes to the libsodium primitive
 * it wraps (the goal: at most 1.3x).
 *
 *   --binding native|wasm|both   default both; with both, each binding runs in its own child process so neither
 *                                inherits the other's JIT state (the facade's call sites would see two bindings)
 *   --runs N                     default 5 (3 with --quick)
 *   --quick                      60 ms per case per run in 3 turns, instead of 300 ms in 6
 *   --no-json                    skip writing bench/results/crypto-<timestamp>.json
 *
 * For each binding it prints the median and min–max across runs of: circuit setup (createOnion, processOnion at a
 * middle hop with a full-size replay filter, the whole one-round-trip build), the handshake halves, the relay-cell
 * layer at a relay and at the client, the bare libsodium primitives on the same sizes, and ratios of layer cost to
 * primitive cost. Within a run every case's time is dealt out in turns round all the cases (harness.ts runCases), so
 * a ratio's numerator and denominator average over the same stretch of machine load; ratios are taken per run and
 * their median reported. Numbers, never pass/fail: the verdicts only say where the 1.3x goal is met.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCrypto, useCrypto } from '../crypto/index.js';
import { RELAY_PAYLOAD_LEN } from '../protocol/constants.js';
import { bareCases, PRIM } from './bare-sodium.js';
import { alliumCases, CASE } from './crypto-cases.js';
import { fmtNum, fmtRange, fmtRatio, runCases, stat, table, timeCase, type BenchCase, type Stat } from './harness.js';

const GOAL = 1.3;

type Which = 'native' | 'wasm';

interface Options {
  readonly binding: Which | 'both';
  readonly runs: number;
  readonly quick: boolean;
  readonly sliceMs: number;
  /** Turns each slice is dealt out in (harness.ts runCases). */
  readonly turns: number;
  readonly warmMs: number;
  readonly json: boolean;
  /** Internal: a child writes its result here for the parent. */
  readonly jsonOut: string | undefined;
}

const USAGE = 'usage: npm run bench:crypto -- [--binding native|wasm|both] [--runs N] [--quick] [--no-json]';

function parseOptions(argv: readonly string[]): Options {
  let binding: Options['binding'] = 'both';
  let runs: number | undefined;
  let quick = false;
  let json = true;
  let jsonOut: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--binding': {
        const v = value();
        if (v !== 'native' && v !== 'wasm' && v !== 'both') fail(`--binding must be native, wasm or both, not ${v}`);
        binding = v;
        break;
      }
      case '--runs': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 1) fail('--runs must be a positive integer');
        runs = v;
        break;
      }
      case '--quick':
        quick = true;
        break;
      case '--no-json':
        json = false;
        break;
      case '--json-out':
        jsonOut = value();
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${a}`);
    }
  }
  return { binding, runs: runs ?? (quick ? 3 : 5), quick, sliceMs: quick ? 60 : 300, turns: quick ? 3 : 6, warmMs: quick ? 40 : 150, json, jsonOut };
}

function fail(msg: string): never {
  console.error(`bench:crypto: ${msg}\n${USAGE}`);
  process.exit(2);
}

// --- results -------------------------------------------------------------------------------------------------------

interface CaseResult {
  readonly id: string;
  readonly label: string;
  readonly group: string;
  readonly bytes: number | undefined;
  readonly runs: number[];
  readonly opsPerSec: Stat;
  readonly mbPerSec: Stat | undefined;
}

interface RatioSpec {
  readonly id: string;
  readonly label: string;
  readonly num: string;
  /** Weighted sum of primitive costs: [case id, count]. */
  readonly den: readonly (readonly [string, number])[];
  /** Held to the 1.3x goal (false: a diagnostic that splits the overhead). */
  readonly goal: boolean;
}

interface RatioResult {
  readonly id: string;
  readonly label: string;
  readonly runs: number[];
  readonly value: Stat;
  readonly goal: boolean;
  readonly meets: boolean | undefined;
}

interface BindingResult {
  readonly binding: string;
  readonly runs: number;
  readonly sliceMs: number;
  readonly turns: number;
  readonly cases: CaseResult[];
  readonly ratios: RatioResult[];
  readonly replay: { checked: number; capacity: number; bytes: number; full: boolean };
  readonly seconds: number;
}

const RATIOS: readonly RatioSpec[] = [
  { id: 'unwrapForward/aead', label: `unwrapForward, 1 layer / AEAD ${1003} B`, num: CASE.unwrapForward, den: [[PRIM.aead1003, 1]], goal: true },
  { id: 'wrapBackward/aead', label: `wrapBackward, 1 layer / AEAD ${1003} B`, num: CASE.wrapBackward, den: [[PRIM.aead1003, 1]], goal: true },
  { id: 'clientWrap/3aead', label: 'client wrapForward → hop 3 / 3 × AEAD', num: CASE.clientWrap, den: [[PRIM.aead1003, 3]], goal: true },
  { id: 'clientUnwrap/3aead', label: 'client unwrapBackward ← hop 3 / 3 × AEAD', num: CASE.clientUnwrap, den: [[PRIM.aead1003, 3]], goal: true },
  {
    id: 'processOnion/x25519',
    label: 'processOnion / its X25519 (2 + 1 base)',
    num: CASE.processOnion,
    den: [
      [PRIM.x25519, 2],
      [PRIM.x25519Base, 1],
    ],
    goal: true,
  },
  {
    id: 'createOnion/x25519',
    label: 'createOnion / its X25519 (3 + 3 base)',
    num: CASE.createOnion,
    den: [
      [PRIM.x25519, 3],
      [PRIM.x25519Base, 3],
    ],
    goal: true,
  },
  {
    id: 'roundTrip/x25519',
    label: 'round-trip setup / its X25519 (15 + 6 base)',
    num: CASE.roundTrip,
    den: [
      [PRIM.x25519, 15],
      [PRIM.x25519Base, 6],
    ],
    goal: true,
  },
  {
    id: 'ntorServer/x25519',
    label: 'ntorServer / its X25519 (1 + 1 base)',
    num: CASE.ntorServer,
    den: [
      [PRIM.x25519, 1],
      [PRIM.x25519Base, 1],
    ],
    goal: true,
  },
  { id: 'ntorClient/x25519', label: 'ntorClientFinish / its X25519 (2)', num: CASE.ntorClient, den: [[PRIM.x25519, 2]], goal: true },
  { id: 'unwrapForward/duo', label: 'unwrapForward / its 2 libsodium calls, bare', num: CASE.unwrapForward, den: [[PRIM.layerDuo, 1]], goal: false },
  { id: 'facadeDuo/duo', label: 'those 2 calls: facade / bare', num: CASE.facadeDuo, den: [[PRIM.layerDuo, 1]], goal: false },
  { id: 'duo/aead', label: "a layer's 2 calls, bare / AEAD 1003 B", num: PRIM.layerDuo, den: [[PRIM.aead1003, 1]], goal: false },
  { id: 'trio/aead', label: '3 separate calls, bare / AEAD 1003 B', num: PRIM.layerTrio, den: [[PRIM.aead1003, 1]], goal: false },
];

/** Reference ceilings on the machine, by binding and case. */
const REFERENCE: Record<string, Record<string, { value: number; unit: 'MB/s' | '/s'; text: string }>> = {
  'sodium-native': {
    [PRIM.xaead512]: { value: 466, unit: 'MB/s', text: '466 MB/s' },
    [PRIM.x25519]: { value: 28_700, unit: '/s', text: '28.7k/s' },
    [PRIM.seal512]: { value: 16_000, unit: '/s', text: '16k/s' },
  },
  'libsodium-wrappers': {
    [PRIM.xaead512]: { value: 150, unit: 'MB/s', text: '~150 MB/s' },
  },
};

// --- one binding, in this process ----------------------------------------------------------------------------------

function progress(msg: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${msg}\x1b[K`);
}

async function runBinding(which: Which, o: Options): Promise<BindingResult | null> {
  const c = await loadCrypto(which);
  if (!c) return null;
  useCrypto(c);
  const t0 = process.hrtime.bigint();
  const allium = alliumCases();
  const bare = await bareCases(which);
  const byId = new Map(bare.map((b) => [b.id, b]));
  const prims: BenchCase[] = [];
  for (const b of bare) {
    prims.push(b);
    if (b.id === PRIM.aead1003) prims.push(allium.facade[0]!);
    if (b.id === PRIM.layerDuo) prims.push(allium.facade[1]!);
  }
  if (!byId.has(PRIM.aead1003)) throw new Error('bench: missing primitive');
  const groups: [string, BenchCase[]][] = [
    ['Circuit setup (3 hops)', allium.setup],
    ['Handshakes', allium.handshake],
    [`Relay cells (MB/s of ${RELAY_PAYLOAD_LEN}-byte payloads)`, allium.cells],
    ['libsodium primitives (bare unless noted)', prims],
  ];
  const all = groups.flatMap(([, cs]) => cs);

  const rates = new Map<string, number[]>(all.map((k) => [k.id, []]));
  for (const k of all) {
    progress(`${c.bindingName}: warm-up ${k.label.trim()}`);
    timeCase(k, o.warmMs);
  }
  for (let r = 0; r < o.runs; r++) {
    const run = runCases(all, o.sliceMs, o.turns, (k) => progress(`${c.bindingName}: run ${r + 1}/${o.runs} ${k.label.trim()}`));
    for (const [id, rate] of run) rates.get(id)!.push(rate);
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');

  const cases: CaseResult[] = groups.flatMap(([group, cs]) =>
    cs.map((k) => {
      const runs = rates.get(k.id)!;
      return {
        id: k.id,
        label: k.label,
        group,
        bytes: k.bytes,
        runs,
        opsPerSec: stat(runs),
        mbPerSec: k.bytes === undefined ? undefined : stat(runs.map((x) => (x * k.bytes!) / 1e6)),
      };
    }),
  );
  const ratios: RatioResult[] = RATIOS.map((spec) => {
    const num = rates.get(spec.num)!;
    const runs = num.map((rate, r) => {
      const den = spec.den.reduce((sum, [id, w]) => sum + w / rates.get(id)![r]!, 0);
      return 1 / rate / den;
    });
    const value = stat(runs);
    return { id: spec.id, label: spec.label, runs, value, goal: spec.goal, meets: spec.goal ? value.median <= GOAL : undefined };
  });
  const replay = allium.replayState();
  if (replay.full) throw new Error('bench: a replay filter filled; the processOnion figures would include refusals');
  return {
    binding: c.bindingName,
    runs: o.runs,
    sliceMs: o.sliceMs,
    turns: o.turns,
    cases,
    ratios,
    replay,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
  };
}

// --- printing ------------------------------------------------------------------------------------------------------

function machineLine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return `node ${process.version}, ${cpus[0]?.model.trim() ?? 'unknown CPU'} × ${cpus.length}, load average ${load}`;
}

function caseOf(res: BindingResult, id: string): CaseResult {
  const k = res.cases.find((x) => x.id === id);
  if (!k) throw new Error(`bench: no case ${id}`);
  return k;
}

function ratioOf(res: BindingResult, id: string): RatioResult {
  const r = res.ratios.find((x) => x.id === id);
  if (!r) throw new Error(`bench: no ratio ${id}`);
  return r;
}

function printBinding(res: BindingResult): void {
  const out: string[] = [];
  out.push(`== ${res.binding} — ${res.runs} runs × ${res.sliceMs} ms per case (in ${res.turns} turns), median [min–max]; MB = 10^6 bytes ==`);
  out.push(machineLine());
  const rows: string[][] = [];
  let group = '';
  for (const k of res.cases) {
    if (k.group !== group) {
      group = k.group;
      rows.push(['', '', '', '', '']);
      rows.push([group, 'per second', '[min–max]', 'MB/s', 'reference']);
    }
    const ref = REFERENCE[res.binding]?.[k.id];
    let note = '';
    if (ref) {
      const mine = ref.unit === 'MB/s' ? (k.mbPerSec?.median ?? NaN) : k.opsPerSec.median;
      note = `${ref.text} (${Math.round((100 * mine) / ref.value)}%)`;
    }
    rows.push([`  ${k.label}`, fmtNum(k.opsPerSec.median), `[${fmtRange(k.opsPerSec)}]`, k.mbPerSec ? fmtNum(k.mbPerSec.median) : '', note]);
  }
  out.push(table(rows.slice(1), new Set([1, 3])));
  out.push('');
  const rrows: string[][] = [[`Ratios: layer cost / primitive cost (goal ≤ ${GOAL}x)`, 'median', '[min–max]', '']];
  for (const r of res.ratios) {
    const verdict = r.meets === undefined ? 'diagnostic' : r.meets ? `meets ≤${GOAL}x` : `MISSES ≤${GOAL}x`;
    rrows.push([`  ${r.label}`, fmtRatio(r.value.median), `[${fmtRatio(r.value.min)}–${fmtRatio(r.value.max)}]`, verdict]);
  }
  out.push(table(rrows, new Set([1])));
  out.push('');
  out.push(
    `replay filter at the middle relay: ${res.replay.checked.toLocaleString('en-US')} onions checked of ` +
      `${res.replay.capacity.toLocaleString('en-US')} capacity (${(res.replay.bytes / 2 ** 20).toFixed(1)} MiB), never full`,
  );
  out.push(summaryLine(res));
  out.push(`(${res.seconds.toFixed(1)} s)`);
  console.log(out.join('\n') + '\n');
}

function summaryLine(res: BindingResult): string {
  const goal = res.ratios.filter((r) => r.goal);
  const met = goal.filter((r) => r.meets).length;
  const r = (id: string): string => fmtRatio(ratioOf(res, id).value.median);
  const layer = caseOf(res, CASE.unwrapForward);
  return (
    `summary ${res.binding}: 1 layer ${r('unwrapForward/aead')} of AEAD (wrapBackward ${r('wrapBackward/aead')}), ` +
    `client → hop 3 ${r('clientWrap/3aead')} of 3 × AEAD, processOnion ${r('processOnion/x25519')} of its X25519; ` +
    `${met}/${goal.length} ratios meet ≤${GOAL}x; ` +
    `${fmtNum(layer.opsPerSec.median)} cells/s (${fmtNum(layer.mbPerSec!.median)} MB/s) per relay layer, ` +
    `${fmtNum(caseOf(res, CASE.processOnion).opsPerSec.median)} onions/s per hop, ` +
    `${fmtNum(caseOf(res, CASE.roundTrip).opsPerSec.median)} circuit builds/s`
  );
}

function printComparison(results: readonly BindingResult[]): void {
  const native = results.find((r) => r.binding === 'sodium-native');
  const wasm = results.find((r) => r.binding === 'libsodium-wrappers');
  if (!native || !wasm) return;
  const ids = [
    CASE.unwrapForward,
    CASE.wrapBackward,
    CASE.clientWrap,
    CASE.clientUnwrap,
    CASE.processOnion,
    CASE.roundTrip,
    PRIM.aead1003,
    PRIM.xaead512,
    PRIM.x25519,
  ];
  const rows: string[][] = [['sodium-native vs libsodium-wrappers', 'native/s', 'wasm/s', 'native ÷ wasm']];
  for (const id of ids) {
    const n = caseOf(native, id);
    const w = caseOf(wasm, id);
    rows.push([`  ${n.label.trim()}`, fmtNum(n.opsPerSec.median), fmtNum(w.opsPerSec.median), fmtRatio(n.opsPerSec.median / w.opsPerSec.median)]);
  }
  console.log(table(rows, new Set([1, 2, 3])));
  const goal = results.flatMap((r) => r.ratios.filter((x) => x.goal).map((x) => ({ b: r.binding, x })));
  const misses = goal.filter((g) => !g.x.meets).map((g) => `${g.b}: ${g.x.label.trim()} ${fmtRatio(g.x.value.median)}`);
  console.log(
    `\nsummary: ${goal.length - misses.length}/${goal.length} goal ratios meet ≤${GOAL}x across both bindings` +
      (misses.length ? `; misses — ${misses.join('; ')}` : ''),
  );
}

function writeJson(o: Options, results: readonly BindingResult[]): void {
  if (!o.json) return;
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `crypto-${stamp}.json`);
  const doc = {
    bench: 'crypto',
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model.trim(),
    cpus: os.cpus().length,
    goal: GOAL,
    options: { runs: o.runs, sliceMs: o.sliceMs, turns: o.turns, warmMs: o.warmMs, quick: o.quick },
    results,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  console.log(`results written to ${path.relative(process.cwd(), file)}`);
}

// --- main ----------------------------------------------------------------------------------------------------------

/** Runs one binding in a fresh Node process (same loader flags, so tsx keeps working) and reads back its result. */
function runChild(which: Which, o: Options): BindingResult | null {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'allium-bench-'));
  const out = path.join(tmp, 'result.json');
  try {
    const args = [...process.execArgv, fileURLToPath(import.meta.url), '--binding', which, '--runs', String(o.runs), '--json-out', out];
    if (o.quick) args.push('--quick');
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench: the ${which} run failed (exit ${r.status ?? r.signal})`);
    return JSON.parse(readFileSync(out, 'utf8')) as BindingResult | null;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.binding !== 'both') {
    const res = await runBinding(o.binding, o);
    if (res) printBinding(res);
    else console.log(`== ${o.binding}: sodium-native is not installed here; skipped ==\n`);
    if (o.jsonOut !== undefined) writeFileSync(o.jsonOut, JSON.stringify(res));
    else writeJson(o, res ? [res] : []);
    return;
  }
  const results: BindingResult[] = [];
  for (const which of ['native', 'wasm'] as const) {
    const res = runChild(which, o);
    if (res) results.push(res);
  }
  printComparison(results);
  writeJson(o, results);
}

await main();
