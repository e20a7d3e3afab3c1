/**
 * The short fuzzing run of CI (npm run fuzz runs longer): every decoder of untrusted input is fuzzed for about a
 * second in the instrumented build, and nothing may be found. Also checks the engine itself: coverage guidance
 * finds a planted three-byte condition that blind mutation would need millions of tries for.
 */
import { expect } from 'chai';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuzzEngine, Finding, type Coverage } from './engine.js';
import { runFuzz } from './run.js';
import { decoderCases } from '../helpers/decoders.js';

describe('fuzzing', function () {
  this.timeout(300_000);

  it('the engine follows coverage to a planted bug (magic bytes A, B, C at the start)', () => {
    const counters = new Uint32Array(4);
    const coverage: Coverage = {
      size: counters.length,
      drain(visit) {
        counters.forEach((c, i) => c && visit(i, c));
        counters.fill(0);
      },
    };
    const rng = xoroshiro128plus(7);
    const engine = new FuzzEngine({
      execute: (b) => {
        counters[0]!++;
        if (b[0] !== 0x41) return;
        counters[1]!++;
        if (b[1] !== 0x42) return;
        counters[2]!++;
        if (b[2] !== 0x43) return;
        throw new Finding('crash', 'planted');
      },
      coverage,
      seeds: [Uint8Array.of(0, 0, 0, 0)],
      maxLen: 16,
      dictionary: [],
      random: () => uniformFloat64(rng),
      slowMs: 1000,
    });
    const r = engine.runFor(30, 500_000);
    expect(r.findings.map((f) => f.message)).to.deep.equal(['planted']);
    console.log(`      found after ${r.findings[0]!.at} executions (blind: about 2^24 / 3)`);
    expect(r.findings[0]!.at).to.be.lessThan(500_000);
  });

  it('every decoder, half a second each (npm run fuzz for longer runs): no crash, no slow input, no hang, no memory exhaustion', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'allium-fuzz-'));
    try {
      const targets = decoderCases().map((c) => c.name);
      const reports = await runFuzz({ seconds: 0.5, targets, jobs: 2, findingsDir: dir, seed: 1 });
      const total = reports.reduce((n, r) => n + r.execs, 0);
      const slowest = reports.reduce((a, b) => (a.execsPerSecond < b.execsPerSecond ? a : b));
      console.log(`      ${reports.length} targets, ${total} cases; slowest ${slowest.target} at ${slowest.execsPerSecond.toFixed(0)} cases/s`);
      expect(reports.map((r) => r.target)).to.deep.equal(targets);
      for (const r of reports) expect(r.execs, r.target).to.be.greaterThan(10);
      expect(reports.flatMap((r) => r.findings.map((f) => `${r.target}: ${f.kind}: ${f.message.split('\n')[0]} (${f.file})`))).to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
