/**
 * One fuzz target in a worker thread, inside the instrumented build (test/fuzz/build.ts): loads the seeds and the
 * saved corpus, runs the engine for the given time, saves the inputs that found new coverage, and posts the result.
 * The runner (test/fuzz/run.ts) watches the heartbeats and reads `current` if the worker stops answering.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { initCrypto } from '../../crypto/index.js';
import { FuzzEngine, type Coverage, type EngineResult } from './engine.js';
import { DICTIONARY, fuzzTargets } from './targets.js';

export interface WorkerData {
  target: string;
  seconds: number;
  corpusDir: string;
  seed: number;
  current: SharedArrayBuffer;
}
export type WorkerMessage = { beat: number } | { result: Omit<EngineResult, 'corpus' | 'added'> & { corpus: number; added: number; counters: number } };

interface FileCoverage {
  s: Record<string, number>;
  f: Record<string, number>;
  b: Record<string, number[]>;
}

/** The istanbul counters of every instrumented file, read and reset in one pass. */
function istanbulCoverage(): Coverage {
  const all = (globalThis as { __coverage__?: Record<string, FileCoverage> }).__coverage__ ?? {};
  const objects: { o: Record<string, number>; keys: string[] }[] = [];
  const arrays: number[][] = [];
  for (const fc of Object.values(all)) {
    objects.push({ o: fc.s, keys: Object.keys(fc.s) }, { o: fc.f, keys: Object.keys(fc.f) });
    for (const a of Object.values(fc.b)) arrays.push(a);
  }
  const size = objects.reduce((n, x) => n + x.keys.length, 0) + arrays.reduce((n, a) => n + a.length, 0);
  return {
    size,
    drain(visit) {
      let i = 0;
      for (const { o, keys } of objects) {
        for (const k of keys) {
          const c = o[k]!;
          if (c !== 0) {
            visit(i, c);
            o[k] = 0;
          }
          i++;
        }
      }
      for (const a of arrays) {
        for (let j = 0; j < a.length; j++) {
          const c = a[j]!;
          if (c !== 0) {
            visit(i, c);
            a[j] = 0;
          }
          i++;
        }
      }
    },
  };
}

const d = workerData as WorkerData;
await initCrypto();
const target = fuzzTargets().find((t) => t.name === d.target);
if (!target) throw new Error(`no fuzz target "${d.target}"`);
mkdirSync(d.corpusDir, { recursive: true });
const saved = readdirSync(d.corpusDir).map((f) => new Uint8Array(readFileSync(join(d.corpusDir, f))));
const rng = xoroshiro128plus(d.seed | 0);
const engine = new FuzzEngine({
  execute: (x) => target.execute(x),
  coverage: istanbulCoverage(),
  seeds: [...target.seeds(), ...saved],
  maxLen: target.maxLen,
  dictionary: DICTIONARY,
  random: () => uniformFloat64(rng),
  // far above any decoder's cost at these sizes (microseconds to a few milliseconds), and above a loaded machine's
  // pauses: what it catches is work out of all proportion, as the value-sharing bomb's seconds
  slowMs: 1000,
  current: new Uint8Array(d.current),
  heartbeat: (beat) => parentPort!.postMessage({ beat } satisfies WorkerMessage),
});
parentPort!.postMessage({ beat: 0 } satisfies WorkerMessage); // set up: from here on the runner's hang clock runs
const r = engine.runFor(d.seconds);
for (const input of r.added) writeFileSync(join(d.corpusDir, createHash('sha256').update(input).digest('hex').slice(0, 32)), input);
parentPort!.postMessage({
  result: {
    execs: r.execs,
    ms: r.ms,
    features: r.features,
    findings: r.findings,
    corpus: r.corpus.length,
    added: r.added.length,
    counters: istanbulCoverage().size,
  },
} satisfies WorkerMessage);
