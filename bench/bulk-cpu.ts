/**
 * npm run bench:bulk-cpu — the CPU a bulk download costs each process on the path, and nothing else: the narrow part
 * of bench:circuit's bulk rows, quick enough to run after every change to the data path (issue 18).
 *
 * A local network of relay processes (4 relays, 2 exits allowing 127.0.0.1), a SOCKS client process (pool off) and
 * a web server in this process; curl downloads `--mib` MiB through a 3-hop circuit, `--rounds` times. CPU is each
 * process's user + system time over the transfer (/proc), per MiB: it does not depend on how loaded the machine is,
 * as wall time does.
 *
 *   --quick            2 rounds of 32 MiB (default 3 rounds of 64 MiB)
 *   --rounds N --mib N
 *   --profile DIR      run every relay and the client with node --cpu-prof into DIR, then print the top self-time
 *                      functions of the client and of each relay on the path, over the transfers only
 *   --perf-map         run every relay and the client with node --perf-basic-prof (JIT symbols for Linux perf:
 *                      `perf record -g -p PID` during the transfer sees CPU time only, where --cpu-prof samples the
 *                      wall clock and so counts a preempted process too); prints the path's pids with their roles
 *   --modules          relays from the tsc output (dist/cli/) instead of the bundle, as installed (the default)
 *   --tsx              relays and client through tsx (default: tsc output; relays as installed, from the bundle)
 */
import { mkdirSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initCrypto } from '../crypto/index.js';
import { startChild } from './lib/children.js';
import { benchRuntime } from './lib/compiled.js';
import { topSelfTime } from './lib/cpu-profile.js';
import { curl } from './lib/curl.js';
import { startHttpTarget } from './lib/http-target.js';
import { metricOf, startBenchNetwork } from './lib/network.js';
import { parseFlags } from './lib/options.js';
import { CpuWindow, machineLine } from './lib/proc.js';
import { progress } from './lib/results.js';
import { fmt, MiB, summarize } from './lib/stats.js';
import { sleep } from '../cli/local-network.js';

const USAGE = 'usage: npm run bench:bulk-cpu -- [--quick] [--rounds N] [--mib N] [--profile DIR] [--perf-map] [--modules | --tsx]';
const flags = parseFlags(
  process.argv.slice(2),
  { quick: 'boolean', rounds: 'number', mib: 'number', profile: 'string', 'perf-map': 'boolean', tsx: 'boolean', modules: 'boolean' },
  USAGE,
);
const quick = flags.quick ?? false;
const rounds = flags.rounds ?? (quick ? 2 : 3);
const bulkBytes = (flags.mib ?? (quick ? 32 : 64)) * MiB;
const profileDir = flags.profile ? path.resolve(flags.profile) : null;
const ROLES = ['entry', 'middle', 'last'] as const;

