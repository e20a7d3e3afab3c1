/**
 * The adversary audit's quick run (`npm run audit:adversary -- --quick --json`, docs/adversary-audit.md) as a test:
 * the six adversaries against the shipped path, guard, placement, directory and consensus code, and every goal met.
 * The figures the old code gave are recorded in docs/adversary-baseline.json; each scenario missed its goals there.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..', '..');

interface Row {
  id: string;
  display: string;
  goal: string;
  met: boolean;
  informational?: boolean;
}

describe('sim: adversary audit (quick)', function () {
  this.timeout(240_000);

  it('every adversary meets its goal, and the recorded baseline missed them', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'audit-adversary.ts'), '--quick', '--json'], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
    const out = JSON.parse(stdout) as { rows: Row[]; before: Row[] };
    const ids = out.rows.map((r) => r.id);
    for (const prefix of ['bandwidth/', 'grinding/', 'sybil/', 'equivocation/', 'sdos/', 'exposure/'])
      expect(
        ids.some((id) => id.startsWith(prefix)),
        prefix,
      ).to.equal(true);
    const missed = out.rows.filter((r) => !r.met && !r.informational).map((r) => `${r.id}: ${r.display} (goal ${r.goal})`);
    expect(missed, missed.join('\n')).to.deep.equal([]);
    // The old code missed the goal of at least one figure of every adversary.
    for (const prefix of ['bandwidth/', 'grinding/', 'sybil/', 'equivocation/', 'sdos/', 'exposure/']) {
      expect(
        out.before.some((r) => r.id.startsWith(prefix) && !r.met),
        `baseline of ${prefix}`,
      ).to.equal(true);
    }
  });
});
