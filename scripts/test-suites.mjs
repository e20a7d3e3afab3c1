#!/usr/bin/env node
/**
 * Runs the test suites of `npm test`: first the suites that run in one process (unit, vectors, simulator...) with
 * mocha's parallel mode, two files at a time — they are CPU-bound and each file is independent; then, one file at a
 * time, the suites that measure time or load the machine themselves (property: time per byte of every decoder; fuzz:
 * workers of its own) and the integration suite, whose files start relay processes that take the cores a second file
 * would need. Both runs always happen. Each prints mocha's summary; this prints the total last, as one plain line
 * "N passed, N failed, N skipped" (what .ci/run reports), and exits 1 when either run failed or did not report.
 * Both runs get a temporary directory of their own (TMPDIR, inherited by every relay and browser a test starts), removed
 * when they end (or when this is interrupted): a test killed half-way, or one that forgets a data directory, leaves
 * nothing behind in the system's — unless this script itself is killed outright.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m;
const jobs = String(Math.max(1, Math.min(availableParallelism(), 2)));

/** The suites run one file at a time; every other folder of test/ runs in parallel (a new one too). */
const SERIAL = ['property', 'fuzz', 'integration'];
const folders = readdirSync('test', { withFileTypes: true })
  .filter((d) => d.isDirectory() && !['helpers', 'fixtures'].includes(d.name) && !SERIAL.includes(d.name))
  .map((d) => d.name);
const runs = [['--parallel', '--jobs', jobs, `test/{${folders.join(',')}}/**/*.test.ts`], [`test/{${SERIAL.join(',')}}/**/*.test.ts`]];

const scratch = mkdtempSync(join(tmpdir(), 'allium-suite-'));
// As the system's temporary directory is: tests that run a process as another user (nobody, when run as root) reach it.
chmodSync(scratch, 0o1777);
/** Removes the scratch directory; a process still writing into it (a relay stopping) must not stop the summary. */
const removeScratch = () => {
  try {
    rmSync(scratch, { recursive: true, force: true, maxRetries: 3, retryDelay: 200 });
  } catch (e) {
    process.stderr.write(`could not remove ${scratch}: ${e.message}\n`);
  }
};
let running = null;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    running?.kill(signal);
    removeScratch();
    process.exit(1);
  });
}

function mocha(args) {
  return new Promise((resolve) => {
    const child = spawn('npx', ['mocha', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TMPDIR: scratch } });
    running = child;
    let tail = '';
    child.stdout.on('data', (b) => {
      process.stdout.write(b);
      tail = (tail + b.toString()).slice(-4096);
    });
    child.on('error', (e) => process.stdout.write(`${e.message}\n`));
    child.on('close', (code) => {
      const m = [...tail.matchAll(new RegExp(SUMMARY.source, 'gm'))].at(-1);
      resolve({ code, counts: m ? m.slice(1, 4).map(Number) : null });
    });
  });
}

const total = [0, 0, 0];
let ok = true;
for (const args of runs) {
  const { code, counts } = await mocha(args);
  if (counts === null) {
    total[1] += 1; // the run stopped before mocha reported: count it as one failure
    ok = false;
  } else counts.forEach((n, i) => (total[i] += n));
  if (code !== 0) ok = false;
}
removeScratch();
process.stdout.write(`${total[0]} passed, ${total[1]} failed, ${total[2]} skipped\n`);
process.exit(ok ? 0 : 1);
