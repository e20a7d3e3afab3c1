/**
 * npm run bench:tor-latency — real Tor's 3-hop circuit build time when every link has a one-way delay, measured
 * the way bench:circuit --latency measures Allium's, so the two designs' round trips can be set side by side:
 * Tor telescopes (CREATE2 to the guard, then EXTEND2 to the middle, then to the exit: three round trips, 12 one-way
 * delays on the critical path), Allium builds in one round trip through the three hops (6 one-way delays).
 *
 *   --delay MS            one-way delay per link and direction (default 20)
 *   --builds N            timed builds per network (default 30)
 *   --mids N, --exits N   non-exit relays and exits (default 2 and 2; paths use only these)
 *   --bootstrap-timeout S how long each network may take to form its consensus (default 300)
 *   --keep                keep the networks' directories (torrcs, logs) under the system temp dir
 *   --no-json             skip writing bench/results/tor-latency-<timestamp>.json
 *
 * Method. Two private Tor networks on 127.0.0.1 (Debian's tor; set up like shared/anchors/tor-local: 3 directory
 * authorities, non-exit relays, exits accepting only 127.0.0.1, a client with full descriptors and a fixed
 * build timeout) start at the same time. In the delayed one, every non-authority relay advertises the port of a
 * delaying TCP forwarder (bench/lib/delay-main.ts, the forwarder bench:circuit --latency uses when the kernel has
 * no netem) in front of its real ORPort (`ORPort A NoListen` + `ORPort B NoAdvertise`), so client→guard,
 * guard→middle and middle→exit all wait --delay ms per direction. The reference network is the same without the
 * forwarder (relays advertise their real ORPorts), as the anchor measures Tor. A forwarder with 0 ms is not used as
 * the reference: with it, a few relay-to-relay channels (different ones from run to run) stalled every extend over
 * them by 40–70 ms, which no delayed run showed (cause not pinned down; it looks like an interplay of small writes
 * and delayed ACKs), so it would understate what the delay costs. The authorities stay direct in both networks and
 * are never on a measured path. Paths are explicit (EXTENDCIRCUIT 0 $guard,$middle,$exit over the client's control
 * socket), rotating over every mid→mid→exit combination; each path is built twice untimed first, so every TLS
 * channel on it is open, as Allium's build rows have their links open. Timed builds alternate between the two
 * networks (so load on the shared machine falls on both alike), 200 ms apart; each runs from just before
 * EXTENDCIRCUIT to the arrival of CIRC BUILT, with per-hop times from the EXTENDED events. Every process is started
 * and stopped here, by pid.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from '../cli/local-network.js';
import { table } from './harness.js';
import { tsxRuntime } from './lib/compiled.js';
import { parseFlags } from './lib/options.js';
import { CpuWindow, machineLine } from './lib/proc.js';
import { progress, writeResults } from './lib/results.js';
import { fmt, fmtMinMax, summarize, type Summary } from './lib/stats.js';
import { CircuitWatcher, type TorBuild } from './lib/tor-latency-builds.js';
import { startTorNet, torMissing, torVersion, type TorNet } from './lib/tor-latency-net.js';

const USAGE = 'usage: npm run bench:tor-latency -- [--delay MS] [--builds N] [--mids N] [--exits N] [--bootstrap-timeout S] [--keep] [--no-json]';
const flags = parseFlags(
  process.argv.slice(2),
  { delay: 'number', builds: 'number', mids: 'number', exits: 'number', 'bootstrap-timeout': 'number', keep: 'boolean', 'no-json': 'boolean' },
  USAGE,
);
const opts = {
  delayMs: flags.delay ?? 20,
  builds: Math.max(1, Math.round(flags.builds ?? 30)),
  mids: Math.max(2, Math.round(flags.mids ?? 2)),
  exits: Math.max(1, Math.round(flags.exits ?? 2)),
  bootstrapTimeoutS: flags['bootstrap-timeout'] ?? 300,
  keep: flags.keep ?? false,
  json: !(flags['no-json'] ?? false),
};

/** Every guard→middle→exit combination over the non-authority relays (guard ≠ middle). */
function paths(net: TorNet): string[][] {
  const mids = net.relays.filter((r) => r.role === 'mid');
  const exits = net.relays.filter((r) => r.role === 'exit');
  const out: string[][] = [];
  for (const e of exits) for (const g of mids) for (const m of mids) if (g !== m) out.push([g.fingerprint, m.fingerprint, e.fingerprint]);
  return out;
}