async function main(): Promise<void> {
  await initCrypto();
  const rt = await benchRuntime(flags, progress);
  const prof = (sub: string): string[] => {
    if (flags['perf-map']) return ['--perf-basic-prof'];
    if (!profileDir) return [];
    const dir = path.join(profileDir, sub);
    mkdirSync(dir, { recursive: true });
    return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  };
  const http = await startHttpTarget(bulkBytes);
  progress('starting 6 relay processes (2 exits) and waiting for a full mesh');
  const net = await startBenchNetwork({ n: 6, exits: 2, runtime: rt, httpPort: http.port, nodeArgs: prof('relays') });
  const client = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bootstrap', net.bootstrap, '--pool', '0'], 60_000, prof('client'));
  const perRole = new Map<string, number[]>(ROLES.map((r) => [r, []]));
  const clientMs: number[] = [];
  /** Kernel share of the path's CPU (socket reads and writes), and the cores the path's 4 processes used together. */
  const sysShare: number[] = [];
  const pathCores: number[] = [];
  const pathPids = new Map<number, string>();
  const windows: [number, number][] = [];
  const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
  try {
    await sleep(1000);
    for (let r = 0; r < rounds; r++) {
      progress(`bulk ${bulkBytes / MiB} MiB through 3 hops, round ${r + 1}/${rounds}`);
      const user = `bulk-cpu-${r}-${Date.now()}`;
      const created = (): Promise<number[][]> =>
        Promise.all(net.relays.map((x) => Promise.all(ROLES.map((role) => metricOf(x, 'allium_circuits_created_total', { role })))));
      const c0 = await created();
      await curl(http.url('/1'), { socksPort: client.info.socksPort, user });
      const c1 = await created();
      const w = new CpuWindow([...net.relays.map((x) => x.pid), client.pid]);
      if (flags['perf-map'] && r === 0) progress(`pids: client ${client.pid}, relays ${net.relays.map((x) => x.pid).join(' ')}`);
      const t0 = nowUs();
      const via = await curl(http.url('/bulk'), { socksPort: client.info.socksPort, user });
      windows.push([t0, nowUs()]);
      const cpu = w.end();
      if (via.code !== 200 || via.bytes !== bulkBytes) throw new Error(`bulk transfer failed: HTTP ${via.code}, ${via.bytes} bytes`);
      const mib = bulkBytes / MiB;
      net.relays.forEach((x, i) => {
        const role = ROLES.find((_, j) => c1[i]![j]! > c0[i]![j]!);
        if (!role) return;
        if (r === rounds - 1) pathPids.set(x.pid, role);
        perRole.get(role)!.push((cpu.cpu.get(x.pid)! * 1000) / mib);
      });
      clientMs.push((cpu.cpu.get(client.pid)! * 1000) / mib);
      const onPath = [client.pid, ...net.relays.filter((_, i) => ROLES.some((_, j) => c1[i]![j]! > c0[i]![j]!)).map((x) => x.pid)];
      const total = onPath.reduce((a, p) => a + cpu.cpu.get(p)!, 0);
      sysShare.push(onPath.reduce((a, p) => a + cpu.sys.get(p)!, 0) / total);
      pathCores.push(total / cpu.wallSeconds);
      console.log(
        `round ${r + 1}: ${fmt(via.speed / 1e6)} MB/s; CPU ms/MiB ${ROLES.map((role) => `${role === 'last' ? 'exit' : role} ${fmt(perRole.get(role)!.at(-1) ?? NaN)}`).join(', ')}, client ${fmt(clientMs.at(-1)!)}; client system ${fmt((cpu.sys.get(client.pid)! * 1000) / mib)}; path ${fmt(pathCores.at(-1)!)} cores (${fmt(sysShare.at(-1)! * 100)} % system); other tenants ${fmt(cpu.otherCores)} cores`,
      );
    }
  } finally {
    await client.stop();
    await net.stop();
    await http.close();
  }
  console.log(`== bench:bulk-cpu — ${machineLine()} — ${rounds} × ${bulkBytes / MiB} MiB, relays from ${rt.label} ==`);
  const relayAll = summarize([...perRole.values()].flat());
  console.log(`relay CPU per MiB on the path: median ${fmt(relayAll.median)} ms (min ${fmt(relayAll.min)}, max ${fmt(relayAll.max)}; goal ≤ 7)`);
  for (const role of ROLES) console.log(`  ${role === 'last' ? 'exit' : role}: median ${fmt(summarize(perRole.get(role)!).median)} ms`);
  console.log(`client CPU per MiB: median ${fmt(summarize(clientMs).median)} ms (goal ≤ 7)`);
  console.log(
    `the path's 4 processes together: median ${fmt(summarize(pathCores).median)} cores of ${os.cpus().length} during the transfer, ${fmt(summarize(sysShare).median * 100)} % of it in the kernel`,
  );
  if (!profileDir) return;
  const show = (label: string, file: string): void => {
    // The last round's transfer: the first may include one-time compilation.
    const t = topSelfTime(file, 15, windows.at(-1));
    console.log(`\n-- ${label}: top self time over the last transfer (busy ${fmt(t.busyMs)} ms) --`);
    for (const e of t.entries) console.log(`${(e.share * 100).toFixed(1).padStart(5)} %  ${fmt(e.ms).padStart(8)} ms  ${e.name}`);
  };
  const files = (sub: string): string[] => readdirSync(path.join(profileDir, sub)).map((f) => path.join(profileDir, sub, f));
  for (const f of files('client')) show('client', f);
  for (const f of files('relays')) {
    const role = [...pathPids].find(([pid]) => path.basename(f).includes(`.${pid}.`))?.[1];
    if (role) show(`relay (${role === 'last' ? 'exit' : role})`, f);
  }
}

await main();
process.exit(0);
