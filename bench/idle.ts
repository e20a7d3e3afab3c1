/**
 * npm run bench:idle — what a local network (cli/local-network.ts startNetwork, as the tests, the benchmarks and the
 * devnet start it) costs while nothing happens on it, and how long it takes to come up:
 *
 *   - ready: from the first relay's launch until startNetwork returns (every directory full, every relay holding a
 *     consensus in which all relays are Guards and the store relays Holders);
 *   - idle CPU: the relay processes' CPU time (utime + stime, /proc/PID/stat) over --seconds after that, as a share
 *     of one core, summed over the authorities and over the other relays;
 *   - the cores the rest of the machine used meanwhile (other tenants: the figures are only comparable when it is
 *     quiet, or when two builds are run interleaved).
 *
 *   flags: --relays N (8)  --seconds N (30)  --rounds N (networks started one after another: 1)
 *          --authorities N (startNetwork's default)  --prof DIR (relays run with --cpu-prof into DIR; the busiest
 *          functions of one authority and one other relay are printed)
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startNetwork, sleep } from '../cli/local-network.js';
import { CpuWindow, machineLine } from './lib/proc.js';
import { topSelfTime } from './lib/cpu-profile.js';
import { parseFlags } from './lib/options.js';
import { fmt, median } from './lib/stats.js';

const flags = parseFlags(
  process.argv.slice(2),
  { relays: 'number', seconds: 'number', rounds: 'number', authorities: 'number', prof: 'string' },
  'npm run bench:idle -- [--relays N] [--seconds N] [--rounds N] [--authorities N] [--prof DIR]',
);
const n = flags.relays ?? 8;
const seconds = flags.seconds ?? 30;
const rounds = flags.rounds ?? 1;
const prof = flags.prof !== undefined ? resolve(flags.prof) : null;

console.log(`Allium idle benchmark: ${n} relay processes on 127.0.0.1, ${seconds} s idle, ${rounds} round(s); ${machineLine()}`);
const ready: number[] = [];
const authCpu: number[] = [];
const otherCpu: number[] = [];
for (let round = 0; round < rounds; round++) {
  const dir = prof ? join(prof, `round-${round}`) : null;
  const t0 = performance.now();
  const stages: string[] = [];
  const net = await startNetwork(n, {
    onStage: (stage) => stages.push(`${stage} ${fmt((performance.now() - t0) / 1000)} s`),
    ...(flags.authorities !== undefined ? { authorities: flags.authorities } : {}),
    ...(dir ? { process: { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] } } : {}),
  });
  const readyMs = performance.now() - t0;
  const nAuth = net.authorities.length;
  const published = (): number => net.relays[0]!.logs().split('consensus published').length - 1;
  const published0 = published();
  const w = new CpuWindow(net.relays.map((r) => r.pid));
  const from = Number(process.hrtime.bigint() / 1000n);
  await sleep(seconds * 1000);
  const to = Number(process.hrtime.bigint() / 1000n);
  const { wallSeconds, cpu, otherCores } = w.end();
  const share = (rs: typeof net.relays): number => rs.reduce((s, r) => s + cpu.get(r.pid)!, 0) / wallSeconds;
  const a = share(net.relays.slice(0, nAuth));
  const o = share(net.relays.slice(nAuth));
  ready.push(readyMs);
  authCpu.push(a);
  otherCpu.push(o);
  console.log(
    `round ${round + 1}: ready in ${fmt(readyMs)} ms (${stages.join(', ') || 'no stages reported'}); idle CPU ${fmt((a + o) * 100)} % of a core ` +
      `(${nAuth} authorities ${fmt(a * 100)} %, ${n - nAuth} others ${fmt(o * 100)} %); rest of the machine ${fmt(otherCores)} cores; ` +
      `consensuses published by the first authority in the window: ${published() - published0}`,
  );
  if (dir) {
    // SIGTERM, so the profiles are written.
    await Promise.all(net.relays.map((r) => r.kill('SIGTERM')));
    mkdirSync(dir, { recursive: true });
    const files = new Map(readdirSync(dir).map((f) => [Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]), join(dir, f)]));
    const show = [
      ['an authority', net.relays[0]!],
      ['another relay', net.relays[n - 1]!],
    ] as const;
    for (const [what, r] of show) {
      const f = files.get(r.pid);
      if (!f) continue;
      const { busyMs, entries } = topSelfTime(f, 20, [from, to]);
      console.log(`  ${what} (${f}, window ${from}..${to} µs): busy ${fmt(busyMs)} ms in the idle window`);
      for (const e of entries) console.log(`    ${fmt(e.share * 100).padStart(6)} %  ${e.name}`);
    }
  }
  await net.stop();
}
if (rounds > 1)
  console.log(
    `median: ready in ${fmt(median(ready))} ms; idle CPU ${fmt((median(authCpu) + median(otherCpu)) * 100)} % of a core ` +
      `(authorities ${fmt(median(authCpu) * 100)} %, others ${fmt(median(otherCpu) * 100)} %)`,
  );