interface Side {
  readonly build: Summary;
  readonly hop1: Summary;
  readonly hop2: Summary;
  readonly hop3: Summary;
  readonly failed: number;
}

function side(xs: readonly TorBuild[]): Side {
  const ok = xs.filter((x) => x.ok && x.hopMs.length === 3);
  return {
    build: summarize(ok.map((x) => x.ms)),
    hop1: summarize(ok.map((x) => x.hopMs[0]!)),
    hop2: summarize(ok.map((x) => x.hopMs[1]! - x.hopMs[0]!)),
    hop3: summarize(ok.map((x) => x.hopMs[2]! - x.hopMs[1]!)),
    failed: xs.length - ok.length,
  };
}

/** Allium's figure under the same forwarder, from the newest bench:circuit --latency result with this delay. */
function alliumResult(delayMs: number): { file: string; date: string; builds: Summary } | null {
  const dir = path.resolve(import.meta.dirname, 'results');
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /^circuit-latency-.*\.json$/.test(f))
      .sort()
      .reverse();
  } catch {
    return null;
  }
  for (const f of files) {
    try {
      const doc = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as {
        date: string;
        options: { delayMs?: number; method?: string };
        results: { builds?: Summary };
      };
      if (doc.options.delayMs === delayMs && doc.options.method === 'forwarder' && doc.results.builds)
        return { file: `bench/results/${f}`, date: doc.date, builds: doc.results.builds };
    } catch {
      // not a result file we understand; try the next
    }
  }
  return null;
}

