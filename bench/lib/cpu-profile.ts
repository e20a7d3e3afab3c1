/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function: the samples whose top frame is that
 * function, as a share of all samples. Idle and garbage-collector entries are kept, so the shares add up to 100 %.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/**
 * The `top` functions by self time in one profile, and the profile's busy time (samples not idle) in ms. With
 * `windowUs` ([from, to) in µs of the monotonic clock, as process.hrtime.bigint() / 1000n on the same machine), only
 * the samples taken in that window count.
 */
export function topSelfTime(file: string, top = 15, windowUs?: readonly [number, number]): { busyMs: number; entries: SelfTime[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (windowUs && (t < windowUs[0] || t >= windowUs[1])) continue;
    const n = byId.get(p.samples[i]!)!;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const f = n.callFrame;
    const name = f.url ? `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}` : f.functionName;
    ms.set(name, (ms.get(name) ?? 0) + dt);
    total += dt;
    if (f.functionName === '(idle)') idle += dt;
  }
  const busy = total - idle;
  const entries = [...ms.entries()]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, v]) => ({ name, ms: v, share: v / busy }));
  return { busyMs: busy, entries };
}
