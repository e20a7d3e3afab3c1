/**
 * Runs fuzz targets (test/fuzz/targets.ts) in worker threads of the instrumented build, a few at once, each for a
 * given time, and collects what they found. A worker that sends no heartbeat for HANG_MS is stopped and the input it
 * was running (read from shared memory) is a "hang"; one that runs out of its heap is an "oom". Findings are written
 * to fuzz-findings/<target>/ (input and message); inputs that reached new coverage are kept in
 * node_modules/.cache/allium-fuzz/corpus/<target>/ for the next run. Used by scripts/fuzz.ts (npm run fuzz) and by
 * the short run in test/fuzz/fuzz.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BUILD_DIR, buildFuzzWorker, WORKER_BUNDLE } from './build.js';
import type { WorkerData, WorkerMessage } from './worker.js';

const HANG_MS = 10_000;
/** A worker's set-up (loading, libsodium, a target's seeds) before its first heartbeat: slow on a loaded machine. */
const STARTUP_MS = 120_000;
const CURRENT_BYTES = 4 + 64 * 1024;

export interface TargetReport {
  target: string;
  execs: number;
  seconds: number;
  execsPerSecond: number;
  corpus: number;
  added: number;
  features: number;
  findings: { kind: string; message: string; file: string }[];
}

export interface FuzzRunOptions {
  seconds: number;
  targets: readonly string[];
  jobs: number;
  /** Directory for findings (default fuzz-findings in the working directory). */
  findingsDir?: string;
  seed?: number;
  onReport?: (r: TargetReport) => void;
}

function saveFinding(dir: string, target: string, kind: string, message: string, input: Uint8Array): string {
  const folder = join(dir, target.replace(/[^A-Za-z0-9_-]+/g, '-'));
  mkdirSync(folder, { recursive: true });
  const name = `${kind}-${createHash('sha256').update(input).digest('hex').slice(0, 16)}`;
  writeFileSync(join(folder, `${name}.bin`), input);
  writeFileSync(join(folder, `${name}.txt`), `${message}\n`);
  return join(folder, `${name}.bin`);
}

function runOne(target: string, o: FuzzRunOptions, findingsDir: string): Promise<TargetReport> {
  const current = new SharedArrayBuffer(CURRENT_BYTES);
  const data: WorkerData = {
    target,
    seconds: o.seconds,
    corpusDir: join(BUILD_DIR, 'corpus', target.replace(/[^A-Za-z0-9_-]+/g, '-')),
    seed: o.seed ?? Date.now() % 2 ** 31,
    current,
  };
  const worker = new Worker(WORKER_BUNDLE, { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 32 } });
  const started = performance.now();
  const lastInput = (): Uint8Array => {
    const view = new Uint8Array(current);
    const len = new DataView(current).getUint32(0);
    return view.slice(4, 4 + Math.min(len, CURRENT_BYTES - 4));
  };
  return new Promise((resolve) => {
    let beat = performance.now();
    let running = false;
    let execs = 0;
    let settled = false;
    let exited = false;
    const finish = (r: TargetReport, reported = false): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      if (!reported || exited) {
        void worker.terminate();
        resolve(r);
        return;
      }
      // A worker that reported ends by itself. Terminating it then races its own teardown, in which native modules
      // run their clean-up: the likely cause of the crashes in libgcc_s's unwinder this suite showed a few times.
      // Wait for its exit; terminate only one that does not end.
      const late = setTimeout(() => void worker.terminate(), 10_000);
      worker.once('exit', () => {
        clearTimeout(late);
        resolve(r);
      });
    };
    const failed = (kind: string, message: string): void => {
      if (settled) return; // the worker's own exit after its report, or after terminate()
      const file = saveFinding(findingsDir, target, kind, message, lastInput());
      const seconds = (performance.now() - started) / 1000;
      finish({ target, execs, seconds, execsPerSecond: execs / seconds, corpus: 0, added: 0, features: 0, findings: [{ kind, message, file }] });
    };
    const watchdog = setInterval(() => {
      if (!running && performance.now() - beat > STARTUP_MS) failed('hang', `not started within ${STARTUP_MS} ms`);
      if (running && performance.now() - beat > HANG_MS) failed('hang', `no progress for ${HANG_MS} ms`);
    }, 1000);
    worker.on('message', (m: WorkerMessage) => {
      beat = performance.now();
      running = true;
      if ('beat' in m) execs = m.beat;
      else {
        const r = m.result;
        const findings = r.findings.map((f) => ({ kind: f.kind, message: f.message, file: saveFinding(findingsDir, target, f.kind, f.message, f.input) }));
        finish(
          {
            target,
            execs: r.execs,
            seconds: r.ms / 1000,
            execsPerSecond: r.execs / (r.ms / 1000),
            corpus: r.corpus,
            added: r.added,
            features: r.features,
            findings,
          },
          true,
        );
      }
    });
    worker.on('error', (e: Error & { code?: string }) => failed(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'oom' : 'crash', `${e.name}: ${e.message}`));
    worker.on('exit', (code) => {
      exited = true;
      failed('crash', `worker exited with code ${code} before reporting`);
    });
  });
}

/** Builds the instrumented worker, then fuzzes every target named in `targets`. */
export async function runFuzz(o: FuzzRunOptions): Promise<TargetReport[]> {
  await buildFuzzWorker();
  const findingsDir = o.findingsDir ?? join(process.cwd(), 'fuzz-findings');
  const queue = [...o.targets];
  const reports: TargetReport[] = [];
  const lane = async (): Promise<void> => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      const r = await runOne(t, o, findingsDir);
      reports.push(r);
      o.onReport?.(r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.jobs) }, lane));
  return reports.sort((a, b) => o.targets.indexOf(a.target) - o.targets.indexOf(b.target));
}