async function main(): Promise<void> {
  const missing = torMissing();
  if (missing) {
    console.error(`bench:tor-latency needs real Tor: ${missing}.`);
    process.exit(1);
  }
  const d = opts.delayMs;
  const version = torVersion();
  const nets: TorNet[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await Promise.all(nets.map((n) => n.stop(opts.keep)));
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      progress(`${sig}: stopping the networks`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  try {
    progress(
      `${version}; starting two private networks on 127.0.0.1 (direct, and ${d} ms per direction through a forwarder), ${opts.mids} mids + ${opts.exits} exits + 3 authorities each`,
    );
    const base = { mids: opts.mids, exits: opts.exits, runtime: tsxRuntime(), bootstrapTimeoutS: opts.bootstrapTimeoutS, log: progress };
    const started = await Promise.allSettled([
      startTorNet({ ...base, name: 'ref', delayMs: 0, direct: true }),
      startTorNet({ ...base, name: `d${d}`, delayMs: d }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') nets.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [ref, delayed] = nets as [TorNet, TorNet];
    const watchers = await Promise.all(nets.map((n) => CircuitWatcher.attach(n.control)));
    const pathsOf = nets.map(paths);

    progress(`warming up: every path (${pathsOf[0]!.length}) twice on each network, so every channel is open`);
    for (let i = 0; i < 2; i++) {
      for (let k = 0; k < nets.length; k++) {
        for (const p of pathsOf[k]!) {
          const b = await watchers[k]!.build(p);
          if (!b.ok) progress(`warm-up build on ${nets[k]!.name} failed: ${b.reason ?? ''}`);
        }
      }
    }
    await sleep(500);

    progress(`timing ${opts.builds} builds on each network, alternating`);
    const samples: TorBuild[][] = [[], []];
    const cpu = new CpuWindow(nets.flatMap((n) => n.pids));
    const load0 = os.loadavg();
    for (let i = 0; i < opts.builds; i++) {
      // Alternate which network goes first, so neither always follows the other's build.
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) {
        const p = pathsOf[k]![i % pathsOf[k]!.length]!;
        samples[k]!.push(await watchers[k]!.build(p));
        await sleep(200);
      }
    }
    const window = cpu.end();
    const load1 = os.loadavg();
    for (const w of watchers) w.detach();

    const r0 = side(samples[0]!);
    const r1 = side(samples[1]!);
    const allium = alliumResult(d);
    const row = (label: string, s: Summary, expect: string): string[] => [
      label,
      `${fmt(s.median)} ms`,
      `${fmt(s.p90)} ms`,
      fmtMinMax(s, ' ms'),
      String(s.n),
      expect,
    ];
    const out: string[] = [];
    out.push(`== bench:tor-latency --delay ${d} — ${machineLine()} ==`);
    out.push(`${version}; 3 authorities (direct, never on a path) + ${opts.mids} mids + ${opts.exits} exits per network.`);
    out.push(
      `Reference network: direct loopback; delayed network: every mid and exit behind a forwarder, ${d} ms per direction on client→guard, guard→middle, middle→exit.`,
    );
    out.push(`Explicit paths (EXTENDCIRCUIT 0 $guard,$middle,$exit), channels already open; alternating builds, 200 ms apart.`);
    out.push('');
    const rows: string[][] = [['', 'median', 'p90', 'min–max', 'n', 'delay on the critical path']];
    rows.push(row('reference (direct): 3-hop build', r0.build, '0'));
    rows.push(row('  hop 1 (CREATE2 to guard)', r0.hop1, ''));
    rows.push(row('  + hop 2 (EXTEND2 via guard)', r0.hop2, ''));
    rows.push(row('  + hop 3 (EXTEND2 via middle)', r0.hop3, ''));
    rows.push(row(`${d} ms per direction: 3-hop build`, r1.build, `12 × ${d} = ${12 * d} ms`));
    rows.push(row('  hop 1 (CREATE2 to guard)', r1.hop1, `2 × ${d} = ${2 * d} ms`));
    rows.push(row('  + hop 2 (EXTEND2 via guard)', r1.hop2, `4 × ${d} = ${4 * d} ms`));
    rows.push(row('  + hop 3 (EXTEND2 via middle)', r1.hop3, `6 × ${d} = ${6 * d} ms`));
    out.push(table(rows, new Set([1, 2, 3, 4])));
    out.push('');
    const added = r1.build.median - r0.build.median;
    out.push(
      `The delay added ${fmt(added)} ms to Tor's median build (medians ${fmt(r1.build.median)} − ${fmt(r0.build.median)}); ` +
        `three round trips through the telescope would add 12 × ${d} = ${12 * d} ms.`,
    );
    if (allium) {
      out.push(
        `Allium under the same forwarder and delay (${allium.file}, ${allium.date}): median ${fmt(allium.builds.median)} ms ` +
          `(p90 ${fmt(allium.builds.p90)}, n ${allium.builds.n}); its one round trip puts 6 × ${d} = ${6 * d} ms of delay on the path. ` +
          `Tor / Allium = ${fmt(r1.build.median / allium.builds.median)}×.`,
      );
    } else {
      out.push(`Allium's figure under the same forwarder: npm run bench:circuit -- --latency ${d} (one round trip: 6 × ${d} = ${6 * d} ms of delay).`);
    }
    out.push(
      `Failed builds: ${r0.failed} (reference), ${r1.failed} (delayed). Other tenants used ${window.otherCores.toFixed(2)} cores during the timed builds; ` +
        `load average ${load0[0]!.toFixed(2)} → ${load1[0]!.toFixed(2)}. Bootstrap: ${ref.bootstrapSeconds.toFixed(0)} s and ${delayed.bootstrapSeconds.toFixed(0)} s.`,
    );
    console.log(out.join('\n'));
    if (opts.json) {
      const file = writeResults(
        'tor-latency',
        { ...opts, method: 'forwarder', reference: 'direct', tor: version },
        {
          reference: r0,
          delayed: r1,
          alliumForComparison: allium,
          otherCores: window.otherCores,
          loadavg: { start: load0, end: load1 },
          bootstrapSeconds: { reference: ref.bootstrapSeconds, delayed: delayed.bootstrapSeconds },
          relays: nets.map((n) => ({ network: n.name, relays: n.relays })),
          raw: { reference: samples[0], delayed: samples[1] },
        },
      );
      console.log(`results written to ${file}`);
    }
    if (opts.keep) console.log(`network directories kept: ${nets.map((n) => n.dir).join(' ')}`);
  } finally {
    progress('stopping every tor and forwarder this run started');
    await stopAll();
  }
}

await main();
