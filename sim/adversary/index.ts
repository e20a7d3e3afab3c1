/**
 * The adversary audit (docs/adversary-audit.md): six adversaries run against the shipped path, guard, placement,
 * directory and consensus code. `runAudit` runs them in order and returns one row per figure.
 */
import { initCrypto } from '../../crypto/index.js';
import { bandwidthLying } from './bandwidth-lying.js';
import type { AuditOptions, AuditRow } from './common.js';
import { equivocation } from './equivocation.js';
import { guardExposure } from './guard-exposure.js';
import { placementGrinding } from './placement-grinding.js';
import { selectiveDos } from './selective-dos.js';
import { sybilFlood } from './sybil-flood.js';

export type { AuditOptions, AuditRow } from './common.js';

export const SCENARIOS: readonly { name: string; run: (o: AuditOptions) => Promise<AuditRow[]> }[] = [
  { name: 'bandwidth', run: bandwidthLying },
  { name: 'grinding', run: placementGrinding },
  { name: 'sybil', run: sybilFlood },
  { name: 'equivocation', run: equivocation },
  { name: 'sdos', run: selectiveDos },
  { name: 'exposure', run: guardExposure },
];

/** Runs the scenarios (all, or those named in `only`) and returns their rows with the seconds each took. */
export async function runAudit(o: AuditOptions, only?: readonly string[]): Promise<{ rows: AuditRow[]; seconds: Record<string, number> }> {
  await initCrypto();
  const rows: AuditRow[] = [];
  const seconds: Record<string, number> = {};
  for (const s of SCENARIOS) {
    if (only && only.length > 0 && !only.includes(s.name)) continue;
    const t = performance.now();
    rows.push(...(await s.run(o)));
    seconds[s.name] = (performance.now() - t) / 1000;
  }
  return { rows, seconds };
}
